//! One training step, with no allocation, that leaves the parameters untouched on error.

use super::OutputLoss;
use crate::memory::TapeIo;
use crate::optim::{clip_grad_norm, norm_and_finiteness};
use crate::{Network, Optimizer, Params, Real, Regularization, parallel};
use core::fmt;

/// What a step does besides forward, loss, backward and the update.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct StepOptions {
    /// Penalty `R(W)` added to the loss and its gradient.
    pub regularization: Regularization,
    /// Clip the gradient to this global L2 norm ([`clip_grad_norm`], PyTorch's
    /// `clip_grad_norm_`).
    pub clip_grad_norm: Option<f64>,
}

/// Result of a successful step. The network's outputs on the batch, before the update, are
/// in the tape: `tape.output()` ([`Outputs`](crate::memory::Outputs)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutcome<T> {
    /// The data loss (mean over the batch), before the update.
    pub loss: T,
    /// The regularization penalty `R(W)`, before the update.
    pub penalty: T,
    /// The global L2 norm of the gradient (with the penalty's), before clipping.
    pub grad_norm: f64,
}

/// Why a step was refused. The parameters are unchanged in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The loss is NaN or infinite (diverged training, or bad input or target data).
    NonFiniteLoss,
    /// A gradient component is NaN or infinite.
    NonFiniteGradient,
    /// No targets were given, or more than the batch holds.
    BadBatchSize,
    /// Fewer targets than the batch holds, for a network whose training uses batch statistics
    /// ([`Network::BATCH_STATISTICS`]): the padding columns would enter them.
    PartialBatch,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepError::NonFiniteLoss => "the loss is not finite; the parameters were not updated",
            StepError::NonFiniteGradient => {
                "a gradient is not finite; the parameters were not updated"
            }
            StepError::BadBatchSize => "a batch needs between 1 and B targets",
            StepError::PartialBatch => {
                "the network uses batch statistics (batch norm): a batch needs exactly B targets, \
                 since padding would enter the statistics"
            }
        })
    }
}

impl core::error::Error for StepError {}

/// One step of training on a batch: forward, loss, backward, regularization, clipping, and
/// the optimizer's update, in place and without allocating.
///
/// `x` holds the batch, one sample per column (a tuple of batches for a network with
/// several inputs); only the first `targets.len()` columns are samples (the rest, padding of
/// a last partial batch, get a zero gradient). A network with several outputs takes a
/// [`Weighted`](super::Weighted) loss per output (`(Weighted::new(Mse, 1.0),
/// Weighted::new(SoftmaxCrossEntropy, 0.5))`) and a tuple of targets per sample. `tape` and
/// `grads` are work space; `grads` holds the step's gradient afterwards. The step reads `x`
/// wherever the backward pass needs the input, so the tape gets no copy of it
/// ([`Network::forward_train_borrowing`]).
///
/// On a non-finite loss or gradient, returns an error and leaves `net` and `optimizer`
/// unchanged. A network with batch statistics ([`Network::BATCH_STATISTICS`]) refuses a
/// partial batch, before anything runs.
#[allow(clippy::too_many_arguments)]
pub fn train_step<T, N, L, O, Target, const B: usize>(
    net: &mut N,
    tape: &mut N::Tape<B>,
    grads: &mut N::Grads,
    x: &N::Input<B>,
    targets: &[Target],
    loss: &L,
    optimizer: &mut O,
    options: &StepOptions,
) -> Result<StepOutcome<T>, StepError>
where
    T: Real,
    N: Network<T>,
    L: OutputLoss<T, N::Output<B>, Target>,
    O: Optimizer<T, Grads = N::Grads>,
{
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx512() {
        // SAFETY: the CPU has AVX-512F, the only feature the copy is compiled for.
        return unsafe {
            train_step_avx512(net, tape, grads, x, targets, loss, optimizer, options)
        };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA, the features the copy is compiled for.
        return unsafe { train_step_avx2(net, tape, grads, x, targets, loss, optimizer, options) };
    }
    step(net, tape, grads, x, targets, loss, optimizer, options)
}

