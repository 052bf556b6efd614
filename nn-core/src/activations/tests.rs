//! Unit tests of every activation: exact values of `forward` and of the derivative, finite
//! differences, accumulation into `dx`, `f32`, and the full Jacobians of softmax and
//! log-softmax.
//!
//! Reference values were computed independently of this crate, with Python's `mpmath` at
//! 2000 significant digits (so that no cancellation such as `1 − σ(30)` or `1 + tanh(u)`
//! survives) from the textbook definitions, and printed to 17 significant digits:
//!
//! ```text
//! σ(x) = 1/(1 + e⁻ˣ)                 σ′ = σ(1 − σ)
//! tanh′ = 1 − tanh²
//! softplus(x) = ln(1 + eˣ)           softplus′ = σ
//! silu(x) = x·σ(x)                   silu′ = σ(1 + x(1 − σ))
//! elu(x) = x (x > 0), α(eˣ − 1)      elu′ = 1 (x > 0), α·eˣ (x ≤ 0)
//! gelu(x) = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³)
//! gelu′ = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)   (checked against mpmath.diff)
//! softmax(x)ᵢ = e^xᵢ / Σₖ e^xₖ        log_softmax(x)ᵢ = xᵢ − ln Σₖ e^xₖ
//! ```
//!
//! The piecewise-linear and step functions (ReLU, leaky ReLU, sign, Heaviside and the
//! straight-through surrogates) were written by hand. True values below the `f64` range
//! (e.g. `e⁻¹⁰⁰⁰/2 ≈ 2.5e-435`) are written as 0.

#![allow(
    clippy::excessive_precision,
    reason = "reference values are kept to the 17 significant digits they were printed with"
)]

use super::*;
use crate::{ConstZero, gradcheck};

/// How close a computed value must be to its reference: `|actual − expected| ≤
/// max(rel·|expected|, abs)`.
#[derive(Clone, Copy, Debug)]
struct Tol {
    rel: f64,
    abs: f64,
}

/// Relative 1e-14 (a few ulps after a handful of correctly rounded operations).
const REL: Tol = Tol {
    rel: 1e-14,
    abs: 0.0,
};

/// Absolute 1e-15, for derivatives computed from a saturated output `y` (`σ′ = y(1 − y)` at
/// `x = 30`, `tanh′ = 1 − y²` at `x = ±30`, …): `1 − y` cancels, so only an absolute accuracy
/// of about one ulp of 1 is possible. PyTorch computes these derivatives the same way.
const SATURATED: Tol = Tol {
    rel: 0.0,
    abs: 1e-15,
};

/// For log-probabilities: relative 1e-14, absolute 1e-14 below magnitude 1. An absolute error
/// `ε` in `ln p` is a relative error `ε` in `p`, which is what matters; `ln(1 + tiny)` cannot
/// be more accurate than that.
const LOG_PROB: Tol = Tol {
    rel: 1e-14,
    abs: 1e-14,
};

fn assert_close(actual: f64, expected: f64, tol: Tol, what: &dyn core::fmt::Display) {
    let error = (actual - expected).abs();
    assert!(
        error <= (tol.rel * expected.abs()).max(tol.abs),
        "{what}: got {actual:e}, expected {expected:e} (error {error:e}, {tol:?})"
    );
}

fn assert_all_close<const N: usize, const B: usize>(
    actual: &SMatrix<f64, N, B>,
    expected: &SMatrix<f64, N, B>,
    tol: Tol,
    what: &dyn core::fmt::Display,
) {
    for ((i, j), (&a, &e)) in (0..B)
        .flat_map(|j| (0..N).map(move |i| (i, j)))
        .zip(actual.iter().zip(expected.iter()))
    {
        assert_close(a, e, tol, &format_args!("{what}[({i}, {j})]"));
    }
}

/// `f(x)`.
fn forward<T: Real, A: Activation<T>, const N: usize, const B: usize>(
    activation: &A,
    x: &SMatrix<T, N, B>,
) -> SMatrix<T, N, B> {
    let mut y = SMatrix::ZERO;
    activation.forward(x, &mut y);
    y
}

/// `Jᵀ·dy`, by `forward` then `backward` into a zero `dx`, `backward` given the value the
/// activation [`READS`](Activation::READS) (NaN for none).
fn backward<T: Real, A: Activation<T>, const N: usize, const B: usize>(
    activation: &A,
    x: &SMatrix<T, N, B>,
    dy: &SMatrix<T, N, B>,
) -> SMatrix<T, N, B> {
    let y = forward(activation, x);
    let mut dx = SMatrix::ZERO;
    gradcheck::activation_backward(activation, x, &y, dy, &mut dx);
    dx
}

/// Runs `forward` on all the `(x, f(x))` cases as one batch of one-feature samples and
/// compares every output with its reference.
fn assert_forward<A: Activation<f64>, const K: usize>(
    activation: &A,
    cases: [(f64, f64); K],
    tol: Tol,
) {
    let x = SMatrix::<f64, 1, K>::from_fn(|_, j| cases[j].0);
    let y = forward(activation, &x);
    for (&y, (x, expected)) in y.iter().zip(cases) {
        assert!(y.is_finite() || !expected.is_finite(), "f({x}) = {y}");
        assert_close(y, expected, tol, &format_args!("f({x})"));
    }
}

