//! Fully connected int8 layer (TFLite's int8 `FullyConnected`): `i8` weights per output
//! channel, an `i32` accumulator, requantization to the output's scale, a fused ReLU clamp.

use super::{Multiplier, QuantParams, fixed_point::round_half_away};
use crate::Real;
use crate::layers::Dense;
use core::fmt;

/// Inputs per output above which an accumulator could overflow `i32`: each term of the
/// unfolded sum `q_w · (q_x − Z_x)` is at most `127 · 255` in magnitude, and `2^31 / (127 ·
/// 255) ≈ 66,313`. [`DenseQ8::forward`] refuses a wider layer at compile time.
pub const MAX_INPUTS: usize = 66_000;

/// A [`Dense`] layer in int8: `y = clamp(Z_y + M[c] · (b[c] + Σ_k W[c, k] · x[k]), lo, hi)`.
///
/// - `weight`: `[OUT][IN]`, PyTorch's `[out, in]` layout, row-major (each output's dot product
///   runs over contiguous bytes), symmetric per output channel (`W ≈ S_w[c] · q`, `q` in
///   `[−127, 127]`);
/// - `bias`: the real bias `round(b / (S_x · S_w[c]))` with the input's zero point folded in:
///   `q_b[c] − Z_x · Σ_k q_w[c, k]`, so that the inner loop is a plain `i8 · i8` dot product;
/// - `multiplier`: `M[c] = S_x · S_w[c] / S_y` as a [`Multiplier`];
/// - `min`, `max`: the output clamp, `[−128, 127]`, or `[Z_y, 127]` with a fused ReLU.
///
/// Plain arrays: `Copy`, and constructible in a `const` (so a `static` in flash; see
/// [`file`](crate::quant::file)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseQ8<const IN: usize, const OUT: usize> {
    /// Quantized weights, `[OUT][IN]`.
    pub weight: [[i8; IN]; OUT],
    /// Bias with the input's zero point folded in, per output.
    pub bias: [i32; OUT],
    /// Requantization multiplier, per output.
    pub multiplier: [Multiplier; OUT],
    /// The input's scale and zero point.
    pub input: QuantParams,
    /// The output's scale and zero point.
    pub output: QuantParams,
    /// Lowest output (`Z_y` with a fused ReLU, else −128).
    pub min: i8,
    /// Highest output (127).
    pub max: i8,
}

/// Why a float layer has no int8 form with the given scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// A weight or bias of output `channel` is NaN or infinite.
    NotFinite {
        /// The output channel.
        channel: usize,
    },
    /// A scale is not a positive finite number, or a zero point is outside `[−128, 127]`.
    BadParams,
    /// The bias of output `channel`, in units of `S_x · S_w`, with the largest possible dot
    /// product, does not fit an `i32`: the input's scale is too small for this bias.
    BiasTooLarge {
        /// The output channel.
        channel: usize,
    },
    /// The requantization multiplier of output `channel` is 256 or more (the output's scale
    /// is far smaller than the input's): the shifted accumulator could overflow.
    MultiplierTooLarge {
        /// The output channel.
        channel: usize,
    },
    /// Consecutive layers of a [`Chain`](super::Chain) disagree on the scale and zero point of
    /// the node between them.
    ParamsMismatch,
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantError::NotFinite { channel } => {
                write!(f, "a weight or bias of output {channel} is not finite")
            }
            QuantError::BadParams => f.write_str(
                "a scale is not positive and finite, or a zero point is outside [-128, 127]",
            ),
            QuantError::BiasTooLarge { channel } => write!(
                f,
                "the bias of output {channel} does not fit an i32 accumulator at this input scale"
            ),
            QuantError::MultiplierTooLarge { channel } => write!(
                f,
                "the requantization multiplier of output {channel} is 256 or more: widen the output's range"
            ),
            QuantError::ParamsMismatch => f.write_str(
                "consecutive layers quantize the node between them differently: give both the same range",
            ),
        }
    }
}

impl core::error::Error for QuantError {}

