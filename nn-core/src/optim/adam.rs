//! Adam with coupled L2 weight decay (PyTorch's `torch.optim.Adam`) and AdamW with decoupled
//! weight decay (`torch.optim.AdamW`). `amsgrad` is not implemented.

use super::{Optimizer, check_lengths};
use crate::{ConstZero, Params, Real, Zeroable, parallel};
use core::marker::PhantomData;
use nalgebra::ComplexField;

/// Hyper-parameters of [`Adam`]: PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate `γ` (default `1e-3`).
    pub lr: f64,
    /// Decay rates `(β₁, β₂)` of the first and second moment averages (default
    /// `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Term `ε` added to the denominator (default `1e-8`).
    pub eps: f64,
    /// L2 penalty `λ`, added to the gradient (default `0`).
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Hyper-parameters of [`AdamW`]: PyTorch's names and defaults (those of [`AdamConfig`] but
/// for `weight_decay`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate `γ` (default `1e-3`).
    pub lr: f64,
    /// Decay rates `(β₁, β₂)` of the first and second moment averages (default
    /// `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Term `ε` added to the denominator (default `1e-8`).
    pub eps: f64,
    /// Decoupled weight decay `λ`: each step first scales the parameters by `1 − γ·λ`
    /// (default `1e-2`).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// The checks of `torch.optim.Adam`'s and `AdamW`'s constructors.
#[track_caller]
fn validate(name: &str, lr: f64, (beta1, beta2): (f64, f64), eps: f64, weight_decay: f64) {
    assert!(lr >= 0.0, "{name}: invalid learning rate {lr}");
    assert!(eps >= 0.0, "{name}: invalid epsilon {eps}");
    assert!((0.0..1.0).contains(&beta1), "{name}: invalid beta1 {beta1}");
    assert!((0.0..1.0).contains(&beta2), "{name}: invalid beta2 {beta2}");
    assert!(
        weight_decay >= 0.0,
        "{name}: invalid weight_decay {weight_decay}"
    );
}

/// Moments of Adam and AdamW, and the step count `t`.
#[derive(Clone, Debug)]
struct Moments<T: Real, S: Params<T>> {
    /// `m`, the average of the gradients.
    exp_avg: S,
    /// `v`, the average of the squared gradients.
    exp_avg_sq: S,
    /// `t`, the number of steps taken.
    steps: u64,
    _scalar: PhantomData<T>,
}

impl<T: Real, S: Params<T>> Moments<T, S> {
    const ZERO: Self = Self {
        exp_avg: S::ZERO,
        exp_avg_sq: S::ZERO,
        steps: 0,
        _scalar: PhantomData,
    };

    fn reset(&mut self) {
        self.exp_avg.set_zero();
        self.exp_avg_sq.set_zero();
        self.steps = 0;
    }

