//! Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay:
//! PyTorch's `torch.optim.SGD`.

use super::{Optimizer, check_lengths};
use crate::{ConstZero, Params, Real, Zeroable, parallel};
use core::marker::PhantomData;

/// Hyper-parameters of [`Sgd`]: PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate `γ` (default `1e-3`).
    pub lr: f64,
    /// Momentum factor `μ` (default `0`: plain gradient descent).
    pub momentum: f64,
    /// Dampening `τ` of the momentum (default `0`).
    pub dampening: f64,
    /// Nesterov momentum (default `false`); needs `momentum > 0` and `dampening == 0`.
    pub nesterov: bool,
    /// L2 penalty `λ`, added to the gradient (default `0`).
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    /// The checks of `torch.optim.SGD`'s constructor.
    #[track_caller]
    fn validate(&self) {
        assert!(self.lr >= 0.0, "SGD: invalid learning rate {}", self.lr);
        assert!(
            self.momentum >= 0.0,
            "SGD: invalid momentum {}",
            self.momentum
        );
        assert!(
            self.weight_decay >= 0.0,
            "SGD: invalid weight_decay {}",
            self.weight_decay
        );
        assert!(
            !self.nesterov || (self.momentum > 0.0 && self.dampening == 0.0),
            "SGD: Nesterov momentum requires a momentum and zero dampening"
        );
    }
}

/// Stochastic gradient descent, PyTorch's `torch.optim.SGD` (without `maximize`).
///
/// With learning rate `γ`, momentum `μ`, dampening `τ`, weight decay `λ`, at step
/// `t = 1, 2, …` with gradient `g_t` of the parameters `θ_{t−1}`:
///
/// ```text
/// if λ ≠ 0:   g_t ← g_t + λ·θ_{t−1}
/// if μ ≠ 0:   b_t ← g_t                          (t = 1)
///             b_t ← μ·b_{t−1} + (1 − τ)·g_t      (t > 1)
///             g_t ← g_t + μ·b_t    if nesterov
///             g_t ← b_t            otherwise
/// θ_t ← θ_{t−1} − γ·g_t
/// ```
///
/// With `μ = 0` (the default) this is plain gradient descent, `θ ← θ − γ·(g + λ·θ)`. The
/// first momentum step takes the gradient undampened, as PyTorch does (its buffer is created
/// as a copy of the gradient).
///
/// The state is one momentum buffer `b` of the gradient type `S` (unused when `μ = 0`).
#[derive(Clone, Debug)]
pub struct Sgd<T: Real, S: Params<T>> {
    /// Hyper-parameters. May be changed between steps (not re-validated).
    pub config: SgdConfig,
    momentum_buffer: S,
    /// Whether `momentum_buffer` holds `b_{t−1}` (PyTorch: the buffer exists).
    has_buffer: bool,
    steps: u64,
    _scalar: PhantomData<T>,
}

impl<T: Real, S: Params<T>> Sgd<T, S> {
    /// SGD with learning rate `lr` and PyTorch's other defaults: plain gradient descent.
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: f64) -> Self {
        Self::with_config(SgdConfig {
            lr,
            ..SgdConfig::default()
        })
    }

    /// SGD with the given hyper-parameters, built by value: on the stack, for small
    /// networks (for a big one use `new_boxed`, feature `alloc`, or `ZERO` and
    /// [`Sgd::reset_with`] in place).
    ///
    /// # Panics
    /// If a hyper-parameter is out of range (as PyTorch's constructor checks): negative `lr`,
    /// `momentum` or `weight_decay`, or `nesterov` without momentum or with dampening.
    #[track_caller]
    pub fn with_config(config: SgdConfig) -> Self {
        config.validate();
        Self {
            config,
            momentum_buffer: S::ZERO,
            has_buffer: false,
            steps: 0,
            _scalar: PhantomData,
        }
    }

    /// As [`Sgd::with_config`], on the heap: zeroed in place and configured there
    /// ([`Sgd::reset_with`]), never built on the stack, whatever its size. The way to make
    /// one for a big network.
    ///
    /// # Panics
    /// As [`Sgd::with_config`].
    #[cfg(feature = "alloc")]
    #[track_caller]
    pub fn new_boxed(config: SgdConfig) -> alloc::boxed::Box<Self> {
        let mut sgd = <Self as Zeroable>::new_boxed();
        sgd.reset_with(config);
        sgd
    }

    /// Validates and sets `config` and forgets the momentum and the step count, in place: how an
    /// optimizer in `static` storage is made without an allocator (`static mut OPT:
    /// Sgd<f32, NetGrads<f32>> = Sgd::ZERO;`, then `reset_with`), and what
    /// [`Sgd::new_boxed`] does on the heap.
    ///
    /// # Panics
    /// As [`Sgd::with_config`].
    #[track_caller]
    pub fn reset_with(&mut self, config: SgdConfig) {
        config.validate();
        self.config = config;
        self.reset();
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Forgets the momentum and the step count (the configuration is kept).
    pub fn reset(&mut self) {
        self.momentum_buffer.set_zero();
        self.has_buffer = false;
        self.steps = 0;
    }
}

