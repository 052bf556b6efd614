//! Affine per-tensor quantization of activations: `r = S · (q − Z)`, from a calibration range.

use super::fixed_point::round_half_away;

/// How a tensor of `i8` stands for real numbers: `r = scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantParams {
    /// `S > 0`.
    pub scale: f32,
    /// `Z` in `[−128, 127]`: the integer that stands for 0.
    pub zero_point: i32,
}

impl QuantParams {
    /// The parameters for values in `range` (TFLite's `ChooseQuantizationParams` for int8): the
    /// range widened to contain 0 (so that 0 — ReLU's floor — is exact),
    /// `S = (max − min) / 255`, `Z = clamp(round(−128 − min / S), −128, 127)`, computed in
    /// `f64` (`S` is then stored as `f32`, and `Z` computed from that `f32`). An empty range
    /// (`[0, 0]` after widening) gets `S = 1`.
    pub fn from_range(range: Range) -> QuantParams {
        let min = (range.min as f64).min(0.0);
        let max = (range.max as f64).max(0.0);
        if max - min == 0.0 {
            return QuantParams {
                scale: 1.0,
                zero_point: -128,
            };
        }
        let scale = ((max - min) / 255.0) as f32;
        let zero_point = round_half_away(-128.0 - min / scale as f64).clamp(-128.0, 127.0) as i32;
        QuantParams { scale, zero_point }
    }

    /// `clamp(round(r / S) + Z, −128, 127)`, in `f32` (for the inputs of a network: the one
    /// place an int8 network meets real numbers).
    #[inline]
    pub fn quantize(self, r: f32) -> i8 {
        let q = nalgebra::ComplexField::round(r / self.scale) + self.zero_point as f32;
        q.clamp(-128.0, 127.0) as i8
    }

    /// `S · (q − Z)`.
    #[inline]
    pub fn dequantize(self, q: i8) -> f32 {
        self.scale * (q as i32 - self.zero_point) as f32
    }
}

/// The smallest and largest value a node took over the calibration data (TFLite's default
/// calibration: min and max).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Smallest value seen.
    pub min: f32,
    /// Largest value seen.
    pub max: f32,
}

impl Range {
    /// The range of no values yet: `observe` widens it.
    pub const EMPTY: Range = Range {
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };

    /// `[min, max]`.
    pub const fn new(min: f32, max: f32) -> Range {
        Range { min, max }
    }

    /// Widens the range to contain every value of `values`.
    pub fn observe(&mut self, values: &[f32]) {
        for &v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_output_range_gives_zero_point_minus_128() {
        let p = QuantParams::from_range(Range::new(0.0, 2.55));
        assert_eq!(p.scale, (2.55f64 / 255.0) as f32);
        assert_eq!(p.zero_point, -128);
        assert_eq!(p.quantize(0.0), -128);
        assert_eq!(p.quantize(2.55), 127);
        assert_eq!(p.quantize(100.0), 127);
    }

    #[test]
    fn symmetric_range_and_widening() {
        // [−1, 1]: S = 2/255, Z = round(−128 + 127.5) = round(−0.5) = −1 (away from zero).
        let p = QuantParams::from_range(Range::new(-1.0, 1.0));
        assert_eq!(p.scale, (2.0f64 / 255.0) as f32);
        assert_eq!(p.zero_point, -1);
        // [1, 2] is widened to [0, 2]: 0 is exact.
        let p = QuantParams::from_range(Range::new(1.0, 2.0));
        assert_eq!(p.zero_point, -128);
        assert_eq!(p.dequantize(p.quantize(0.0)), 0.0);
        // [−3, −1] is widened to [−3, 0]: Z = 127.
        let p = QuantParams::from_range(Range::new(-3.0, -1.0));
        assert_eq!(p.zero_point, 127);
        assert_eq!(QuantParams::from_range(Range::new(0.0, 0.0)).scale, 1.0);
    }

    #[test]
    fn quantize_dequantize_is_within_half_a_step() {
        let p = QuantParams::from_range(Range::new(-0.7, 6.3));
        for i in 0..=700 {
            let r = -0.7 + i as f32 * 0.01;
            assert!(
                (p.dequantize(p.quantize(r)) - r).abs() <= p.scale * 0.5001,
                "{r}"
            );
        }
    }

    #[test]
    fn observe_widens() {
        let mut range = Range::EMPTY;
        range.observe(&[0.5, -2.0, 3.0]);
        range.observe(&[1.0]);
        assert_eq!(range, Range::new(-2.0, 3.0));
    }
}
