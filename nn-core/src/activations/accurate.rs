//! `tanh` and the logistic sigmoid for `f32`, correctly rounded but for at most one unit in the
//! last place (checked on every `f32` input), and vectorisable: no calls, no branches, only
//! `+ − × ÷`, comparisons and bit operations, so that a layer's loop runs them several
//! lanes at a time. The exact [`Tanh`](super::Tanh) and [`Sigmoid`](super::Sigmoid) use them
//! for `f32` (through [`Real::tanh_accurate`](crate::Real::tanh_accurate) and
//! [`Real::sigmoid_accurate`](crate::Real::sigmoid_accurate)); `f64` keeps libm's.
//!
//! Method: the `f32` input is widened to `f64` and the function is computed there with a
//! relative error below 10⁻⁹ — `eᶻ` or `eᶻ − 1` as `2ⁿ·(1 + p(r))` with `z = n·ln 2 + r`,
//! `|r| ≤ ½ln 2` (Cody–Waite reduction, `ln 2` in two parts) and `p` the degree-8 Taylor
//! polynomial of `eʳ − 1` (truncation below 6·10⁻¹⁰ relative; evaluated by Estrin's scheme); then
//! `tanh x = sign(x)·t/(t + 2)` with `t = e^{2|x|} − 1` (no cancellation for small `|x|`)
//! and `σ(x) = 1/(1 + e⁻ˣ)` (no overflow: `x` is clamped where the `f32` result is already
//! saturated). Rounding that to `f32` adds half an ulp, so the result is within
//! `0.5 + 2²⁴·10⁻⁹ < 0.52` ulp of the true value: the correctly rounded `f32` or its
//! neighbour. The test `accurate_activations_on_every_f32` (release mode, `--ignored`)
//! checks all 2³² inputs against `f64` references rounded to `f32`.

/// `1.5·2⁵²`: adding it rounds an `f64` of magnitude below 2⁵¹ to an integer, which then sits
/// in the low bits of the sum.
const ROUND_SHIFT: f64 = 6_755_399_441_055_744.0;
/// `ln 2` in two parts: `n·LN2_HI` is exact for `|n| < 2²⁰`.
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// `(2ⁿ, eʳ − 1)` with `z = n·ln 2 + r`, `|r| ≤ ½ln 2`, for `|z| ≤ 700` (`2ⁿ` is a normal
/// number): `eᶻ = 2ⁿ·(1 + p)`, `eᶻ − 1 = 2ⁿ·p + (2ⁿ − 1)`.
#[inline(always)]
fn exp_parts(z: f64) -> (f64, f64) {
    let shifted = z * core::f64::consts::LOG2_E + ROUND_SHIFT;
    let n = shifted - ROUND_SHIFT;
    let r = (z - n * LN2_HI) - n * LN2_LO;
    // eʳ − 1 = r·(1 + r/2! + … + r⁷/8!), the degree-7 factor by Estrin's scheme: pairs
    // `a + b·r`, then `+ ·r²`, then `+ ·r⁴` (a chain of 4 multiply-adds where Horner's has 8:
    // a layer of 16 values is one AVX-512 vector, whose time is this chain's latency).
    let r2 = r * r;
    let r4 = r2 * r2;
    let a0 = 1.0 + r * 0.5;
    let a1 = 1.0 / 6.0 + r * (1.0 / 24.0);
    let a2 = 1.0 / 120.0 + r * (1.0 / 720.0);
    let a3 = 1.0 / 5_040.0 + r * (1.0 / 40_320.0);
    let b0 = a0 + r2 * a1;
    let b1 = a2 + r2 * a3;
    let p = (b0 + r4 * b1) * r;
    // 2ⁿ from n's low bits (two's complement in the sum's mantissa) in the exponent field.
    let scale = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
    (scale, p)
}

/// `tanh(x)` within one ulp of the correctly rounded `f32` (every input checked), vectorisable.
/// NaN gives NaN, `±∞` gives `±1`, `−0` gives `−0`.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let wide = x as f64;
    // |x| ≥ 9.01 gives ±1 in f32; the clamp keeps e^{2|x|} finite (comparison: NaN passes).
    let a = wide.abs();
    let a = if a > 20.0 { 20.0 } else { a };
    let (scale, p) = exp_parts(2.0 * a);
    let t = scale * p + (scale - 1.0);
    (t / (t + 2.0)).copysign(wide) as f32
}