/// An optimizer with an all-zero configuration (learning rate 0: its steps change nothing)
/// and no state, usable in `static` items; give it its configuration with
/// [`Sgd::reset_with`].
impl<T: Real, S: Params<T>> ConstZero for Sgd<T, S> {
    const ZERO: Self = Self {
        config: SgdConfig {
            lr: 0.0,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        },
        momentum_buffer: S::ZERO,
        has_buffer: false,
        steps: 0,
        _scalar: PhantomData,
    };
}

// SAFETY: the fields are an `SgdConfig` (`f64`s and a `bool`), a `Params<T>` (`LEN` IEEE floats), a `bool`, a
// `u64` and a `PhantomData`: all-zero bytes are `ZERO`.
unsafe impl<T: Real, S: Params<T>> Zeroable for Sgd<T, S> {}

impl<T: Real, S: Params<T>> Optimizer<T> for Sgd<T, S> {
    type Grads = S;

    /// One SGD step (see [`Sgd`]).
    ///
    /// # Panics
    /// If `params` or `grads` does not have `S::LEN` scalars.
    #[inline]
    fn step(&mut self, params: &mut [T], grads: &[T]) {
        check_lengths(params, grads, S::LEN);
        let SgdConfig {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } = self.config;
        let neg_lr = T::of(-lr);
        let lambda = T::of(weight_decay);
        let decay = weight_decay != 0.0;
        let n = S::LEN;
        let (params, grads) = (&mut params[..n], &grads[..n]);
        if momentum == 0.0 {
            parallel::elementwise([params], [grads], move |[params], [grads]| {
                descend(params, grads, neg_lr, decay.then_some(lambda));
            });
        } else {
            let mu = T::of(momentum);
            let undamped = T::of(1.0 - dampening);
            let first = !self.has_buffer;
            let buffer = &mut self.momentum_buffer.as_mut_slice()[..n];
            parallel::elementwise(
                [params, buffer],
                [grads],
                move |[params, buffer], [grads]| {
                    for ((p, &g), b) in params.iter_mut().zip(grads).zip(buffer) {
                        let g = if decay { g + lambda * *p } else { g };
                        *b = if first { g } else { mu * *b + undamped * g };
                        let g = if nesterov { g + mu * *b } else { *b };
                        *p += neg_lr * g;
                    }
                },
            );
            self.has_buffer = true;
        }
        self.steps += 1;
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.lr = learning_rate;
    }
}

/// Plain gradient descent, `θ ← θ − γ·(g + λ·θ)` (`λ` when `decay` is given), compiled for
/// AVX-512 or AVX2 where the CPU has it (the same operations in the same order: the same
/// bits).
#[inline]
fn descend<T: Real>(params: &mut [T], grads: &[T], neg_lr: T, decay: Option<T>) {
    #[cfg(target_arch = "x86_64")]
    if params.len() >= DESCEND_AVX512_MIN_LEN && crate::kernels::has_avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { descend_avx512(params, grads, neg_lr, decay) };
    }
    #[cfg(target_arch = "x86_64")]
    if params.len() >= DESCEND_AVX512_MIN_LEN && crate::kernels::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { descend_avx2(params, grads, neg_lr, decay) };
    }
    descend_loop(params, grads, neg_lr, decay);
}

