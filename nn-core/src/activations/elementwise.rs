//! Element-wise activations: `y_i = f(x_i)`, `∂L/∂x_i = f′(x_i)·∂L/∂y_i`.

use super::{Activation, Reads};
use crate::Real;
use nalgebra::SMatrix;

/// A scalar function applied to every element, with its derivative.
///
/// Every element-wise activation of this module implements it, and [`Activation`] through it.
pub trait Elementwise<T: Real> {
    /// Whether [`derivative`](Self::derivative) takes `x` or `y` (or neither).
    const READS: Reads;
    /// `f(x)`.
    fn value(&self, x: T) -> T;
    /// `f′(x)`, given `x` or `y = f(x)` as [`READS`](Self::READS) says (many derivatives
    /// are cheapest from `y`, and then the tape need not keep `x`).
    fn derivative(&self, value: T) -> T;

    /// `y[i] = f(x[i])` over a layer's values (what [`Activation::forward`] runs): the
    /// elements in turn unless the function has a faster way with the same results.
    ///
    /// # Panics
    /// If the slices' lengths differ.
    #[inline]
    fn values(&self, x: &[T], y: &mut [T]) {
        assert_eq!(
            x.len(),
            y.len(),
            "Elementwise::values: slices of different lengths"
        );
        for (y, &x) in y.iter_mut().zip(x) {
            *y = self.value(x);
        }
    }
}

/// `dx[i] = combine(dx[i], f′(value[i])·dy[i])` over a layer: the two backward passes of an
/// element-wise activation (adding, or overwriting), split over a pool's threads when large
/// (`crate::parallel`; each element alone: the same bits).
#[inline(always)]
fn chain_rule<T: Real, A: Elementwise<T> + Sync, const N: usize, const B: usize>(
    activation: &A,
    value: &SMatrix<T, N, B>,
    dy: &SMatrix<T, N, B>,
    dx: &mut SMatrix<T, N, B>,
    combine: impl Fn(T, T) -> T + Sync,
) {
    crate::parallel::elementwise(
        [dx.as_mut_slice()],
        [value.as_slice(), dy.as_slice()],
        |[dx], [value, dy]| {
            for (dx, (&value, &dy)) in dx.iter_mut().zip(value.iter().zip(dy)) {
                *dx = combine(*dx, activation.derivative(value) * dy);
            }
        },
    );
}

macro_rules! elementwise_activation {
    ($($ty:ty),+ $(,)?) => {$(
        impl<T: Real> Activation<T> for $ty {
            const READS: Reads = <Self as Elementwise<T>>::READS;

            // Always inlined, as a dense layer's passes: in the passes a small network compiles
            // for AVX-512 or AVX2, the layer's loop (or the exact tanh's and sigmoid's copy for
            // those features) is then inlined with its length known, not called.
            #[inline(always)]
            fn forward<const N: usize, const B: usize>(
                &self,
                x: &SMatrix<T, N, B>,
                y: &mut SMatrix<T, N, B>,
            ) {
                // Over the contiguous slices: the compiler vectorises these loops, not
                // nalgebra's strided iterators. Split over a pool's threads when large
                // (`crate::parallel`; each element alone: the same bits).
                crate::parallel::elementwise([y.as_mut_slice()], [x.as_slice()], |[y], [x]| {
                    self.values(x, y)
                });
            }

            #[inline]
            fn backward<const N: usize, const B: usize>(
                &self,
                value: &SMatrix<T, N, B>,
                dy: &SMatrix<T, N, B>,
                dx: &mut SMatrix<T, N, B>,
            ) {
                chain_rule(self, value, dy, dx, |dx, term| dx + term);
            }

            #[inline]
            fn backward_overwrite<const N: usize, const B: usize>(
                &self,
                value: &SMatrix<T, N, B>,
                dy: &SMatrix<T, N, B>,
                dx: &mut SMatrix<T, N, B>,
            ) {
                // `0 +`: the bits of `backward` on a zero `dx` (−0 gives +0).
                chain_rule(self, value, dy, dx, |_, term| T::ZERO + term);
            }
        }
    )+};
}

elementwise_activation!(
    Identity,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu,
    Elu,
    Softplus,
    Gelu,
    Silu,
    Sign,
    Heaviside,
    SignSte,
    HeavisideSte,
);

/// `f(x) = x`, `f′(x) = 1`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Identity;

impl<T: Real> Elementwise<T> for Identity {
    const READS: Reads = Reads::Nothing;

    #[inline]
    fn value(&self, x: T) -> T {
        x
    }
    #[inline]
    fn derivative(&self, _: T) -> T {
        T::ONE
    }
}

