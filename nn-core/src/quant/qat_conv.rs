//! [`QatConv2d`]: quantization-aware training of a 2-d convolution (see [`qat`](super::qat)).

use super::qat::{channel_scale, fake_quantize_channels};
use crate::layers::{
    Conv2d, ConvGeometry2d, check_conv_sizes, conv_backward_batch, conv_forward_batch, conv_tile,
};
use crate::{ConstZero, Layer, Params, Real, TensorInfo, Zeroable};
use core::marker::PhantomData;
use nalgebra::SMatrix;

/// A [`Conv2d`] trained with fake-quantized weights (see the [`qat`](super::qat) module):
/// `y = fq(W) ⋆ x + b`, `fq` symmetric per output channel exactly as
/// [`Conv2dQ8::quantize`](super::Conv2dQ8::quantize) quantizes the `CO` kernels
/// (`S_w[co] = max_k |W[co, k]| / 127`, recomputed from the weights at each pass, `W[co, k]`
/// rounded half away from zero to that grid); the bias stays real. The same type parameters,
/// tensors (`weight` `[CO, CI, KH, KW]`, `bias` `[CO]` when `NB = CO`), layout and geometry as
/// `Conv2d`, so [`from_conv`](Self::from_conv) and [`to_conv`](Self::to_conv) copy them, and
/// the int8 network quantized from `to_conv()` holds exactly the integers training used.
///
/// The passes are [`Conv2d`]'s (im2col tiles and the matrix kernels) with `fq(W)` for `W`:
/// - training keeps `fq(W)` in the tape (the cache, `CO · K` values) for backward;
/// - inference writes it into the scratch memory, next to the im2col tile
///   ([`Layer::SCRATCH_PER_CALL`] `= CO·K + K·OH·OW`);
/// - backward gives `Conv2d`'s gradients with the fake-quantized weights, the weight gradient
///   passed straight through to the real weights (no weight is ever clamped: the largest of
///   each kernel maps to ±127).
///
/// In `network!` it is the built-in `QatConv2d<CO, KERNEL, ..>`, with `Conv2d`'s arguments.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct QatConv2d<
    T: Real,
    const CO: usize,
    const K: usize,
    const NB: usize,
    const IN: usize,
    const OUT: usize,
    G,
> {
    /// `W`, PyTorch's `[CO, CI, KH, KW]` as a `CO × K` matrix: the real weights, which the
    /// optimizer updates.
    pub weight: SMatrix<T, CO, K>,
    /// `b`, `[CO]` (or nothing when `NB = 0`).
    pub bias: SMatrix<T, NB, 1>,
    _geometry: PhantomData<G>,
}

impl<
    T: Real,
    const CO: usize,
    const K: usize,
    const NB: usize,
    const IN: usize,
    const OUT: usize,
    G,
> QatConv2d<T, CO, K, NB, IN, OUT, G>
{
    /// A layer with these parameters.
    pub const fn new(weight: SMatrix<T, CO, K>, bias: SMatrix<T, NB, 1>) -> Self {
        QatConv2d {
            weight,
            bias,
            _geometry: PhantomData,
        }
    }

    /// The layer with `conv`'s weights (QAT fine-tuning starts from a trained network).
    ///
    /// Returned by value: for a layer too large for the stack, copy into a layer in place
    /// with [`copy_from_conv`](Self::copy_from_conv).
    pub fn from_conv(conv: &Conv2d<T, CO, K, NB, IN, OUT, G>) -> Self {
        Self::new(conv.weight, conv.bias)
    }

    /// The real weights as a [`Conv2d`], for the int8 conversion (which quantizes them as
    /// training did).
    ///
    /// Returned by value: for a layer too large for the stack, use
    /// [`copy_to_conv`](Self::copy_to_conv).
    pub fn to_conv(&self) -> Conv2d<T, CO, K, NB, IN, OUT, G> {
        Conv2d::new(self.weight, self.bias)
    }

    /// Copies `conv`'s weights into this layer, in place (no layer-sized temporary).
    pub fn copy_from_conv(&mut self, conv: &Conv2d<T, CO, K, NB, IN, OUT, G>) {
        self.weight.copy_from(&conv.weight);
        self.bias.copy_from(&conv.bias);
    }

    /// Copies the real weights into `conv`, in place (no layer-sized temporary).
    pub fn copy_to_conv(&self, conv: &mut Conv2d<T, CO, K, NB, IN, OUT, G>) {
        conv.weight.copy_from(&self.weight);
        conv.bias.copy_from(&self.bias);
    }

    /// The weight scale of output channel `co`: `max_k |W[co, k]| / 127` (1 for a zero
    /// kernel).
    pub fn weight_scale(&self, co: usize) -> f32 {
        channel_scale(&self.weight, co)
    }

    /// Writes `fq(W)`: `W[co, k]` rounded to the grid of `S_w[co]`.
    pub fn fake_quantized_weight(&self, out: &mut SMatrix<T, CO, K>) {
        fake_quantize_channels(&self.weight, out.as_mut_slice());
    }
}

