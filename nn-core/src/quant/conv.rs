//! 2-d convolution in int8 (TFLite's int8 `Conv2D`), and max pooling in int8.

use super::dense::{MAX_INPUTS, dot, quantize_channels, requantize};
use super::{Multiplier, QuantError, QuantParams};
use crate::Real;
use crate::layers::{
    Conv2d, ConvGeometry2d, Dense, MaxPool2d, PoolGeometry2d, check_conv_sizes, check_pool_sizes,
};
use core::marker::PhantomData;

/// A [`Conv2d`] layer in int8, TFLite's int8 convolution: on samples `[CI, H, W]` (`IN =
/// CI·H·W`, PyTorch's layout, as the `f32` layer) giving `[CO, OH, OW]` (`OUT = CO·OH·OW`),
///
/// `y[co, p] = clamp(Z_y + M[co] · (b[co] + Σ_k W[co, k] · x̃[k, p]), lo, hi)`,
///
/// `x̃[·, p]` the `K = CI·KH·KW` inputs the kernel sees at output position `p` (the
/// [`Conv2d`]'s im2col column, in its order `k = (ci·KH + kh)·KW + kw`), any stride, padding
/// and dilation of the geometry `G` (a [`Geometry2d`](crate::layers::Geometry2d)). Padding
/// taps read the input's zero point `Z_x` (the integer standing for 0), as TFLite does, so
/// that the folded bias stays right.
///
/// - `weight`: `[CO][K]`, PyTorch's `[CO, CI, KH, KW]` row-major, symmetric per output
///   channel (`W ≈ S_w[co] · q`, `q` in `[−127, 127]`);
/// - `bias`: `round(b / (S_x · S_w[co])) − Z_x · Σ_k q_w[co, k]` (0 for the real bias of a
///   layer without one);
/// - `multiplier`: `M[co] = S_x · S_w[co] / S_y`;
/// - `min`, `max`: the output clamp, `[−128, 127]`, or `[Z_y, 127]` with a fused ReLU.
///
/// The same arithmetic as [`DenseQ8`](super::DenseQ8) (one dot product and requantization per
/// output channel and position), built from a float layer by [`quantize`](Self::quantize).
/// Plain arrays, constructible in a `const` ([`file`](crate::quant::file)).
#[derive(Debug)]
pub struct Conv2dQ8<const CO: usize, const K: usize, const IN: usize, const OUT: usize, G> {
    /// Quantized weights, `[CO][K]`.
    pub weight: [[i8; K]; CO],
    /// Bias with the input's zero point folded in, per output channel.
    pub bias: [i32; CO],
    /// Requantization multiplier, per output channel.
    pub multiplier: [Multiplier; CO],
    /// The input's scale and zero point.
    pub input: QuantParams,
    /// The output's scale and zero point.
    pub output: QuantParams,
    /// Lowest output (`Z_y` with a fused ReLU, else −128).
    pub min: i8,
    /// Highest output (127).
    pub max: i8,
    /// The geometry (a zero-sized marker; public so that a `const` can build the layer).
    pub geometry: PhantomData<G>,
}

// By hand: a derive would ask `G` for the traits, and geometries are markers.
impl<const CO: usize, const K: usize, const IN: usize, const OUT: usize, G> Clone
    for Conv2dQ8<CO, K, IN, OUT, G>
{
    fn clone(&self) -> Self {
        *self
    }
}

impl<const CO: usize, const K: usize, const IN: usize, const OUT: usize, G> Copy
    for Conv2dQ8<CO, K, IN, OUT, G>
{
}

impl<const CO: usize, const K: usize, const IN: usize, const OUT: usize, G> PartialEq
    for Conv2dQ8<CO, K, IN, OUT, G>
{
    fn eq(&self, other: &Self) -> bool {
        self.weight == other.weight
            && self.bias == other.bias
            && self.multiplier == other.multiplier
            && self.input == other.input
            && self.output == other.output
            && self.min == other.min
            && self.max == other.max
    }
}