/// The scale of a weight row whose largest magnitude is `max_abs`: `max_abs / 127` (as
/// `f32`), 1 for a zero row. Shared with quantization-aware training
/// ([`QatDense`](super::QatDense)), so that it trains with the weights `quantize` gives.
pub(super) fn weight_scale(max_abs: f64) -> f32 {
    if max_abs == 0.0 {
        1.0
    } else {
        (max_abs / 127.0) as f32
    }
}

/// `clamp(round(w / S_w), −127, 127)`, half away from zero, in `f64`.
pub(super) fn quantize_weight(w: f64, scale: f32) -> f64 {
    round_half_away(w / scale as f64).clamp(-127.0, 127.0)
}

/// Checks that `params` are usable: a positive finite scale, a zero point in `[−128, 127]`.
pub(super) fn check_params(params: QuantParams) -> Result<(), QuantError> {
    let valid =
        params.scale.is_finite() && params.scale > 0.0 && (-128..=127).contains(&params.zero_point);
    if valid {
        Ok(())
    } else {
        Err(QuantError::BadParams)
    }
}

/// Post-training quantization of `CO` output channels of `K` weights each (a Dense layer's
/// rows, a convolution's `[ci, kh, kw]` kernels), shared by [`DenseQ8::quantize`] and
/// [`Conv2dQ8::quantize`](super::Conv2dQ8::quantize): symmetric per-channel weights, the
/// bias in units of `S_x · S_w[c]` with `Z_x` folded in, and the multipliers `S_x · S_w[c] /
/// S_y`, in `f64` (scales as `f32`).
pub(super) fn quantize_channels<const K: usize, const CO: usize>(
    weight: impl Fn(usize, usize) -> f64,
    bias: impl Fn(usize) -> f64,
    input: QuantParams,
    output: QuantParams,
    q_weight: &mut [[i8; K]; CO],
    q_bias: &mut [i32; CO],
    q_multiplier: &mut [Multiplier; CO],
) -> Result<(), QuantError> {
    check_params(input)?;
    check_params(output)?;
    for c in 0..CO {
        let mut max_abs = 0.0f64;
        for k in 0..K {
            let w = weight(c, k);
            if !w.is_finite() {
                return Err(QuantError::NotFinite { channel: c });
            }
            max_abs = max_abs.max(w.abs());
        }
        let weight_scale = weight_scale(max_abs);
        let mut row_sum = 0i64;
        for (k, q) in q_weight[c].iter_mut().enumerate() {
            *q = quantize_weight(weight(c, k), weight_scale) as i8;
            row_sum += *q as i64;
        }
        let bias = bias(c);
        if !bias.is_finite() {
            return Err(QuantError::NotFinite { channel: c });
        }
        let bias_scale = input.scale as f64 * weight_scale as f64;
        let qb = round_half_away(bias / bias_scale);
        // The accumulator is q_b + Σ q_w · (q_x − Z_x): keep it within i32 for any input.
        let bound = (i32::MAX as i64 - 127 * 255 * K as i64) as f64;
        if qb.abs() > bound {
            return Err(QuantError::BiasTooLarge { channel: c });
        }
        q_bias[c] = (qb as i64 - input.zero_point as i64 * row_sum) as i32;
        let m = bias_scale / output.scale as f64;
        if m >= 256.0 {
            return Err(QuantError::MultiplierTooLarge { channel: c });
        }
        q_multiplier[c] = Multiplier::new(m);
    }
    Ok(())
}

/// `acc + Σ_k w[k] · x[k]`, wrapping. Four products at a time (each at most 2^14 in
/// magnitude, so their sum fits): the loop's overhead is paid once per four (measured on the
/// Cortex-M4: 3.8 instructions per product against 6 one at a time).
#[inline(always)]
pub(super) fn dot<const N: usize>(w: &[i8; N], x: &[i8; N], mut acc: i32) -> i32 {
    let (x4, x_rest) = x.as_chunks::<4>();
    let (w4, w_rest) = w.as_chunks::<4>();
    for (w, v) in w4.iter().zip(x4) {
        let sum = w[0] as i32 * v[0] as i32
            + w[1] as i32 * v[1] as i32
            + w[2] as i32 * v[2] as i32
            + w[3] as i32 * v[3] as i32;
        acc = acc.wrapping_add(sum);
    }
    for (&w, &v) in w_rest.iter().zip(x_rest) {
        acc = acc.wrapping_add(w as i32 * v as i32);
    }
    acc
}

