//! Quantization-aware training (QAT): layers that simulate int8 in the `f32` training pass,
//! so that the network learns weights that survive quantization.
//!
//! - [`FakeQuant`]: after each node the int8 network quantizes (the input, each layer's
//!   output after its ReLU), `fq(x) = S · (clamp(round(x / S) + Z, −128, 127) − Z)`, per
//!   tensor, `S` and `Z` from a range observed as exponential moving averages of each training
//!   batch's min and max (PyTorch's `MovingAverageMinMaxObserver`, averaging constant 0.01),
//!   kept in the layer's state; backward is the straight-through estimator masked where the
//!   value was clamped (PyTorch's `fake_quantize_per_tensor_affine`).
//! - [`QatDense`]: a [`Dense`] whose weights are fake-quantized per output channel,
//!   symmetric, exactly as [`DenseQ8::quantize`](super::DenseQ8::quantize) will quantize them
//!   (`S_w[c] = max_k |W[c, k]| / 127`, recomputed from the weights at each pass); the bias
//!   stays real. Backward: the gradients of a `Dense` with the fake-quantized weights, the
//!   weight gradient passed straight through to the real weights (no weight is ever clamped:
//!   the largest of each row maps to ±127).
//! - [`QatConv2d`](super::QatConv2d): the same for a [`Conv2d`](crate::layers::Conv2d), its
//!   `CO` kernels fake-quantized as [`Conv2dQ8::quantize`](super::Conv2dQ8::quantize) will
//!   quantize them, the passes `Conv2d`'s (im2col and the matrix kernels) with `fq(W)`. In
//!   `network!` it is a built-in layer with `Conv2d`'s arguments (`QatConv2d<16, 3, padding =
//!   1>`): its scratch memory, which a user's layer cannot have, holds the im2col tile and, in
//!   inference, `fq(W)`.
//!
//! A QAT network is the `f32` network with `QatDense` for `Dense`, `QatConv2d` for `Conv2d` and
//! a `FakeQuant` after the input and after each layer (after its ReLU; max pooling and
//! flattening keep the int8 values, so none is needed after them):
//!
//! ```text
//! input: [1, 8, 8],
//! input_fq: FakeQuant<T, 64> -> [1, 8, 8],
//! conv1: QatConv2d<16, 3, padding = 1>, Relu,
//! conv1_fq: FakeQuant<T, 1024> -> [16, 8, 8],
//! pool1: MaxPool2d<2>,
//! Flatten,
//! fc: QatDense<T, 256, 10> -> [10],
//! fc_fq: FakeQuant<T, 10> -> [10],
//! ```
//!
//! After training, [`QatDense::to_dense`] and [`QatConv2d::to_conv`](super::QatConv2d::to_conv)
//! give the weights and [`FakeQuantState::range`] each node's range for the int8 network's
//! `quantize` (`NetQ8::quantize(&net, &ranges)`), which then holds exactly the integers
//! training used (`tests/int8_digits.rs`, `tests/int8_digits_cnn.rs`).

use super::dense::{quantize_weight, weight_scale};
use super::{QuantParams, Range};
use crate::layers::Dense;
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable, kernels};
use core::marker::PhantomData;
use nalgebra::SMatrix;

/// The averaging constant of the observed range (PyTorch's `MovingAverageMinMaxObserver`
/// default): each training batch moves the min and the max 1% of the way to its own.
pub const AVERAGING_CONSTANT: f64 = 0.01;

/// `fq(x)` with `params`, and whether `round(x / S) + Z` was within `[−128, 127]` (the
/// straight-through gradient is 1 there, 0 where it was clamped). The rounding is
/// [`QuantParams::quantize`]'s (half away from zero, in `T`): for `f32` the int8 network's
/// input quantization exactly.
#[inline]
pub fn fake_quantize<T: Real>(x: T, params: QuantParams) -> (T, bool) {
    let scale = T::of(params.scale as f64);
    let zero_point = T::of(params.zero_point as f64);
    let q = (x / scale).round() + zero_point;
    let (lo, hi) = (T::of(-128.0), T::of(127.0));
    let inside = q >= lo && q <= hi;
    let clamped = if q < lo {
        lo
    } else if q > hi {
        hi
    } else {
        q
    };
    ((clamped - zero_point) * scale, inside)
}