/// Logistic sigmoid `σ(x) = 1/(1 + e⁻ˣ)`, `σ′(x) = σ(x)(1 − σ(x))`.
///
/// [`Real::sigmoid_accurate`]: in `f32` within one ulp of the correctly rounded value and
/// vectorised over a layer; in `f64` as `eˣ/(1 + eˣ)` for negative `x`, so no intermediate
/// overflows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sigmoid;

/// `σ(x)`, stable for large `|x|` ([`Real::sigmoid_accurate`]).
#[inline(always)]
pub(crate) fn sigmoid<T: Real>(x: T) -> T {
    x.sigmoid_accurate()
}

impl<T: Real> Elementwise<T> for Sigmoid {
    const READS: Reads = Reads::Output;

    #[inline]
    fn value(&self, x: T) -> T {
        sigmoid(x)
    }
    #[inline]
    fn derivative(&self, y: T) -> T {
        y * (T::ONE - y)
    }
    #[inline]
    fn values(&self, x: &[T], y: &mut [T]) {
        T::sigmoid_accurate_slice(x, y)
    }
}

/// Hyperbolic tangent, `tanh′(x) = 1 − tanh²(x)`.
///
/// [`Real::tanh_accurate`]: in `f32` within one ulp of the correctly rounded value and
/// vectorised over a layer; in `f64` libm's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tanh;

impl<T: Real> Elementwise<T> for Tanh {
    const READS: Reads = Reads::Output;

    #[inline(always)]
    fn value(&self, x: T) -> T {
        x.tanh_accurate()
    }
    #[inline]
    fn derivative(&self, y: T) -> T {
        T::ONE - y * y
    }
    #[inline]
    fn values(&self, x: &[T], y: &mut [T]) {
        T::tanh_accurate_slice(x, y)
    }
}

/// Rectified linear unit `max(x, 0)`; its derivative is 1 for `x > 0` and 0 otherwise
/// (0 at `x = 0`, as PyTorch).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Relu;

impl<T: Real> Elementwise<T> for Relu {
    const READS: Reads = Reads::Output;

    #[inline]
    fn value(&self, x: T) -> T {
        // Written so that NaN propagates, as in PyTorch.
        if x <= T::ZERO { T::ZERO } else { x }
    }
    /// From `y`: `y > 0` exactly where `x > 0` (and a NaN `x` gives a NaN `y`: 0 either way).
    #[inline]
    fn derivative(&self, y: T) -> T {
        if y > T::ZERO { T::ONE } else { T::ZERO }
    }
}

/// Leaky ReLU: `x` for `x > 0`, `α·x` otherwise (PyTorch's default `α = 0.01`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyRelu {
    /// Slope for negative inputs.
    pub alpha: f64,
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu { alpha: 0.01 }
    }
}

impl<T: Real> Elementwise<T> for LeakyRelu {
    const READS: Reads = Reads::Input;

    #[inline]
    fn value(&self, x: T) -> T {
        if x > T::ZERO {
            x
        } else {
            T::of(self.alpha) * x
        }
    }
    #[inline]
    fn derivative(&self, x: T) -> T {
        if x > T::ZERO {
            T::ONE
        } else {
            T::of(self.alpha)
        }
    }
}

/// Exponential linear unit: `x` for `x > 0`, `α(eˣ − 1)` otherwise (default `α = 1`);
/// derivative `1`, or `α·eˣ` for `x ≤ 0` (from `x`: for a negative `α` the output's sign
/// would not tell the two branches apart).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Elu {
    /// Scale of the negative part.
    pub alpha: f64,
}

impl Default for Elu {
    fn default() -> Self {
        Elu { alpha: 1.0 }
    }
}

impl<T: Real> Elementwise<T> for Elu {
    const READS: Reads = Reads::Input;

    #[inline]
    fn value(&self, x: T) -> T {
        if x > T::ZERO {
            x
        } else {
            T::of(self.alpha) * x.exp_m1()
        }
    }
    #[inline]
    fn derivative(&self, x: T) -> T {
        if x > T::ZERO {
            T::ONE
        } else {
            T::of(self.alpha) * x.exp()
        }
    }
}

/// `softplus(x) = ln(1 + eˣ)`, computed as `max(x, 0) + ln(1 + e^−|x|)`; derivative `σ(x)`.
///
/// Exact for all `x`. PyTorch returns `x` itself above a threshold of 20, which differs from
/// the exact value by at most `ln(1 + e⁻²⁰) ≈ 2.1e-9` (below `f32` resolution there).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Softplus;

impl<T: Real> Elementwise<T> for Softplus {
    const READS: Reads = Reads::Input;