/// [`train_step`] compiled for AVX-512: the passes over the parameters (zeroing the
/// gradient, its norm, the update), inlined, on 16 `f32` lanes, with no call or check of
/// the CPU per pass. The same operations in the same order: the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn train_step_avx512<T, N, L, O, Target, const B: usize>(
    net: &mut N,
    tape: &mut N::Tape<B>,
    grads: &mut N::Grads,
    x: &N::Input<B>,
    targets: &[Target],
    loss: &L,
    optimizer: &mut O,
    options: &StepOptions,
) -> Result<StepOutcome<T>, StepError>
where
    T: Real,
    N: Network<T>,
    L: OutputLoss<T, N::Output<B>, Target>,
    O: Optimizer<T, Grads = N::Grads>,
{
    step(net, tape, grads, x, targets, loss, optimizer, options)
}

/// [`train_step`] compiled for AVX2 and FMA, as [`train_step_avx512`] for AVX-512 (on 8
/// `f32` lanes; the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn train_step_avx2<T, N, L, O, Target, const B: usize>(
    net: &mut N,
    tape: &mut N::Tape<B>,
    grads: &mut N::Grads,
    x: &N::Input<B>,
    targets: &[Target],
    loss: &L,
    optimizer: &mut O,
    options: &StepOptions,
) -> Result<StepOutcome<T>, StepError>
where
    T: Real,
    N: Network<T>,
    L: OutputLoss<T, N::Output<B>, Target>,
    O: Optimizer<T, Grads = N::Grads>,
{
    step(net, tape, grads, x, targets, loss, optimizer, options)
}

/// The body of [`train_step`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step<T, N, L, O, Target, const B: usize>(
    net: &mut N,
    tape: &mut N::Tape<B>,
    grads: &mut N::Grads,
    x: &N::Input<B>,
    targets: &[Target],
    loss: &L,
    optimizer: &mut O,
    options: &StepOptions,
) -> Result<StepOutcome<T>, StepError>
where
    T: Real,
    N: Network<T>,
    L: OutputLoss<T, N::Output<B>, Target>,
    O: Optimizer<T, Grads = N::Grads>,
{
    if targets.is_empty() || targets.len() > B {
        return Err(StepError::BadBatchSize);
    }
    if N::BATCH_STATISTICS && targets.len() < B {
        return Err(StepError::PartialBatch);
    }
    // One region of the pool's threads for the whole step (`crate::parallel`).
    parallel::region(
        #[inline(always)]
        || checked_step(net, tape, grads, x, targets, loss, optimizer, options),
    )
}

/// [`train_step`] once its arguments are checked.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn checked_step<T, N, L, O, Target, const B: usize>(
    net: &mut N,
    tape: &mut N::Tape<B>,
    grads: &mut N::Grads,
    x: &N::Input<B>,
    targets: &[Target],
    loss: &L,
    optimizer: &mut O,
    options: &StepOptions,
) -> Result<StepOutcome<T>, StepError>
where
    T: Real,
    N: Network<T>,
    L: OutputLoss<T, N::Output<B>, Target>,
    O: Optimizer<T, Grads = N::Grads>,
{
    // `x` stays borrowed until the backward pass: the tape needs no copy of it.
    net.forward_train_borrowing(x, tape);
    // The loss reads the outputs and writes their gradient, both in the tape.
    let (y, d_y) = tape.output_and_d_output();
    let data_loss = loss.total_and_grad(y, targets, d_y);
    if !data_loss.is_finite() {
        return Err(StepError::NonFiniteLoss);
    }
    // The gradients written, not added (no zeroing pass); no gradient for the input: the
    // first layers skip their ∂L/∂x products.
    net.backward_params_overwrite_borrowing(x, tape, grads);
    let penalty = if options.regularization.is_none() {
        T::ZERO
    } else {
        options.regularization.apply(net, grads)
    };
    // Clipping leaves non-finite gradients as they are, and returns their norm.
    let (grad_norm, finite) = match options.clip_grad_norm {
        Some(max_norm) => {
            let norm = clip_grad_norm(grads.as_mut_slice(), max_norm);
            (norm, norm.is_finite())
        }
        None => norm_and_finiteness(grads.as_slice()),
    };
    if !finite || !penalty.is_finite() {
        return Err(StepError::NonFiniteGradient);
    }
    optimizer.update(net, grads);
    Ok(StepOutcome {
        loss: data_loss,
        penalty,
        grad_norm,
    })
}

