//! The exact integer arithmetic of TensorFlow Lite's int8 kernels (gemmlowp's fixed-point
//! functions): a real multiplier `M` as a Q0.31 integer and a power of two, and the product of
//! an `i32` accumulator with it, rounded the same way on every machine.
//!
//! The formulas are those of gemmlowp's `fixedpoint.h` and TFLite's `quantization_util.cc`;
//! the rounding is theirs: half up (toward +∞) in the doubling high multiplication, half away
//! from zero in the division by a power of two.

/// `floor(a·b / 2^31 + 1/2)`, the nearest integer with ties rounded up (toward +∞: −3.5 → −3)
/// (gemmlowp's `SaturatingRoundingDoublingHighMul`): the high half of the doubled product. The one product that overflows, `i32::MIN · i32::MIN`,
/// saturates to `i32::MAX`.
#[inline]
pub const fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    // gemmlowp writes `(ab + nudge) / 2^31` with `/` truncating toward zero and a nudge of
    // `2^30` for `ab >= 0`, `1 − 2^30` below: for `ab < 0`, with `u = −ab`, that is
    // `−floor((u + 2^30 − 1) / 2^31) = −ceil((u − 2^30) / 2^31) = floor((ab + 2^30) / 2^31)`.
    // So one floor (an arithmetic shift) does for both signs, without the sign test
    // (`gemmlowp_nudge_formula_is_one_floor` checks the two agree).
    ((ab + (1 << 30)) >> 31) as i32
}

/// `round(x / 2^exponent)`, ties away from zero, for `exponent` in `0..=31` (gemmlowp's
/// `RoundingDivideByPOT`); a larger exponent is taken as 31.
#[inline]
pub const fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    let exponent = if exponent > 31 { 31 } else { exponent };
    let mask = ((1u32 << exponent) - 1) as i32;
    let remainder = x & mask;
    // A negative `x` rounds away from zero on a tie too: its threshold is one higher.
    let threshold = (mask >> 1) + (x < 0) as i32;
    (x >> exponent) + (remainder > threshold) as i32
}

/// A real multiplier `M = m0 · 2^(shift − 31)` with `m0` in `[2^30, 2^31)` (or 0 for `M = 0`):
/// TFLite's `(quantized_multiplier, shift)` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Multiplier {
    /// The significand, Q0.31: `m0 / 2^31` in `[0.5, 1)`.
    pub m0: i32,
    /// The power of two: positive shifts left before the multiplication, negative right after.
    pub shift: i32,
}

impl Multiplier {
    /// `M` as `m0 · 2^(shift − 31)` (TFLite's `QuantizeMultiplier`): `m0 = round(q · 2^31)` where
    /// `M = q · 2^shift`, `q` in `[0.5, 1)`; if the rounding reaches `2^31`, it is halved and the
    /// shift grows by one. A multiplier below `2^−32` (which would shift by more than 31) is 0.
    /// `M` must be finite and not negative (a ratio of scales).
    pub fn new(m: f64) -> Multiplier {
        debug_assert!(m.is_finite() && m >= 0.0);
        if m == 0.0 {
            return Multiplier { m0: 0, shift: 0 };
        }
        let (q, mut shift) = frexp(m);
        let mut q_fixed = round_half_away(q * (1u64 << 31) as f64) as i64;
        if q_fixed == 1 << 31 {
            q_fixed /= 2;
            shift += 1;
        }
        if shift < -31 {
            return Multiplier { m0: 0, shift: 0 };
        }
        Multiplier {
            m0: q_fixed as i32,
            shift,
        }
    }

    /// The real number this represents, `m0 · 2^(shift − 31)`.
    pub fn value(self) -> f64 {
        self.m0 as f64 * pow2(self.shift - 31)
    }

    /// `round(acc · M)` in integers (TFLite's `MultiplyByQuantizedMultiplier`): a left shift for
    /// a positive `shift` (wrapping, as TFLite's; the int8 layers keep `M < 2^8` so that an
    /// accumulator never overflows it in practice), the doubling high multiplication, then a
    /// rounding right shift for a negative one.
    #[inline]
    pub const fn apply(self, acc: i32) -> i32 {
        if self.shift > 0 {
            saturating_rounding_doubling_high_mul(acc.wrapping_shl(self.shift as u32), self.m0)
        } else {
            rounding_divide_by_pot(
                saturating_rounding_doubling_high_mul(acc, self.m0),
                self.shift.unsigned_abs(),
            )
        }
    }
}

/// Rounding half away from zero (`f64::round`, TFLite's `TfLiteRound`), also without `std`.
pub(crate) fn round_half_away(x: f64) -> f64 {
    nalgebra::ComplexField::round(x)
}