impl<const CO: usize, const K: usize, const IN: usize, const OUT: usize, G: ConvGeometry2d>
    Conv2dQ8<CO, K, IN, OUT, G>
{
    /// Post-training quantization of `layer`, as [`DenseQ8::quantize`](super::DenseQ8::quantize)
    /// does for the rows of a Dense layer, here the `CO` kernels of `K` weights: symmetric
    /// per output channel, the bias (0 without one) folded with the input's zero point, the
    /// multipliers; in `f64`, scales as `f32`. `relu`: fuse a ReLU (clamp at `Z_y`).
    pub fn quantize<T: Real, const NB: usize>(
        layer: &Conv2d<T, CO, K, NB, IN, OUT, G>,
        input: QuantParams,
        output: QuantParams,
        relu: bool,
    ) -> Result<Self, QuantError> {
        const { check_conv_sizes::<G, CO, K, NB, IN, OUT>() };
        let mut q = Conv2dQ8 {
            weight: [[0; K]; CO],
            bias: [0; CO],
            multiplier: [Multiplier { m0: 0, shift: 0 }; CO],
            input,
            output,
            min: if relu { output.zero_point as i8 } else { -128 },
            max: 127,
            geometry: PhantomData,
        };
        quantize_channels(
            |c, k| layer.weight[(c, k)].to_f64(),
            |c| if NB > 0 { layer.bias[c].to_f64() } else { 0.0 },
            input,
            output,
            &mut q.weight,
            &mut q.bias,
            &mut q.multiplier,
        )?;
        Ok(q)
    }

    /// The layer on quantized input `x` (of scale and zero point [`input`](Self::input)):
    /// quantized output (of [`output`](Self::output)). Integers only; never panics.
    #[inline]
    pub fn forward(&self, x: &[i8; IN]) -> [i8; OUT] {
        let mut y = [0; OUT];
        self.forward_into(x, &mut y);
        y
    }

    /// [`forward`](Self::forward) into `y`: one im2col column of `K` bytes on the stack at a
    /// time (`Z_x` in the padding), then `CO` dot products.
    pub fn forward_into(&self, x: &[i8; IN], y: &mut [i8; OUT]) {
        const {
            check_conv_sizes::<G, CO, K, CO, IN, OUT>();
            assert!(
                K <= MAX_INPUTS,
                "an int8 convolution has at most 66,000 inputs per output (CI·KH·KW)"
            );
        };
        let plane = G::OH * G::OW;
        let padding = self.input.zero_point as i8;
        let mut patch = [0i8; K];
        for oh in 0..G::OH {
            for ow in 0..G::OW {
                gather::<G, IN, K>(x, oh, ow, padding, &mut patch);
                let p = oh * G::OW + ow;
                for c in 0..CO {
                    let acc = dot(&self.weight[c], &patch, self.bias[c]);
                    y[c * plane + p] =
                        requantize(acc, self.multiplier[c], self.output, self.min, self.max);
                }
            }
        }
    }
}

/// The im2col column of output position `(oh, ow)` (`k = (ci·KH + kh)·KW + kw`, the `f32`
/// [`Conv2d`]'s order), `padding` (`Z_x`) where a tap falls outside the input. One input row
/// (channel `ci`, row `ih`) per `(ci, kh)`, a run of `KW` taps from it: the row's bounds are
/// checked once, each tap's column against the constant `W` (the digits CNN on the
/// Cortex-M4: 583,000 → 553,000 instructions per inference against an index and a bounds
/// check per tap).
#[inline(always)]
fn gather<G: ConvGeometry2d, const IN: usize, const K: usize>(
    x: &[i8; IN],
    oh: usize,
    ow: usize,
    padding: i8,
    patch: &mut [i8; K],
) {
    // No division here: the Cortex-M0 has no divide instruction.
    let mut runs = patch.chunks_exact_mut(G::KW);
    for ci in 0..G::CI {
        for kh in 0..G::KH {
            let Some(taps) = runs.next() else {
                return;
            };
            // ih = oh·SH + kh·DH − PH, when it is in [0, H).
            let ih = (oh * G::SH + kh * G::DH).wrapping_sub(G::PH);
            if ih >= G::H {
                taps.fill(padding);
                continue;
            }
            let start = (ci * G::H + ih) * G::W;
            let row = &x[start..start + G::W];
            for (kw, tap) in taps.iter_mut().enumerate() {
                // iw = ow·SW + kw·DW − PW, when it is in [0, W).
                let iw = (ow * G::SW + kw * G::DW).wrapping_sub(G::PW);
                *tap = if iw < G::W { row[iw] } else { padding };
            }
        }
    }
}

