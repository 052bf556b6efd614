//! RMSprop, optionally centered and with momentum: PyTorch's `torch.optim.RMSprop`.

use super::{Optimizer, check_lengths};
use crate::{ConstZero, Params, Real, Zeroable, parallel};
use core::marker::PhantomData;

/// Hyper-parameters of [`RmsProp`]: PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate `γ` (default `1e-2`).
    pub lr: f64,
    /// Smoothing constant `α` of the averages (default `0.99`).
    pub alpha: f64,
    /// Term `ε` added to the denominator (default `1e-8`).
    pub eps: f64,
    /// L2 penalty `λ`, added to the gradient (default `0`).
    pub weight_decay: f64,
    /// Momentum factor `μ` (default `0`).
    pub momentum: f64,
    /// Normalise by the estimated variance of the gradient instead of its second moment
    /// (default `false`).
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl RmsPropConfig {
    /// The checks of `torch.optim.RMSprop`'s constructor.
    #[track_caller]
    fn validate(&self) {
        assert!(self.lr >= 0.0, "RMSprop: invalid learning rate {}", self.lr);
        assert!(self.eps >= 0.0, "RMSprop: invalid epsilon {}", self.eps);
        assert!(
            self.momentum >= 0.0,
            "RMSprop: invalid momentum {}",
            self.momentum
        );
        assert!(
            self.weight_decay >= 0.0,
            "RMSprop: invalid weight_decay {}",
            self.weight_decay
        );
        assert!(self.alpha >= 0.0, "RMSprop: invalid alpha {}", self.alpha);
    }
}

/// RMSprop, PyTorch's `torch.optim.RMSprop` (without `maximize`).
///
/// With learning rate `γ`, smoothing `α`, `ε`, weight decay `λ`, momentum `μ`, at step
/// `t = 1, 2, …` with gradient `g_t` of the parameters `θ_{t−1}` (all products elementwise,
/// `v_0 = ḡ_0 = b_0 = 0`):
///
/// ```text
/// if λ ≠ 0:   g_t ← g_t + λ·θ_{t−1}
/// v_t ← α·v_{t−1} + (1 − α)·g_t²
/// ṽ_t ← v_t
/// if centered:
///     ḡ_t ← α·ḡ_{t−1} + (1 − α)·g_t
///     ṽ_t ← v_t − ḡ_t²
/// if μ > 0:   b_t ← μ·b_{t−1} + g_t / (√ṽ_t + ε)
///             θ_t ← θ_{t−1} − γ·b_t
/// otherwise:  θ_t ← θ_{t−1} − γ·g_t / (√ṽ_t + ε)
/// ```
///
/// `ε` is added outside the square root. When centered, `ṽ_t = v_t − ḡ_t²` is non-negative
/// in exact arithmetic; it is clamped at `0` so that round-off (e.g. long runs of equal
/// gradients) cannot make its square root NaN, where PyTorch would produce NaN.
///
/// The state is three values of the gradient type `S`: `v`, `ḡ` (used only when centered) and
/// `b` (used only with momentum).
#[derive(Clone, Debug)]
pub struct RmsProp<T: Real, S: Params<T>> {
    /// Hyper-parameters. May be changed between steps (not re-validated).
    pub config: RmsPropConfig,
    square_avg: S,
    grad_avg: S,
    momentum_buffer: S,
    steps: u64,
    _scalar: PhantomData<T>,
}