    /// One step of Adam (`decoupled == false`, `λ` added to the gradient) or AdamW
    /// (`decoupled == true`, parameters scaled by `1 − γ·λ`), as PyTorch's single-tensor
    /// implementation computes it:
    ///
    /// ```text
    /// step_size = γ / (1 − β₁ᵗ)
    /// denominator = √v_t / √(1 − β₂ᵗ) + ε
    /// θ_t = θ_{t−1} − step_size · m_t / denominator
    /// ```
    ///
    /// which is `θ_{t−1} − γ·m̂_t / (√v̂_t + ε)`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        params: &mut [T],
        grads: &[T],
        lr: f64,
        (beta1, beta2): (f64, f64),
        eps: f64,
        weight_decay: f64,
        decoupled: bool,
    ) {
        check_lengths(params, grads, S::LEN);
        self.steps += 1;
        let t = self.steps as f64;
        let bias_correction1 = 1.0 - <f64 as ComplexField>::powf(beta1, t);
        let bias_correction2 = 1.0 - <f64 as ComplexField>::powf(beta2, t);
        let neg_step_size = T::of(-lr / bias_correction1);
        let bias_correction2_sqrt = T::of(<f64 as ComplexField>::sqrt(bias_correction2));
        let beta1_t = T::of(beta1);
        let one_minus_beta1 = T::of(1.0 - beta1);
        let beta2_t = T::of(beta2);
        let one_minus_beta2 = T::of(1.0 - beta2);
        let eps = T::of(eps);
        let coupled = !decoupled && weight_decay != 0.0;
        let lambda = T::of(weight_decay);
        let shrink = decoupled && weight_decay != 0.0;
        let shrink_factor = T::of(1.0 - lr * weight_decay);

        let n = S::LEN;
        let (params, grads) = (&mut params[..n], &grads[..n]);
        let exp_avg = &mut self.exp_avg.as_mut_slice()[..n];
        let exp_avg_sq = &mut self.exp_avg_sq.as_mut_slice()[..n];
        parallel::elementwise(
            [params, exp_avg, exp_avg_sq],
            [grads],
            move |[params, exp_avg, exp_avg_sq], [grads]| {
                for i in 0..params.len() {
                    let mut p = params[i];
                    let mut g = grads[i];
                    if coupled {
                        g += lambda * p;
                    }
                    if shrink {
                        p *= shrink_factor;
                    }
                    let m = beta1_t * exp_avg[i] + one_minus_beta1 * g;
                    let v = beta2_t * exp_avg_sq[i] + one_minus_beta2 * (g * g);
                    exp_avg[i] = m;
                    exp_avg_sq[i] = v;
                    let denominator = v.sqrt() / bias_correction2_sqrt + eps;
                    params[i] = p + neg_step_size * (m / denominator);
                }
            },
        );
    }
}

/// Adam, PyTorch's `torch.optim.Adam` (without `amsgrad` and `maximize`).
///
/// With learning rate `γ`, decay rates `β₁`, `β₂`, `ε` and weight decay `λ`, at step
/// `t = 1, 2, …` with gradient `g_t` of the parameters `θ_{t−1}` (all products elementwise,
/// `m_0 = v_0 = 0`):
///
/// ```text
/// if λ ≠ 0:   g_t ← g_t + λ·θ_{t−1}
/// m_t ← β₁·m_{t−1} + (1 − β₁)·g_t
/// v_t ← β₂·v_{t−1} + (1 − β₂)·g_t²
/// m̂_t ← m_t / (1 − β₁ᵗ)
/// v̂_t ← v_t / (1 − β₂ᵗ)
/// θ_t ← θ_{t−1} − γ·m̂_t / (√v̂_t + ε)
/// ```
///
/// computed as PyTorch does, `θ_t ← θ_{t−1} − (γ / (1 − β₁ᵗ))·m_t / (√v_t / √(1 − β₂ᵗ) + ε)`,
/// with the bias corrections in `f64`. The weight decay is L2 regularisation, coupled to the
/// gradient (and so rescaled by `v̂`); for decoupled weight decay use [`AdamW`].
///
/// The state is two values of the gradient type `S` (`m` and `v`) and `t`.
#[derive(Clone, Debug)]
pub struct Adam<T: Real, S: Params<T>> {
    /// Hyper-parameters. May be changed between steps (not re-validated).
    pub config: AdamConfig,
    moments: Moments<T, S>,
}

