//! Test helpers shared by the losses' tests: finite differences, partial batches, f32.

use super::Loss;
use crate::ConstZero;
use nalgebra::SMatrix;

/// Step of the central differences.
const STEP: f64 = 1e-6;
/// Gradients smaller than this are compared absolutely (scaled by `1/FLOOR`), as in
/// `gradcheck`: the round-off of the difference quotient, `≈ 1e-16·|L|/STEP`, would dominate
/// a relative error.
const FLOOR: f64 = 1e-2;

/// The largest error between `loss_and_grad`'s gradient and the central differences of
/// `loss`, over every component of `y` (counted or not), `|a − d| / max(|a|, |d|, FLOOR)`.
///
/// Also checks that `loss_and_grad` returns the same value as `loss`, and overwrites `grad`.
pub fn gradient_error<L, Target, const N: usize, const B: usize>(
    loss: &L,
    y: &SMatrix<f64, N, B>,
    targets: &[Target],
) -> f64
where
    L: Loss<f64, N, Target>,
{
    // A gradient buffer full of garbage: loss_and_grad must overwrite every entry.
    let mut grad = SMatrix::<f64, N, B>::from_element(123.0);
    let value = loss.loss_and_grad(y, targets, &mut grad);
    assert_eq!(value.to_bits(), loss.loss(y, targets).to_bits());
    let mut y = *y;
    let mut worst = 0.0f64;
    for k in 0..N * B {
        let saved = y.as_slice()[k];
        y.as_mut_slice()[k] = saved + STEP;
        let plus = loss.loss(&y, targets);
        y.as_mut_slice()[k] = saved - STEP;
        let minus = loss.loss(&y, targets);
        y.as_mut_slice()[k] = saved;
        let numeric = (plus - minus) / (2.0 * STEP);
        let analytic = grad.as_slice()[k];
        let scale = analytic.abs().max(numeric.abs()).max(FLOOR);
        let error = (analytic - numeric).abs() / scale;
        assert!(!error.is_nan(), "component {k}: {analytic} vs {numeric}");
        worst = worst.max(error);
    }
    worst
}

/// Checks that the loss of a 4-column batch with 3 targets equals the loss of its first 3
/// columns, that the gradients of those columns agree, and that column 3's gradient is zero.
pub fn check_partial_batch<L, Target, const N: usize>(
    loss: &L,
    y: &SMatrix<f64, N, 4>,
    targets: &[Target; 3],
) where
    L: Loss<f64, N, Target>,
{
    let y3: SMatrix<f64, N, 3> = y.fixed_columns::<3>(0).into();
    let mut grad3 = SMatrix::<f64, N, 3>::ZERO;
    let value3 = loss.loss_and_grad(&y3, targets, &mut grad3);

    let mut grad4 = SMatrix::<f64, N, 4>::from_element(123.0);
    let value4 = loss.loss_and_grad(y, targets, &mut grad4);
    assert!(value3.is_finite());
    assert_eq!(value4, value3);
    assert_eq!(loss.loss(y, targets), value3);
    assert_eq!(grad4.fixed_columns::<3>(0), grad3);
    assert!(grad4.column(3).iter().all(|&g| g == 0.0), "{grad4}");

    // The unused column does not matter, even when not finite.
    let mut y_nan = *y;
    y_nan.column_mut(3).fill(f64::NAN);
    assert_eq!(loss.loss_and_grad(&y_nan, targets, &mut grad4), value3);
    assert!(grad4.column(3).iter().all(|&g| g == 0.0), "{grad4}");

    // A counted column that is not finite makes the loss NaN (no `max` swallows it).
    y_nan.column_mut(1).fill(f64::NAN);
    assert!(loss.loss(&y_nan, targets).is_nan());
    assert!(loss.loss_and_grad(&y_nan, targets, &mut grad4).is_nan());
}

/// Checks that the loss and gradient in `f32` agree with those in `f64` to `tolerance`
/// (relative to the largest magnitude).
pub fn check_f32_matches_f64<L, T64, T32, const N: usize, const B: usize>(
    loss: &L,
    y: &SMatrix<f64, N, B>,
    targets64: &[T64],
    targets32: &[T32],
    tolerance: f64,
) where
    L: Loss<f64, N, T64> + Loss<f32, N, T32>,
{
    let mut grad64 = SMatrix::<f64, N, B>::ZERO;
    let value64 = loss.loss_and_grad(y, targets64, &mut grad64);
    let y32 = y.map(|x| x as f32);
    let mut grad32 = SMatrix::<f32, N, B>::ZERO;
    let value32 = loss.loss_and_grad(&y32, targets32, &mut grad32);
    assert_eq!(value32, loss.loss(&y32, targets32));
    let close = |a: f64, b: f32| (a - b as f64).abs() <= tolerance * a.abs().max(1.0);
    assert!(close(value64, value32), "{value64} vs {value32}");
    for (&a, &b) in grad64.iter().zip(grad32.iter()) {
        let scale = grad64.amax().max(1e-30);
        assert!(
            (a - b as f64).abs() <= tolerance * scale,
            "{grad64} vs {grad32}"
        );
    }
}

/// `|a − b| ≤ tolerance·max(|a|, |b|)`, with a message.
#[track_caller]
pub fn assert_close(a: f64, b: f64, tolerance: f64) {
    assert!(
        (a - b).abs() <= tolerance * a.abs().max(b.abs()),
        "{a} vs {b} (relative error {:e})",
        (a - b).abs() / a.abs().max(b.abs())
    );
}
