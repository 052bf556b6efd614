//! [`super::row_dots()`] (`y (+)= Aᵀ·x`, `A` stored `K × M`: a dense layer's input gradient for
//! one sample) with explicit vectors on x86-64, bit for bit the same as the scalar definition.
//!
//! The definition computes each `y_i` as a dot product of `A`'s contiguous column `i` with
//! `x` in 8 interleaved lanes (`p mod 8`), combined `((l₀+l₄)+(l₁+l₅))+((l₂+l₆)+(l₃+l₇))`.
//! Left to the compiler, a small product (W1's 16 × 16) is vectorised across the outputs `i`,
//! and every load is a gather. Here the 8 lanes of one output are one vector (two `__m128`
//! with SSE2), built from contiguous loads of its column, and a block of outputs (8 `f32` or
//! 4 `f64` on AVX, 4 or 2 on SSE2) is reduced together: the lanes' halves are added vertically
//! (`l_q + l_{q+4}`), the vectors are transposed by shuffles (or paired by horizontal adds),
//! and the remaining two levels of the tree are vertical additions, so every output gets the
//! same additions in the same order as the definition. The lanes past `K`'s last multiple of
//! 8 take their last product under a mask (a blend, which keeps the other lanes' values,
//! `-0.0` included, where adding a zero product would not). Multiplications and additions
//! stay separate (no fused multiply-adds), as in the definition.
//!
//! The only difference the order allows: a horizontal addition adds `b + a` where the
//! definition writes `a + b`, the same value (IEEE addition is commutative), except which
//! payload a sum of two NaNs keeps.
//!
//! The AVX versions (used on the AVX2 and AVX-512 tiers) are `#[inline]` with their target
//! feature, so that in the passes a small network compiles for AVX-512 or AVX2 they are
//! inlined, not called; the SSE2 versions need no feature on x86-64.

use core::arch::x86_64::*;

/// The lane mask of a tail of `tail` (< 8) products: `-1` in lanes `q < tail`.
#[inline(always)]
fn tail_lanes(tail: usize) -> [bool; 8] {
    core::array::from_fn(|q| q < tail)
}

/// `-1` or `0`, the mask value of a lane.
#[inline(always)]
fn bits(on: bool) -> i64 {
    -(on as i64)
}

// ---------------------------------------------------------------------------------------
// SSE2 (the x86-64 baseline)

/// `on ? new : old`, lane by lane.
#[target_feature(enable = "sse2")]
#[inline]
fn select_ps(mask: __m128, new: __m128, old: __m128) -> __m128 {
    _mm_or_ps(_mm_and_ps(mask, new), _mm_andnot_ps(mask, old))
}

/// As [`select_ps`], for `f64`.
#[target_feature(enable = "sse2")]
#[inline]
fn select_pd(mask: __m128d, new: __m128d, old: __m128d) -> __m128d {
    _mm_or_pd(_mm_and_pd(mask, new), _mm_andnot_pd(mask, old))
}

/// Copies the last `K mod 8` scalars of a run of `K` into a zero-padded block of 8.
///
/// # Safety
/// `run` addresses `K` scalars.
#[inline(always)]
unsafe fn padded_tail<T: Copy + Default, const K: usize>(run: *const T) -> [T; 8] {
    let whole = K / 8 * 8;
    let mut block = [T::default(); 8];
    // SAFETY: the caller's contract: `K − whole < 8` scalars from `whole`.
    unsafe { core::ptr::copy_nonoverlapping(run.add(whole), block.as_mut_ptr(), K - whole) };
    block
}

/// Writes (or adds) `n ≤ W` results of a block.
///
/// # Safety
/// `y` addresses `n` writable scalars.
#[inline(always)]
unsafe fn store_some<T: crate::Real, const W: usize>(
    y: *mut T,
    values: &[T; W],
    n: usize,
    accumulate: bool,
) {
    for (j, &v) in values.iter().enumerate().take(n) {
        // SAFETY: j < n.
        let y = unsafe { &mut *y.add(j) };
        *y = if accumulate { *y + v } else { v };
    }
}

