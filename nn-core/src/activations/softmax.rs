//! Softmax and log-softmax over the features of each sample, with the full Jacobian-vector
//! product in backward.

use super::{Activation, Reads};
use crate::{Real, kernels};
use nalgebra::SMatrix;

/// `softmax(x)_i = e^{x_i} / Σ_k e^{x_k}`, per sample (column), computed after subtracting
/// the column's maximum so that no exponential overflows.
///
/// Backward is the full Jacobian-vector product, not its diagonal:
/// `∂L/∂x = y ⊙ (∂L/∂y − (yᵀ·∂L/∂y)·1)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Softmax;

/// `log_softmax(x)_i = x_i − max − ln Σ_k e^{x_k − max}`, per sample (column).
///
/// Backward: `∂L/∂x = ∂L/∂y − softmax(x)·(1ᵀ·∂L/∂y)`, with `softmax(x) = e^y`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LogSoftmax;

impl<T: Real> Activation<T> for Softmax {
    const READS: Reads = Reads::Output;

    fn forward<const N: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
    ) {
        // Column by column over the contiguous slices: the exponentials vectorise
        // (`exp_accurate`), then their sum in 8 lanes (`kernels::sum`).
        let columns = x.as_slice().chunks_exact(N.max(1));
        let outputs = y.as_mut_slice().chunks_exact_mut(N.max(1));
        for (j, (column, y)) in columns.zip(outputs).enumerate() {
            let max = x.column(j).max();
            for (y, &v) in y.iter_mut().zip(column) {
                *y = (v - max).exp_accurate();
            }
            let sum = kernels::sum(y);
            for y in y {
                *y /= sum;
            }
        }
    }

    fn backward<const N: usize, const B: usize>(
        &self,
        y: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        dx: &mut SMatrix<T, N, B>,
    ) {
        for ((y, dy), mut dx) in y
            .column_iter()
            .zip(dy.column_iter())
            .zip(dx.column_iter_mut())
        {
            let y_dot_dy = y.dot(&dy);
            for ((dx, &y), &dy) in dx.iter_mut().zip(y.iter()).zip(dy.iter()) {
                *dx += y * (dy - y_dot_dy);
            }
        }
    }
}

impl<T: Real> Activation<T> for LogSoftmax {
    const READS: Reads = Reads::Output;

    fn forward<const N: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
    ) {
        for (x, mut y) in x.column_iter().zip(y.column_iter_mut()) {
            let max = x.max();
            let sum = kernels::sum_by(x.as_slice(), |x| (x - max).exp_accurate());
            // (x − max) − ln Σ, not x − (max + ln Σ): the shifted logit is exact, and adding
            // ln Σ to a large max would round it away (log_softmax([1e16, 1e16]) = [0, 0]).
            let log_sum = sum.ln();
            for (y, &x) in y.iter_mut().zip(x.iter()) {
                *y = (x - max) - log_sum;
            }
        }
    }

    fn backward<const N: usize, const B: usize>(
        &self,
        y: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        dx: &mut SMatrix<T, N, B>,
    ) {
        for ((y, dy), mut dx) in y
            .column_iter()
            .zip(dy.column_iter())
            .zip(dx.column_iter_mut())
        {
            let dy_sum = dy.sum();
            for ((dx, &y), &dy) in dx.iter_mut().zip(y.iter()).zip(dy.iter()) {
                *dx += dy - y.exp_accurate() * dy_sum;
            }
        }
    }
}