impl<T: Real, S: Params<T>> RmsProp<T, S> {
    /// RMSprop with learning rate `lr` and PyTorch's other defaults.
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: f64) -> Self {
        Self::with_config(RmsPropConfig {
            lr,
            ..RmsPropConfig::default()
        })
    }

    /// RMSprop with the given hyper-parameters, built by value: on the stack, for small
    /// networks (for a big one use `new_boxed`, feature `alloc`, or `ZERO` and
    /// [`RmsProp::reset_with`] in place).
    ///
    /// # Panics
    /// If a hyper-parameter is out of range (as PyTorch's constructor checks): negative `lr`,
    /// `eps`, `momentum`, `weight_decay` or `alpha`.
    #[track_caller]
    pub fn with_config(config: RmsPropConfig) -> Self {
        config.validate();
        Self {
            config,
            square_avg: S::ZERO,
            grad_avg: S::ZERO,
            momentum_buffer: S::ZERO,
            steps: 0,
            _scalar: PhantomData,
        }
    }

    /// As [`RmsProp::with_config`], on the heap: zeroed in place and configured there
    /// ([`RmsProp::reset_with`]), never built on the stack, whatever its size. The way to make
    /// one for a big network.
    ///
    /// # Panics
    /// As [`RmsProp::with_config`].
    #[cfg(feature = "alloc")]
    #[track_caller]
    pub fn new_boxed(config: RmsPropConfig) -> alloc::boxed::Box<Self> {
        let mut rmsprop = <Self as Zeroable>::new_boxed();
        rmsprop.reset_with(config);
        rmsprop
    }

    /// Validates and sets `config` and forgets the averages, the momentum and the step count, in place: how an
    /// optimizer in `static` storage is made without an allocator (`static mut OPT:
    /// RmsProp<f32, NetGrads<f32>> = RmsProp::ZERO;`, then `reset_with`), and what
    /// [`RmsProp::new_boxed`] does on the heap.
    ///
    /// # Panics
    /// As [`RmsProp::with_config`].
    #[track_caller]
    pub fn reset_with(&mut self, config: RmsPropConfig) {
        config.validate();
        self.config = config;
        self.reset();
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Forgets the averages, the momentum and the step count (the configuration is kept).
    pub fn reset(&mut self) {
        self.square_avg.set_zero();
        self.grad_avg.set_zero();
        self.momentum_buffer.set_zero();
        self.steps = 0;
    }
}

/// An optimizer with an all-zero configuration (learning rate 0: its steps change nothing)
/// and no state, usable in `static` items; give it its configuration with
/// [`RmsProp::reset_with`].
impl<T: Real, S: Params<T>> ConstZero for RmsProp<T, S> {
    const ZERO: Self = Self {
        config: RmsPropConfig {
            lr: 0.0,
            alpha: 0.0,
            eps: 0.0,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        },
        square_avg: S::ZERO,
        grad_avg: S::ZERO,
        momentum_buffer: S::ZERO,
        steps: 0,
        _scalar: PhantomData,
    };
}

// SAFETY: the fields are an `RmsPropConfig` (`f64`s and a `bool`), three `Params<T>` (`LEN` IEEE floats
// each), a `u64` and a `PhantomData`: all-zero bytes are `ZERO`.
unsafe impl<T: Real, S: Params<T>> Zeroable for RmsProp<T, S> {}

impl<T: Real, S: Params<T>> Optimizer<T> for RmsProp<T, S> {
    type Grads = S;