/// The 8 lanes of one `f32` output, as lanes 0–3 and 4–7.
///
/// # Safety
/// `col` and `x` address `K` scalars; `x_tail` is `x`'s [`padded_tail`].
#[target_feature(enable = "sse2")]
#[inline]
unsafe fn lanes_sse2_f32<const K: usize>(
    col: *const f32,
    x: *const f32,
    x_tail: &[f32; 8],
    masks: (__m128, __m128),
) -> (__m128, __m128) {
    let whole = K / 8 * 8;
    let (mut lo, mut hi) = (_mm_setzero_ps(), _mm_setzero_ps());
    let mut p = 0;
    while p < whole {
        // SAFETY: p + 8 ≤ K.
        unsafe {
            lo = _mm_add_ps(
                lo,
                _mm_mul_ps(_mm_loadu_ps(col.add(p)), _mm_loadu_ps(x.add(p))),
            );
            hi = _mm_add_ps(
                hi,
                _mm_mul_ps(_mm_loadu_ps(col.add(p + 4)), _mm_loadu_ps(x.add(p + 4))),
            );
        }
        p += 8;
    }
    if whole < K {
        // SAFETY: the caller's contract.
        let a = unsafe { padded_tail::<f32, K>(col) };
        // SAFETY: 8 scalars each.
        let (a_lo, a_hi, x_lo, x_hi) = unsafe {
            (
                _mm_loadu_ps(a.as_ptr()),
                _mm_loadu_ps(a.as_ptr().add(4)),
                _mm_loadu_ps(x_tail.as_ptr()),
                _mm_loadu_ps(x_tail.as_ptr().add(4)),
            )
        };
        lo = select_ps(masks.0, _mm_add_ps(lo, _mm_mul_ps(a_lo, x_lo)), lo);
        hi = select_ps(masks.1, _mm_add_ps(hi, _mm_mul_ps(a_hi, x_hi)), hi);
    }
    (lo, hi)
}

/// [`super::row_dots()`] for `f32` with SSE2: four outputs at a time.
///
/// # Safety
/// `a` addresses the `K × M` matrix (column-major), `x` `K` scalars, `y` `M` writable ones
/// overlapping neither; `K ≥ 8`.
#[target_feature(enable = "sse2")]
#[inline]
pub(super) unsafe fn sse2_f32<const M: usize, const K: usize>(
    y: *mut f32,
    a: *const f32,
    x: *const f32,
    accumulate: bool,
) {
    // SAFETY: x addresses K scalars.
    let x_tail = unsafe { padded_tail::<f32, K>(x) };
    let on = tail_lanes(K % 8);
    let mask = |q: usize| bits(on[q]) as i32;
    let masks = (
        _mm_castsi128_ps(_mm_setr_epi32(mask(0), mask(1), mask(2), mask(3))),
        _mm_castsi128_ps(_mm_setr_epi32(mask(4), mask(5), mask(6), mask(7))),
    );
    let mut i = 0;
    while i < M {
        let mut s = [_mm_setzero_ps(); 4];
        for (j, s) in s.iter_mut().enumerate() {
            // Past M: the last column again (computed, not stored).
            let column = (i + j).min(M - 1);
            // SAFETY: column < M: K scalars of A.
            let (lo, hi) = unsafe { lanes_sse2_f32::<K>(a.add(column * K), x, &x_tail, masks) };
            // [l0 + l4, l1 + l5, l2 + l6, l3 + l7]
            *s = _mm_add_ps(lo, hi);
        }
        // Transposed: c[q] holds s_q of the four outputs.
        let t0 = _mm_unpacklo_ps(s[0], s[1]);
        let t1 = _mm_unpacklo_ps(s[2], s[3]);
        let t2 = _mm_unpackhi_ps(s[0], s[1]);
        let t3 = _mm_unpackhi_ps(s[2], s[3]);
        let c0 = _mm_movelh_ps(t0, t1);
        let c1 = _mm_movehl_ps(t1, t0);
        let c2 = _mm_movelh_ps(t2, t3);
        let c3 = _mm_movehl_ps(t3, t2);
        let v = _mm_add_ps(_mm_add_ps(c0, c1), _mm_add_ps(c2, c3));
        // SAFETY: i < M: the block's outputs inside y.
        unsafe {
            if i + 4 <= M {
                let v = if accumulate {
                    _mm_add_ps(_mm_loadu_ps(y.add(i)), v)
                } else {
                    v
                };
                _mm_storeu_ps(y.add(i), v);
            } else {
                let mut values = [0.0; 4];
                _mm_storeu_ps(values.as_mut_ptr(), v);
                store_some(y.add(i), &values, M - i, accumulate);
            }
        }
        i += 4;
    }
}