impl<T: Real, S: Params<T>> Adam<T, S> {
    /// Adam with learning rate `lr` and PyTorch's other defaults.
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: f64) -> Self {
        Self::with_config(AdamConfig {
            lr,
            ..AdamConfig::default()
        })
    }

    /// Adam with the given hyper-parameters, built by value: on the stack, for small
    /// networks (for a big one use `new_boxed`, feature `alloc`, or `ZERO` and
    /// [`Adam::reset_with`] in place).
    ///
    /// # Panics
    /// If a hyper-parameter is out of range (as PyTorch's constructor checks): negative `lr`,
    /// `eps` or `weight_decay`, or a beta outside `[0, 1)`.
    #[track_caller]
    pub fn with_config(config: AdamConfig) -> Self {
        validate(
            "Adam",
            config.lr,
            config.betas,
            config.eps,
            config.weight_decay,
        );
        Self {
            config,
            moments: Moments::ZERO,
        }
    }

    /// As [`Adam::with_config`], on the heap: zeroed in place and configured there
    /// ([`Adam::reset_with`]), never built on the stack, whatever its size. The way to make
    /// one for a big network.
    ///
    /// # Panics
    /// As [`Adam::with_config`].
    #[cfg(feature = "alloc")]
    #[track_caller]
    pub fn new_boxed(config: AdamConfig) -> alloc::boxed::Box<Self> {
        let mut adam = <Self as Zeroable>::new_boxed();
        adam.reset_with(config);
        adam
    }

    /// Validates and sets `config` and forgets the moments and step count, in place: how an
    /// optimizer in `static` storage is made without an allocator (`static mut OPT:
    /// Adam<f32, NetGrads<f32>> = Adam::ZERO;`, then `reset_with`), and what
    /// [`Adam::new_boxed`] does on the heap.
    ///
    /// # Panics
    /// As [`Adam::with_config`].
    #[track_caller]
    pub fn reset_with(&mut self, config: AdamConfig) {
        validate(
            "Adam",
            config.lr,
            config.betas,
            config.eps,
            config.weight_decay,
        );
        self.config = config;
        self.moments.reset();
    }

    /// Number of steps taken, `t`.
    pub fn steps(&self) -> u64 {
        self.moments.steps
    }

    /// Forgets the moments and the step count (the configuration is kept).
    pub fn reset(&mut self) {
        self.moments.reset();
    }
}

/// An optimizer with an all-zero configuration (learning rate 0: its steps change nothing)
/// and no state, usable in `static` items; give it its configuration with
/// [`Adam::reset_with`].
impl<T: Real, S: Params<T>> ConstZero for Adam<T, S> {
    const ZERO: Self = Self {
        config: AdamConfig {
            lr: 0.0,
            betas: (0.0, 0.0),
            eps: 0.0,
            weight_decay: 0.0,
        },
        moments: Moments::ZERO,
    };
}

// SAFETY: the fields are a configuration of `f64`s and `Moments`: two `Params<T>` (`LEN` IEEE
// floats each), a `u64` and a `PhantomData`; all-zero bytes are `ZERO`.
unsafe impl<T: Real, S: Params<T>> Zeroable for Adam<T, S> {}

impl<T: Real, S: Params<T>> Optimizer<T> for Adam<T, S> {
    type Grads = S;

    /// One Adam step (see [`Adam`]).
    ///
    /// # Panics
    /// If `params` or `grads` does not have `S::LEN` scalars.
    fn step(&mut self, params: &mut [T], grads: &[T]) {
        let AdamConfig {
            lr,
            betas,
            eps,
            weight_decay,
        } = self.config;
        self.moments
            .step(params, grads, lr, betas, eps, weight_decay, false);
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.lr = learning_rate;
    }
}

/// AdamW: Adam with decoupled weight decay, PyTorch's `torch.optim.AdamW` (without `amsgrad`
/// and `maximize`).
///
/// With learning rate `γ`, decay rates `β₁`, `β₂`, `ε` and weight decay `λ` (default `1e-2`),
/// at step `t = 1, 2, …` with gradient `g_t` of the parameters `θ_{t−1}` (all products
/// elementwise, `m_0 = v_0 = 0`):
///
/// ```text
/// θ_t ← θ_{t−1}·(1 − γ·λ)
/// m_t ← β₁·m_{t−1} + (1 − β₁)·g_t
/// v_t ← β₂·v_{t−1} + (1 − β₂)·g_t²
/// m̂_t ← m_t / (1 − β₁ᵗ)
/// v̂_t ← v_t / (1 − β₂ᵗ)
/// θ_t ← θ_t − γ·m̂_t / (√v̂_t + ε)
/// ```
///
/// computed as [`Adam`] is. The decay does not enter the gradient or the moments: it shrinks
/// every parameter by the same factor, whatever its gradient history.
///
/// The state is two values of the gradient type `S` (`m` and `v`) and `t`.
#[derive(Clone, Debug)]
pub struct AdamW<T: Real, S: Params<T>> {
    /// Hyper-parameters. May be changed between steps (not re-validated).
    pub config: AdamWConfig,
    moments: Moments<T, S>,
}