#[cfg(all(test, feature = "std"))]
#[allow(dead_code)]
mod tests {
    use super::*;
    use crate::loss::{Mse, SoftmaxCrossEntropy};
    use crate::optim::{Sgd, SgdConfig};
    use crate::{SMatrix, Zeroable};
    use std::vec::Vec;

    nn_macros::network! {
        /// W1's network.
        pub struct Tiny {
            input: [2],
            l1: Dense<16>, Tanh,
            l2: Dense<16>, Tanh,
            l3: Dense<1>,
        }
    }

    nn_macros::network! {
        /// Other activations, several outputs per sample.
        pub struct Small {
            input: [12],
            l1: Dense<20>, Relu,
            l2: Dense<10>, Sigmoid,
            l3: Dense<3>,
        }
    }

    /// Three steps from fixed parameters; every bit of the parameters, gradients, losses and
    /// norms after each.
    fn steps<N, L, Tg, const B: usize>(
        x: &N::Input<B>,
        targets: &[Tg],
        loss: &L,
        options: &StepOptions,
        config: SgdConfig,
    ) -> Vec<u64>
    where
        N: Network<f32>,
        L: OutputLoss<f32, N::Output<B>, Tg>,
    {
        let mut net = N::new_boxed();
        for (i, p) in net.as_mut_slice().iter_mut().enumerate() {
            *p = ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 0.8;
        }
        let mut tape = <N::Tape<B> as Zeroable>::new_boxed();
        let mut grads = N::Grads::new_boxed();
        let mut sgd = Sgd::<f32, N::Grads>::new_boxed(config);
        let mut bits = Vec::new();
        for _ in 0..3 {
            let out = train_step(
                &mut *net,
                &mut *tape,
                &mut *grads,
                x,
                targets,
                loss,
                &mut *sgd,
                options,
            )
            .expect("a finite step");
            bits.extend([
                u64::from(out.loss.to_bits()),
                u64::from(out.penalty.to_bits()),
                out.grad_norm.to_bits(),
            ]);
            bits.extend(net.as_slice().iter().map(|p| u64::from(p.to_bits())));
            bits.extend(grads.as_slice().iter().map(|g| u64::from(g.to_bits())));
        }
        bits
    }

    /// The AVX-512 copies (of the step, and of the passes `network!` generates for a small
    /// network) and the passes' AVX2 copies give the baseline's bits, with every option of
    /// the step.
    #[test]
    fn the_avx512_and_avx2_copies_give_the_baselines_bits() {
        let options = [
            StepOptions::default(),
            StepOptions {
                regularization: Regularization {
                    l1: 1e-3,
                    l2: 1e-2,
                    biases: true,
                },
                clip_grad_norm: Some(0.05),
            },
        ];
        let configs = [
            SgdConfig {
                lr: 0.1,
                ..SgdConfig::default()
            },
            SgdConfig {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 1e-3,
                ..SgdConfig::default()
            },
        ];
        let x = SMatrix::<f32, 2, 1>::new(0.7, -1.3);
        let xs = SMatrix::<f32, 12, 4>::from_fn(|i, j| ((i * 5 + j * 3) % 11) as f32 / 5.0 - 1.0);
        for options in &options {
            for &config in &configs {
                let tiny = || steps::<Tiny<f32>, _, _, 1>(&x, &[0.25f32], &Mse, options, config);
                let small = || {
                    steps::<Small<f32>, _, _, 4>(
                        &xs,
                        &[0usize, 2, 1, 2],
                        &SoftmaxCrossEntropy,
                        options,
                        config,
                    )
                };
                assert_eq!(tiny(), crate::kernels::on_the_baseline(tiny));
                assert_eq!(small(), crate::kernels::on_the_baseline(small));
                assert_eq!(tiny(), crate::kernels::on_the_avx2_tier(tiny));
                assert_eq!(small(), crate::kernels::on_the_avx2_tier(small));
            }
        }
    }
}