/// Fake quantization of a node of `N` values, per tensor (see the [module](self)): training
/// observes each batch's range into the [`FakeQuantState`] and quantizes with it; inference
/// quantizes with the state's range, and passes values through unchanged before any training
/// pass observed one. No parameters (`Params::LEN = 0`).
///
/// The training pass mixes the samples (the batch's min and max), so it is a layer with
/// [`BATCH_STATISTICS`](Layer::BATCH_STATISTICS): the trainer skips partial batches.
#[derive(Clone, Copy, Debug, PartialEq, Default, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct FakeQuant<T: Real, const N: usize> {
    _marker: PhantomData<T>,
    /// Aligns the (empty) parameter slice to `T`.
    _align: [T; 0],
}

/// The range a [`FakeQuant`] observed: exponential moving averages of the batches' min and
/// max (the first batch's own min and max; then `m ← m + 0.01 · (m_batch − m)`).
#[derive(Clone, Copy, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct FakeQuantState<T: Real> {
    /// Moving average of the batches' minimum.
    pub min: T,
    /// Moving average of the batches' maximum.
    pub max: T,
    /// Training batches observed (0: no range yet).
    pub batches: u64,
}

impl<T: Real> FakeQuantState<T> {
    /// Moves the range towards a batch's `[min, max]` (the first batch sets it).
    pub fn observe(&mut self, min: T, max: T) {
        if self.batches == 0 {
            (self.min, self.max) = (min, max);
        } else {
            let c = T::of(AVERAGING_CONSTANT);
            self.min += c * (min - self.min);
            self.max += c * (max - self.max);
        }
        self.batches += 1;
    }

    /// The observed range, for the int8 network's `quantize`; [`Range::EMPTY`] before any
    /// batch (which [`QuantParams::from_range`] maps to scale 1).
    pub fn range(&self) -> Range {
        if self.batches == 0 {
            Range::EMPTY
        } else {
            Range::new(self.min.to_f64() as f32, self.max.to_f64() as f32)
        }
    }

    /// The scale and zero point of the observed range (the int8 network's, as
    /// [`QuantParams::from_range`] computes them), or `None` before any batch.
    pub fn params(&self) -> Option<QuantParams> {
        (self.batches > 0).then(|| QuantParams::from_range(self.range()))
    }
}

impl<T: Real, const N: usize> Layer<T, N, N> for FakeQuant<T, N> {
    const BATCH_STATISTICS: bool = true;

    /// The straight-through mask: 1 where `round(x / S) + Z` was within `[−128, 127]`, else 0.
    type Cache<const B: usize> = SMatrix<T, N, B>;
    type State = FakeQuantState<T>;

    fn forward<const B: usize>(
        &self,
        state: &FakeQuantState<T>,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        _scratch: &mut [T],
    ) {
        let Some(params) = state.params() else {
            y.copy_from(x);
            return;
        };
        for (y, &x) in y.iter_mut().zip(x.iter()) {
            *y = fake_quantize(x, params).0;
        }
    }

    fn forward_train<const B: usize>(
        &self,
        state: &mut FakeQuantState<T>,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        mask: &mut SMatrix<T, N, B>,
        _scratch: &mut [T],
    ) {
        // Observe first, then quantize with the updated range (as PyTorch's FakeQuantize).
        let (mut min, mut max) = (x[0], x[0]);
        for &v in x.iter() {
            min = min.min(v);
            max = max.max(v);
        }
        state.observe(min, max);
        let params = state.params().expect("a batch was observed");
        for ((y, &x), mask) in y.iter_mut().zip(x.iter()).zip(mask.iter_mut()) {
            let (value, inside) = fake_quantize(x, params);
            *y = value;
            *mask = if inside { T::ONE } else { T::ZERO };
        }
    }