impl<T: Real, S: Params<T>> AdamW<T, S> {
    /// AdamW with learning rate `lr` and PyTorch's other defaults (weight decay `1e-2`).
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: f64) -> Self {
        Self::with_config(AdamWConfig {
            lr,
            ..AdamWConfig::default()
        })
    }

    /// AdamW with the given hyper-parameters, built by value: on the stack, for small
    /// networks (for a big one use `new_boxed`, feature `alloc`, or `ZERO` and
    /// [`AdamW::reset_with`] in place).
    ///
    /// # Panics
    /// If a hyper-parameter is out of range (as PyTorch's constructor checks): negative `lr`,
    /// `eps` or `weight_decay`, or a beta outside `[0, 1)`.
    #[track_caller]
    pub fn with_config(config: AdamWConfig) -> Self {
        validate(
            "AdamW",
            config.lr,
            config.betas,
            config.eps,
            config.weight_decay,
        );
        Self {
            config,
            moments: Moments::ZERO,
        }
    }

    /// As [`AdamW::with_config`], on the heap: zeroed in place and configured there
    /// ([`AdamW::reset_with`]), never built on the stack, whatever its size. The way to make
    /// one for a big network.
    ///
    /// # Panics
    /// As [`AdamW::with_config`].
    #[cfg(feature = "alloc")]
    #[track_caller]
    pub fn new_boxed(config: AdamWConfig) -> alloc::boxed::Box<Self> {
        let mut adamw = <Self as Zeroable>::new_boxed();
        adamw.reset_with(config);
        adamw
    }

    /// Validates and sets `config` and forgets the moments and step count, in place: how an
    /// optimizer in `static` storage is made without an allocator (`static mut OPT:
    /// AdamW<f32, NetGrads<f32>> = AdamW::ZERO;`, then `reset_with`), and what
    /// [`AdamW::new_boxed`] does on the heap.
    ///
    /// # Panics
    /// As [`AdamW::with_config`].
    #[track_caller]
    pub fn reset_with(&mut self, config: AdamWConfig) {
        validate(
            "AdamW",
            config.lr,
            config.betas,
            config.eps,
            config.weight_decay,
        );
        self.config = config;
        self.moments.reset();
    }

    /// Number of steps taken, `t`.
    pub fn steps(&self) -> u64 {
        self.moments.steps
    }

    /// Forgets the moments and the step count (the configuration is kept).
    pub fn reset(&mut self) {
        self.moments.reset();
    }
}

/// An optimizer with an all-zero configuration (learning rate 0: its steps change nothing)
/// and no state, usable in `static` items; give it its configuration with
/// [`AdamW::reset_with`].
impl<T: Real, S: Params<T>> ConstZero for AdamW<T, S> {
    const ZERO: Self = Self {
        config: AdamWConfig {
            lr: 0.0,
            betas: (0.0, 0.0),
            eps: 0.0,
            weight_decay: 0.0,
        },
        moments: Moments::ZERO,
    };
}

// SAFETY: the fields are a configuration of `f64`s and `Moments`: two `Params<T>` (`LEN` IEEE
// floats each), a `u64` and a `PhantomData`; all-zero bytes are `ZERO`.
unsafe impl<T: Real, S: Params<T>> Zeroable for AdamW<T, S> {}

impl<T: Real, S: Params<T>> Optimizer<T> for AdamW<T, S> {
    type Grads = S;