/// Slices from this long take [`descend`]'s AVX-512 or AVX2 copy (shorter ones: the call
/// costs more than the wider vectors save).
#[cfg(target_arch = "x86_64")]
const DESCEND_AVX512_MIN_LEN: usize = 64;

/// [`descend_loop`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn descend_avx512<T: Real>(params: &mut [T], grads: &[T], neg_lr: T, decay: Option<T>) {
    descend_loop(params, grads, neg_lr, decay);
}

/// [`descend_loop`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn descend_avx2<T: Real>(params: &mut [T], grads: &[T], neg_lr: T, decay: Option<T>) {
    descend_loop(params, grads, neg_lr, decay);
}

#[inline(always)]
fn descend_loop<T: Real>(params: &mut [T], grads: &[T], neg_lr: T, decay: Option<T>) {
    match decay {
        None => {
            for (p, &g) in params.iter_mut().zip(grads) {
                *p += neg_lr * g;
            }
        }
        Some(lambda) => {
            for (p, &g) in params.iter_mut().zip(grads) {
                *p += neg_lr * (g + lambda * *p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Constant;
    use crate::optim::test_util::{
        GRADS, Pair, THETA0, a, check_steps, distance_to_optimum, minimise,
    };
    use nalgebra::{Matrix3, Vector3};

    // θ₀ = [1, 2, 3], g₁ = [0.5, −1, 2], g₂ = [1, 0.5, −1], g₃ = [−0.25, 0.75, 0.5], γ = 0.1.

    #[test]
    fn plain_gradient_descent_matches_hand_computation() {
        // θ₁ = θ₀ − 0.1·g₁ = [1 − 0.05, 2 + 0.1, 3 − 0.2]        = [0.95, 2.1, 2.8]
        // θ₂ = θ₁ − 0.1·g₂ = [0.95 − 0.1, 2.1 − 0.05, 2.8 + 0.1] = [0.85, 2.05, 2.9]
        // θ₃ = θ₂ − 0.1·g₃ = [0.85 + 0.025, 2.05 − 0.075, 2.9 − 0.05] = [0.875, 1.975, 2.85]
        let mut sgd = Sgd::<f64, Vector3<f64>>::new(0.1);
        check_steps(
            &mut sgd,
            &[[0.95, 2.1, 2.8], [0.85, 2.05, 2.9], [0.875, 1.975, 2.85]],
        );
        assert_eq!(sgd.steps(), 3);
    }

    #[test]
    fn momentum_with_dampening_and_weight_decay_matches_hand_computation() {
        // μ = 0.9, τ = 0.5, λ = 0.1.
        // t = 1: d₁ = g₁ + 0.1·θ₀ = [0.6, −0.8, 2.3]; b₁ = d₁ (undampened first step);
        //        θ₁ = θ₀ − 0.1·b₁ = [0.94, 2.08, 2.77]
        // t = 2: d₂ = g₂ + 0.1·θ₁ = [1.094, 0.708, −0.723];
        //        b₂ = 0.9·b₁ + 0.5·d₂ = [0.54 + 0.547, −0.72 + 0.354, 2.07 − 0.3615]
        //           = [1.087, −0.366, 1.7085];
        //        θ₂ = θ₁ − 0.1·b₂ = [0.8313, 2.1166, 2.59915]
        // t = 3: d₃ = g₃ + 0.1·θ₂ = [−0.16687, 0.96166, 0.759915];
        //        b₃ = 0.9·b₂ + 0.5·d₃ = [0.9783 − 0.083435, −0.3294 + 0.48083, 1.53765 + 0.3799575]
        //           = [0.894865, 0.15143, 1.9176075];
        //        θ₃ = θ₂ − 0.1·b₃ = [0.7418135, 2.101457, 2.40738925]
        let mut sgd = Sgd::<f64, Vector3<f64>>::with_config(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.5,
            weight_decay: 0.1,
            ..SgdConfig::default()
        });
        check_steps(
            &mut sgd,
            &[
                [0.94, 2.08, 2.77],
                [0.8313, 2.1166, 2.59915],
                [0.7418135, 2.101457, 2.40738925],
            ],
        );
    }

    #[test]
    fn nesterov_matches_hand_computation() {
        // μ = 0.9, update g + μ·b.
        // t = 1: b₁ = g₁; θ₁ = θ₀ − 0.1·(g₁ + 0.9·g₁) = θ₀ − 0.19·g₁ = [0.905, 2.19, 2.62]
        // t = 2: b₂ = 0.9·b₁ + g₂ = [1.45, −0.4, 0.8];
        //        g₂ + 0.9·b₂ = [2.305, 0.14, −0.28]; θ₂ = [0.6745, 2.176, 2.648]
        // t = 3: b₃ = 0.9·b₂ + g₃ = [1.055, 0.39, 1.22];
        //        g₃ + 0.9·b₃ = [0.6995, 1.101, 1.598]; θ₃ = [0.60455, 2.0659, 2.4882]
        let mut sgd = Sgd::<f64, Pair<f64>>::with_config(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            ..SgdConfig::default()
        });
        check_steps(
            &mut sgd,
            &[
                [0.905, 2.19, 2.62],
                [0.6745, 2.176, 2.648],
                [0.60455, 2.0659, 2.4882],
            ],
        );
    }

    #[test]
    fn reset_restarts_momentum() {
        let mut sgd = Sgd::<f64, Vector3<f64>>::with_config(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            ..SgdConfig::default()
        });
        let mut theta = THETA0;
        sgd.step(&mut theta, &GRADS[0]);
        sgd.reset();
        assert_eq!(sgd.steps(), 0);
        // Again the first step from θ₀: θ₀ − 0.19·g₁.
        check_steps(&mut sgd, &[[0.905, 2.19, 2.62]]);
    }

    /// Plain descent's AVX-512 and AVX2 copies (on a CPU with them) give the baseline loop's
    /// bits.
    #[test]
    fn descent_is_the_same_on_every_path() {
        for len in [0, 1, 63, 64, 65, 100, 337, 1000] {
            for decay in [None, Some(0.01f32)] {
                let grads: std::vec::Vec<f32> = (0..len)
                    .map(|i| ((i * 7919) % 1013) as f32 / 97.0 - 5.0)
                    .collect();
                let start: std::vec::Vec<f32> = (0..len)
                    .map(|i| ((i * 31) % 17) as f32 / 3.0 - 2.5)
                    .collect();
                let mut fast = start.clone();
                descend(&mut fast, &grads, -0.1, decay);
                let mut baseline = start.clone();
                descend_loop(&mut baseline, &grads, -0.1, decay);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
                assert_eq!(bits(&fast), bits(&baseline), "{len} {decay:?}");
                let mut avx2 = start.clone();
                crate::kernels::on_the_avx2_tier(|| descend(&mut avx2, &grads, -0.1, decay));
                assert_eq!(bits(&avx2), bits(&baseline), "{len} {decay:?}, AVX2");
                // The documented rule, θ − γ·(g + λ·θ), value by value.
                for ((&p, &g), &q) in start.iter().zip(&grads).zip(&fast) {
                    let g = match decay {
                        Some(lambda) => g + lambda * p,
                        None => g,
                    };
                    assert_eq!((p + -0.1 * g).to_bits(), q.to_bits());
                }
            }
        }
    }

    #[test]
    fn f32_matches_f64() {
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
            ..SgdConfig::default()
        };
        let mut sgd32 = Sgd::<f32, Pair<f32>>::with_config(config);
        let mut sgd64 = Sgd::<f64, Pair<f64>>::with_config(config);
        let mut theta32 = THETA0.map(|x| x as f32);
        let mut theta64 = THETA0;
        for g in GRADS {
            sgd32.step(&mut theta32, &g.map(|x| x as f32));
            sgd64.step(&mut theta64, &g);
        }
        for i in 0..3 {
            assert!((f64::from(theta32[i]) - theta64[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn minimises_a_quadratic() {
        // f(θ) = ½‖Aθ − b‖², Hessian AᵀA with eigenvalues 0.40, 2.25, 5.60: γ = 0.2 < 2/5.60.
        let mut sgd = Sgd::<f64, Vector3<f64>>::new(0.2);
        let theta = minimise(&mut sgd, &Constant { lr: 0.2 }, 1000);
        assert!(distance_to_optimum(&theta) < 1e-10, "{theta}");

        for nesterov in [false, true] {
            let mut sgd = Sgd::<f64, Vector3<f64>>::with_config(SgdConfig {
                lr: 0.05,
                momentum: 0.9,
                nesterov,
                ..SgdConfig::default()
            });
            let theta = minimise(&mut sgd, &Constant { lr: 0.05 }, 1000);
            assert!(distance_to_optimum(&theta) < 1e-10, "{nesterov}: {theta}");
        }
    }

    #[test]
    fn weight_decay_minimises_the_l2_penalised_quadratic() {
        // f(θ) + ½λ‖θ‖² has its minimum where (AᵀA + λI)·θ = Aᵀb.
        let lambda = 0.5;
        let a = a();
        let b = a * Vector3::from(crate::optim::test_util::OPTIMUM);
        let expected = (a.transpose() * a + Matrix3::identity() * lambda)
            .try_inverse()
            .unwrap()
            * (a.transpose() * b);
        let mut sgd = Sgd::<f64, Vector3<f64>>::with_config(SgdConfig {
            lr: 0.1,
            momentum: 0.5,
            dampening: 0.2,
            weight_decay: lambda,
            ..SgdConfig::default()
        });
        let theta = minimise(&mut sgd, &Constant { lr: 0.1 }, 1000);
        assert!((theta - expected).norm() < 1e-10, "{theta} vs {expected}");
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn boxed_equals_unboxed() {
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.5,
            weight_decay: 0.1,
            nesterov: false,
        };
        let mut boxed = Sgd::<f64, Pair<f64>>::new_boxed(config);
        assert_eq!(boxed.config, config);
        assert_eq!(boxed.steps(), 0);
        check_steps(
            &mut *boxed,
            &[
                [0.94, 2.08, 2.77],
                [0.8313, 2.1166, 2.59915],
                [0.7418135, 2.101457, 2.40738925],
            ],
        );
    }

    #[test]
    fn learning_rate_is_settable() {
        let mut sgd = Sgd::<f64, Vector3<f64>>::new(0.1);
        assert_eq!(sgd.learning_rate(), 0.1);
        sgd.set_learning_rate(0.2);
        assert_eq!(sgd.learning_rate(), 0.2);
        // θ₁ = θ₀ − 0.2·g₁ = [0.9, 2.2, 2.6]
        check_steps(&mut sgd, &[[0.9, 2.2, 2.6]]);
    }

    #[test]
    fn defaults_are_pytorchs() {
        assert_eq!(
            SgdConfig::default(),
            SgdConfig {
                lr: 1e-3,
                momentum: 0.0,
                dampening: 0.0,
                nesterov: false,
                weight_decay: 0.0
            }
        );
    }

    #[test]
    #[should_panic(expected = "Nesterov")]
    fn nesterov_without_momentum_panics() {
        let _ = Sgd::<f64, Vector3<f64>>::with_config(SgdConfig {
            nesterov: true,
            ..SgdConfig::default()
        });
    }

    #[test]
    #[should_panic(expected = "length")]
    fn wrong_length_panics() {
        let mut sgd = Sgd::<f64, Vector3<f64>>::new(0.1);
        sgd.step(&mut [0.0; 2], &[0.0; 2]);
    }
}
