//! One training step, with no allocation, that leaves the parameters untouched on error.

use super::OutputLoss;
use crate::memory::TapeIo;
use crate::optim::{clip_grad_norm, global_norm};
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
/// `grads` are work space; `grads` holds the step's gradient afterwards.
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
    if targets.is_empty() || targets.len() > B {
        return Err(StepError::BadBatchSize);
    }
    if N::BATCH_STATISTICS && targets.len() < B {
        return Err(StepError::PartialBatch);
    }
    // One region of the pool's threads for the whole step (`crate::parallel`).
    parallel::region(|| step(net, tape, grads, x, targets, loss, optimizer, options))
}

/// [`train_step`] once its arguments are checked.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
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
    net.forward_train(x, tape);
    // The loss reads the outputs and writes their gradient, both in the tape.
    let (y, d_y) = tape.output_and_d_output();
    let data_loss = loss.total_and_grad(y, targets, d_y);
    if !data_loss.is_finite() {
        return Err(StepError::NonFiniteLoss);
    }
    // On a pool's threads when the gradient is large (`crate::parallel`).
    parallel::elementwise([grads.as_mut_slice()], [], |[grads], []| {
        grads.fill(T::ZERO)
    });
    // No gradient for the input: the first layers skip their ∂L/∂x products.
    net.backward_params(tape, grads);
    let penalty = options.regularization.apply(net, grads);
    // Clipping leaves non-finite gradients as they are, and returns their norm.
    let grad_norm = match options.clip_grad_norm {
        Some(max_norm) => clip_grad_norm(grads.as_mut_slice(), max_norm),
        None => global_norm(grads.as_slice()),
    };
    if !grad_norm.is_finite() || !penalty.is_finite() {
        return Err(StepError::NonFiniteGradient);
    }
    optimizer.update(net, grads);
    Ok(StepOutcome {
        loss: data_loss,
        penalty,
        grad_norm,
    })
}