/// [`MaxPool2d`](crate::layers::MaxPool2d) in int8: the largest `i8` of each window.
/// Quantization is monotone, so this is exact, and the output has the input's scale and zero
/// point (nothing to store: a zero-sized layer).
pub struct MaxPool2dQ8<const IN: usize, const OUT: usize, G>(PhantomData<G>);

impl<const IN: usize, const OUT: usize, G> MaxPool2dQ8<IN, OUT, G> {
    /// The layer (it has no parameters).
    pub const fn new() -> Self {
        MaxPool2dQ8(PhantomData)
    }
}

impl<const IN: usize, const OUT: usize, G> Default for MaxPool2dQ8<IN, OUT, G> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const IN: usize, const OUT: usize, G> Clone for MaxPool2dQ8<IN, OUT, G> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<const IN: usize, const OUT: usize, G> Copy for MaxPool2dQ8<IN, OUT, G> {}

impl<const IN: usize, const OUT: usize, G> PartialEq for MaxPool2dQ8<IN, OUT, G> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<const IN: usize, const OUT: usize, G> core::fmt::Debug for MaxPool2dQ8<IN, OUT, G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MaxPool2dQ8")
    }
}

impl<const IN: usize, const OUT: usize, G: PoolGeometry2d> MaxPool2dQ8<IN, OUT, G> {
    /// `y[c, oh, ow] = max_{kh, kw} x[c, oh·SH + kh, ow·SW + kw]`.
    #[inline]
    pub fn forward(&self, x: &[i8; IN]) -> [i8; OUT] {
        let mut y = [0; OUT];
        self.forward_into(x, &mut y);
        y
    }

    /// [`forward`](Self::forward) into `y`.
    pub fn forward_into(&self, x: &[i8; IN], y: &mut [i8; OUT]) {
        const { check_pool_sizes::<G, IN, OUT>() };
        let (in_plane, out_plane) = (G::H * G::W, G::OH * G::OW);
        let planes = x.chunks_exact(in_plane).zip(y.chunks_exact_mut(out_plane));
        for (x, y) in planes {
            for oh in 0..G::OH {
                for ow in 0..G::OW {
                    let first = oh * G::SH * G::W + ow * G::SW;
                    let mut best = i8::MIN;
                    for kh in 0..G::KH {
                        let row = first + kh * G::W;
                        for &v in &x[row..row + G::KW] {
                            best = best.max(v);
                        }
                    }
                    y[oh * G::OW + ow] = best;
                }
            }
        }
    }
}

/// The int8 form of a float layer: the type of its field in the int8 network `#[nn(int8)]`
/// generates (`<Conv2d<f32, ..> as Int8Form>::Q8` is a [`Conv2dQ8`] of the same sizes and
/// geometry).
pub trait Int8Form {
    /// The int8 layer.
    type Q8;
}

impl<T: Real, const IN: usize, const OUT: usize> Int8Form for Dense<T, IN, OUT> {
    type Q8 = super::DenseQ8<IN, OUT>;
}

impl<
    T: Real,
    const CO: usize,
    const K: usize,
    const NB: usize,
    const IN: usize,
    const OUT: usize,
    G,
> Int8Form for Conv2d<T, CO, K, NB, IN, OUT, G>
{
    type Q8 = Conv2dQ8<CO, K, IN, OUT, G>;
}

impl<T: Real, const IN: usize, const OUT: usize, G> Int8Form for MaxPool2d<T, IN, OUT, G> {
    type Q8 = MaxPool2dQ8<IN, OUT, G>;
}

#[cfg(test)]
mod tests {
    use super::super::Range;
    use super::super::dense::tests::{requantize_reference, splitmix};
    use super::*;
    use crate::Layer;
    use crate::layers::{Geometry2d, MaxPool2d, PoolGeometry2dOf};
    use nalgebra::SMatrix;