    #[inline]
    fn value(&self, x: T) -> T {
        x.max(T::ZERO) + (-x.abs()).exp().ln_1p()
    }
    #[inline]
    fn derivative(&self, x: T) -> T {
        sigmoid(x)
    }
}

/// GELU, tanh form (PyTorch's `gelu(approximate="tanh")`):
/// `½x(1 + tanh(u))`, `u = √(2/π)(x + 0.044715x³)`;
/// derivative `½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gelu;

const GELU_C: f64 = 0.044_715;
/// `√(2/π)`.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

impl<T: Real> Elementwise<T> for Gelu {
    const READS: Reads = Reads::Input;

    #[inline]
    fn value(&self, x: T) -> T {
        let u = T::of(SQRT_2_OVER_PI) * (x + T::of(GELU_C) * x * x * x);
        T::of(0.5) * x * (T::ONE + u.tanh_accurate())
    }
    #[inline]
    fn derivative(&self, x: T) -> T {
        let k = T::of(SQRT_2_OVER_PI);
        let c = T::of(GELU_C);
        let t = (k * (x + c * x * x * x)).tanh_accurate();
        let du = k * (T::ONE + T::of(3.0) * c * x * x);
        T::of(0.5) * (T::ONE + t) + T::of(0.5) * x * (T::ONE - t * t) * du
    }
}

/// SiLU, also called swish: `x·σ(x)`, derivative `σ(x)(1 + x(1 − σ(x)))`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Silu;

impl<T: Real> Elementwise<T> for Silu {
    const READS: Reads = Reads::Input;

    #[inline]
    fn value(&self, x: T) -> T {
        x * sigmoid(x)
    }
    #[inline]
    fn derivative(&self, x: T) -> T {
        let s = sigmoid(x);
        s * (T::ONE + x * (T::ONE - s))
    }
}

/// `sign(x)`: −1, 0 or 1 (0 at 0, as `torch.sign`).
///
/// Its derivative is **zero almost everywhere** (undefined at 0, taken as 0), so no gradient
/// flows through it: a network trained by gradient descent learns nothing below a `sign`.
/// Binarised networks use [`SignSte`] instead.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sign;

#[inline]
fn sign<T: Real>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        -T::ONE
    } else {
        x // ±0, or NaN as `torch.sign`
    }
}

impl<T: Real> Elementwise<T> for Sign {
    const READS: Reads = Reads::Nothing;

    #[inline]
    fn value(&self, x: T) -> T {
        sign(x)
    }
    #[inline]
    fn derivative(&self, _: T) -> T {
        T::ZERO
    }
}

/// Heaviside step, the hard threshold: 1 for `x ≥ 0`, 0 otherwise.
///
/// Its derivative is **zero almost everywhere** (undefined at 0, taken as 0), so no gradient
/// flows through it. Use [`HeavisideSte`] to train through a threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Heaviside;

#[inline]
fn heaviside<T: Real>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        T::ZERO
    } else {
        x // NaN
    }
}

impl<T: Real> Elementwise<T> for Heaviside {
    const READS: Reads = Reads::Nothing;

    #[inline]
    fn value(&self, x: T) -> T {
        heaviside(x)
    }
    #[inline]
    fn derivative(&self, _: T) -> T {
        T::ZERO
    }
}

/// `sign(x)` forward with the straight-through estimator backward used by binarised
/// networks (Courbariaux et al., BinaryNet): the gradient of `hardtanh`, 1 for `|x| ≤ 1`
/// and 0 outside. Not the derivative of `sign`: a deliberate surrogate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SignSte;

impl<T: Real> Elementwise<T> for SignSte {
    const READS: Reads = Reads::Input;

    #[inline]
    fn value(&self, x: T) -> T {
        sign(x)
    }
    #[inline]
    fn derivative(&self, x: T) -> T {
        if x.abs() <= T::ONE { T::ONE } else { T::ZERO }
    }
}

/// Heaviside step forward with a straight-through estimator backward: the gradient of
/// `clamp((x + 1)/2, 0, 1)`, i.e. ½ for `|x| ≤ 1` and 0 outside (the step is `(sign + 1)/2`,
/// so this is half of [`SignSte`]'s surrogate). Not the derivative of the step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeavisideSte;

impl<T: Real> Elementwise<T> for HeavisideSte {
    const READS: Reads = Reads::Input;

    #[inline]
    fn value(&self, x: T) -> T {
        heaviside(x)
    }
    #[inline]
    fn derivative(&self, x: T) -> T {
        if x.abs() <= T::ONE {
            T::of(0.5)
        } else {
            T::ZERO
        }
    }
}