/// `eˣ` within one ulp of the correctly rounded `f32` (every input checked, subnormal results
/// included), vectorisable: softmax's exponential without a call per value. NaN gives NaN,
/// `+∞` gives `+∞` (as does every `x` above 88.72), `−∞` gives 0.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // eˣ overflows f32 above 88.73 and rounds to 0 below −103.98; the clamp keeps the f64
    // computation in range (`clamp` keeps NaN).
    let z = (x as f64).clamp(-110.0, 90.0);
    let (scale, p) = exp_parts(z);
    (scale + scale * p) as f32
}

/// `σ(x) = 1/(1 + e⁻ˣ)` within one ulp of the correctly rounded `f32` (every input checked,
/// subnormal results included), vectorisable. NaN gives NaN, `+∞` gives 1, `−∞` gives 0.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    let z = -(x as f64);
    // σ rounds to 1 above 17 and to 0 below −104 in f32; the clamp keeps e⁻ˣ finite.
    // (`clamp` keeps NaN.)
    let z = z.clamp(-110.0, 110.0);
    let (scale, p) = exp_parts(z);
    (1.0 / (1.0 + (scale + scale * p))) as f32
}

/// `y[i] = tanh_f32(x[i])` over a layer's values: the same bits as [`tanh_f32`] element by
/// element, in 8-lane `f64` vectors on a CPU with AVX-512, 4-lane ones with AVX2 (the loop
/// is otherwise compiled for the baseline: two lanes on x86-64's SSE2).
///
/// # Panics
/// If the slices' lengths differ.
#[inline(always)]
pub(crate) fn tanh_f32_slice(x: &[f32], y: &mut [f32]) {
    assert_eq!(
        x.len(),
        y.len(),
        "tanh_f32_slice: slices of different lengths"
    );
    #[cfg(target_arch = "x86_64")]
    if x.len() >= LANES {
        if crate::kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { wide::tanh(x, y) };
        }
        if crate::kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { wide::tanh_avx2(x, y) };
        }
    }
    tanh_f32_baseline(x, y);
}

/// The baseline loop of [`tanh_f32_slice`]: out of line on x86-64, where the passes that
/// inline [`tanh_f32_slice`] (those compiled for AVX-512 or AVX2) run the wide loop instead;
/// inlined elsewhere (no wide loop: the only one, specialised to the layer's length).
#[cfg_attr(target_arch = "x86_64", inline(never))]
#[cfg_attr(not(target_arch = "x86_64"), inline(always))]
fn tanh_f32_baseline(x: &[f32], y: &mut [f32]) {
    map(x, y, tanh_f32);
}

/// `y[i] = sigmoid_f32(x[i])`, as [`tanh_f32_slice`].
///
/// # Panics
/// If the slices' lengths differ.
#[inline(always)]
pub(crate) fn sigmoid_f32_slice(x: &[f32], y: &mut [f32]) {
    assert_eq!(
        x.len(),
        y.len(),
        "sigmoid_f32_slice: slices of different lengths"
    );
    #[cfg(target_arch = "x86_64")]
    if x.len() >= LANES {
        if crate::kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { wide::sigmoid(x, y) };
        }
        if crate::kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { wide::sigmoid_avx2(x, y) };
        }
    }
    sigmoid_f32_baseline(x, y);
}

/// The baseline loop of [`sigmoid_f32_slice`]: out of line on x86-64, where the passes that
/// inline [`sigmoid_f32_slice`] (those compiled for AVX-512 or AVX2) run the wide loop instead;
/// inlined elsewhere (no wide loop: the only one, specialised to the layer's length).
#[cfg_attr(target_arch = "x86_64", inline(never))]
#[cfg_attr(not(target_arch = "x86_64"), inline(always))]
fn sigmoid_f32_baseline(x: &[f32], y: &mut [f32]) {
    map(x, y, sigmoid_f32);
}

/// `x[i] = exp_f32(x[i])` in place, as [`tanh_f32_slice`] (the same bits as [`exp_f32`]
/// value by value, in wider vectors): the exponentials of a batch's softmax in one pass.
#[inline(always)]
pub(crate) fn exp_f32_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if x.len() >= LANES {
        if crate::kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { wide::exp(x) };
        }
        if crate::kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { wide::exp_avx2(x) };
        }
    }
    exp_f32_baseline(x);
}

