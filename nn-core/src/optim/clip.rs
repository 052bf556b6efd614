//! Gradient clipping by total norm: PyTorch's `torch.nn.utils.clip_grad_norm_`.

use crate::{Real, parallel};
use nalgebra::ComplexField;

/// Scales `grads` so that their total L2 norm is at most about `max_norm`, PyTorch's
/// `clip_grad_norm_` (with `norm_type = 2`), and returns the norm before clipping.
///
/// With `‖g‖` the L2 norm of all of `grads` (one slice: a whole gradient struct's
/// `as_mut_slice()`):
///
/// ```text
/// c = max_norm / (‖g‖ + 1e-6)
/// g ← g·c    if c < 1
/// ```
///
/// which is PyTorch's `g·min(c, 1)`. Like PyTorch, a norm equal to `max_norm` (or less than it
/// by under `1e-6`) is still scaled, by a factor just below `1`.
///
/// The norm is accumulated in `f64` whatever `T` is (more precise than PyTorch's `f32` sum
/// for `f32` gradients); if the sum of squares overflows while every gradient is finite, it
/// is recomputed scaled by the largest magnitude, so the norm is right up to `f64::MAX`.
///
/// A non-finite norm (a NaN or infinite gradient) is returned as is and `grads` are left
/// unchanged, so the caller can skip the step. (PyTorch, by default, multiplies the gradients
/// by the resulting NaN or `0` instead; with `error_if_nonfinite=True` it raises.)
///
/// `max_norm` should be non-negative (checked in debug builds).
pub fn clip_grad_norm<T: Real>(grads: &mut [T], max_norm: f64) -> f64 {
    debug_assert!(
        max_norm >= 0.0,
        "clip_grad_norm: negative max_norm {max_norm}"
    );
    let norm = global_norm(grads);
    if !norm.is_finite() {
        return norm;
    }
    let coefficient = max_norm / (norm + 1e-6);
    if coefficient < 1.0 {
        let coefficient = T::of(coefficient);
        parallel::elementwise([grads], [], move |[grads], []| {
            for g in grads {
                *g *= coefficient;
            }
        });
    }
    norm
}

/// The global L2 norm `√Σ xᵢ²` of all gradients, in `f64`, without overflow of the squares
/// of finite values; NaN or infinite if a value is.
///
/// The squares are summed in blocks of 4,096 values (32 interleaved partial sums each on
/// 64-bit targets, 8 on 32-bit ones), and the blocks' sums added pairwise in a tree fixed by their number: the same bits
/// whether the blocks run on one thread or on a rayon pool's threads ([`crate::parallel`]).
pub fn global_norm<T: Real>(xs: &[T]) -> f64 {
    norm_and_finiteness(xs).0
}

/// [`global_norm`], and whether it is finite, known from the sum of squares before the square
/// root when that sum is finite (a step branching on it does not wait for the root).
#[inline]
pub(crate) fn norm_and_finiteness<T: Real>(xs: &[T]) -> (f64, bool) {
    // One block (a small network's gradient): the tree is that block's sum.
    let sum = if xs.len() <= NORM_BLOCK {
        sum_of_squares(xs)
    } else {
        parallel::tree_sum(xs, NORM_BLOCK, &sum_of_squares)
    };
    if sum.is_finite() {
        // The root of a finite sum of squares (≥ 0) is finite.
        return (<f64 as ComplexField>::sqrt(sum), true);
    }
    let norm = rescaled_norm(xs);
    (norm, norm.is_finite())
}

/// [`global_norm`] when the sum of squares is not finite: overflow, or a NaN or infinity
/// among `xs`.
#[cold]
#[inline(never)]
fn rescaled_norm<T: Real>(xs: &[T]) -> f64 {
    let mut largest = 0.0_f64;
    for &x in xs {
        let x = <f64 as ComplexField>::abs(x.to_f64());
        if x.is_nan() {
            return f64::NAN;
        }
        if x > largest {
            largest = x;
        }
    }
    if largest.is_infinite() {
        return f64::INFINITY;
    }
    let scaled: f64 = xs
        .iter()
        .map(|&x| {
            let x = x.to_f64() / largest;
            x * x
        })
        .sum();
    largest * <f64 as ComplexField>::sqrt(scaled)
}

/// Scalars per block of [`global_norm`]'s sum.
const NORM_BLOCK: usize = 4096;