/// Runs `backward` with `dy = 1` on all the `(x, f′(x))` cases as one batch, so that
/// `dx = f′(x)`, and compares every component with its reference.
fn assert_derivative<A: Activation<f64>, const K: usize>(
    activation: &A,
    cases: [(f64, f64); K],
    tol: Tol,
) {
    let x = SMatrix::<f64, 1, K>::from_fn(|_, j| cases[j].0);
    let dx = backward(activation, &x, &SMatrix::repeat(1.0));
    for (&dx, (x, expected)) in dx.iter().zip(cases) {
        assert_close(dx, expected, tol, &format_args!("f′({x})"));
    }
}

/// A batch of 5 features × 3 samples, every input at least 0.07 away from 0 and from ±1
/// (the kinks of ReLU, leaky ReLU and ELU, and the steps of sign and Heaviside).
fn smooth_batch() -> SMatrix<f64, 5, 3> {
    SMatrix::from_column_slice(&[
        -3.7, -2.2, -1.3, -0.6, -0.15, //
        0.07, 0.45, 0.9, 1.4, 2.6, //
        3.3, -0.85, 1.75, -4.4, 0.3,
    ])
}

/// An upstream gradient for [`smooth_batch`], with no two components equal.
fn some_dy() -> SMatrix<f64, 5, 3> {
    SMatrix::from_fn(|i, j| 0.3 * i as f64 - 0.7 * j as f64 + 0.11)
}

/// Finite differences agree with `backward` on [`smooth_batch`]-sized inputs.
fn assert_gradcheck<A: Activation<f64>>(
    activation: &A,
    x: &SMatrix<f64, 5, 3>,
) -> gradcheck::Report {
    let report = gradcheck::check_activation(activation, x);
    assert_eq!(report.checked, 5 * 3);
    assert!(report.max_rel_error < 1e-7, "{report:?}");
    report
}

/// `backward` adds to `dx`: twice into the same `dx` gives twice the gradient, and into a
/// non-zero `dx` keeps what was there.
fn assert_backward_accumulates<A: Activation<f64>, const N: usize, const B: usize>(
    activation: &A,
    x: &SMatrix<f64, N, B>,
    dy: &SMatrix<f64, N, B>,
) {
    let y = forward(activation, x);
    let once = backward(activation, x, dy);
    let mut dx = SMatrix::ZERO;
    gradcheck::activation_backward(activation, x, &y, dy, &mut dx);
    gradcheck::activation_backward(activation, x, &y, dy, &mut dx);
    assert_eq!(dx, once * 2.0);

    let start = SMatrix::<f64, N, B>::from_fn(|i, j| (i + 3 * j) as f64 - 2.5);
    let mut dx = start;
    gradcheck::activation_backward(activation, x, &y, dy, &mut dx);
    assert_eq!(dx, start + once);

    // `backward_overwrite` writes what `backward` adds to a zero `dx`, bit for bit, whatever
    // `dx` held (signs of zero included: `−dy` makes `0·dy` terms `−0`).
    for dy in [*dy, -*dy] {
        let mut added = SMatrix::<f64, N, B>::ZERO;
        gradcheck::activation_backward(activation, x, &y, &dy, &mut added);
        let mut written = SMatrix::<f64, N, B>::repeat(f64::NAN);
        let value = match A::READS {
            Reads::Input => *x,
            Reads::Output => y,
            Reads::Nothing => SMatrix::repeat(f64::NAN),
        };
        activation.backward_overwrite(&value, &dy, &mut written);
        let bits =
            |m: &SMatrix<f64, N, B>| m.iter().map(|v| v.to_bits()).collect::<std::vec::Vec<_>>();
        assert_eq!(bits(&written), bits(&added));
    }
}

/// `forward` in `f32` agrees with `forward` in `f64` on the same (`f32`-representable) inputs.
fn assert_f32_agrees_with_f64<A, const N: usize, const B: usize>(
    activation: &A,
    x: SMatrix<f32, N, B>,
    tol: Tol,
) where
    A: Activation<f32> + Activation<f64>,
{
    let y32 = forward(activation, &x).map(f64::from);
    let y64 = forward(activation, &x.map(f64::from));
    assert_all_close(&y32, &y64, tol, &"f32 forward");
}

/// `f32` inputs for the element-wise activations, exactly representable.
fn f32_inputs() -> SMatrix<f32, 2, 4> {
    SMatrix::from_column_slice(&[-6.0, -2.5, -0.75, -0.125, 0.375, 1.5, 3.25, 8.0])
}

/// The relative tolerance of [`assert_f32_agrees_with_f64`].
const F32: Tol = Tol {
    rel: 1e-6,
    abs: 0.0,
};

