//! Learning-rate schedules: PyTorch's `StepLR`, `ExponentialLR`, `CosineAnnealingLR` (closed
//! form) and a linear warm-up, as functions of the 0-based step number.
//!
//! Step `k` is the learning rate of the `(k + 1)`-th optimizer step: the value PyTorch's
//! optimizer holds after `k` calls of `scheduler.step()`, one after each `optimizer.step()`.
//! Each schedule holds its base (initial) learning rate `lr`.
//!
//! A closure `Fn(usize) -> f64` is a schedule too (PyTorch's `LambdaLR`, with the base rate
//! folded in).

use super::Schedule;
use nalgebra::ComplexField;

/// The same learning rate at every step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant {
    /// The learning rate.
    pub lr: f64,
}

impl Schedule for Constant {
    fn learning_rate(&self, _step: usize) -> f64 {
        self.lr
    }
}

/// Decay by `gamma` every `step_size` steps, PyTorch's `StepLR`:
/// `lr·γ^⌊step / step_size⌋`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    /// Base learning rate.
    pub lr: f64,
    /// Number of steps between decays; must be positive.
    pub step_size: usize,
    /// Factor `γ` of each decay (PyTorch's default `0.1`).
    pub gamma: f64,
}

impl StepDecay {
    /// Decay of `lr` by PyTorch's default factor `0.1` every `step_size` steps.
    pub fn new(lr: f64, step_size: usize) -> Self {
        Self {
            lr,
            step_size,
            gamma: 0.1,
        }
    }
}

impl Schedule for StepDecay {
    /// # Panics
    /// If `step_size` is `0`.
    fn learning_rate(&self, step: usize) -> f64 {
        assert!(self.step_size > 0, "StepDecay: step_size must be positive");
        let decays = (step / self.step_size) as f64;
        self.lr * <f64 as ComplexField>::powf(self.gamma, decays)
    }
}

/// Decay by `gamma` every step, PyTorch's `ExponentialLR`: `lr·γ^step`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exponential {
    /// Base learning rate.
    pub lr: f64,
    /// Factor `γ` of each step.
    pub gamma: f64,
}

impl Schedule for Exponential {
    fn learning_rate(&self, step: usize) -> f64 {
        self.lr * <f64 as ComplexField>::powf(self.gamma, step as f64)
    }
}

/// Cosine annealing from `lr` to `eta_min` over `t_max` steps, the closed form of PyTorch's
/// `CosineAnnealingLR`:
///
/// ```text
/// η_step = η_min + (lr − η_min)·(1 + cos(π·step / t_max)) / 2
/// ```
///
/// As in PyTorch, the formula is not clamped: past `t_max` the rate rises again, back to `lr`
/// at `2·t_max` (a cosine of period `2·t_max`). Stop at `t_max`, or wrap the schedule, to
/// avoid it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cosine {
    /// Base (maximum) learning rate, at step `0`.
    pub lr: f64,
    /// Number of steps `T_max` from `lr` down to `eta_min`; must be positive.
    pub t_max: usize,
    /// Minimum learning rate `η_min`, at step `t_max` (PyTorch's default `0`).
    pub eta_min: f64,
}

impl Cosine {
    /// Annealing from `lr` to `0` over `t_max` steps (PyTorch's default `eta_min`).
    pub fn new(lr: f64, t_max: usize) -> Self {
        Self {
            lr,
            t_max,
            eta_min: 0.0,
        }
    }
}

impl Schedule for Cosine {
    /// # Panics
    /// If `t_max` is `0`.
    fn learning_rate(&self, step: usize) -> f64 {
        assert!(self.t_max > 0, "Cosine: t_max must be positive");
        let angle = core::f64::consts::PI * step as f64 / self.t_max as f64;
        self.eta_min + (self.lr - self.eta_min) * (1.0 + <f64 as ComplexField>::cos(angle)) / 2.0
    }
}

/// A linear warm-up over `steps` steps followed by the `inner` schedule:
///
/// ```text
/// η_step = inner(0)·step / steps      for step < steps
/// η_step = inner(step − steps)        for step ≥ steps
/// ```
///
/// The rate rises linearly from `0` at step `0` to the inner schedule's initial value at step
/// `steps`, from where the inner schedule runs on its own clock (it is delayed by `steps`,
/// not overlapped). This is PyTorch's `SequentialLR([LinearLR(start_factor → 0,
/// end_factor = 1, total_iters = steps), inner], milestones = [steps])` (PyTorch requires
/// `start_factor > 0`), and the warm-up of Hugging Face's `get_*_schedule_with_warmup`. The
/// first step has learning rate `0` (it still updates an optimizer's averages). `steps = 0` is
/// no warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmUp<S> {
    /// Number of warm-up steps.
    pub steps: usize,
    /// The schedule after the warm-up, which holds the base learning rate.
    pub inner: S,
}

impl<S: Schedule> Schedule for WarmUp<S> {
    fn learning_rate(&self, step: usize) -> f64 {
        if step < self.steps {
            self.inner.learning_rate(0) * step as f64 / self.steps as f64
        } else {
            self.inner.learning_rate(step - self.steps)
        }
    }
}