/// The 8 lanes of one `f64` output, as pairs 0–1, 2–3, 4–5, 6–7.
///
/// # Safety
/// `col` and `x` address `K` scalars; `x_tail` is `x`'s [`padded_tail`].
#[target_feature(enable = "sse2")]
#[inline]
unsafe fn lanes_sse2_f64<const K: usize>(
    col: *const f64,
    x: *const f64,
    x_tail: &[f64; 8],
    masks: &[__m128d; 4],
) -> [__m128d; 4] {
    let whole = K / 8 * 8;
    let mut lanes = [_mm_setzero_pd(); 4];
    let mut p = 0;
    while p < whole {
        for (q, lane) in lanes.iter_mut().enumerate() {
            // SAFETY: p + 8 ≤ K.
            unsafe {
                *lane = _mm_add_pd(
                    *lane,
                    _mm_mul_pd(
                        _mm_loadu_pd(col.add(p + 2 * q)),
                        _mm_loadu_pd(x.add(p + 2 * q)),
                    ),
                );
            }
        }
        p += 8;
    }
    if whole < K {
        // SAFETY: the caller's contract.
        let a = unsafe { padded_tail::<f64, K>(col) };
        for (q, lane) in lanes.iter_mut().enumerate() {
            // SAFETY: 8 scalars each.
            let product = unsafe {
                _mm_mul_pd(
                    _mm_loadu_pd(a.as_ptr().add(2 * q)),
                    _mm_loadu_pd(x_tail.as_ptr().add(2 * q)),
                )
            };
            *lane = select_pd(masks[q], _mm_add_pd(*lane, product), *lane);
        }
    }
    lanes
}

/// [`super::row_dots()`] for `f64` with SSE2: two outputs at a time.
///
/// # Safety
/// As [`sse2_f32`].
#[target_feature(enable = "sse2")]
#[inline]
pub(super) unsafe fn sse2_f64<const M: usize, const K: usize>(
    y: *mut f64,
    a: *const f64,
    x: *const f64,
    accumulate: bool,
) {
    // SAFETY: x addresses K scalars.
    let x_tail = unsafe { padded_tail::<f64, K>(x) };
    let on = tail_lanes(K % 8);
    let masks: [__m128d; 4] = core::array::from_fn(|q| {
        _mm_castsi128_pd(_mm_set_epi64x(bits(on[2 * q + 1]), bits(on[2 * q])))
    });
    let mut i = 0;
    while i < M {
        // Per output: [s0, s1] and [s2, s3], s_q = l_q + l_{q+4}.
        let mut low = [_mm_setzero_pd(); 2];
        let mut high = [_mm_setzero_pd(); 2];
        for j in 0..2 {
            let column = (i + j).min(M - 1);
            // SAFETY: column < M: K scalars of A.
            let l = unsafe { lanes_sse2_f64::<K>(a.add(column * K), x, &x_tail, &masks) };
            low[j] = _mm_add_pd(l[0], l[2]);
            high[j] = _mm_add_pd(l[1], l[3]);
        }
        // [s0 + s1, s2 + s3] of both outputs, then their sums.
        let t0 = _mm_add_pd(
            _mm_unpacklo_pd(low[0], low[1]),
            _mm_unpackhi_pd(low[0], low[1]),
        );
        let t1 = _mm_add_pd(
            _mm_unpacklo_pd(high[0], high[1]),
            _mm_unpackhi_pd(high[0], high[1]),
        );
        let v = _mm_add_pd(t0, t1);
        // SAFETY: i < M: the block's outputs inside y.
        unsafe {
            if i + 2 <= M {
                let v = if accumulate {
                    _mm_add_pd(_mm_loadu_pd(y.add(i)), v)
                } else {
                    v
                };
                _mm_storeu_pd(y.add(i), v);
            } else {
                let mut values = [0.0; 2];
                _mm_storeu_pd(values.as_mut_ptr(), v);
                store_some(y.add(i), &values, M - i, accumulate);
            }
        }
        i += 2;
    }
}