/// `clamp(Z_y + M · acc, min, max)`: the accumulator back to the output's scale.
#[inline(always)]
pub(super) fn requantize(
    acc: i32,
    multiplier: Multiplier,
    output: QuantParams,
    min: i8,
    max: i8,
) -> i8 {
    let v = output.zero_point.wrapping_add(multiplier.apply(acc));
    // `max` then `min`, not `clamp`, which panics for `min > max` (fields are public).
    v.max(min as i32).min(max as i32) as i8
}

impl<const IN: usize, const OUT: usize> DenseQ8<IN, OUT> {
    /// Post-training quantization of `layer` (TFLite's converter), all in `f64`:
    /// `S_w[c] = max_k |W[c, k]| / 127` (1 for a zero row), `q_w = round(W / S_w[c])`,
    /// `q_b = round(b / (S_x · S_w[c]))`, the folded bias, and `M[c] = S_x · S_w[c] / S_y`
    /// (scales as `f32`, as TFLite stores them). `relu`: fuse a ReLU after the layer (clamp
    /// at `Z_y`). `input` and `output` come from calibration
    /// ([`QuantParams::from_range`]).
    pub fn quantize<T: Real>(
        layer: &Dense<T, IN, OUT>,
        input: QuantParams,
        output: QuantParams,
        relu: bool,
    ) -> Result<Self, QuantError> {
        let mut q = DenseQ8 {
            weight: [[0; IN]; OUT],
            bias: [0; OUT],
            multiplier: [Multiplier { m0: 0, shift: 0 }; OUT],
            input,
            output,
            min: if relu { output.zero_point as i8 } else { -128 },
            max: 127,
        };
        quantize_channels(
            |c, k| layer.weight[(c, k)].to_f64(),
            |c| layer.bias[c].to_f64(),
            input,
            output,
            &mut q.weight,
            &mut q.bias,
            &mut q.multiplier,
        )?;
        Ok(q)
    }

    /// The layer on quantized input `x` (of scale and zero point [`input`](Self::input)):
    /// quantized output (of [`output`](Self::output)). Integers only; the arithmetic wraps
    /// (never panics) and, for a layer built by [`quantize`](Self::quantize), never overflows.
    #[inline]
    pub fn forward(&self, x: &[i8; IN]) -> [i8; OUT] {
        let mut y = [0; OUT];
        self.forward_into(x, &mut y);
        y
    }