    fn backward<const B: usize>(
        &self,
        _x: &SMatrix<T, N, B>,
        mask: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        dx: Option<&mut SMatrix<T, N, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        let Some(dx) = dx else {
            return;
        };
        for ((dx, &dy), &mask) in dx.iter_mut().zip(dy.iter()).zip(mask.iter()) {
            *dx += dy * mask;
        }
    }
}

/// A [`Dense`] layer trained with fake-quantized weights (see the [module](self)):
/// `y = fq(W)·x + b`, `fq` symmetric per output channel as
/// [`DenseQ8::quantize`](super::DenseQ8::quantize) quantizes. Its tensors are `Dense`'s
/// (`weight` `[OUT, IN]`, `bias` `[OUT]`, same order and layout), so
/// [`from_dense`](Self::from_dense) and [`to_dense`](Self::to_dense) copy them.
///
/// The training pass keeps `fq(W)` in the tape (the cache, `OUT · IN` values); inference
/// computes it weight by weight, without storage.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct QatDense<T: Real, const IN: usize, const OUT: usize> {
    /// `W`, `[OUT, IN]`: the real weights, which the optimizer updates.
    pub weight: SMatrix<T, OUT, IN>,
    /// `b`, `[OUT]`.
    pub bias: SMatrix<T, OUT, 1>,
}

impl<T: Real, const IN: usize, const OUT: usize> QatDense<T, IN, OUT> {
    /// The layer with `dense`'s weights (QAT fine-tuning starts from a trained network).
    ///
    /// Returned by value: for a layer too large for the stack, copy into a layer in place
    /// with [`copy_from_dense`](Self::copy_from_dense).
    pub fn from_dense(dense: &Dense<T, IN, OUT>) -> Self {
        QatDense {
            weight: dense.weight,
            bias: dense.bias,
        }
    }

    /// The real weights as a [`Dense`], for the int8 conversion (which quantizes them as
    /// training did).
    ///
    /// Returned by value: for a layer too large for the stack, use
    /// [`copy_to_dense`](Self::copy_to_dense).
    pub fn to_dense(&self) -> Dense<T, IN, OUT> {
        Dense {
            weight: self.weight,
            bias: self.bias,
        }
    }

    /// Copies `dense`'s weights into this layer, in place (no layer-sized temporary).
    pub fn copy_from_dense(&mut self, dense: &Dense<T, IN, OUT>) {
        self.weight.copy_from(&dense.weight);
        self.bias.copy_from(&dense.bias);
    }

    /// Copies the real weights into `dense`, in place (no layer-sized temporary).
    pub fn copy_to_dense(&self, dense: &mut Dense<T, IN, OUT>) {
        dense.weight.copy_from(&self.weight);
        dense.bias.copy_from(&self.bias);
    }

    /// The weight scale of output channel `c`: `max_k |W[c, k]| / 127` (1 for a zero row).
    pub fn weight_scale(&self, c: usize) -> f32 {
        channel_scale(&self.weight, c)
    }

    /// Writes `fq(W)`: `W[c, k]` rounded to the grid of `S_w[c]`.
    pub fn fake_quantized_weight(&self, out: &mut SMatrix<T, OUT, IN>) {
        fake_quantize_channels(&self.weight, out.as_mut_slice());
    }
}

/// The weight scale of output channel (row) `c` of a `CO × K` weight, as the int8 conversion
/// computes it (`quantize_channels`): `max_k |W[c, k]| / 127` in `f64`, as `f32`; 1 for a zero
/// row.
pub(super) fn channel_scale<T: Real, const CO: usize, const K: usize>(
    weight: &SMatrix<T, CO, K>,
    c: usize,
) -> f32 {
    let max_abs = (0..K)
        .map(|k| weight[(c, k)].to_f64().abs())
        .fold(0.0, f64::max);
    weight_scale(max_abs)
}

/// `fq(w)` on the grid of `scale`: the int8 conversion's integer (`quantize_weight`, in
/// `f64`) times the scale.
#[inline]
pub(super) fn fake_weight<T: Real>(w: T, scale: f32) -> T {
    T::of(quantize_weight(w.to_f64(), scale) * scale as f64)
}