// ---------------------------------------------------------------------------------------
// AVX (the AVX2 and AVX-512 tiers)

/// The 8 lanes of one `f32` output.
///
/// # Safety
/// `col` and `x` address `K` scalars; `x_tail` is `x`'s last `K mod 8` scalars loaded under
/// `mask` (zeros elsewhere).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn lanes_avx_f32<const K: usize>(
    col: *const f32,
    x: *const f32,
    x_tail: __m256,
    mask: __m256i,
) -> __m256 {
    let whole = K / 8 * 8;
    let mut lanes = _mm256_setzero_ps();
    let mut p = 0;
    while p < whole {
        // SAFETY: p + 8 ≤ K.
        unsafe {
            lanes = _mm256_add_ps(
                lanes,
                _mm256_mul_ps(_mm256_loadu_ps(col.add(p)), _mm256_loadu_ps(x.add(p))),
            );
        }
        p += 8;
    }
    if whole < K {
        // SAFETY: the masked lanes are not read (and cannot fault): K − whole scalars.
        let a = unsafe { _mm256_maskload_ps(col.add(whole), mask) };
        let sum = _mm256_add_ps(lanes, _mm256_mul_ps(a, x_tail));
        lanes = _mm256_blendv_ps(lanes, sum, _mm256_castsi256_ps(mask));
    }
    lanes
}

/// [`super::row_dots()`] for `f32` with AVX: eight outputs at a time.
///
/// # Safety
/// As [`sse2_f32`]; the CPU has AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn avx_f32<const M: usize, const K: usize>(
    y: *mut f32,
    a: *const f32,
    x: *const f32,
    accumulate: bool,
) {
    let whole = K / 8 * 8;
    let on = tail_lanes(K % 8);
    let m = |q: usize| bits(on[q]) as i32;
    let mask = _mm256_setr_epi32(m(0), m(1), m(2), m(3), m(4), m(5), m(6), m(7));
    // SAFETY: the masked lanes are not read: K − whole scalars of x.
    let x_tail = unsafe { _mm256_maskload_ps(x.add(whole), mask) };
    let mut i = 0;
    while i < M {
        let mut l = [_mm256_setzero_ps(); 8];
        for (j, l) in l.iter_mut().enumerate() {
            // Past M: the last column again (computed, not stored).
            let column = (i + j).min(M - 1);
            // SAFETY: column < M: K scalars of A.
            *l = unsafe { lanes_avx_f32::<K>(a.add(column * K), x, x_tail, mask) };
        }
        // s[j] = [s of output j | s of output j + 4], s_q = l_q + l_{q+4}.
        let mut s = [_mm256_setzero_ps(); 4];
        for (j, s) in s.iter_mut().enumerate() {
            let low = _mm256_permute2f128_ps::<0x20>(l[j], l[j + 4]);
            let high = _mm256_permute2f128_ps::<0x31>(l[j], l[j + 4]);
            *s = _mm256_add_ps(low, high);
        }
        // [s0 + s1, s2 + s3] of outputs 0, 1 | 4, 5 and of 2, 3 | 6, 7; then their sums, in
        // the outputs' order.
        let h01 = _mm256_hadd_ps(s[0], s[1]);
        let h23 = _mm256_hadd_ps(s[2], s[3]);
        let v = _mm256_hadd_ps(h01, h23);
        // SAFETY: i < M: the block's outputs inside y.
        unsafe {
            if i + 8 <= M {
                let v = if accumulate {
                    _mm256_add_ps(_mm256_loadu_ps(y.add(i)), v)
                } else {
                    v
                };
                _mm256_storeu_ps(y.add(i), v);
            } else {
                let mut values = [0.0; 8];
                _mm256_storeu_ps(values.as_mut_ptr(), v);
                store_some(y.add(i), &values, M - i, accumulate);
            }
        }
        i += 8;
    }
}

