//! Training: one step (forward, loss, backward, regularization, clipping, update) that
//! never allocates and never corrupts the parameters, and, with `std`, a trainer over a data
//! set (epochs, shuffled mini-batches, validation, early stopping, a progress bar).

mod output_loss;
mod step;
pub use output_loss::{OutputLoss, Weighted};
pub use step::{StepError, StepOptions, StepOutcome, train_step};

#[cfg(feature = "std")]
mod fit;
#[cfg(feature = "std")]
pub use fit::{
    DataSet, EarlyStopping, EpochStats, History, Samples, TrainConfig, TrainError, Trainer,
};

#[cfg(feature = "std")]
mod parallel;
#[cfg(feature = "std")]
pub use parallel::{ParallelWorkspace, parallel_gradients};

use crate::Real;

/// Accuracy of a class-index target: the output's largest component is the target class.
pub fn argmax_accuracy<T: Real>(output: &[T], target: &usize) -> bool {
    argmax(output) == Some(*target)
}

/// Index of the largest value (the first, on ties); `None` for an empty slice or a NaN.
pub fn argmax<T: Real>(values: &[T]) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in values.iter().enumerate() {
        // Only NaN is unordered with itself.
        v.partial_cmp(&v)?;
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}