/// Writes `fq(W)` of a `CO × K` weight (rows are output channels) into `out`, `CO · K` values
/// column-major like the weight: `W[c, k]` rounded to the grid of [`channel_scale`]`(c)`.
pub(super) fn fake_quantize_channels<T: Real, const CO: usize, const K: usize>(
    weight: &SMatrix<T, CO, K>,
    out: &mut [T],
) {
    let out = &mut out[..CO * K];
    for c in 0..CO {
        let scale = channel_scale(weight, c);
        for k in 0..K {
            out[k * CO + c] = fake_weight(weight[(c, k)], scale);
        }
    }
}

impl<T: Real, const IN: usize, const OUT: usize> Layer<T, IN, OUT> for QatDense<T, IN, OUT> {
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "weight",
            shape: &[OUT, IN],
            role: Role::Weight,
        },
        TensorInfo {
            name: "bias",
            shape: &[OUT],
            role: Role::Bias,
        },
    ];

    /// `fq(W)` of the training pass.
    type Cache<const B: usize> = SMatrix<T, OUT, IN>;
    type State = ();

    fn forward<const B: usize>(
        &self,
        _state: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        _scratch: &mut [T],
    ) {
        for mut column in y.column_iter_mut() {
            column.copy_from(&self.bias);
        }
        for c in 0..OUT {
            let scale = self.weight_scale(c);
            for k in 0..IN {
                let w = fake_weight(self.weight[(c, k)], scale);
                for j in 0..B {
                    y[(c, j)] += w * x[(k, j)];
                }
            }
        }
    }

    fn forward_train<const B: usize>(
        &self,
        _state: &mut (),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        weight: &mut SMatrix<T, OUT, IN>,
        _scratch: &mut [T],
    ) {
        self.fake_quantized_weight(weight);
        for mut column in y.column_iter_mut() {
            column.copy_from(&self.bias);
        }
        kernels::matmul(y, weight, x, true);
    }

    /// `∂L/∂W += ∂L/∂Y·Xᵀ` (straight through `fq`), `∂L/∂b += ∂L/∂Y·1`,
    /// `∂L/∂X += fq(W)ᵀ·∂L/∂Y`.
    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        weight: &SMatrix<T, OUT, IN>,
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        kernels::matmul_abt(&mut grads.weight, dy, x, true);
        for column in dy.column_iter() {
            grads.bias += column;
        }
        if let Some(dx) = dx {
            kernels::matmul_atb(dx, weight, dy, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{check_layer, random_matrix};

    /// A state that observed `[min, max]` once.
    fn observed(min: f64, max: f64) -> FakeQuantState<f64> {
        let mut state = FakeQuantState::ZERO;
        state.observe(min, max);
        state
    }

    #[test]
    fn fake_quantize_worked_values() {
        // [0, 2.55]: S = 0.01 (as f32), Z = −128.
        let p = QuantParams::from_range(Range::new(0.0, 2.55));
        assert_eq!((p.scale, p.zero_point), (0.01, -128));
        let s = 0.01f32 as f64;
        // 0.123 / S = 12.3 → 12 → q = −116: 12 · S.
        assert_eq!(fake_quantize(0.123, p), (12.0 * s, true));
        // 0.125 / S = 12.5000003 → 13 (a tie would go away from zero too).
        assert_eq!(fake_quantize(0.125, p), (13.0 * s, true));
        // 3 / S = 300 → q = 172, clamped to 127: 255 · S; outside.
        assert_eq!(fake_quantize(3.0, p), (255.0 * s, false));
        // −0.5 / S = −50 → q = −178, clamped to −128: 0; outside.
        assert_eq!(fake_quantize(-0.5, p), (0.0, false));
        // 0 is exact, and the ends of the range are inside.
        assert_eq!(fake_quantize(0.0, p), (0.0, true));
        assert_eq!(fake_quantize(255.0 * s, p), (255.0 * s, true));
        // [−1, 1]: S = 2/255 rounded to f32 (a little above: 0.0078431377), Z = round(−0.5)
        // = −1; −1 / S = −127.4999995 → −127, q = −128: the lower end is just inside; in
        // exact arithmetic it would be a tie, −128 and q = −129, clamped.
        let p = QuantParams::from_range(Range::new(-1.0, 1.0));
        let s = p.scale as f64;
        assert!(s > 2.0 / 255.0);
        assert_eq!(p.zero_point, -1);
        assert_eq!(fake_quantize(-1.0, p), (-127.0 * s, true));
        assert_eq!(fake_quantize(-1.01, p), (-127.0 * s, false));
        // 1 / S = 127.4999995 → 127, q = 126: 127 · S.
        assert_eq!(fake_quantize(1.0, p), (127.0 * s, true));
        // 0.5 / S = 63.75 → 64: 64 · S.
        assert_eq!(fake_quantize(0.5, p), (64.0 * s, true));
    }

    #[test]
    fn fake_quantize_in_f32_is_the_int8_input_quantization() {
        let p = QuantParams::from_range(Range::new(-0.7, 6.3));
        for i in -100..=800 {
            let x = i as f32 * 0.01;
            assert_eq!(fake_quantize(x, p).0, p.dequantize(p.quantize(x)), "{x}");
        }
    }

    #[test]
    fn observer_is_a_moving_average_of_the_batches_range() {
        let mut state = FakeQuantState::<f64>::ZERO;
        assert_eq!((state.range(), state.params()), (Range::EMPTY, None));
        state.observe(-1.0, 2.0);
        assert_eq!((state.min, state.max, state.batches), (-1.0, 2.0, 1));
        state.observe(-3.0, 1.0);
        // −1 + 0.01 · (−3 + 1) = −1.02; 2 + 0.01 · (1 − 2) = 1.99.
        assert!((state.min + 1.02).abs() < 1e-15 && (state.max - 1.99).abs() < 1e-15);
        assert_eq!(state.range(), Range::new(-1.02, 1.99));
        assert_eq!(
            state.params(),
            Some(QuantParams::from_range(Range::new(-1.02, 1.99)))
        );
    }

    #[test]
    fn training_observes_then_quantizes_and_inference_reads_the_state() {
        let layer = FakeQuant::<f64, 3>::ZERO;
        let x = SMatrix::<f64, 3, 2>::from_column_slice(&[0.0, 1.0, 2.55, 0.5, 0.123, 1.0]);
        let mut state = FakeQuantState::ZERO;
        let (mut y, mut mask) = (SMatrix::ZERO, SMatrix::<f64, 3, 2>::ZERO);
        // Before any training pass, inference is the identity.
        layer.forward(&state, &x, &mut y, &mut []);
        assert_eq!(y, x);
        layer.forward_train(&mut state, &x, &mut y, &mut mask, &mut []);
        assert_eq!(state, observed(0.0, 2.55));
        let s = 0.01f32 as f64;
        let want = [0.0, 100.0, 255.0, 50.0, 12.0, 100.0].map(|q| q * s);
        assert_eq!(y.as_slice(), want);
        assert_eq!(mask, SMatrix::<f64, 3, 2>::repeat(1.0));
        // A second batch with values outside: the range moves 1% towards [−1, 5.55], to
        // [−0.01, 2.58]: S = 2.59 / 255, Z = round(−128 + 0.01 / S) = round(−127.02) = −127.
        // −1 / S ≈ −98.5 → q = −98 − 127 = −225 and 5.55 → q ≈ 546 − 127 are clamped (mask 0).
        let x2 = SMatrix::<f64, 3, 2>::from_column_slice(&[-1.0, 5.55, 1.0, 0.0, 0.0, 0.0]);
        layer.forward_train(&mut state, &x2, &mut y, &mut mask, &mut []);
        assert!((state.min + 0.01).abs() < 1e-15 && (state.max - 2.58).abs() < 1e-15);
        let p = state.params().unwrap();
        assert_eq!(p.scale, (2.59f32 as f64 / 255.0) as f32);
        assert_eq!(p.zero_point, -127);
        assert_eq!(mask.as_slice(), [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        let s = p.scale as f64;
        assert_eq!(y[0], -s); // (−128 − Z) · S
        assert_eq!(y[1], 254.0 * s); // (127 − Z) · S
        // Inference reads the stored range and does not move it.
        let before = state;
        let mut y_inference = SMatrix::ZERO;
        layer.forward(&state, &x2, &mut y_inference, &mut []);
        assert_eq!((y_inference, state), (y, before));
    }

    #[test]
    fn straight_through_gradient_is_one_inside_and_zero_where_clamped() {
        let layer = FakeQuant::<f64, 4>::ZERO;
        let mut state = observed(-1.0, 1.0);
        // A batch within [−1, 1] except 1.5 and −2: the moving average hardly moves.
        let x =
            SMatrix::<f64, 4, 2>::from_column_slice(&[0.3, -0.7, 1.5, -2.0, 0.0, 0.99, -1.0, 0.5]);
        let (mut y, mut mask) = (SMatrix::ZERO, SMatrix::<f64, 4, 2>::ZERO);
        layer.forward_train(&mut state, &x, &mut y, &mut mask, &mut []);
        let p = state.params().unwrap();
        let dy = SMatrix::<f64, 4, 2>::from_fn(|i, j| 1.0 + (i * 2 + j) as f64);
        let mut dx = SMatrix::<f64, 4, 2>::repeat(0.5);
        layer.backward(
            &x,
            &mask,
            &dy,
            Some(&mut dx),
            &mut FakeQuant::default(),
            &mut [],
        );
        for i in 0..8 {
            let inside = fake_quantize(x[i], p).1;
            assert_eq!(inside, ![2, 3].contains(&i), "{}", x[i]);
            // Accumulated: 0.5 + dy inside, 0.5 where clamped.
            assert_eq!(dx[i], 0.5 + if inside { dy[i] } else { 0.0 });
        }
        // The estimator is the derivative of the clamp that fq rounds: finite differences of
        // x ↦ S · (clamp(x / S + Z, −128, 127) − Z) (no rounding) give the same 1 and 0.
        let s = p.scale as f64;
        let z = p.zero_point as f64;
        let clamp = |x: f64| s * ((x / s + z).clamp(-128.0, 127.0) - z);
        let h = 1e-6;
        for i in 0..8 {
            // −1 is within half a step of the boundary, where rounding decides (here inside,
            // while the clamp without rounding is already flat); elsewhere the two agree.
            if i == 6 {
                continue;
            }
            let fd = (clamp(x[i] + h) - clamp(x[i] - h)) / (2.0 * h);
            assert!((fd - mask[i]).abs() < 1e-6, "{}: {fd} vs {}", x[i], mask[i]);
        }
    }

    fn qat_example() -> QatDense<f64, 4, 2> {
        QatDense {
            weight: SMatrix::from_row_slice(&[0.5, -0.25, 1.27, 0.0, 1.0, 0.3, -0.6, 0.0]),
            bias: SMatrix::from_column_slice(&[0.1, -0.2]),
        }
    }

    #[test]
    fn weights_are_fake_quantized_per_channel_as_the_int8_conversion_does() {
        let layer = qat_example();
        let mut wq = SMatrix::ZERO;
        layer.fake_quantized_weight(&mut wq);
        // Row 0: S = 1.27 / 127 = 0.01 (as f32), q = [50, −25, 127, 0].
        let s0 = (1.27f64 / 127.0) as f32 as f64;
        assert_eq!(layer.weight_scale(0) as f64, s0);
        for (k, q) in [50.0, -25.0, 127.0, 0.0].into_iter().enumerate() {
            assert_eq!(wq[(0, k)], q * s0);
        }
        // Row 1: S = 1 / 127; 0.3 · 127 = 38.1 → 38; −0.6 · 127 = −76.2 → −76.
        let s1 = (1.0f64 / 127.0) as f32 as f64;
        for (k, q) in [127.0, 38.0, -76.0, 0.0].into_iter().enumerate() {
            assert_eq!(wq[(1, k)], q * s1);
        }
        // The int8 layer built from the same weights holds those integers.
        let p = QuantParams::from_range(Range::new(-1.0, 1.0));
        let q8 = super::super::DenseQ8::quantize(&layer.to_dense(), p, p, false).unwrap();
        assert_eq!(q8.weight, [[50, -25, 127, 0], [127, 38, -76, 0]]);
        // A zero row has scale 1 and stays zero.
        let zero = QatDense::<f64, 3, 1>::ZERO;
        assert_eq!(zero.weight_scale(0), 1.0);
    }

    #[test]
    fn forward_is_a_dense_layer_with_the_fake_quantized_weights() {
        let layer = qat_example();
        let mut dense = layer.to_dense();
        layer.fake_quantized_weight(&mut dense.weight);
        let x = random_matrix::<4, 3>(1, 1.0);
        let (mut y, mut y_train, mut y_dense) = (SMatrix::ZERO, SMatrix::ZERO, SMatrix::ZERO);
        let mut cache = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        layer.forward_train(&mut (), &x, &mut y_train, &mut cache, &mut []);
        dense.forward(&(), &x, &mut y_dense, &mut []);
        assert_eq!(cache, dense.weight);
        assert!((y - y_dense).amax() < 1e-15 && (y_train - y_dense).amax() < 1e-15);
    }

    #[test]
    fn backward_is_the_dense_gradient_passed_straight_through() {
        let layer = qat_example();
        let mut dense = layer.to_dense();
        layer.fake_quantized_weight(&mut dense.weight);
        // The Dense layer with the fake-quantized weights passes the finite-difference check:
        // it is the function whose gradients QatDense's backward gives.
        let x = random_matrix::<4, 3>(2, 1.0);
        let report = check_layer(&mut dense.clone(), &(), &x);
        assert!(report.max_rel_error < 1e-8, "{report:?}");
        let dy = random_matrix::<2, 3>(3, 1.0);
        let (mut y, mut cache) = (SMatrix::ZERO, SMatrix::ZERO);
        layer.forward_train(&mut (), &x, &mut y, &mut cache, &mut []);
        let (mut dx, mut dx_dense) = (SMatrix::repeat(0.5), SMatrix::repeat(0.5));
        let mut grads = QatDense::<f64, 4, 2>::ZERO;
        grads.weight.fill(0.25);
        let mut dense_grads = Dense::<f64, 4, 2>::ZERO;
        dense_grads.weight.fill(0.25);
        layer.backward(&x, &cache, &dy, Some(&mut dx), &mut grads, &mut []);
        dense.backward(&x, &(), &dy, Some(&mut dx_dense), &mut dense_grads, &mut []);
        assert!((dx - dx_dense).amax() < 1e-15);
        assert!((grads.weight - dense_grads.weight).amax() < 1e-15);
        assert_eq!(grads.bias, dense_grads.bias);
        // And ∂L/∂x by finite differences of the QatDense forward itself (linear in x).
        let loss = |x: &SMatrix<f64, 4, 3>| {
            let mut y = SMatrix::ZERO;
            layer.forward(&(), x, &mut y, &mut []);
            y.component_mul(&dy).sum()
        };
        for i in 0..12 {
            let h = 1e-5;
            let (mut up, mut down) = (x, x);
            up[i] += h;
            down[i] -= h;
            let fd = (loss(&up) - loss(&down)) / (2.0 * h);
            assert!((fd - (dx[i] - 0.5)).abs() < 1e-8, "dx[{i}]");
        }
    }

    #[test]
    fn batch_equals_single_samples_in_inference() {
        let layer = qat_example();
        let x = random_matrix::<4, 5>(4, 1.0);
        let mut y = SMatrix::<f64, 2, 5>::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        for j in 0..5 {
            let mut yj = SMatrix::<f64, 2, 1>::ZERO;
            layer.forward(&(), &x.fixed_columns::<1>(j).into_owned(), &mut yj, &mut []);
            assert!((yj - y.column(j)).amax() < 1e-15);
        }
    }
}