/// Partial sums of [`sum_of_squares`]: independent chains of additions the processor
/// overlaps (one chain is bound by the latency of the additions). 32 on 64-bit targets
/// (four AVX-512 vectors, eight AVX or 16 SSE2 or NEON registers); 8 on 32-bit ones
/// (microcontrollers: `f64` in software, where more sums only cost stack).
const PARTIALS: usize = if cfg!(target_pointer_width = "64") {
    32
} else {
    8
};

/// `Σ xᵢ²` in `f64`, in [`PARTIALS`] interleaved partial sums (`xs[i]` goes to sum
/// `i mod PARTIALS`) added pairwise at the end; compiled for AVX-512 or AVX2 where the CPU
/// has it (the same operations in the same order: the same bits).
#[inline]
fn sum_of_squares<T: Real>(xs: &[T]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if xs.len() >= PARTIALS && crate::kernels::has_avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { sum_of_squares_avx512(xs) };
    }
    #[cfg(target_arch = "x86_64")]
    if xs.len() >= PARTIALS && crate::kernels::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { sum_of_squares_avx2(xs) };
    }
    squares_in_partial_sums(xs)
}

/// [`squares_in_partial_sums`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sum_of_squares_avx512<T: Real>(xs: &[T]) -> f64 {
    squares_in_partial_sums(xs)
}

/// [`squares_in_partial_sums`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sum_of_squares_avx2<T: Real>(xs: &[T]) -> f64 {
    squares_in_partial_sums(xs)
}