/// The baseline loop of [`exp_f32_in_place`], placed as [`tanh_f32_baseline`].
#[cfg_attr(target_arch = "x86_64", inline(never))]
#[cfg_attr(not(target_arch = "x86_64"), inline(always))]
fn exp_f32_baseline(x: &mut [f32]) {
    map_in_place(x, exp_f32);
}

/// Below this many values a slice stays on the baseline loop (one AVX-512 vector of `f64`,
/// two of AVX2).
#[cfg(target_arch = "x86_64")]
const LANES: usize = 8;

#[inline(always)]
fn map(x: &[f32], y: &mut [f32], f: impl Fn(f32) -> f32) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = f(x);
    }
}

#[inline(always)]
fn map_in_place(x: &mut [f32], f: impl Fn(f32) -> f32) {
    for x in x {
        *x = f(*x);
    }
}

/// The slice loops compiled for AVX-512 and for AVX2: the same operations in the same order
/// (Rust fuses no multiply-add), so the same results, in wider vectors. `#[inline]`: in the
/// passes a small network compiles for the same features they are inlined (the layer's
/// length known, the loop unrolled), elsewhere called.
#[cfg(target_arch = "x86_64")]
mod wide {
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn tanh(x: &[f32], y: &mut [f32]) {
        super::map(x, y, super::tanh_f32);
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn sigmoid(x: &[f32], y: &mut [f32]) {
        super::map(x, y, super::sigmoid_f32);
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn exp(x: &mut [f32]) {
        super::map_in_place(x, super::exp_f32);
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn exp_avx2(x: &mut [f32]) {
        super::map_in_place(x, super::exp_f32);
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn tanh_avx2(x: &[f32], y: &mut [f32]) {
        super::map(x, y, super::tanh_f32);
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn sigmoid_avx2(x: &[f32], y: &mut [f32]) {
        super::map(x, y, super::sigmoid_f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Distance in units in the last place between two `f32` of the same sign (or zeros).
    fn ulps(a: f32, b: f32) -> u32 {
        // Map the bit patterns to a monotonic integer line (negatives mirrored).
        let line = |v: f32| {
            let bits = v.to_bits() as i64;
            if bits < 0x8000_0000 {
                bits
            } else {
                0x8000_0000 - bits
            }
        };
        (line(a) - line(b)).unsigned_abs() as u32
    }

    /// The `f64` references, rounded to `f32`: correctly rounded but for double-rounding
    /// cases (a `f64` error of 10⁻¹⁶ next to a tie: none measurable here).
    fn tanh_reference(x: f32) -> f32 {
        (x as f64).tanh() as f32
    }
    fn sigmoid_reference(x: f32) -> f32 {
        (1.0 / (1.0 + (-(x as f64)).exp())) as f32
    }
    fn exp_reference(x: f32) -> f32 {
        (x as f64).exp() as f32
    }

    /// The largest ulp distance from the reference over the inputs with bit patterns
    /// `first..=last`, and an input where it occurs.
    fn worst(f: fn(f32) -> f32, reference: fn(f32) -> f32, first: u32, last: u32) -> (u32, f32) {
        let mut worst = (0, 0.0);
        for bits in first..=last {
            let x = f32::from_bits(bits);
            let (got, want) = (f(x), reference(x));
            if want.is_nan() {
                assert!(got.is_nan(), "{x:e}: {got:e}");
                continue;
            }
            let d = ulps(got, want);
            if d > worst.0 {
                worst = (d, x);
            }
        }
        worst
    }

    #[test]
    fn special_values() {
        assert!(tanh_f32(f32::NAN).is_nan());
        assert!(sigmoid_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh_f32(0.0).to_bits(), 0);
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert_eq!(sigmoid_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid_f32(0.0), 0.5);
        // The smallest subnormal: tanh(x) = x; σ(−103) is subnormal, σ(−104) rounds to 0.
        let tiny = f32::from_bits(1);
        assert_eq!(tanh_f32(tiny), tiny);
        assert!(sigmoid_f32(-103.0) > 0.0 && sigmoid_f32(-103.0) < f32::MIN_POSITIVE);
        assert_eq!(sigmoid_f32(-104.0), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-0.0), 1.0);
        // e^−100 is subnormal, e^−104 rounds to 0.
        assert!(exp_f32(-100.0) > 0.0 && exp_f32(-100.0) < f32::MIN_POSITIVE);
        assert_eq!(exp_f32(-104.0), 0.0);
    }

    /// Every 4099th `f32` (a million inputs, all exponents): within one ulp. The
    /// exhaustive check is `accurate_activations_on_every_f32`.
    /// The slice functions (AVX-512 or AVX2 on a CPU with it) give [`tanh_f32`]'s,
    /// [`sigmoid_f32`]'s and [`exp_f32`]'s bits, at every length around the vector widths and
    /// on special values.
    #[test]
    fn slices_equal_elements_bit_for_bit() {
        fn exp_slice(x: &[f32], y: &mut [f32]) {
            y.copy_from_slice(x);
            exp_f32_in_place(y);
        }
        let mut values: Vec<f32> = (0..u32::MAX / 65_521)
            .map(|k| f32::from_bits(k * 65_521))
            .collect();
        values.extend([
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE / 3.0,
            9.01,
            -20.5,
            104.0,
            -110.0,
        ]);
        for (slice, element, name) in [
            (
                tanh_f32_slice as fn(&[f32], &mut [f32]),
                tanh_f32 as fn(f32) -> f32,
                "tanh",
            ),
            (sigmoid_f32_slice, sigmoid_f32, "sigmoid"),
            (exp_slice, exp_f32, "exp"),
        ] {
            for len in (0..=40).chain([values.len() - 3]) {
                for start in [0, 3] {
                    let x = &values[start..start + len];
                    // On the best tier, and capped to AVX2 (the AVX2 copy, on a CPU with it).
                    for capped in [false, true] {
                        let mut y = std::vec![0.0f32; len];
                        if capped {
                            crate::kernels::on_the_avx2_tier(|| slice(x, &mut y));
                        } else {
                            slice(x, &mut y);
                        }
                        for (&x, &y) in x.iter().zip(&y) {
                            assert_eq!(
                                y.to_bits(),
                                element(x).to_bits(),
                                "{name}({x:e}), {len} values, capped to AVX2: {capped}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn within_one_ulp_on_a_sample() {
        let sample: Vec<u32> = (0..u32::MAX / 4099).map(|k| k * 4099).collect();
        for (f, reference, name) in [
            (
                tanh_f32 as fn(f32) -> f32,
                tanh_reference as fn(f32) -> f32,
                "tanh",
            ),
            (sigmoid_f32, sigmoid_reference, "sigmoid"),
            (exp_f32, exp_reference, "exp"),
        ] {
            let mut worst = (0, 0.0f32);
            for &bits in &sample {
                let w = super::tests::worst(f, reference, bits, bits);
                if w.0 > worst.0 {
                    worst = w;
                }
            }
            assert!(worst.0 <= 1, "{name}: {} ulp at {:e}", worst.0, worst.1);
        }
    }

    /// All 2³² inputs of each function against the reference: at most one ulp (the goal is
    /// two). Takes about a minute per function in release mode:
    /// `cargo test --release -p typed-nn-core --lib accurate_activations_on_every_f32 -- --ignored`.
    #[test]
    #[ignore = "exhaustive: 2 × 2³² evaluations, run in release mode"]
    fn accurate_activations_on_every_f32() {
        for (f, reference, name) in [
            (
                tanh_f32 as fn(f32) -> f32,
                tanh_reference as fn(f32) -> f32,
                "tanh",
            ),
            (sigmoid_f32, sigmoid_reference, "sigmoid"),
            (exp_f32, exp_reference, "exp"),
        ] {
            // Two threads, one per half of the bit patterns.
            let (low, high) = std::thread::scope(|s| {
                let low = s.spawn(|| worst(f, reference, 0, 0x7FFF_FFFF));
                let high = worst(f, reference, 0x8000_0000, u32::MAX);
                (low.join().unwrap(), high)
            });
            let worst = if low.0 >= high.0 { low } else { high };
            std::println!("{name}: at most {} ulp (at {:e})", worst.0, worst.1);
            assert!(worst.0 <= 1, "{name}: {} ulp at {:e}", worst.0, worst.1);
        }
    }
}