/// The 8 lanes of one `f64` output, as lanes 0–3 and 4–7.
///
/// # Safety
/// `col` and `x` address `K` scalars; `x_tail` is `x`'s last `K mod 8` scalars loaded under
/// `masks` (zeros elsewhere).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn lanes_avx_f64<const K: usize>(
    col: *const f64,
    x: *const f64,
    x_tail: [__m256d; 2],
    masks: [__m256i; 2],
) -> [__m256d; 2] {
    let whole = K / 8 * 8;
    let mut lanes = [_mm256_setzero_pd(); 2];
    let mut p = 0;
    while p < whole {
        for (h, lanes) in lanes.iter_mut().enumerate() {
            // SAFETY: p + 8 ≤ K.
            unsafe {
                *lanes = _mm256_add_pd(
                    *lanes,
                    _mm256_mul_pd(
                        _mm256_loadu_pd(col.add(p + 4 * h)),
                        _mm256_loadu_pd(x.add(p + 4 * h)),
                    ),
                );
            }
        }
        p += 8;
    }
    if whole < K {
        for (h, lanes) in lanes.iter_mut().enumerate() {
            // SAFETY: the masked lanes are not read: at most K − whole scalars.
            let a = unsafe { _mm256_maskload_pd(col.add(whole + 4 * h), masks[h]) };
            let sum = _mm256_add_pd(*lanes, _mm256_mul_pd(a, x_tail[h]));
            *lanes = _mm256_blendv_pd(*lanes, sum, _mm256_castsi256_pd(masks[h]));
        }
    }
    lanes
}

/// [`super::row_dots()`] for `f64` with AVX: four outputs at a time.
///
/// # Safety
/// As [`sse2_f32`]; the CPU has AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn avx_f64<const M: usize, const K: usize>(
    y: *mut f64,
    a: *const f64,
    x: *const f64,
    accumulate: bool,
) {
    let whole = K / 8 * 8;
    let on = tail_lanes(K % 8);
    let masks = [
        _mm256_setr_epi64x(bits(on[0]), bits(on[1]), bits(on[2]), bits(on[3])),
        _mm256_setr_epi64x(bits(on[4]), bits(on[5]), bits(on[6]), bits(on[7])),
    ];
    // SAFETY: the masked lanes are not read: K − whole scalars of x.
    let x_tail = unsafe {
        [
            _mm256_maskload_pd(x.add(whole), masks[0]),
            _mm256_maskload_pd(x.add(whole + 4), masks[1]),
        ]
    };
    let mut i = 0;
    while i < M {
        // Per output: [s0, s1, s2, s3], s_q = l_q + l_{q+4}.
        let mut s = [_mm256_setzero_pd(); 4];
        for (j, s) in s.iter_mut().enumerate() {
            // Past M: the last column again (computed, not stored).
            let column = (i + j).min(M - 1);
            // SAFETY: column < M: K scalars of A.
            let [low, high] = unsafe { lanes_avx_f64::<K>(a.add(column * K), x, x_tail, masks) };
            *s = _mm256_add_pd(low, high);
        }
        // [s0 + s1 of outputs 0, 1 | s2 + s3 of outputs 0, 1], and of outputs 2, 3.
        let h01 = _mm256_hadd_pd(s[0], s[1]);
        let h23 = _mm256_hadd_pd(s[2], s[3]);
        let v = _mm256_add_pd(
            _mm256_permute2f128_pd::<0x20>(h01, h23),
            _mm256_permute2f128_pd::<0x31>(h01, h23),
        );
        // SAFETY: i < M: the block's outputs inside y.
        unsafe {
            if i + 4 <= M {
                let v = if accumulate {
                    _mm256_add_pd(_mm256_loadu_pd(y.add(i)), v)
                } else {
                    v
                };
                _mm256_storeu_pd(y.add(i), v);
            } else {
                let mut values = [0.0; 4];
                _mm256_storeu_pd(values.as_mut_ptr(), v);
                store_some(y.add(i), &values, M - i, accumulate);
            }
        }
        i += 4;
    }
}