    /// One AdamW step (see [`AdamW`]).
    ///
    /// # Panics
    /// If `params` or `grads` does not have `S::LEN` scalars.
    fn step(&mut self, params: &mut [T], grads: &[T]) {
        let AdamWConfig {
            lr,
            betas,
            eps,
            weight_decay,
        } = self.config;
        self.moments
            .step(params, grads, lr, betas, eps, weight_decay, true);
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.lr = learning_rate;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::{
        GRADS, Pair, THETA0, check_steps, distance_to_optimum, minimise,
    };
    use crate::optim::{Constant, Cosine};
    use nalgebra::Vector3;

    // θ₀ = [1, 2, 3], g₁ = [0.5, −1, 2], g₂ = [1, 0.5, −1], g₃ = [−0.25, 0.75, 0.5], γ = 0.1.

    #[test]
    fn adam_matches_hand_computation() {
        // β = (0.9, 0.999), ε = 1e-8.
        // t = 1: m₁ = 0.1·g₁, v₁ = 0.001·g₁², so m̂₁ = g₁, v̂₁ = g₁²:
        //        θ₁ = θ₀ − 0.1·g₁/(|g₁| + ε) = [0.900000002, 2.099999999, 2.9000000005]
        // t = 2: m₂ = 0.9·m₁ + 0.1·g₂ = [0.145, −0.04, 0.08];
        //        v₂ = 0.999·v₁ + 0.001·g₂² = [0.00124975, 0.001249, 0.004996];
        //        m̂₂ = m₂/(1 − 0.9²) = m₂/0.19 = [0.76315789, −0.21052632, 0.42105263];
        //        v̂₂ = v₂/(1 − 0.999²) = v₂/0.001999 = [0.62518759, 0.62481241, 2.49924962];
        //        √v̂₂ = [0.79068805, 0.79045076, 1.58090152];
        //        γ·m̂₂/(√v̂₂ + ε) = [0.09651820, −0.02663370, 0.02663370];
        //        θ₂ = [0.80348180, 2.12663370, 2.87336630]
        // t = 3: likewise, with 1 − 0.9³ and 1 − 0.999³.
        let mut adam = Adam::<f64, Vector3<f64>>::new(0.1);
        check_steps(
            &mut adam,
            &[
                [0.900000002, 2.099999999, 2.9000000005],
                [0.8034818006385094, 2.1266337026290967, 2.8733662967024314],
                [0.7446211282555567, 2.108116756782578, 2.8393233821389425],
            ],
        );
        assert_eq!(adam.steps(), 3);
    }

    #[test]
    fn adam_weight_decay_is_added_to_the_gradient() {
        // λ = 0.1, coupled: the moments see g + 0.1·θ.
        // t = 1: g = g₁ + 0.1·θ₀ = [0.6, −0.8, 2.3]; θ₁ = θ₀ − 0.1·g/(|g| + ε)
        //          = [1 − 0.1·0.6/0.60000001, …] = [0.90000000167, 2.09999999875, 2.90000000043]
        // t = 2: g = g₂ + 0.1·θ₁ = [1.09, 0.71, −0.71] (to 1e-9);
        //        m₂ = 0.09·[0.6, −0.8, 2.3] + 0.1·g = [0.163, −0.001, 0.136];
        //        v₂ = 0.000999·[0.36, 0.64, 5.29] + 0.001·g² = [0.00154774, 0.00114346, 0.00578881];
        //        θ₂ = θ₁ − 0.1·(m₂/0.19)/(√(v₂/0.001999) + ε) = [0.80250297, 2.10069589, 2.85793731]
        let mut adam = Adam::<f64, Pair<f64>>::with_config(AdamConfig {
            lr: 0.1,
            weight_decay: 0.1,
            ..AdamConfig::default()
        });
        check_steps(
            &mut adam,
            &[
                [0.9000000016666666, 2.09999999875, 2.900000000434783],
                [0.8025029703202308, 2.1006958914927063, 2.8579373093766653],
                [0.7364706358801182, 2.0584069981979805, 2.8071893101476175],
            ],
        );
    }

    #[test]
    fn adamw_matches_hand_computation() {
        // β = (0.8, 0.9), λ = 0.1 decoupled: each step first scales θ by 1 − 0.1·0.1 = 0.99.
        // t = 1: θ ← 0.99·θ₀ = [0.99, 1.98, 2.97]; m̂₁ = g₁, v̂₁ = g₁²:
        //        θ₁ = [0.99 − 0.1, 1.98 + 0.1, 2.97 − 0.1] (to 1e-8) = [0.890000002, 2.079999999,
        //        2.8700000005]
        // t = 2: θ ← 0.99·θ₁ = [0.88110000, 2.05920000, 2.84130000];
        //        m₂ = 0.8·0.2·g₁ + 0.2·g₂ = [0.28, −0.06, 0.12];
        //        v₂ = 0.9·0.1·g₁² + 0.1·g₂² = [0.1225, 0.115, 0.46];
        //        m̂₂ = m₂/(1 − 0.8²) = m₂/0.36 = [0.77777778, −0.16666667, 0.33333333];
        //        v̂₂ = v₂/(1 − 0.9²) = v₂/0.19 = [0.64473684, 0.60526316, 2.42105263];
        //        γ·m̂₂/(√v̂₂ + ε) = [0.09686442, −0.02142282, 0.02142282];
        //        θ₂ = [0.78423558, 2.08062282, 2.81987718]
        let mut adamw = AdamW::<f64, Vector3<f64>>::with_config(AdamWConfig {
            lr: 0.1,
            betas: (0.8, 0.9),
            weight_decay: 0.1,
            ..AdamWConfig::default()
        });
        check_steps(
            &mut adamw,
            &[
                [0.890000002, 2.079999999, 2.8700000004999997],
                [0.7842355822187786, 2.0806228182985427, 2.8198771810687755],
                [0.7220117364277874, 2.032593052728867, 2.760121923601895],
            ],
        );
        assert_eq!(adamw.steps(), 3);
    }

    #[test]
    fn adamw_without_gradient_only_decays() {
        // g = 0: m = v = 0, the Adam step is 0/(0 + ε) = 0, and θ_t = θ₀·(1 − γλ)ᵗ.
        let mut adamw = AdamW::<f64, Vector3<f64>>::new(0.1);
        let mut theta = THETA0;
        for _ in 0..10 {
            adamw.step(&mut theta, &[0.0; 3]);
        }
        let factor = 0.999_f64.powi(10);
        for i in 0..3 {
            assert!((theta[i] - THETA0[i] * factor).abs() < 1e-15);
        }
    }

    #[test]
    fn adamw_without_weight_decay_is_adam() {
        let mut adam = Adam::<f64, Vector3<f64>>::new(0.1);
        let mut adamw = AdamW::<f64, Vector3<f64>>::with_config(AdamWConfig {
            lr: 0.1,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        });
        let (mut theta1, mut theta2) = (THETA0, THETA0);
        for g in GRADS {
            adam.step(&mut theta1, &g);
            adamw.step(&mut theta2, &g);
        }
        assert_eq!(theta1, theta2);
    }

    #[test]
    fn minimises_a_quadratic() {
        // With γ annealed to 0 (cosine).
        let mut adam = Adam::<f64, Vector3<f64>>::new(0.05);
        let theta = minimise(&mut adam, &Cosine::new(0.05, 3000), 3000);
        assert!(distance_to_optimum(&theta) < 1e-10, "{theta}");

        // At a constant rate too: as g → 0, v (which decays slower than m) keeps the
        // denominator larger than |m|, so the steps shrink.
        let mut adam = Adam::<f64, Vector3<f64>>::new(0.01);
        let theta = minimise(&mut adam, &Constant { lr: 0.01 }, 5000);
        assert!(distance_to_optimum(&theta) < 1e-10, "{theta}");

        let mut adamw = AdamW::<f64, Vector3<f64>>::with_config(AdamWConfig {
            weight_decay: 0.0,
            ..AdamWConfig::default()
        });
        let theta = minimise(&mut adamw, &Cosine::new(0.05, 3000), 3000);
        assert!(distance_to_optimum(&theta) < 1e-10, "{theta}");
    }

    #[test]
    fn f32_matches_f64() {
        let mut adam32 = AdamW::<f32, Pair<f32>>::new(0.1);
        let mut adam64 = AdamW::<f64, Pair<f64>>::new(0.1);
        let mut theta32 = THETA0.map(|x| x as f32);
        let mut theta64 = THETA0;
        for g in GRADS {
            adam32.step(&mut theta32, &g.map(|x| x as f32));
            adam64.step(&mut theta64, &g);
        }
        for i in 0..3 {
            assert!((f64::from(theta32[i]) - theta64[i]).abs() < 1e-6);
        }
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn boxed_equals_unboxed() {
        let config = AdamConfig {
            lr: 0.1,
            weight_decay: 0.1,
            ..AdamConfig::default()
        };
        let mut boxed = Adam::<f64, Pair<f64>>::new_boxed(config);
        assert_eq!(boxed.config, config);
        assert_eq!(boxed.steps(), 0);
        check_steps(
            &mut *boxed,
            &[
                [0.9000000016666666, 2.09999999875, 2.900000000434783],
                [0.8025029703202308, 2.1006958914927063, 2.8579373093766653],
            ],
        );

        let config = AdamWConfig {
            lr: 0.1,
            betas: (0.8, 0.9),
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let mut boxed = AdamW::<f64, Pair<f64>>::new_boxed(config);
        assert_eq!(boxed.config, config);
        check_steps(
            &mut *boxed,
            &[
                [0.890000002, 2.079999999, 2.8700000004999997],
                [0.7842355822187786, 2.0806228182985427, 2.8198771810687755],
            ],
        );
    }

    #[test]
    fn zero_configured_in_place_equals_with_config() {
        // What a `static` holds: `ZERO` does nothing until `reset_with` configures it.
        let mut adam = Adam::<f64, Pair<f64>>::ZERO;
        let mut theta = [1.0, 2.0, 3.0];
        adam.step(&mut theta, &[1.0, 1.0, 1.0]);
        assert_eq!(theta, [1.0, 2.0, 3.0]);
        let config = AdamConfig {
            lr: 0.1,
            weight_decay: 0.1,
            ..AdamConfig::default()
        };
        adam.reset_with(config);
        assert_eq!((adam.config, adam.steps()), (config, 0));
        check_steps(
            &mut adam,
            &[
                [0.9000000016666666, 2.09999999875, 2.900000000434783],
                [0.8025029703202308, 2.1006958914927063, 2.8579373093766653],
            ],
        );
        let mut adamw = AdamW::<f64, Pair<f64>>::ZERO;
        adamw.reset_with(AdamWConfig {
            lr: 0.1,
            betas: (0.8, 0.9),
            weight_decay: 0.1,
            ..AdamWConfig::default()
        });
        check_steps(
            &mut adamw,
            &[
                [0.890000002, 2.079999999, 2.8700000004999997],
                [0.7842355822187786, 2.0806228182985427, 2.8198771810687755],
            ],
        );
    }

    #[test]
    #[should_panic(expected = "Adam: invalid beta1 1")]
    fn reset_with_validates() {
        let mut adam = Adam::<f64, Pair<f64>>::ZERO;
        adam.reset_with(AdamConfig {
            betas: (1.0, 0.9),
            ..AdamConfig::default()
        });
    }

    #[test]
    fn reset_restarts_the_bias_correction() {
        let mut adam = Adam::<f64, Vector3<f64>>::new(0.1);
        let mut theta = THETA0;
        adam.step(&mut theta, &GRADS[1]);
        adam.reset();
        assert_eq!(adam.steps(), 0);
        check_steps(&mut adam, &[[0.900000002, 2.099999999, 2.9000000005]]);
    }

    #[test]
    fn defaults_are_pytorchs() {
        assert_eq!(
            AdamConfig::default(),
            AdamConfig {
                lr: 1e-3,
                betas: (0.9, 0.999),
                eps: 1e-8,
                weight_decay: 0.0
            }
        );
        assert_eq!(
            AdamWConfig::default(),
            AdamWConfig {
                lr: 1e-3,
                betas: (0.9, 0.999),
                eps: 1e-8,
                weight_decay: 1e-2
            }
        );
        assert_eq!(
            AdamW::<f64, Vector3<f64>>::new(0.5).config.weight_decay,
            1e-2
        );
    }

    #[test]
    #[should_panic(expected = "beta2")]
    fn beta_of_one_panics() {
        let _ = Adam::<f64, Vector3<f64>>::with_config(AdamConfig {
            betas: (0.9, 1.0),
            ..AdamConfig::default()
        });
    }
}