    /// [`forward`](Self::forward) into `y` (every byte of `y` is written): what the
    /// generated `NetQ8::forward_in` calls, each layer writing into the workspace buffer its
    /// input is not in.
    #[inline]
    pub fn forward_into(&self, x: &[i8; IN], y: &mut [i8; OUT]) {
        const {
            assert!(
                IN <= MAX_INPUTS,
                "an int8 Dense layer has at most 66,000 inputs"
            )
        };
        for (c, out) in y.iter_mut().enumerate() {
            let acc = dot(&self.weight[c], x, self.bias[c]);
            *out = requantize(acc, self.multiplier[c], self.output, self.min, self.max);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::{Range, fixed_point::Multiplier};
    use super::*;
    use nalgebra::SMatrix;

    /// TFLite's requantization written from its definitions in `i64`: the doubling high
    /// multiplication as `floor((a·b + 2^30) / 2^31)` (half up), then the right shift as
    /// `sign · (|v| + 2^(e−1)) / 2^e` (half away from zero, by magnitudes).
    pub(in crate::quant) fn requantize_reference(acc: i64, m: Multiplier) -> i64 {
        let shifted = acc << m.shift.max(0);
        let ab = shifted * m.m0 as i64;
        let high = (ab + (1 << 30)).div_euclid(1 << 31);
        let e = (-m.shift).max(0);
        if e == 0 {
            high
        } else {
            high.signum() * ((high.abs() + (1 << (e - 1))) >> e)
        }
    }

    /// The layer by another route: the unfolded sum `q_b + Σ q_w · (q_x − Z_x)` in `i64`, the
    /// quantized weights and bias recomputed from the float layer.
    fn forward_reference<const IN: usize, const OUT: usize>(
        layer: &Dense<f32, IN, OUT>,
        q: &DenseQ8<IN, OUT>,
        x: &[i8; IN],
    ) -> [i8; OUT] {
        core::array::from_fn(|c| {
            let max_abs = (0..IN)
                .map(|k| (layer.weight[(c, k)] as f64).abs())
                .fold(0.0, f64::max);
            let sw = if max_abs == 0.0 {
                1.0
            } else {
                (max_abs / 127.0) as f32
            };
            let mut acc =
                (layer.bias[c] as f64 / (q.input.scale as f64 * sw as f64)).round() as i64;
            for (k, &xk) in x.iter().enumerate() {
                let qw = (layer.weight[(c, k)] as f64 / sw as f64).round() as i64;
                assert_eq!(qw, q.weight[c][k] as i64);
                acc += qw * (xk as i64 - q.input.zero_point as i64);
            }
            let m = Multiplier::new(q.input.scale as f64 * sw as f64 / q.output.scale as f64);
            assert_eq!(m, q.multiplier[c]);
            let y = q.output.zero_point as i64 + requantize_reference(acc, m);
            y.clamp(q.min as i64, 127) as i8
        })
    }

    pub(in crate::quant) fn splitmix(state: &mut u64) -> f32 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn random_layer<const IN: usize, const OUT: usize>(seed: u64) -> Dense<f32, IN, OUT> {
        let mut state = seed;
        Dense {
            weight: SMatrix::from_fn(|_, _| splitmix(&mut state)),
            bias: SMatrix::from_fn(|_, _| 0.3 * splitmix(&mut state)),
        }
    }

    #[test]
    fn hand_worked_layer() {
        // W = [[1, −0.5], [0.25, 0]], b = [0.1, −0.2]; x on [−1, 1] (S = 2/255, Z = −1);
        // y on [−2, 2] (S = 4/255, Z = −1).
        let layer = Dense::<f32, 2, 2> {
            weight: SMatrix::from_row_slice(&[1.0, -0.5, 0.25, 0.0]),
            bias: SMatrix::from_row_slice(&[0.1, -0.2]),
        };
        let input = QuantParams::from_range(Range::new(-1.0, 1.0));
        let output = QuantParams::from_range(Range::new(-2.0, 2.0));
        let q = DenseQ8::quantize(&layer, input, output, false).unwrap();
        // Row 0: S_w = 1/127, q_w = [127, −64] (−63.5 rounds away from zero).
        // Row 1: S_w = 0.25/127, q_w = [127, 0].
        assert_eq!(q.weight, [[127, -64], [127, 0]]);
        // q_b[0] = round(0.1 / (S_x · S_w[0])) = round(0.1 · 127 · 127.5) = round(1619.25) =
        // 1619, folded: 1619 − (−1)(127 − 64) = 1682. q_b[1] = round(−0.2 · 508 · 127.5) =
        // −12954, folded −12954 + 127 = −12827 (with the f32 scales, the same integers).
        assert_eq!(q.bias, [1682, -12827]);
        // x = [0.5, −1] → q_x = [round(63.75) − 1, −128] = [63, −128].
        let x = [input.quantize(0.5), input.quantize(-1.0)];
        assert_eq!(x, [63, -128]);
        // acc[0] = 1682 + 127·63 − 64·(−128) = 17875; M[0] = S_x·S_w/S_y = 1/254:
        // 17875/254 = 70.37 → 70, y = −1 + 70 = 69 (real 1.0 + 0.1 = 1.1 ≈ 70·4/255 = 1.098).
        // acc[1] = −12827 + 127·63 = −4826; M[1] = 1/1016: −4.75 → −5, y = −6.
        assert_eq!(q.forward(&x), [69, -6]);
        assert_eq!(q.forward(&x), forward_reference(&layer, &q, &x));
    }

    #[test]
    fn fused_relu_clamps_at_the_zero_point() {
        let layer = Dense::<f32, 1, 2> {
            weight: SMatrix::from_row_slice(&[1.0, -1.0]),
            bias: SMatrix::zeros(),
        };
        let input = QuantParams::from_range(Range::new(0.0, 1.0));
        let output = QuantParams::from_range(Range::new(-1.0, 1.0));
        let q = DenseQ8::quantize(&layer, input, output, true).unwrap();
        let y = q.forward(&[127]);
        assert_eq!(y[1], output.zero_point as i8);
        assert!((output.dequantize(y[0]) - 1.0).abs() < 0.01);
    }

    #[test]
    fn equals_an_i64_reference_exactly() {
        let layer = random_layer::<24, 7>(5);
        let input = QuantParams::from_range(Range::new(-1.3, 0.9));
        let output = QuantParams::from_range(Range::new(-3.0, 4.0));
        for relu in [false, true] {
            let q = DenseQ8::quantize(&layer, input, output, relu).unwrap();
            let mut state = 77;
            for _ in 0..2000 {
                let x: [i8; 24] =
                    core::array::from_fn(|_| (splitmix(&mut state) * 128.0).floor() as i8);
                let expected = forward_reference(&layer, &q, &x);
                assert_eq!(q.forward(&x), expected);
                // forward_into overwrites whatever `y` held.
                let mut y = [0x55; 7];
                q.forward_into(&x, &mut y);
                assert_eq!(y, expected);
            }
        }
    }

    #[test]
    fn close_to_the_f32_layer() {
        // The error is a few output steps: the input's and output's rounding, the weights'.
        let layer = random_layer::<16, 16>(8);
        let input = QuantParams::from_range(Range::new(-1.0, 1.0));
        let output = QuantParams::from_range(Range::new(-6.0, 6.0));
        let q = DenseQ8::quantize(&layer, input, output, false).unwrap();
        let mut state = 1;
        let mut worst = 0.0f32;
        for _ in 0..500 {
            let x = SMatrix::<f32, 16, 1>::from_fn(|_, _| splitmix(&mut state));
            let exact = layer.weight * x + layer.bias;
            let qx: [i8; 16] = core::array::from_fn(|k| input.quantize(x[k]));
            let y = q.forward(&qx);
            for c in 0..16 {
                worst = worst.max((output.dequantize(y[c]) - exact[c]).abs());
            }
        }
        assert!(
            worst < 3.0 * output.scale,
            "{worst} vs step {}",
            output.scale
        );
        assert!(worst > 0.0);
    }

    #[test]
    fn bad_layers_and_params_are_errors() {
        let mut layer = random_layer::<3, 2>(1);
        let p = QuantParams::from_range(Range::new(-1.0, 1.0));
        let bad = QuantParams {
            scale: 0.0,
            zero_point: 0,
        };
        assert_eq!(
            DenseQ8::quantize(&layer, bad, p, false),
            Err(QuantError::BadParams)
        );
        let tiny = QuantParams {
            scale: 1e-12,
            zero_point: 0,
        };
        assert_eq!(
            DenseQ8::quantize(&layer, p, tiny, false),
            Err(QuantError::MultiplierTooLarge { channel: 0 })
        );
        layer.bias[1] = 1e9;
        assert_eq!(
            DenseQ8::quantize(&layer, p, p, false),
            Err(QuantError::BiasTooLarge { channel: 1 })
        );
        layer.weight[(1, 2)] = f32::NAN;
        assert_eq!(
            DenseQ8::quantize(&layer, p, p, false),
            Err(QuantError::NotFinite { channel: 1 })
        );
    }

    #[test]
    fn zero_row_gets_scale_one() {
        let layer = Dense::<f32, 2, 1> {
            weight: SMatrix::zeros(),
            bias: SMatrix::from_row_slice(&[0.5]),
        };
        let p = QuantParams::from_range(Range::new(-1.0, 1.0));
        let q = DenseQ8::quantize(&layer, p, p, false).unwrap();
        assert_eq!(q.weight, [[0, 0]]);
        assert!((p.dequantize(q.forward(&[5, -9])[0]) - 0.5).abs() <= p.scale);
    }
}