impl<T, const CO: usize, const K: usize, const NB: usize, const IN: usize, const OUT: usize, G>
    Layer<T, IN, OUT> for QatConv2d<T, CO, K, NB, IN, OUT, G>
where
    T: Real,
    G: ConvGeometry2d,
{
    const TENSORS: &'static [TensorInfo] =
        <Conv2d<T, CO, K, NB, IN, OUT, G> as Layer<T, IN, OUT>>::TENSORS;

    /// `fq(W)` (`CO · K`, inference only) and one im2col tile.
    const SCRATCH_PER_CALL: usize = CO * K + conv_tile::<G, K>();

    /// `fq(W)` of the training pass.
    type Cache<const B: usize> = SMatrix<T, CO, K>;
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        scratch: &mut [T],
    ) {
        const { check_conv_sizes::<G, CO, K, NB, IN, OUT>() };
        let (weight, tile) = scratch.split_at_mut(CO * K);
        fake_quantize_channels(&self.weight, weight);
        conv_forward_batch::<T, G, CO, K, NB, IN, OUT, B>(weight, &self.bias, x, y, tile);
    }

    fn forward_train<const B: usize>(
        &self,
        _: &mut (),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        weight: &mut SMatrix<T, CO, K>,
        scratch: &mut [T],
    ) {
        const { check_conv_sizes::<G, CO, K, NB, IN, OUT>() };
        self.fake_quantized_weight(weight);
        conv_forward_batch::<T, G, CO, K, NB, IN, OUT, B>(
            weight.as_slice(),
            &self.bias,
            x,
            y,
            scratch,
        );
    }

    /// [`Conv2d`]'s backward with `fq(W)`: `∂L/∂W += ∂L/∂fq(W)` (straight through),
    /// `∂L/∂b`, and `∂L/∂x` through `fq(W)`.
    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        weight: &SMatrix<T, CO, K>,
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        scratch: &mut [T],
    ) {
        const { check_conv_sizes::<G, CO, K, NB, IN, OUT>() };
        conv_backward_batch::<T, G, CO, K, NB, IN, OUT, B>(
            weight.as_slice(),
            x,
            dy,
            dx,
            &mut grads.weight,
            &mut grads.bias,
            scratch,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Geometry2d;
    use crate::quant::{Conv2dQ8, QuantParams, Range};
    use crate::test_util::{check_layer, random_matrix, scratch_for};

    /// A layer of random weights, some kernels scaled down so that the channels have
    /// different scales, one kernel zero.
    fn example<
        G: ConvGeometry2d,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
    >(
        seed: u64,
    ) -> QatConv2d<f64, CO, K, NB, IN, OUT, G> {
        let mut weight = random_matrix::<CO, K>(seed, 1.0);
        for co in 0..CO {
            let factor = [1.0, 0.3, 0.02, 0.0][co % 4];
            weight.row_mut(co).scale_mut(factor);
        }
        QatConv2d::new(weight, random_matrix(seed + 1, 0.5))
    }

    /// The fake-quantized weights are the int8 layer's integers times the channel's scale;
    /// the forward passes (inference and training, batch 1 and `B`) are a `Conv2d`'s with
    /// those weights; the backward pass gives that `Conv2d`'s gradients (accumulated, with
    /// and without `∂L/∂x`), its weight gradient for the real weights.
    fn agrees_with_conv2d<
        G: ConvGeometry2d + Copy + core::fmt::Debug + PartialEq,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        seed: u64,
    ) {
        let name = core::any::type_name::<G>();
        let layer = example::<G, CO, K, NB, IN, OUT>(seed);
        // Weights: Conv2dQ8::quantize's integers × S_w[co].
        let mut wq = SMatrix::<f64, CO, K>::ZERO;
        layer.fake_quantized_weight(&mut wq);
        let p = QuantParams::from_range(Range::new(-1.0, 1.0));
        let q8 = Conv2dQ8::<CO, K, IN, OUT, G>::quantize(&layer.to_conv(), p, p, false).unwrap();
        for co in 0..CO {
            let scale = layer.weight_scale(co);
            let max_abs = layer.weight.row(co).amax();
            if max_abs == 0.0 {
                assert_eq!(scale, 1.0, "{name}");
            } else {
                assert_eq!(scale, (max_abs / 127.0) as f32, "{name}");
                assert!(q8.weight[co].iter().any(|q| q.abs() == 127), "{name}");
            }
            for k in 0..K {
                assert_eq!(
                    wq[(co, k)],
                    q8.weight[co][k] as f64 * scale as f64,
                    "{name}"
                );
            }
        }
        let conv = Conv2d::<f64, CO, K, NB, IN, OUT, G>::new(wq, layer.bias);

        let x = random_matrix::<IN, B>(seed + 2, 1.0);
        let x1: SMatrix<f64, IN, 1> = x.column(0).into();
        let mut scratch = scratch_for(&layer, &x);
        assert_eq!(scratch.len(), CO * K + K * G::OH * G::OW);
        // Forward: inference and training, batch B and batch 1, equal Conv2d's exactly.
        let (mut y, mut y_train, mut y_conv) = (SMatrix::ZERO, SMatrix::ZERO, SMatrix::ZERO);
        let mut cache = SMatrix::repeat(f64::NAN);
        layer.forward(&(), &x, &mut y, &mut scratch);
        layer.forward_train(&mut (), &x, &mut y_train, &mut cache, &mut scratch);
        conv.forward(&(), &x, &mut y_conv, &mut scratch_for(&conv, &x));
        let y_conv: SMatrix<f64, OUT, B> = y_conv;
        assert_eq!(cache, wq, "{name}");
        assert_eq!((y, y_train), (y_conv, y_conv), "{name}");
        let (mut y1, mut y1_conv) = (SMatrix::<f64, OUT, 1>::ZERO, SMatrix::ZERO);
        layer.forward(&(), &x1, &mut y1, &mut scratch_for(&layer, &x1));
        conv.forward(&(), &x1, &mut y1_conv, &mut scratch_for(&conv, &x1));
        assert_eq!(y1, y1_conv, "{name}");
        assert_eq!(y1, y.column(0), "{name}");

        // Backward: from non-zero gradients, with and without ∂L/∂x.
        let dy = random_matrix::<OUT, B>(seed + 3, 1.0);
        let start_dx = random_matrix::<IN, B>(seed + 4, 1.0);
        let start = QatConv2d::<f64, CO, K, NB, IN, OUT, G>::new(
            random_matrix(seed + 5, 1.0),
            random_matrix(seed + 6, 1.0),
        );
        let (mut dx, mut grads) = (start_dx, start);
        layer.backward(&x, &cache, &dy, Some(&mut dx), &mut grads, &mut scratch);
        let (mut dx_conv, mut conv_grads) = (start_dx, start.to_conv());
        conv.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx_conv),
            &mut conv_grads,
            &mut scratch_for(&conv, &x),
        );
        assert_eq!(dx, dx_conv, "{name}");
        assert_eq!(grads.to_conv(), conv_grads, "{name}");
        let mut params_only = start;
        layer.backward(&x, &cache, &dy, None, &mut params_only, &mut scratch);
        assert_eq!(params_only, grads, "{name}");
    }

    #[test]
    fn fake_quantized_conv2d_is_conv2d_with_the_int8_weights_both_ways() {
        // <CI, H, W, KH, KW, SH, SW, PH, PW, DH, DW>, CO, K = CI·KH·KW, NB, IN, OUT, B.
        // The digits CNN's first layer: 1 → 4 channels, 3×3, padding 1 on 8×8.
        type A = Geometry2d<1, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1>;
        agrees_with_conv2d::<A, 4, 9, 4, 64, 256, 1>(1);
        agrees_with_conv2d::<A, 4, 9, 4, 64, 256, 3>(2);
        // Stride 2, padding 2, dilation 2, 3 channels of 9×8: OH = 5, OW = 4.
        type Bg = Geometry2d<3, 9, 8, 3, 3, 2, 2, 2, 2, 2, 2>;
        agrees_with_conv2d::<Bg, 5, 27, 5, 216, 100, 1>(3);
        agrees_with_conv2d::<Bg, 5, 27, 5, 216, 100, 4>(4);
        // No bias; stride (3, 1), padding (1, 4), dilation (1, 3).
        type C = Geometry2d<2, 7, 10, 2, 3, 3, 1, 1, 4, 1, 3>;
        agrees_with_conv2d::<C, 4, 12, 0, 140, 144, 2>(5);
        // Big enough for the blocked matrix kernels: 8 → 16 channels on 12×12.
        type D = Geometry2d<8, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1>;
        agrees_with_conv2d::<D, 16, 72, 16, 1152, 2304, 2>(6);
    }

    #[test]
    fn worked_weights() {
        // One output channel of 4 weights (1 channel, 2×2): S = 1.27 / 127 = 0.01 (as f32),
        // q = [50, −25, 127, 0] (0.5, −0.25, 1.27, 0.004 → 0.4 → 0); a second of
        // [1, 0.3, −0.6, 0.5]: S = 1/127 as f32 (a little below), 38.1 → 38, −76.2 → −76,
        // 0.5 / S = 63.5000002 → 64.
        type G = Geometry2d<1, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1>;
        let layer = QatConv2d::<f64, 2, 4, 2, 9, 8, G>::new(
            SMatrix::from_row_slice(&[0.5, -0.25, 1.27, 0.004, 1.0, 0.3, -0.6, 0.5]),
            SMatrix::from_column_slice(&[0.1, -0.2]),
        );
        let mut wq = SMatrix::ZERO;
        layer.fake_quantized_weight(&mut wq);
        let s0 = (1.27f64 / 127.0) as f32 as f64;
        let s1 = (1.0f64 / 127.0) as f32 as f64;
        assert_eq!(layer.weight_scale(0) as f64, s0);
        assert_eq!(layer.weight_scale(1) as f64, s1);
        for (k, q) in [50.0, -25.0, 127.0, 0.0].into_iter().enumerate() {
            assert_eq!(wq[(0, k)], q * s0);
        }
        for (k, q) in [127.0, 38.0, -76.0, 64.0].into_iter().enumerate() {
            assert_eq!(wq[(1, k)], q * s1);
        }
        let p = QuantParams::from_range(Range::new(0.0, 1.0));
        let q8 = Conv2dQ8::quantize(&layer.to_conv(), p, p, true).unwrap();
        assert_eq!(q8.weight, [[50, -25, 127, 0], [127, 38, -76, 64]]);
        // from_conv / to_conv copy the tensors; the tensors are Conv2d's.
        assert_eq!(QatConv2d::from_conv(&layer.to_conv()), layer);
        assert_eq!(
            <QatConv2d<f32, 2, 4, 2, 9, 8, G> as Layer<f32, 9, 8>>::TENSORS,
            <Conv2d<f32, 2, 4, 2, 9, 8, G> as Layer<f32, 9, 8>>::TENSORS
        );
        assert_eq!(<QatConv2d<f32, 2, 4, 2, 9, 8, G> as Params<f32>>::LEN, 10);
    }

    #[test]
    fn conv2d_with_the_fake_quantized_weights_passes_the_gradient_check() {
        // The function whose gradients QatConv2d's backward gives (with respect to fq(W),
        // passed straight through): checked by finite differences.
        type G = Geometry2d<2, 5, 4, 3, 2, 2, 1, 1, 1, 1, 2>;
        let layer = example::<G, 3, 12, 3, 40, 36>(7);
        let mut conv = layer.to_conv();
        layer.fake_quantized_weight(&mut conv.weight);
        let report = check_layer(&mut conv, &(), &random_matrix::<40, 2>(8, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
        // ∂L/∂x of QatConv2d by finite differences of its own forward (linear in x).
        let x = random_matrix::<40, 2>(9, 1.0);
        let dy = random_matrix::<36, 2>(10, 1.0);
        let mut scratch = scratch_for(&layer, &x);
        let (mut y, mut cache) = (SMatrix::ZERO, SMatrix::ZERO);
        layer.forward_train(&mut (), &x, &mut y, &mut cache, &mut scratch);
        let mut dx = SMatrix::ZERO;
        let mut grads = QatConv2d::ZERO;
        layer.backward(&x, &cache, &dy, Some(&mut dx), &mut grads, &mut scratch);
        let mut loss = |x: &SMatrix<f64, 40, 2>| {
            let mut y = SMatrix::<f64, 36, 2>::ZERO;
            layer.forward(&(), x, &mut y, &mut scratch);
            y.component_mul(&dy).sum()
        };
        for i in 0..80 {
            let h = 1e-5;
            let (mut up, mut down) = (x, x);
            up[i] += h;
            down[i] -= h;
            let fd = (loss(&up) - loss(&down)) / (2.0 * h);
            assert!((fd - dx[i]).abs() < 1e-8, "dx[{i}]: {fd} vs {}", dx[i]);
        }
    }

    #[test]
    fn f32_fake_quantized_weights_are_the_integers_times_the_f32_scale() {
        // In f32 the fake-quantized weight is q·S_w rounded once to f32.
        type G = Geometry2d<2, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1>;
        let layer64 = example::<G, 3, 18, 3, 32, 48>(11);
        let layer =
            QatConv2d::<f32, 3, 18, 3, 32, 48, G>::new(layer64.weight.cast(), layer64.bias.cast());
        let mut wq = SMatrix::ZERO;
        layer.fake_quantized_weight(&mut wq);
        let p = QuantParams::from_range(Range::new(-1.0, 1.0));
        let q8 = Conv2dQ8::quantize(&layer.to_conv(), p, p, false).unwrap();
        for co in 0..3 {
            let scale = layer.weight_scale(co) as f64;
            for k in 0..18 {
                assert_eq!(wq[(co, k)], (q8.weight[co][k] as f64 * scale) as f32);
            }
        }
    }
}