/// `2^e` for `e` in the range of `f64`'s normal numbers.
fn pow2(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// `x = q · 2^e` with `q` in `[0.5, 1)` (C's `frexp`), for a finite positive `x`; subnormal
/// `x` (below `2^−1022`) are scaled first.
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    if exponent == 0 {
        let (q, e) = frexp(x * pow2(64));
        return (q, e - 64);
    }
    // Replace the exponent with that of [0.5, 1): 1022.
    let q = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (q, exponent - 1022)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same functions in `i128`, from their definitions: `floor(a·b / 2^31 + 1/2)` (an
    /// arithmetic shift is a floor), saturated.
    fn srdhm_reference(a: i32, b: i32) -> i32 {
        let ab = a as i128 * b as i128;
        ((ab + (1 << 30)) >> 31).clamp(i32::MIN as i128, i32::MAX as i128) as i32
    }

    fn rdbpot_reference(x: i32, e: u32) -> i32 {
        if e == 0 {
            return x;
        }
        let x = x as i128;
        let magnitude = (x.abs() + (1 << (e - 1))) >> e;
        (if x < 0 { -magnitude } else { magnitude }) as i32
    }

    /// A small deterministic generator (SplitMix64) for the random arguments.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn doubling_high_mul_worked_values() {
        // 2^30 · 2^30 · 2 / 2^32 = 2^29.
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        // i32::MIN · i32::MAX / 2^31 = −(2^31 − 1): exact.
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX),
            -i32::MAX
        );
        // 3 · 2^30 / 2^31 = 1.5 → 2; −1.5 → −1 (ties up); 0.5 → 1; −0.5 → 0; −1.75 → −2.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(-7, 1 << 29), -2);
        // 0.25 → 0.
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 29), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(0, i32::MIN), 0);
    }

    /// gemmlowp's formula as written, with its sign-dependent nudge and `/` toward zero.
    fn srdhm_gemmlowp(a: i32, b: i32) -> i32 {
        if a == i32::MIN && b == i32::MIN {
            return i32::MAX;
        }
        let ab = a as i64 * b as i64;
        let nudge = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
        ((ab + nudge) / (1i64 << 31)) as i32
    }

    #[test]
    fn gemmlowp_nudge_formula_is_one_floor() {
        let mut state = 21;
        for n in 0..1_000_000 {
            let a = splitmix(&mut state) as i32;
            // Ties and their neighbours: b a power of two, so a·b/2^31 ends in .5 often.
            let b = match n % 3 {
                0 => splitmix(&mut state) as i32,
                1 => 1 << (splitmix(&mut state) % 31),
                _ => (splitmix(&mut state) % 7) as i32 - 3,
            };
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                srdhm_gemmlowp(a, b),
                "srdhm({a}, {b})"
            );
        }
        for (a, b) in [
            (i32::MIN, i32::MIN),
            (i32::MIN, i32::MAX),
            (i32::MAX, i32::MAX),
            (-1, 1 << 30),
            (-3, 1 << 30),
            (i32::MIN, 1),
        ] {
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                srdhm_gemmlowp(a, b)
            );
        }
    }

    #[test]
    fn divide_by_pot_worked_values() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(-4, 1), -2);
        assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5 → 2
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // −1.5 → −2
        assert_eq!(rounding_divide_by_pot(-7, 2), -2); // −1.75 → −2
        assert_eq!(rounding_divide_by_pot(-5, 2), -1); // −1.25 → −1
        // exponent 0 is the identity; 31 maps to −1, 0 or 1.
        assert_eq!(rounding_divide_by_pot(i32::MIN, 0), i32::MIN);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 0), i32::MAX);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(1 << 30, 31), 1); // 0.5 → 1
        assert_eq!(rounding_divide_by_pot((1 << 30) - 1, 31), 0);
        assert_eq!(rounding_divide_by_pot(-(1 << 30), 31), -1);
        // Beyond the contract: 40 is taken as 31, no panic.
        assert_eq!(rounding_divide_by_pot(i32::MIN, 40), -1);
    }

    #[test]
    fn integer_functions_equal_an_i128_evaluation_on_random_arguments() {
        let mut state = 14;
        for n in 0..1_000_000 {
            let a = splitmix(&mut state) as i32;
            // Some small arguments too, where the rounding decides more often.
            let b = if n % 2 == 0 {
                splitmix(&mut state) as i32
            } else {
                (splitmix(&mut state) % 2001) as i32 - 1000
            };
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                srdhm_reference(a, b),
                "srdhm({a}, {b})"
            );
            let e = (splitmix(&mut state) % 32) as u32;
            assert_eq!(
                rounding_divide_by_pot(a, e),
                rdbpot_reference(a, e),
                "rdbpot({a}, {e})"
            );
            assert_eq!(
                rounding_divide_by_pot(b, e),
                rdbpot_reference(b, e),
                "rdbpot({b}, {e})"
            );
        }
    }

    #[test]
    fn quantize_multiplier_worked_values() {
        assert_eq!(
            Multiplier::new(0.5),
            Multiplier {
                m0: 1 << 30,
                shift: 0
            }
        );
        assert_eq!(
            Multiplier::new(0.25),
            Multiplier {
                m0: 1 << 30,
                shift: -1
            }
        );
        assert_eq!(
            Multiplier::new(0.75),
            Multiplier {
                m0: 1_610_612_736,
                shift: 0
            }
        );
        assert_eq!(
            Multiplier::new(1.0),
            Multiplier {
                m0: 1 << 30,
                shift: 1
            }
        );
        assert_eq!(
            Multiplier::new(3.0),
            Multiplier {
                m0: 1_610_612_736,
                shift: 2
            }
        );
        assert_eq!(Multiplier::new(0.0), Multiplier { m0: 0, shift: 0 });
        // Just below 1: q·2^31 rounds up to 2^31, so it becomes 2^30 with the shift one up.
        assert_eq!(
            Multiplier::new(1.0 - 1e-12),
            Multiplier {
                m0: 1 << 30,
                shift: 1
            }
        );
        // 2^−31 is representable (shift −30); 2^−40 shifts by more than 31: zero.
        assert_eq!(
            Multiplier::new(pow2(-31)),
            Multiplier {
                m0: 1 << 30,
                shift: -30
            }
        );
        assert_eq!(Multiplier::new(pow2(-40)), Multiplier { m0: 0, shift: 0 });
        // A subnormal is zero too.
        assert_eq!(
            Multiplier::new(f64::MIN_POSITIVE / 4.0),
            Multiplier { m0: 0, shift: 0 }
        );
    }

    #[test]
    fn quantize_multiplier_is_within_half_a_unit() {
        let mut state = 3;
        for _ in 0..100_000 {
            // M in [2^−20, 2^8).
            let unit = (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            let m = pow2(-20) * pow2((unit * 28.0) as i32) * (1.0 + unit);
            let q = Multiplier::new(m);
            assert!((1 << 30..=i32::MAX).contains(&q.m0), "{m}: {q:?}");
            // |m0 − q·2^31| <= 1/2, in units of 2^(shift − 31).
            assert!(
                (q.value() - m).abs() <= 0.5 * pow2(q.shift - 31),
                "{m}: {q:?}"
            );
        }
    }

    #[test]
    fn frexp_matches_definition() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(frexp(f64::MIN_POSITIVE), (0.5, -1021));
        assert_eq!(frexp(f64::MIN_POSITIVE / 2.0), (0.5, -1022));
    }

    #[test]
    fn multiply_by_quantized_multiplier_worked_values() {
        // M = 0.5 (m0 = 2^30, no shift): the high multiplication rounds 3.5 → 4, −3.5 → −3.
        let half = Multiplier::new(0.5);
        assert_eq!(half.apply(7), 4);
        assert_eq!(half.apply(-7), -3);
        // M = 0.25 (m0 = 2^30, right shift 1): the high multiplication is exact for even
        // accumulators, the shift rounds away from zero: 6 · 0.25 = 1.5 → 2; −6 → −2; 5: 2.5 →
        // 3, then 1.5 → 2 (two roundings: the exact 1.25 would give 1).
        let quarter = Multiplier::new(0.25);
        assert_eq!(quarter.apply(6), 2);
        assert_eq!(quarter.apply(5), 2);
        assert_eq!(quarter.apply(-6), -2);
        // M = 3 (left shift 2): 100 · 3 = 300.
        assert_eq!(Multiplier::new(3.0).apply(100), 300);
        // M = 0.1 (m0 = round(0.8 · 2^31) = 1717986918, shift −3): 1000 · 0.1 = 100.
        let tenth = Multiplier::new(0.1);
        assert_eq!(
            tenth,
            Multiplier {
                m0: 1_717_986_918,
                shift: -3
            }
        );
        assert_eq!(tenth.apply(1000), 100);
        assert_eq!(tenth.apply(-15), -2); // −1.5 → −2
        assert_eq!(tenth.apply(14), 1);
    }

    #[test]
    fn multiply_by_quantized_multiplier_equals_the_rounded_product_mostly() {
        // Two roundings (the high multiplication, then the shift) can differ from one rounding
        // of the exact product by one; never by more.
        let mut state = 9;
        for _ in 0..100_000 {
            let acc = (splitmix(&mut state) % 2_000_001) as i32 - 1_000_000;
            let unit = (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            let q = Multiplier::new(pow2(-16) + unit);
            let exact = round_half_away(acc as f64 * q.value());
            assert!((q.apply(acc) as f64 - exact).abs() <= 1.0, "{acc} · {q:?}");
        }
    }
}