    fn random_conv<
        G: ConvGeometry2d,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
    >(
        seed: u64,
    ) -> Conv2d<f32, CO, K, NB, IN, OUT, G> {
        let mut state = seed;
        Conv2d::new(
            SMatrix::from_fn(|_, _| splitmix(&mut state)),
            SMatrix::from_fn(|_, _| 0.3 * splitmix(&mut state)),
        )
    }

    /// The convolution by another route: from the definition (every output, every tap,
    /// the padding tested in signed arithmetic and skipped), the unfolded sum `q_b + Σ q_w ·
    /// (q_x − Z_x)` in `i64`, with `q_b` recomputed from the float bias and the scale of the
    /// quantized weights.
    fn forward_reference<
        G: ConvGeometry2d,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
    >(
        layer: &Conv2d<f32, CO, K, NB, IN, OUT, G>,
        q: &Conv2dQ8<CO, K, IN, OUT, G>,
        x: &[i8; IN],
    ) -> [i8; OUT] {
        let mut y = [0; OUT];
        let zx = q.input.zero_point as i64;
        for co in 0..CO {
            let max_abs = (0..K)
                .map(|k| (layer.weight[(co, k)] as f64).abs())
                .fold(0.0, f64::max);
            let sw = if max_abs == 0.0 {
                1.0
            } else {
                (max_abs / 127.0) as f32
            };
            let b = if NB > 0 { layer.bias[co] as f64 } else { 0.0 };
            let qb = (b / (q.input.scale as f64 * sw as f64)).round() as i64;
            let m = Multiplier::new(q.input.scale as f64 * sw as f64 / q.output.scale as f64);
            for oh in 0..G::OH {
                for ow in 0..G::OW {
                    let mut acc = qb;
                    for ci in 0..G::CI {
                        for kh in 0..G::KH {
                            for kw in 0..G::KW {
                                let ih = (oh * G::SH + kh * G::DH) as isize - G::PH as isize;
                                let iw = (ow * G::SW + kw * G::DW) as isize - G::PW as isize;
                                if ih < 0 || iw < 0 || ih >= G::H as isize || iw >= G::W as isize {
                                    continue;
                                }
                                let k = (ci * G::KH + kh) * G::KW + kw;
                                let qw = (layer.weight[(co, k)] as f64 / sw as f64).round() as i64;
                                let xi = x[(ci * G::H + ih as usize) * G::W + iw as usize] as i64;
                                acc += qw * (xi - zx);
                            }
                        }
                    }
                    let v = q.output.zero_point as i64 + requantize_reference(acc, m);
                    y[(co * G::OH + oh) * G::OW + ow] = v.clamp(q.min as i64, 127) as i8;
                }
            }
        }
        y
    }

    /// The int8 layer against [`forward_reference`] on random inputs, and against the `f64`
    /// convolution of the dequantized input with the dequantized weights and bias (the
    /// dequantized grid: the int8 layer computes exactly this, then rounds once): within one
    /// output step, equal on all but a few near-ties.
    fn check<
        G: ConvGeometry2d,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
    >(
        seed: u64,
    ) {
        let layer = random_conv::<G, CO, K, NB, IN, OUT>(seed);
        let input = QuantParams::from_range(Range::new(-1.3, 0.9));
        let output = QuantParams::from_range(Range::new(-3.0, 4.0));
        for relu in [false, true] {
            let q = Conv2dQ8::quantize(&layer, input, output, relu).unwrap();
            // The f64 layer on the dequantized grid.
            let sw: [f64; CO] = core::array::from_fn(|co| {
                let max_abs = (0..K)
                    .map(|k| (layer.weight[(co, k)] as f64).abs())
                    .fold(0.0, f64::max);
                (max_abs / 127.0) as f32 as f64
            });
            let grid = Conv2d::<f64, CO, K, CO, IN, OUT, G>::new(
                SMatrix::from_fn(|co, k| q.weight[co][k] as f64 * sw[co]),
                SMatrix::from_fn(|co, _| {
                    let b = if NB > 0 { layer.bias[co] as f64 } else { 0.0 };
                    let bias_scale = input.scale as f64 * sw[co];
                    (b / bias_scale).round() * bias_scale
                }),
            );
            let (mut state, mut near) = (seed + 1, 0);
            for _ in 0..50 {
                let x: [i8; IN] =
                    core::array::from_fn(|_| (splitmix(&mut state) * 128.0).floor() as i8);
                let y = q.forward(&x);
                assert_eq!(y, forward_reference(&layer, &q, &x), "relu {relu}");
                let real = SMatrix::<f64, IN, 1>::from_fn(|i, _| {
                    input.scale as f64 * (x[i] as i64 - input.zero_point as i64) as f64
                });
                let mut exact = SMatrix::<f64, OUT, 1>::zeros();
                let mut scratch = std::vec![0.0; <Conv2d<f64, CO, K, CO, IN, OUT, G> as Layer<f64, IN, OUT>>::SCRATCH_PER_CALL];
                grid.forward::<1>(&(), &real, &mut exact, &mut scratch);
                for o in 0..OUT {
                    let r = exact[o] / output.scale as f64;
                    let expected =
                        (r.round() + output.zero_point as f64).clamp(q.min as f64, 127.0) as i64;
                    let diff = (y[o] as i64 - expected).abs();
                    assert!(diff <= 1, "output {o}: {} vs {expected} ({r})", y[o]);
                    near += diff as usize;
                }
            }
            assert!(near * 100 <= 50 * OUT, "{near} of {} differ", 50 * OUT);
        }
    }