/// A closure is a schedule: `|step| lr(step)` (PyTorch's `LambdaLR`, with the base rate
/// folded in).
impl<F: Fn(usize) -> f64> Schedule for F {
    fn learning_rate(&self, step: usize) -> f64 {
        self(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(schedule: &impl Schedule, expected: &[(usize, f64)]) {
        for &(step, lr) in expected {
            let got = schedule.learning_rate(step);
            assert!(
                (got - lr).abs() < 1e-12,
                "step {step}: {got}, expected {lr}"
            );
        }
    }

    #[test]
    fn constant() {
        check(
            &Constant { lr: 0.3 },
            &[(0, 0.3), (1, 0.3), (1_000_000, 0.3)],
        );
    }

    #[test]
    fn step_decay() {
        // 0.1·0.5^⌊step/3⌋: steps 0–2 → 0.1, 3–5 → 0.05, 6–8 → 0.025.
        let schedule = StepDecay {
            lr: 0.1,
            step_size: 3,
            gamma: 0.5,
        };
        check(
            &schedule,
            &[
                (0, 0.1),
                (2, 0.1),
                (3, 0.05),
                (5, 0.05),
                (6, 0.025),
                (9, 0.0125),
            ],
        );
        // PyTorch's default γ = 0.1: steps 10–19 → 0.1·0.1 = 0.01.
        check(
            &StepDecay::new(1.0, 10),
            &[(9, 1.0), (10, 0.1), (19, 0.1), (20, 0.01)],
        );
    }

    #[test]
    #[should_panic(expected = "step_size")]
    fn step_decay_of_step_size_zero_panics() {
        StepDecay::new(1.0, 0).learning_rate(1);
    }

    #[test]
    fn exponential() {
        // 2·0.9^step: 2, 1.8, 1.62, …, 2·0.9¹⁰ = 2·0.3486784401.
        let schedule = Exponential {
            lr: 2.0,
            gamma: 0.9,
        };
        check(
            &schedule,
            &[(0, 2.0), (1, 1.8), (2, 1.62), (10, 0.6973568802)],
        );
    }

    #[test]
    fn cosine() {
        // 0.1 + 0.9·(1 + cos(π·step/10))/2.
        let schedule = Cosine {
            lr: 1.0,
            t_max: 10,
            eta_min: 0.1,
        };
        check(
            &schedule,
            &[
                (0, 1.0),
                // cos(0.1π) = 0.9510565163: 0.1 + 0.45·1.9510565163
                (1, 0.9779754323328191),
                // cos(0.3π) = 0.5877852523: 0.1 + 0.45·1.5877852523
                (3, 0.8145033635316129),
                // cos(π/2) = 0: 0.1 + 0.45
                (5, 0.55),
                // cos(0.7π) = −0.5877852523: 0.1 + 0.45·0.4122147477
                (7, 0.2854966364683872),
                (10, 0.1),
                // Past t_max the closed form rises again, as PyTorch's does.
                (15, 0.55),
                (20, 1.0),
            ],
        );
        // PyTorch's default η_min = 0: halfway is lr/2.
        check(&Cosine::new(0.2, 100), &[(0, 0.2), (50, 0.1), (100, 0.0)]);
    }

    #[test]
    fn warm_up_then_cosine() {
        // Warm-up over 4 steps to inner(0) = 1: 0, 0.25, 0.5, 0.75; then inner(step − 4).
        let schedule = WarmUp {
            steps: 4,
            inner: Cosine {
                lr: 1.0,
                t_max: 10,
                eta_min: 0.1,
            },
        };
        check(
            &schedule,
            &[
                (0, 0.0),
                (1, 0.25),
                (2, 0.5),
                (3, 0.75),
                (4, 1.0),
                (5, 0.9779754323328191),
                (9, 0.55),
                (14, 0.1),
            ],
        );
    }

    #[test]
    fn warm_up_of_zero_steps_is_the_inner_schedule() {
        let schedule = WarmUp {
            steps: 0,
            inner: Exponential {
                lr: 2.0,
                gamma: 0.9,
            },
        };
        check(&schedule, &[(0, 2.0), (1, 1.8), (2, 1.62)]);
    }

    #[test]
    fn warm_up_then_step_decay() {
        // 0.1·step/2 for steps 0, 1; then 0.1·0.5^⌊(step − 2)/3⌋.
        let schedule = WarmUp {
            steps: 2,
            inner: StepDecay {
                lr: 0.1,
                step_size: 3,
                gamma: 0.5,
            },
        };
        check(
            &schedule,
            &[
                (0, 0.0),
                (1, 0.05),
                (2, 0.1),
                (4, 0.1),
                (5, 0.05),
                (8, 0.025),
            ],
        );
    }

    #[test]
    fn closures_are_schedules() {
        // Inverse square-root decay, a LambdaLR.
        let schedule = |step: usize| 0.5 / <f64 as ComplexField>::sqrt(step as f64 + 1.0);
        check(&schedule, &[(0, 0.5), (3, 0.25), (15, 0.125)]);
        check(
            &WarmUp {
                steps: 2,
                inner: schedule,
            },
            &[(1, 0.25), (2, 0.5), (5, 0.25)],
        );
    }
}