#[inline(always)]
fn squares_in_partial_sums<T: Real>(xs: &[T]) -> f64 {
    let mut partial = [0.0f64; PARTIALS];
    let (chunks, rest) = xs.as_chunks::<PARTIALS>();
    let mut chunks = chunks.iter();
    if let Some(first) = chunks.next() {
        // `0 + x²` is `x²` (never −0): one addition less on each sum's chain.
        for (sum, &x) in partial.iter_mut().zip(first) {
            *sum = x.to_f64() * x.to_f64();
        }
    }
    for chunk in chunks {
        for (sum, &x) in partial.iter_mut().zip(chunk) {
            *sum += x.to_f64() * x.to_f64();
        }
    }
    if !rest.is_empty() && cfg!(target_pointer_width = "32") {
        // `f64` in software: only the values (a padded chunk cost the sine-train firmware
        // 335 instructions per step).
        for (sum, &x) in partial.iter_mut().zip(rest) {
            *sum += x.to_f64() * x.to_f64();
        }
    } else if !rest.is_empty() {
        // The last values as one more chunk, padded with zeros: a sum of squares is never
        // −0, so adding 0² leaves the sums past the values unchanged (the same bits as
        // leaving them alone), and the sums stay in registers (no loop over a variable
        // number of them, which kept them in memory).
        for (i, sum) in partial.iter_mut().enumerate() {
            let x = if i < rest.len() {
                rest[i].to_f64()
            } else {
                0.0
            };
            *sum += x * x;
        }
    }
    // Pairwise: a short chain where adding them in turn would be 31 dependent additions.
    crate::kernels::pairwise(partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 and AVX2 copies of the partial sums (on a CPU with them) give the
    /// baseline's bits.
    #[test]
    fn sums_of_squares_are_the_same_on_every_path() {
        for len in [0, 1, 7, 31, 32, 33, 100, 4096, 4099] {
            let xs: std::vec::Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 1013) as f32 / 97.0 - 5.0)
                .collect();
            let exact: f64 = xs.iter().map(|&x| x as f64 * x as f64).sum();
            let sum = sum_of_squares(&xs);
            assert_eq!(
                sum.to_bits(),
                squares_in_partial_sums(&xs).to_bits(),
                "{len}"
            );
            let on_avx2 = crate::kernels::on_the_avx2_tier(|| sum_of_squares(&xs));
            assert_eq!(sum.to_bits(), on_avx2.to_bits(), "{len}, AVX2");
            assert!(
                (sum - exact).abs() <= 1e-13 * exact,
                "{len}: {sum} vs {exact}"
            );
            let xs: std::vec::Vec<f64> = xs.iter().map(|&x| x as f64 * 1.1).collect();
            assert_eq!(
                sum_of_squares(&xs).to_bits(),
                squares_in_partial_sums(&xs).to_bits()
            );
        }
    }

    /// The partial sums with the last values padded by zeros give the bits of the rule as
    /// documented: value `i` into sum `i mod 32`, the sums past the values left alone.
    #[test]
    fn padding_the_last_chunk_changes_no_bit() {
        for len in [1, 5, 31, 32, 33, 63, 100, 337, 4095] {
            let xs: std::vec::Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 1013) as f32 / 97.0 - 5.0)
                .collect();
            let mut partial = [0.0f64; PARTIALS];
            for (i, &x) in xs.iter().enumerate() {
                partial[i % PARTIALS] += f64::from(x) * f64::from(x);
            }
            let documented = crate::kernels::pairwise(partial);
            assert_eq!(squares_in_partial_sums(&xs).to_bits(), documented.to_bits());
            assert_eq!(sum_of_squares(&xs).to_bits(), documented.to_bits(), "{len}");
        }
    }

    #[test]
    fn scales_down_to_max_norm() {
        // ‖[3, 4]‖ = 5 > 1: g·1/(5 + 1e-6) = [0.59999988, 0.79999984]; returns 5.
        let mut grads = [3.0, 4.0];
        assert_eq!(clip_grad_norm(&mut grads, 1.0), 5.0);
        assert!((grads[0] - 0.599999880000024).abs() < 1e-15);
        assert!((grads[1] - 0.799999840000032).abs() < 1e-15);
        // The new norm is max_norm·5/(5 + 1e-6), just under max_norm.
        assert!((clip_grad_norm(&mut grads, 1.0) - 0.9999998000000401).abs() < 1e-15);
    }

    #[test]
    fn leaves_small_gradients_unchanged() {
        // ‖[0.3, −0.4]‖ = 0.5 ≤ 1: coefficient 1/(0.5 + 1e-6) > 1, no scaling.
        let mut grads = [0.3, -0.4];
        assert!((clip_grad_norm(&mut grads, 1.0) - 0.5).abs() < 1e-15);
        assert_eq!(grads, [0.3, -0.4]);
    }

    #[test]
    fn scales_a_norm_equal_to_max_norm_like_pytorch() {
        // ‖[3, 4]‖ = 5 = max_norm: coefficient 5/(5 + 1e-6) < 1 still applies.
        let mut grads = [3.0, 4.0];
        assert_eq!(clip_grad_norm(&mut grads, 5.0), 5.0);
        assert!((grads[0] - 2.99999940000012).abs() < 1e-14);
    }

    #[test]
    fn non_finite_norms_leave_gradients_unchanged() {
        let mut grads = [1.0, f64::NAN, 2.0];
        assert!(clip_grad_norm(&mut grads, 1.0).is_nan());
        assert_eq!(grads[0], 1.0);
        assert_eq!(grads[2], 2.0);

        let mut grads = [1.0, f64::NEG_INFINITY, 2.0];
        assert_eq!(clip_grad_norm(&mut grads, 1.0), f64::INFINITY);
        assert_eq!(grads, [1.0, f64::NEG_INFINITY, 2.0]);

        // A NaN wins over an infinity.
        let mut grads = [f64::INFINITY, f64::NAN];
        assert!(clip_grad_norm(&mut grads, 1.0).is_nan());
    }

    #[test]
    fn squares_that_overflow_still_give_the_norm() {
        // (1e200)² overflows f64, but ‖[1e200, 1e200]‖ = √2·1e200 does not.
        let mut grads = [1e200, -1e200];
        let norm = clip_grad_norm(&mut grads, 1.0);
        assert!((norm / 1.414213562373095e200 - 1.0).abs() < 1e-15, "{norm}");
        assert!((grads[0] - 0.7071067811865475).abs() < 1e-15);
        assert!((grads[1] + 0.7071067811865475).abs() < 1e-15);
    }

    #[test]
    fn f32_gradients_norm_in_f64() {
        // The norm of f32 [3, 4] is 5 exactly; the scaled values are rounded to f32.
        let mut grads = [3.0_f32, 4.0];
        assert_eq!(clip_grad_norm(&mut grads, 1.0), 5.0);
        assert_eq!(grads[0], (1.0 / (5.0 + 1e-6)) as f32 * 3.0);
        assert!((f64::from(grads[0]) - 0.59999988).abs() < 1e-7);
    }

    #[test]
    fn empty_and_zero_gradients() {
        let mut grads: [f64; 0] = [];
        assert_eq!(clip_grad_norm(&mut grads, 1.0), 0.0);
        let mut grads = [0.0; 4];
        assert_eq!(clip_grad_norm(&mut grads, 0.5), 0.0);
        assert_eq!(grads, [0.0; 4]);
    }

    #[test]
    fn max_norm_zero_zeroes_the_gradients() {
        let mut grads = [3.0, 4.0];
        assert_eq!(clip_grad_norm(&mut grads, 0.0), 5.0);
        assert_eq!(grads, [0.0, 0.0]);
    }
}