    #[test]
    fn hand_worked_layer_with_padding() {
        // One channel of 1 × 2, kernel 1 × 2, padding 1 on the left and right: three outputs.
        // W = [1, −0.5], b = 0.1 (DenseQ8's hand-worked row 0): S_w = 1/127, q_w = [127, −64],
        // q_b = 1619, folded 1619 − (−1)(127 − 64) = 1682.
        type G = Geometry2d<1, 1, 2, 1, 2, 1, 1, 0, 1, 1, 1>;
        let layer = Conv2d::<f32, 1, 2, 1, 2, 3, G>::new(
            SMatrix::from_row_slice(&[1.0, -0.5]),
            SMatrix::from_row_slice(&[0.1]),
        );
        let input = QuantParams::from_range(Range::new(-1.0, 1.0));
        let output = QuantParams::from_range(Range::new(-2.0, 2.0));
        let q = Conv2dQ8::quantize(&layer, input, output, false).unwrap();
        assert_eq!(q.weight, [[127, -64]]);
        assert_eq!(q.bias, [1682]);
        // x = [0.5, −1] → [63, −128]; padding reads Z_x = −1.
        let x = [63, -128];
        // p = 0: [−1, 63]: 1682 − 127 − 64·63 = −2477; M = 1/254: −9.75 → −10, y = −11
        //   (real 0 − 0.25 + 0.1 = −0.15 ≈ −10 · 4/255 = −0.157).
        // p = 1: [63, −128]: 1682 + 127·63 + 64·128 = 17875 → 70.37 → 70, y = 69.
        // p = 2: [−128, −1]: 1682 − 127·128 + 64 = −14510 → −57.13 → −57, y = −58
        //   (real −1 + 0.1 = −0.9 ≈ −57 · 4/255 = −0.894).
        assert_eq!(q.forward(&x), [-11, 69, -58]);
        assert_eq!(q.forward(&x), forward_reference(&layer, &q, &x));
        // With a fused ReLU, the negative outputs clamp at Z_y = −1.
        let q = Conv2dQ8::quantize(&layer, input, output, true).unwrap();
        assert_eq!(q.forward(&x), [-1, 69, -1]);
    }

    #[test]
    fn several_channels_same_padding() {
        // 2 → 3 channels on 5 × 4, 3 × 3, padding 1 (the digits CNN's kind).
        check::<Geometry2d<2, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1>, 3, 18, 3, 40, 60>(1);
    }

    #[test]
    fn stride_padding_dilation() {
        // 3 → 4 channels on 7 × 6, kernel 3 × 2, stride (2, 1), padding (1, 2), dilation
        // (1, 2): OH = (7 + 2 − 2 − 1)/2 + 1 = 4, OW = (6 + 4 − 2 − 1)/1 + 1 = 8.
        check::<Geometry2d<3, 7, 6, 3, 2, 2, 1, 1, 2, 1, 2>, 4, 18, 4, 126, 128>(2);
    }