    /// One RMSprop step (see [`RmsProp`]).
    ///
    /// # Panics
    /// If `params` or `grads` does not have `S::LEN` scalars.
    fn step(&mut self, params: &mut [T], grads: &[T]) {
        check_lengths(params, grads, S::LEN);
        let RmsPropConfig {
            lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
        } = self.config;
        let neg_lr = T::of(-lr);
        let alpha_t = T::of(alpha);
        let one_minus_alpha = T::of(1.0 - alpha);
        let eps = T::of(eps);
        let lambda = T::of(weight_decay);
        let decay = weight_decay != 0.0;
        let mu = T::of(momentum);
        let with_momentum = momentum > 0.0;

        let n = S::LEN;
        let (params, grads) = (&mut params[..n], &grads[..n]);
        let square_avg = &mut self.square_avg.as_mut_slice()[..n];
        let grad_avg = &mut self.grad_avg.as_mut_slice()[..n];
        let buffer = &mut self.momentum_buffer.as_mut_slice()[..n];
        parallel::elementwise(
            [params, square_avg, grad_avg, buffer],
            [grads],
            move |[params, square_avg, grad_avg, buffer], [grads]| {
                for i in 0..params.len() {
                    let p = params[i];
                    let g = if decay {
                        grads[i] + lambda * p
                    } else {
                        grads[i]
                    };
                    let v = alpha_t * square_avg[i] + one_minus_alpha * (g * g);
                    square_avg[i] = v;
                    let v = if centered {
                        let mean = alpha_t * grad_avg[i] + one_minus_alpha * g;
                        grad_avg[i] = mean;
                        let variance = v - mean * mean;
                        // Not `max`, which would turn a NaN into 0.
                        if variance < T::ZERO {
                            T::ZERO
                        } else {
                            variance
                        }
                    } else {
                        v
                    };
                    let denominator = v.sqrt() + eps;
                    params[i] = if with_momentum {
                        let b = mu * buffer[i] + g / denominator;
                        buffer[i] = b;
                        p + neg_lr * b
                    } else {
                        p + neg_lr * (g / denominator)
                    };
                }
            },
        );
        self.steps += 1;
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
    use crate::optim::Cosine;
    use crate::optim::test_util::{
        GRADS, Pair, THETA0, check_steps, distance_to_optimum, minimise,
    };
    use nalgebra::Vector3;

    // θ₀ = [1, 2, 3], g₁ = [0.5, −1, 2], g₂ = [1, 0.5, −1], g₃ = [−0.25, 0.75, 0.5].

    #[test]
    fn default_matches_hand_computation() {
        // γ = 0.01, α = 0.99, ε = 1e-8.
        // t = 1: v₁ = 0.01·g₁² = [0.0025, 0.01, 0.04], √v₁ = [0.05, 0.1, 0.2];
        //        θ₁ = θ₀ − 0.01·g₁/(√v₁ + ε)
        //           = [1 − 0.005/0.05000001, 2 + 0.01/0.10000001, 3 − 0.02/0.20000001]
        //           = [0.90000002, 2.09999999, 2.900000005]
        // t = 2: v₂ = 0.99·v₁ + 0.01·g₂² = [0.012475, 0.0124, 0.0496],
        //        √v₂ = [0.1116915395, 0.1113552873, 0.2227105745];
        //        0.01·g₂/(√v₂ + ε) = [0.0895322962, 0.0449013255, −0.0449013255];
        //        θ₂ = [0.8104677318, 2.0550986685, 2.9449013285]
        // t = 3: likewise.
        let mut rmsprop = RmsProp::<f64, Vector3<f64>>::new(0.01);
        check_steps(
            &mut rmsprop,
            &[
                [0.900000019999996, 2.099999990000001, 2.900000005],
                [0.8104677318088583, 2.055098668525565, 2.9449013284905647],
                [0.8324150825095892, 1.9990426065489155, 2.9228909099018456],
            ],
        );
        assert_eq!(rmsprop.steps(), 3);
    }

    #[test]
    fn centered_with_momentum_and_weight_decay_matches_hand_computation() {
        // γ = 0.01, α = 0.9, λ = 0.1, μ = 0.5, centered.
        // t = 1: g = g₁ + 0.1·θ₀ = [0.6, −0.8, 2.3];
        //        v₁ = 0.1·g² = [0.036, 0.064, 0.529]; ḡ₁ = 0.1·g = [0.06, −0.08, 0.23];
        //        ṽ₁ = v₁ − ḡ₁² = [0.0324, 0.0576, 0.4761], √ṽ₁ = [0.18, 0.24, 0.69];
        //        b₁ = g/(√ṽ₁ + ε) ≈ [3.33333315, −3.33333319, 3.33333329];
        //        θ₁ = θ₀ − 0.01·b₁ = [0.96666667, 2.03333333, 2.96666667]
        // t = 2: g = g₂ + 0.1·θ₁ = [1.09666667, 0.70333333, −0.70333333];
        //        v₂ = 0.9·v₁ + 0.1·g² = [0.15266778, 0.10706778, 0.52556778];
        //        ḡ₂ = 0.9·ḡ₁ + 0.1·g = [0.16366667, −0.00166667, 0.13666667];
        //        √(v₂ − ḡ₂²) = [0.35479713, 0.32720788, 0.71196208];
        //        b₂ = 0.5·b₁ + g/(√ṽ₂ + ε) = [4.75763479, 0.48283329, 0.67878632];
        //        θ₂ = θ₁ − 0.01·b₂ = [0.91909032, 2.02850500, 2.95987880]
        // t = 3: likewise.
        let mut rmsprop = RmsProp::<f64, Pair<f64>>::with_config(RmsPropConfig {
            lr: 0.01,
            alpha: 0.9,
            weight_decay: 0.1,
            momentum: 0.5,
            centered: true,
            ..RmsPropConfig::default()
        });
        check_steps(
            &mut rmsprop,
            &[
                [0.9666666685185185, 2.0333333319444447, 2.9666666671497586],
                [0.9190903206490948, 2.028504999048163, 2.9598788039010864],
                [0.8998169970666017, 2.003528773282357, 2.945174898777614],
            ],
        );
    }

    #[test]
    fn centered_variance_of_equal_gradients_stays_finite() {
        // With equal gradients, v − ḡ² = α^t(1 − α^t)·g² → 0 and round-off can make it
        // negative (here for g = 0.7 from t ≈ 53 on): it is clamped at 0 rather than giving
        // √(negative) = NaN.
        let mut rmsprop = RmsProp::<f64, Vector3<f64>>::with_config(RmsPropConfig {
            lr: 1e-6,
            alpha: 0.5,
            centered: true,
            ..RmsPropConfig::default()
        });
        let mut theta = THETA0;
        for _ in 0..200 {
            rmsprop.step(&mut theta, &[0.1, 0.3, 0.7]);
        }
        assert!(theta.iter().all(|x| x.is_finite()), "{theta:?}");
    }

    #[test]
    fn minimises_a_quadratic() {
        // With a constant rate the normalised steps keep θ within about γ of θ*; annealing γ
        // to 0 (cosine) lands on it.
        for (momentum, centered) in [(0.0, false), (0.0, true), (0.9, false), (0.9, true)] {
            let mut rmsprop = RmsProp::<f64, Vector3<f64>>::with_config(RmsPropConfig {
                momentum,
                centered,
                ..RmsPropConfig::default()
            });
            let lr = if momentum > 0.0 { 0.002 } else { 0.02 };
            let theta = minimise(&mut rmsprop, &Cosine::new(lr, 3000), 3000);
            assert!(
                distance_to_optimum(&theta) < 1e-10,
                "momentum {momentum}, centered {centered}: {theta}"
            );
        }
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn boxed_equals_unboxed() {
        let config = RmsPropConfig {
            lr: 0.01,
            alpha: 0.9,
            weight_decay: 0.1,
            momentum: 0.5,
            centered: true,
            ..RmsPropConfig::default()
        };
        let mut boxed = RmsProp::<f64, Pair<f64>>::new_boxed(config);
        let mut unboxed = RmsProp::<f64, Pair<f64>>::with_config(config);
        assert_eq!(boxed.config, unboxed.config);
        let (mut theta1, mut theta2) = (THETA0, THETA0);
        for g in GRADS {
            boxed.step(&mut theta1, &g);
            unboxed.step(&mut theta2, &g);
        }
        assert_eq!(theta1, theta2);
    }

    #[test]
    fn reset_forgets_the_averages() {
        let mut rmsprop = RmsProp::<f64, Vector3<f64>>::new(0.01);
        let mut theta = THETA0;
        rmsprop.step(&mut theta, &GRADS[2]);
        rmsprop.reset();
        assert_eq!(rmsprop.steps(), 0);
        check_steps(
            &mut rmsprop,
            &[[0.900000019999996, 2.099999990000001, 2.900000005]],
        );
    }

    #[test]
    fn defaults_are_pytorchs() {
        assert_eq!(
            RmsPropConfig::default(),
            RmsPropConfig {
                lr: 1e-2,
                alpha: 0.99,
                eps: 1e-8,
                weight_decay: 0.0,
                momentum: 0.0,
                centered: false
            }
        );
    }

    #[test]
    #[should_panic(expected = "alpha")]
    fn negative_alpha_panics() {
        let _ = RmsProp::<f64, Vector3<f64>>::with_config(RmsPropConfig {
            alpha: -0.5,
            ..RmsPropConfig::default()
        });
    }
}