mod identity {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        assert_forward(
            &Identity,
            [
                (-700.0, -700.0),
                (-1.5, -1.5),
                (0.0, 0.0),
                (0.25, 0.25),
                (700.0, 700.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_is_one() {
        assert_derivative(
            &Identity,
            [
                (-700.0, 1.0),
                (-1.5, 1.0),
                (0.0, 1.0),
                (0.25, 1.0),
                (700.0, 1.0),
            ],
            REL,
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&Identity, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Identity, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Identity, f32_inputs(), F32);
    }
}

mod sigmoid {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        assert_forward(
            &Sigmoid,
            [
                (-700.0, 9.8596765437597709e-305),
                (-30.0, 9.3576229688392990e-14),
                (-2.5, 0.075858180021243551),
                (-1.0, 0.26894142136999512),
                (0.0, 0.5),
                (0.5, 0.62245933120185456),
                (1.0, 0.73105857863000488),
                (2.5, 0.92414181997875645),
                (30.0, 0.99999999999990642),
                (700.0, 1.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_matches_closed_form() {
        assert_derivative(
            &Sigmoid,
            [
                (-700.0, 9.8596765437597709e-305),
                (-30.0, 9.3576229688384233e-14),
                (-2.5, 0.070103716545108157),
                (-1.0, 0.19661193324148185),
                (0.0, 0.25),
                (0.5, 0.23500371220159449),
                (1.0, 0.19661193324148185),
                (2.5, 0.070103716545108157),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_is_accurate_to_an_ulp_of_one_when_saturated() {
        // σ′ = y(1 − y) with y = σ(x) within an ulp of 1: only absolute accuracy.
        assert_derivative(
            &Sigmoid,
            [
                (30.0, 9.3576229688384233e-14),
                (700.0, 9.8596765437597709e-305),
            ],
            SATURATED,
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&Sigmoid, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Sigmoid, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Sigmoid, f32_inputs(), F32);
    }
}

mod tanh {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        assert_forward(
            &Tanh,
            [
                (-700.0, -1.0),
                (-30.0, -1.0),
                (-3.0, -0.99505475368673045),
                (-0.5, -0.46211715726000976),
                (0.0, 0.0),
                (0.25, 0.24491866240370913),
                (1.0, 0.76159415595576489),
                (3.0, 0.99505475368673045),
                (30.0, 1.0),
                (700.0, 1.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_matches_closed_form() {
        assert_derivative(
            &Tanh,
            [
                (-3.0, 0.0098660371654401913),
                (-0.5, 0.78644773296592741),
                (0.0, 1.0),
                (0.25, 0.94001484880637796),
                (1.0, 0.41997434161402607),
                (3.0, 0.0098660371654401913),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_is_accurate_to_an_ulp_of_one_when_saturated() {
        // tanh′ = 1 − y² with |y| within an ulp of 1: only absolute accuracy.
        assert_derivative(
            &Tanh,
            [
                (-700.0, 0.0),
                (-30.0, 3.5026043050786081e-26),
                (30.0, 3.5026043050786081e-26),
                (700.0, 0.0),
            ],
            SATURATED,
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&Tanh, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Tanh, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Tanh, f32_inputs(), F32);
    }
}

mod relu {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        assert_forward(
            &Relu,
            [
                (-700.0, 0.0),
                (-2.5, 0.0),
                (-1e-300, 0.0),
                (0.0, 0.0),
                (1e-300, 1e-300),
                (0.5, 0.5),
                (700.0, 700.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_is_step_with_zero_at_zero() {
        // 0 at x = 0, as PyTorch.
        assert_derivative(
            &Relu,
            [
                (-700.0, 0.0),
                (-2.5, 0.0),
                (-1e-300, 0.0),
                (0.0, 0.0),
                (1e-300, 1.0),
                (0.5, 1.0),
                (700.0, 1.0),
            ],
            REL,
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&Relu, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Relu, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Relu, f32_inputs(), F32);
    }
}

mod leaky_relu {
    use super::*;

    const STEEP: LeakyRelu = LeakyRelu { alpha: 0.2 };

    #[test]
    fn default_alpha_is_pytorchs() {
        assert_eq!(LeakyRelu::default(), LeakyRelu { alpha: 0.01 });
    }

    #[test]
    fn forward_matches_reference_with_default_alpha() {
        assert_forward(
            &LeakyRelu::default(),
            [
                (-700.0, -7.0),
                (-30.0, -0.3),
                (-2.0, -0.02),
                (-0.5, -0.005),
                (0.0, 0.0),
                (0.5, 0.5),
                (700.0, 700.0),
            ],
            REL,
        );
    }

    #[test]
    fn forward_matches_reference_with_alpha_0_2() {
        assert_forward(
            &STEEP,
            [
                (-700.0, -140.0),
                (-30.0, -6.0),
                (-2.0, -0.4),
                (-0.5, -0.1),
                (0.0, 0.0),
                (0.5, 0.5),
                (700.0, 700.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_is_alpha_or_one() {
        // α at x = 0, as PyTorch.
        let cases = |alpha| {
            [
                (-700.0, alpha),
                (-0.5, alpha),
                (0.0, alpha),
                (0.5, 1.0),
                (700.0, 1.0),
            ]
        };
        assert_derivative(&LeakyRelu::default(), cases(0.01), REL);
        assert_derivative(&STEEP, cases(0.2), REL);
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&LeakyRelu::default(), &smooth_batch());
        assert_gradcheck(&STEEP, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&LeakyRelu::default(), &smooth_batch(), &some_dy());
        assert_backward_accumulates(&STEEP, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&LeakyRelu::default(), f32_inputs(), F32);
        assert_f32_agrees_with_f64(&STEEP, f32_inputs(), F32);
    }
}

mod elu {
    use super::*;

    const HALF: Elu = Elu { alpha: 0.5 };

    #[test]
    fn default_alpha_is_one() {
        assert_eq!(Elu::default(), Elu { alpha: 1.0 });
    }

    #[test]
    fn forward_matches_reference_with_alpha_1() {
        assert_forward(
            &Elu::default(),
            [
                (-700.0, -1.0),
                (-30.0, -0.99999999999990642),
                (-2.0, -0.86466471676338731),
                (-0.5, -0.39346934028736658),
                (0.0, 0.0),
                (0.5, 0.5),
                (2.0, 2.0),
                (30.0, 30.0),
                (700.0, 700.0),
            ],
            REL,
        );
    }

    #[test]
    fn forward_matches_reference_with_alpha_0_5() {
        assert_forward(
            &HALF,
            [
                (-700.0, -0.5),
                (-30.0, -0.49999999999995321),
                (-2.0, -0.43233235838169365),
                (-0.5, -0.19673467014368329),
                (0.0, 0.0),
                (0.5, 0.5),
                (2.0, 2.0),
                (30.0, 30.0),
                (700.0, 700.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_matches_closed_form_with_alpha_1() {
        // α·eˣ for x ≤ 0 (α at 0, as PyTorch), 1 above.
        assert_derivative(
            &Elu::default(),
            [
                (-2.0, 0.13533528323661269),
                (-0.5, 0.60653065971263342),
                (0.0, 1.0),
                (0.5, 1.0),
                (2.0, 1.0),
                (30.0, 1.0),
                (700.0, 1.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_matches_closed_form_with_alpha_0_5() {
        assert_derivative(
            &HALF,
            [
                (-2.0, 0.067667641618306346),
                (-0.5, 0.30326532985631671),
                (0.0, 0.5),
                (0.5, 1.0),
                (2.0, 1.0),
                (30.0, 1.0),
                (700.0, 1.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_is_relatively_accurate_when_saturated() {
        // elu′ = α·eˣ from x: no cancellation (from y, as y + α with y within an ulp of −α,
        // it would be accurate only to an ulp of α, absolutely).
        assert_derivative(
            &Elu::default(),
            [
                (-30.0, 9.3576229688401746e-14),
                (-700.0, 9.8596765437597709e-305),
            ],
            REL,
        );
        assert_derivative(
            &HALF,
            [
                (-30.0, 4.6788114844200873e-14),
                (-700.0, 4.9298382718798854e-305),
            ],
            REL,
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&Elu::default(), &smooth_batch());
        assert_gradcheck(&HALF, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Elu::default(), &smooth_batch(), &some_dy());
        assert_backward_accumulates(&HALF, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Elu::default(), f32_inputs(), F32);
        assert_f32_agrees_with_f64(&HALF, f32_inputs(), F32);
    }
}

mod softplus {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        assert_forward(
            &Softplus,
            [
                (-700.0, 9.8596765437597709e-305),
                (-30.0, 9.3576229688397368e-14),
                (-2.0, 0.12692801104297250),
                (-0.5, 0.47407698418010668),
                (0.0, core::f64::consts::LN_2),
                (0.5, 0.97407698418010668),
                (2.0, 2.1269280110429725),
                (20.0, 20.000000002061154),
                (30.0, 30.000000000000094),
                (700.0, 700.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_is_sigmoid() {
        assert_derivative(
            &Softplus,
            [
                (-700.0, 9.8596765437597709e-305),
                (-30.0, 9.3576229688392990e-14),
                (-2.0, 0.11920292202211756),
                (-0.5, 0.37754066879814544),
                (0.0, 0.5),
                (0.5, 0.62245933120185456),
                (2.0, 0.88079707797788244),
                (20.0, 0.99999999793884638),
                (30.0, 0.99999999999990642),
                (700.0, 1.0),
            ],
            REL,
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&Softplus, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Softplus, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Softplus, f32_inputs(), F32);
    }
}

mod gelu {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        assert_forward(
            &Gelu,
            [
                (-1.0, -0.15880800939172330),
                (-0.5, -0.15428599017485608),
                (0.0, 0.0),
                (0.5, 0.34571400982514392),
                (1.0, 0.84119199060827670),
                (3.0, 2.9963626079182270),
                (5.0, 4.9999997708203803),
                (30.0, 30.0),
            ],
            REL,
        );
    }

    #[test]
    fn forward_is_accurate_to_an_ulp_of_x_for_negative_x() {
        // ½x(1 + tanh u) with tanh u near −1 (PyTorch's formula): 1 + tanh u cancels, so the
        // tiny negative tail is only accurate absolutely. gelu(−30) ≈ −9.6e-857 is −0 in f64.
        let tol = Tol {
            rel: 0.0,
            abs: 1e-15,
        };
        assert_forward(
            &Gelu,
            [
                (-30.0, -0.0),
                (-5.0, -2.2917961966295060e-7),
                (-3.0, -0.0036373920817730188),
            ],
            tol,
        );
    }

    #[test]
    fn derivative_matches_closed_form() {
        assert_derivative(
            &Gelu,
            [
                (-1.0, -0.082964083845782555),
                (-0.5, 0.13263009646535769),
                (0.0, 0.5),
                (0.5, 0.86736990353464231),
                (1.0, 1.0829640838457826),
                (3.0, 1.0115841666309697),
                (5.0, 1.0000015463619875),
                (30.0, 1.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_is_accurate_to_an_ulp_of_one_for_negative_x() {
        // Same cancellation in 1 + tanh u and 1 − tanh²u as in forward.
        assert_derivative(
            &Gelu,
            [
                (-30.0, 0.0),
                (-5.0, -1.5463619875325946e-6),
                (-3.0, -0.011584166630969726),
            ],
            SATURATED,
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&Gelu, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Gelu, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        // Not below −1.5: the cancellation in 1 + tanh u costs f32 its relative accuracy.
        let x = SMatrix::<f32, 2, 3>::from_column_slice(&[-1.5, -0.75, -0.125, 0.375, 3.25, 8.0]);
        assert_f32_agrees_with_f64(&Gelu, x, F32);
    }
}

mod silu {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        assert_forward(
            &Silu,
            [
                (-700.0, -6.9017735806318396e-302),
                (-30.0, -2.8072868906517897e-12),
                (-2.0, -0.23840584404423511),
                (-0.5, -0.18877033439907272),
                (0.0, 0.0),
                (0.5, 0.31122966560092728),
                (2.0, 1.7615941559557649),
                (30.0, 29.999999999997193),
                (700.0, 700.0),
            ],
            REL,
        );
    }

    #[test]
    fn derivative_matches_closed_form() {
        assert_derivative(
            &Silu,
            [
                (-700.0, -6.8919139040880798e-302),
                (-30.0, -2.7137106609631340e-12),
                (-2.0, -0.090784248784895479),
                (-0.5, 0.26003881269734819),
                (0.0, 0.5),
                (0.5, 0.73996118730265181),
                (2.0, 1.0907842487848955),
                (30.0, 1.0000000000027137),
                (700.0, 1.0),
            ],
            REL,
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&Silu, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Silu, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Silu, f32_inputs(), F32);
    }
}

/// Inputs and values shared by `sign` and `sign_ste`.
const SIGN_CASES: [(f64, f64); 9] = [
    (-700.0, -1.0),
    (-1.5, -1.0),
    (-1.0, -1.0),
    (-1e-300, -1.0),
    (0.0, 0.0),
    (1e-300, 1.0),
    (1.0, 1.0),
    (1.5, 1.0),
    (700.0, 1.0),
];

/// Inputs and values shared by `heaviside` and `heaviside_ste`: 1 from 0 on.
const HEAVISIDE_CASES: [(f64, f64); 9] = [
    (-700.0, 0.0),
    (-1.5, 0.0),
    (-1.0, 0.0),
    (-1e-300, 0.0),
    (0.0, 1.0),
    (1e-300, 1.0),
    (1.0, 1.0),
    (1.5, 1.0),
    (700.0, 1.0),
];

/// `(x, 0)` for every input of `cases`.
fn zero_derivative<const K: usize>(cases: [(f64, f64); K]) -> [(f64, f64); K] {
    cases.map(|(x, _)| (x, 0.0))
}

/// `(x, ste)` for every input of `cases`, `ste` on `|x| ≤ 1` and 0 outside.
fn straight_through<const K: usize>(cases: [(f64, f64); K], ste: f64) -> [(f64, f64); K] {
    cases.map(|(x, _)| (x, if x.abs() <= 1.0 { ste } else { 0.0 }))
}

mod sign {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        assert_forward(&Sign, SIGN_CASES, REL);
    }

    #[test]
    fn derivative_is_zero_everywhere() {
        assert_derivative(&Sign, zero_derivative(SIGN_CASES), REL);
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Away from 0 the step is flat: both sides are exactly 0.
        let report = assert_gradcheck(&Sign, &smooth_batch());
        assert_eq!(report.max_rel_error, 0.0);
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Sign, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Sign, f32_inputs(), F32);
    }
}

mod heaviside {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        assert_forward(&Heaviside, HEAVISIDE_CASES, REL);
    }

    #[test]
    fn derivative_is_zero_everywhere() {
        assert_derivative(&Heaviside, zero_derivative(HEAVISIDE_CASES), REL);
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Away from 0 the step is flat: both sides are exactly 0.
        let report = assert_gradcheck(&Heaviside, &smooth_batch());
        assert_eq!(report.max_rel_error, 0.0);
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&Heaviside, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Heaviside, f32_inputs(), F32);
    }
}

// The straight-through estimators are not checked against finite differences: their
// backward is a deliberate surrogate (the gradient of hardtanh, or of clamp((x + 1)/2, 0, 1)),
// not the derivative of their forward, which is 0 almost everywhere. Their backward is
// instead checked against the documented surrogate, with a non-constant `dy`.

mod sign_ste {
    use super::*;

    #[test]
    fn forward_is_sign() {
        assert_forward(&SignSte, SIGN_CASES, REL);
    }

    #[test]
    fn derivative_is_one_on_the_unit_interval_and_zero_outside() {
        assert_derivative(&SignSte, straight_through(SIGN_CASES, 1.0), REL);
    }

    #[test]
    fn backward_is_the_hardtanh_surrogate() {
        let x = smooth_batch();
        let dy = some_dy();
        let expected = x.zip_map(&dy, |x, dy| if x.abs() <= 1.0 { dy } else { 0.0 });
        assert_eq!(backward(&SignSte, &x, &dy), expected);
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&SignSte, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&SignSte, f32_inputs(), F32);
    }
}

mod heaviside_ste {
    use super::*;

    #[test]
    fn forward_is_heaviside() {
        assert_forward(&HeavisideSte, HEAVISIDE_CASES, REL);
    }

    #[test]
    fn derivative_is_one_half_on_the_unit_interval_and_zero_outside() {
        assert_derivative(&HeavisideSte, straight_through(HEAVISIDE_CASES, 0.5), REL);
    }

    #[test]
    fn backward_is_the_clamp_surrogate() {
        let x = smooth_batch();
        let dy = some_dy();
        let expected = x.zip_map(&dy, |x, dy| if x.abs() <= 1.0 { 0.5 * dy } else { 0.0 });
        assert_eq!(backward(&HeavisideSte, &x, &dy), expected);
    }

    #[test]
    fn backward_accumulates() {
        assert_backward_accumulates(&HeavisideSte, &smooth_batch(), &some_dy());
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&HeavisideSte, f32_inputs(), F32);
    }
}

/// Softmax test inputs, one sample per column: moderate, huge equal maxima, huge negative,
/// ±700, ±20 and ±1e16 logits.
fn softmax_inputs() -> SMatrix<f64, 3, 6> {
    SMatrix::from_column_slice(&[
        1.0, 2.0, 3.0, //
        1000.0, 1000.0, 0.0, //
        -1000.0, -1000.0, -2000.0, //
        -700.0, 0.0, 700.0, //
        -20.0, 0.0, 20.0, //
        1e16, 1e16, 0.0,
    ])
}

/// Three samples of 4 logits, and the gradient on them, for the Jacobian tests.
fn jacobian_inputs() -> (SMatrix<f64, 4, 3>, SMatrix<f64, 4, 3>) {
    let x = SMatrix::from_column_slice(&[
        0.3, -1.2, 2.5, 0.0, //
        -4.0, 1.0, 1.5, -0.5, //
        10.0, 9.0, -3.0, 11.0,
    ]);
    let dy = SMatrix::from_column_slice(&[
        1.0, -0.5, 0.25, 2.0, //
        -1.5, 0.0, 0.75, 0.1, //
        0.6, 0.6, -2.0, 0.3,
    ]);
    (x, dy)
}

/// `f32` inputs for softmax and log-softmax, including huge logits.
fn softmax_f32_inputs() -> SMatrix<f32, 3, 4> {
    SMatrix::from_column_slice(&[
        1.0, 2.0, 3.0, //
        1000.0, 1000.0, 0.0, //
        -20.0, 0.0, 20.0, //
        -0.25, 0.5, -1.75,
    ])
}

mod softmax {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        let expected = SMatrix::<f64, 3, 6>::from_column_slice(&[
            0.090030573170380458,
            0.24472847105479765,
            0.66524095577482189,
            // e⁻¹⁰⁰⁰/2 ≈ 2.5e-435 underflows.
            0.5,
            0.5,
            0.0,
            0.5,
            0.5,
            0.0,
            // e⁻¹⁴⁰⁰ ≈ 9.7e-609 underflows.
            0.0,
            9.8596765437597709e-305,
            1.0,
            4.2483542465350782e-18,
            2.0611536181902036e-9,
            0.99999999793884638,
            0.5,
            0.5,
            0.0,
        ]);
        let y = forward(&Softmax, &softmax_inputs());
        assert!(y.iter().all(|y| y.is_finite()), "{y}");
        assert_all_close(&y, &expected, REL, &"softmax");
    }

    #[test]
    fn columns_sum_to_one() {
        let x = softmax_inputs();
        let y = forward(&Softmax, &x);
        for (j, column) in y.column_iter().enumerate() {
            let sum = column.sum();
            assert!((sum - 1.0).abs() <= 4.0 * f64::EPSILON, "column {j}: {sum}");
        }
    }

    #[test]
    fn backward_with_one_hot_dy_gives_the_jacobian() {
        // dy = e_k in sample k, so dx in sample k is column k of J = diag(y) − y·yᵀ.
        let x = SMatrix::<f64, 3, 3>::from_fn(|i, _| (i + 1) as f64);
        let expected = SMatrix::<f64, 3, 3>::new(
            0.081925069064993228,
            -0.022033044520174296,
            -0.059892024544818932,
            -0.022033044520174296,
            0.18483644650997872,
            -0.16280340198980442,
            -0.059892024544818932,
            -0.16280340198980442,
            0.22269542653462336,
        );
        let dx = backward(&Softmax, &x, &SMatrix::identity());
        assert_all_close(&dx, &expected, REL, &"softmax′");
    }

    #[test]
    fn backward_equals_explicit_jacobian_product() {
        let (x, dy) = jacobian_inputs();
        let y = forward(&Softmax, &x);
        let dx = backward(&Softmax, &x, &dy);
        for j in 0..3 {
            let y = y.column(j);
            // J_ik = ∂y_i/∂x_k = y_i(δ_ik − y_k).
            let jacobian = SMatrix::<f64, 4, 4>::from_diagonal(&y) - y * y.transpose();
            let expected = jacobian.transpose() * dy.column(j);
            let tol = Tol {
                rel: 1e-14,
                abs: 1e-15,
            };
            assert_all_close(&dx.column(j).into(), &expected, tol, &"Jᵀ·dy");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&Softmax, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        let (x, dy) = jacobian_inputs();
        assert_backward_accumulates(&Softmax, &x, &dy);
    }

    #[test]
    fn f32_agrees_with_f64() {
        assert_f32_agrees_with_f64(&Softmax, softmax_f32_inputs(), F32);
    }
}

mod log_softmax {
    use super::*;

    #[test]
    fn forward_matches_reference() {
        let ln_half = -core::f64::consts::LN_2;
        let expected = SMatrix::<f64, 3, 6>::from_column_slice(&[
            -2.4076059644443803,
            -1.4076059644443803,
            -0.40760596444438030,
            ln_half,
            ln_half,
            -1000.6931471805599,
            ln_half,
            ln_half,
            -1000.6931471805599,
            -1400.0,
            -700.0,
            -9.8596765437597709e-305,
            -40.000000002061154,
            -20.000000002061154,
            -2.0611536245627349e-9,
            ln_half,
            ln_half,
            // −1e16 − ln 2 rounds to −1e16.
            -1e16,
        ]);
        let y = forward(&LogSoftmax, &softmax_inputs());
        assert!(y.iter().all(|y| y.is_finite()), "{y}");
        assert_all_close(&y, &expected, LOG_PROB, &"log_softmax");
    }

    #[test]
    fn exp_of_output_is_softmax() {
        let x = softmax_inputs();
        let p = forward(&LogSoftmax, &x).map(nalgebra::ComplexField::exp);
        assert_all_close(&p, &forward(&Softmax, &x), REL, &"exp(log_softmax)");
    }

    #[test]
    fn backward_with_one_hot_dy_gives_the_jacobian() {
        // dy = e_k in sample k, so dx in sample k is e_k − softmax(x) (row k of
        // J = I − 1·softmaxᵀ).
        let x = SMatrix::<f64, 3, 3>::from_fn(|i, _| (i + 1) as f64);
        let expected = SMatrix::<f64, 3, 3>::new(
            0.90996942682961954,
            -0.090030573170380458,
            -0.090030573170380458,
            -0.24472847105479765,
            0.75527152894520235,
            -0.24472847105479765,
            -0.66524095577482189,
            -0.66524095577482189,
            0.33475904422517811,
        );
        let dx = backward(&LogSoftmax, &x, &SMatrix::identity());
        assert_all_close(&dx, &expected, REL, &"log_softmax′");
    }

    #[test]
    fn backward_equals_explicit_jacobian_product() {
        let (x, dy) = jacobian_inputs();
        let s = forward(&Softmax, &x);
        let dx = backward(&LogSoftmax, &x, &dy);
        for j in 0..3 {
            // J_ik = ∂y_i/∂x_k = δ_ik − s_k, i.e. J = I − 1·sᵀ.
            let jacobian =
                SMatrix::<f64, 4, 4>::from_fn(|i, k| f64::from(u8::from(i == k)) - s[(k, j)]);
            let expected = jacobian.transpose() * dy.column(j);
            let tol = Tol {
                rel: 1e-14,
                abs: 1e-15,
            };
            assert_all_close(&dx.column(j).into(), &expected, tol, &"Jᵀ·dy");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        assert_gradcheck(&LogSoftmax, &smooth_batch());
    }

    #[test]
    fn backward_accumulates() {
        let (x, dy) = jacobian_inputs();
        assert_backward_accumulates(&LogSoftmax, &x, &dy);
    }

    #[test]
    fn f32_agrees_with_f64() {
        let tol = Tol {
            rel: 1e-6,
            abs: 1e-6,
        };
        assert_f32_agrees_with_f64(&LogSoftmax, softmax_f32_inputs(), tol);
    }
}

/// What each backward pass reads ([`Activation::READS`]), and that from that value it gives
/// what the backward pass given both `x` and `y` gave before. Every test above runs backward
/// with the declared value (and NaN for [`Reads::Nothing`]), so the reference derivatives,
/// the finite differences and the Jacobians check the declarations too.
mod reads {
    use super::*;

    fn reads<A: Activation<f64>>(_: &A) -> Reads {
        A::READS
    }

    #[test]
    fn declarations_follow_the_design() {
        // The derivative as a function of y where there is one; constants read nothing.
        for (name, declared, expected) in [
            ("identity", reads(&Identity), Reads::Nothing),
            ("sign", reads(&Sign), Reads::Nothing),
            ("heaviside", reads(&Heaviside), Reads::Nothing),
            ("relu", reads(&Relu), Reads::Output),
            ("sigmoid", reads(&Sigmoid), Reads::Output),
            ("tanh", reads(&Tanh), Reads::Output),
            ("tanh_fast", reads(&TanhFast), Reads::Output),
            ("sigmoid_fast", reads(&SigmoidFast), Reads::Output),
            ("softmax", reads(&Softmax), Reads::Output),
            ("log_softmax", reads(&LogSoftmax), Reads::Output),
            ("leaky_relu", reads(&LeakyRelu::default()), Reads::Input),
            ("elu", reads(&Elu::default()), Reads::Input),
            ("softplus", reads(&Softplus), Reads::Input),
            ("gelu", reads(&Gelu), Reads::Input),
            ("silu", reads(&Silu), Reads::Input),
            ("sign_ste", reads(&SignSte), Reads::Input),
            ("heaviside_ste", reads(&HeavisideSte), Reads::Input),
        ] {
            assert_eq!(declared, expected, "{name}");
        }
    }

    /// Given the other value, backward gives another gradient: the tests run with the
    /// declared one would catch a wrong declaration. (Not ReLU and leaky ReLU, whose
    /// derivatives are the same function of `x` and of `y`.)
    #[test]
    fn the_other_value_gives_another_gradient() {
        fn differs<A: Activation<f64>>(activation: &A, name: &str) {
            let x = smooth_batch();
            let (y, dy) = (forward(activation, &x), some_dy());
            let (declared, other) = match A::READS {
                Reads::Input => (&x, &y),
                Reads::Output => (&y, &x),
                Reads::Nothing => unreachable!("{name} reads a value"),
            };
            let (mut right, mut wrong) = (SMatrix::ZERO, SMatrix::ZERO);
            activation.backward(declared, &dy, &mut right);
            activation.backward(other, &dy, &mut wrong);
            assert_ne!(right, wrong, "{name}");
        }
        differs(&Sigmoid, "sigmoid");
        differs(&Tanh, "tanh");
        differs(&TanhFast, "tanh_fast");
        differs(&SigmoidFast, "sigmoid_fast");
        differs(&Softmax, "softmax");
        differs(&LogSoftmax, "log_softmax");
        differs(&Elu::default(), "elu");
        differs(&Softplus, "softplus");
        differs(&Gelu, "gelu");
        differs(&Silu, "silu");
        differs(&SignSte, "sign_ste");
        differs(&HeavisideSte, "heaviside_ste");
    }

    /// ReLU differentiates from its output: `y > 0` exactly where `x > 0`, so from `y` it
    /// gives bit for bit what it gave from `x`, at ±0, subnormals, infinities and NaN too.
    #[test]
    fn relu_from_output_equals_relu_from_input() {
        let x = SMatrix::<f64, 1, 12>::from_row_slice(&[
            f64::NEG_INFINITY,
            -700.0,
            -1e-310,
            -0.0,
            0.0,
            5e-324,
            1e-310,
            0.5,
            700.0,
            f64::INFINITY,
            f64::NAN,
            -f64::NAN,
        ]);
        let y = forward(&Relu, &x);
        let dy = SMatrix::from_fn(|_, j| j as f64 - 5.25);
        let (mut from_y, mut from_x) = (SMatrix::ZERO, SMatrix::ZERO);
        Relu.backward(&y, &dy, &mut from_y);
        Relu.backward(&x, &dy, &mut from_x);
        let bits = |m: &SMatrix<f64, 1, 12>| m.map(f64::to_bits);
        assert_eq!(bits(&from_y), bits(&from_x));
        let expected = x.zip_map(&dy, |x, dy| if x > 0.0 { dy } else { 0.0 });
        assert_eq!(from_y, expected);
    }

    /// ELU differentiates from `x` (`α·eˣ` for `x ≤ 0`); from `y` it was `y + α`, the same
    /// number up to the rounding of `y`, an ulp of `α`.
    #[test]
    fn elu_from_input_agrees_with_its_former_derivative_from_output() {
        let x = SMatrix::<f64, 6, 4>::from_fn(|i, j| (i as f64 - 4.0) * 1.7 + j as f64 * 0.3);
        for alpha in [1.0, 0.5, 2.0] {
            let elu = Elu { alpha };
            let y = forward(&elu, &x);
            let former = x.zip_map(&y, |x, y| if x > 0.0 { 1.0 } else { y + alpha });
            let tol = Tol {
                rel: 0.0,
                abs: alpha * f64::EPSILON,
            };
            let derivative = backward(&elu, &x, &SMatrix::repeat(1.0));
            assert_all_close(
                &derivative,
                &former,
                tol,
                &format_args!("elu′, α = {alpha}"),
            );
        }
    }

    /// Identity, sign and the step have constant derivatives: whatever the value (NaN, ∞),
    /// backward adds `dy` (identity) or nothing.
    #[test]
    fn constant_derivatives_read_no_value() {
        let dy = some_dy();
        for value in [
            SMatrix::repeat(f64::NAN),
            SMatrix::repeat(f64::INFINITY),
            smooth_batch(),
        ] {
            let (mut identity, mut sign, mut step) = (SMatrix::ZERO, SMatrix::ZERO, SMatrix::ZERO);
            Identity.backward(&value, &dy, &mut identity);
            Sign.backward(&value, &dy, &mut sign);
            Heaviside.backward(&value, &dy, &mut step);
            assert_eq!(identity, dy);
            assert_eq!(sign, SMatrix::<f64, 5, 3>::ZERO);
            assert_eq!(step, SMatrix::<f64, 5, 3>::ZERO);
        }
    }
}