    /// [`gather`] reads what `for_each_tap` (the definition, tap by tap) says, `padding` in
    /// the padding, on geometries with stride, padding wider than the kernel's reach (rows and
    /// columns all padding), dilation and several channels.
    #[test]
    fn gather_reads_the_taps_of_the_definition() {
        fn check_gather<G: ConvGeometry2d, const IN: usize, const K: usize>() {
            let x: [i8; IN] = core::array::from_fn(|i| (i % 251) as i8 - 100);
            for p in 0..G::OH * G::OW {
                let mut patch = [0x55; K];
                gather::<G, IN, K>(&x, p / G::OW, p % G::OW, -7, &mut patch);
                crate::layers::for_each_tap::<G>(p, |k, index| {
                    assert_eq!(
                        patch[k],
                        index.map_or(-7, |i| x[i]),
                        "position {p}, tap {k}"
                    );
                });
            }
        }
        check_gather::<Geometry2d<2, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1>, 40, 18>();
        check_gather::<Geometry2d<3, 7, 6, 3, 2, 2, 1, 1, 2, 1, 2>, 126, 18>();
        check_gather::<Geometry2d<1, 6, 6, 2, 2, 2, 2, 0, 0, 1, 1>, 36, 4>();
        check_gather::<Geometry2d<2, 3, 4, 2, 3, 1, 2, 3, 2, 2, 1>, 24, 12>();
    }

    #[test]
    fn no_bias_stride_two() {
        // 1 → 2 channels on 6 × 6, 2 × 2, stride 2, no padding, no bias.
        check::<Geometry2d<1, 6, 6, 2, 2, 2, 2, 0, 0, 1, 1>, 2, 4, 0, 36, 18>(3);
    }

    #[test]
    fn bad_params_are_errors() {
        type G = Geometry2d<1, 3, 3, 3, 3, 1, 1, 0, 0, 1, 1>;
        let mut layer = random_conv::<G, 2, 9, 2, 9, 2>(4);
        let p = QuantParams::from_range(Range::new(-1.0, 1.0));
        let bad = QuantParams {
            scale: f32::NAN,
            zero_point: 0,
        };
        assert_eq!(
            Conv2dQ8::quantize(&layer, bad, p, false),
            Err(QuantError::BadParams)
        );
        layer.weight[(1, 4)] = f32::INFINITY;
        assert_eq!(
            Conv2dQ8::quantize(&layer, p, p, false),
            Err(QuantError::NotFinite { channel: 1 })
        );
    }

    #[test]
    fn max_pool_is_the_max_of_the_bytes() {
        // Two channels of 3 × 4, window 2 × 2, stride 2 × 1: [2, 1, 3].
        type G = PoolGeometry2dOf<2, 3, 4, 2, 2, 2, 1>;
        let pool = MaxPool2dQ8::<24, 6, G>::new();
        #[rustfmt::skip]
        let x: [i8; 24] = [
            -128, 5, -3, 7,
            -2, -128, 9, 0,
            100, 100, 100, 100,
            -128, -128, -128, -127,
            -128, -128, -128, -128,
            1, 2, 3, 4,
        ];
        assert_eq!(pool.forward(&x), [5, 9, 9, -128, -128, -127]);
        // Against the f64 pooling of the same values, on random inputs.
        type P = PoolGeometry2dOf<3, 7, 6, 3, 2, 2, 2>;
        let (pool, float) = (
            MaxPool2dQ8::<126, 27, P>::new(),
            MaxPool2d::<f64, 126, 27, P>::default(),
        );
        let mut state = 9;
        for _ in 0..100 {
            let x: [i8; 126] =
                core::array::from_fn(|_| (splitmix(&mut state) * 128.0).floor() as i8);
            let mut y = SMatrix::<f64, 27, 1>::zeros();
            float.forward::<1>(&(), &SMatrix::from_fn(|i, _| x[i] as f64), &mut y, &mut []);
            assert_eq!(pool.forward(&x).map(|v| v as f64), *y.as_slice());
        }
    }
}
