//! AVX2 kernels for x86-64, the middle tier: used when the CPU has AVX2 and FMA but no
//! AVX-512F (or when [`super::max_isa`] caps the kernels at AVX2), detected at run time with
//! `std`, or enabled at compile time with `-C target-feature=+avx2,+fma` without it. Most
//! desktop and laptop CPUs are here (AMD Zen 1–3, Intel's consumer cores).
//!
//! The same kernels as [`super::x86`]'s, on 256-bit `ymm` registers (16 of them, not 32):
//! the GEMM's micro-kernel holds a 16 × 6 (`f32`) or 8 × 6 (`f64`) tile of `C` in 12
//! accumulators, as BLIS's Haswell kernels do; edges are masked with
//! `_mm256_maskload`/`_mm256_maskstore` (masked lanes are neither read nor written, and cannot
//! fault).

use super::View;
use super::stream::{self, MicroKernel, Tile, columns};
use core::arch::x86_64::*;

#[cfg(test)]
pub(crate) mod tests {
    // Set by the tests to cap the kernels at AVX2 on this thread (on a CPU with AVX-512).
    std::thread_local!(pub(crate) static AT_MOST_AVX2: core::cell::Cell<bool> = const { core::cell::Cell::new(false) });
}

/// Whether the AVX2 kernels may run on this CPU: it has AVX2 and FMA, and
/// [`super::max_isa`] allows them.
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    if super::max_isa() < super::Isa::Avx2 {
        return false;
    }
    #[cfg(feature = "std")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx2") && cfg!(target_feature = "fma")
    }
}

/// The load mask of the first `n` of 8 `f32` lanes (all of them for `n ≥ 8`).
#[target_feature(enable = "avx2")]
#[inline]
fn mask_ps(n: usize) -> __m256i {
    let n = n.min(8) as i32;
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// The load mask of the first `n` of 4 `f64` lanes (all of them for `n ≥ 4`).
#[target_feature(enable = "avx2")]
#[inline]
fn mask_pd(n: usize) -> __m256i {
    let n = n.min(4) as i64;
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3))
}

/// The blocked GEMM for `f32` with the AVX2 kernel, the driver compiled for AVX2 too.
///
/// # Safety
/// As [`stream::gemm`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    a: View<f32>,
    b: View<f32>,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe { stream::gemm::<f32, Avx2F32>(m, n, k, a, b, c, ldc, accumulate) }
}

/// As [`gemm_f32`], for `f64`.
///
/// # Safety
/// As [`stream::gemm`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_f64(
    m: usize,
    n: usize,
    k: usize,
    a: View<f64>,
    b: View<f64>,
    c: *mut f64,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe { stream::gemm::<f64, Avx2F64>(m, n, k, a, b, c, ldc, accumulate) }
}

/// [`super::direct`] compiled for AVX2 (the compiler vectorises it 8 lanes wide), with fused
/// multiply-adds when `std` provides `mul_add` (without `std` it would be libm's software
/// `fma`).
///
/// # Safety
/// As [`super::direct`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
pub(crate) unsafe fn direct<T: crate::Real, const M: usize, const K: usize, const N: usize>(
    c: *mut T,
    a: &nalgebra::SMatrix<T, M, K>,
    b: View<T>,
    accumulate: bool,
    columns: core::ops::Range<usize>,
) {
    // With fused multiply-adds (`std`), `f32` products of 4 rows or more take the explicit
    // kernel. Compiled from the generic loops, 4 columns × M rows of accumulators do not fit
    // in AVX2's 16 registers past M = 16 (spilled), and below it LLVM packed them across
    // vectors: W2's 32 × 64 × 32 took 2.7 µs, matrixmultiply's 1.3 µs.
    // `f64` likewise up to 48 rows (12 vectors of 4: one column's accumulators, a vector of
    // `A` and a broadcast in the 16 registers).
    if cfg!(feature = "std") && size_of::<T>() == 4 && M >= 4 {
        // SAFETY: `Real` is `f32` or `f64`, and `T` has 4 bytes: it is `f32`; the caller's
        // contract; AVX2 and FMA are present (this function's own contract).
        unsafe { direct_f32::<M, K>(c.cast(), a.as_ptr().cast(), b.cast(), accumulate, columns) };
        return;
    }
    if cfg!(feature = "std") && size_of::<T>() == 8 && (4..=48).contains(&M) {
        // SAFETY: as above; `T` has 8 bytes: it is `f64`.
        unsafe { direct_f64::<M, K>(c.cast(), a.as_ptr().cast(), b.cast(), accumulate, columns) };
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { super::direct::<T, M, K, N, { cfg!(feature = "std") }>(c, a, b, accumulate, columns) }
}

/// Columns at a time in the AVX2 direct kernels for a column of `vectors` vectors: eight for
/// one (eight independent chains of multiply-adds hide their latency), then 4, 3, 2 and 1, so
/// that the accumulators (at most 12), the broadcasts and a vector of `A` fit the 16
/// registers (two for five or six vectors: one left 5 or 6 chains; `f64` goes up to 12
/// vectors, one column at a time).
const fn direct_group(vectors: usize) -> usize {
    match vectors {
        1 => 8,
        2 => 4,
        3 => 3,
        4..=6 => 2,
        _ => 1,
    }
}

direct_vector_kernels!(
    features: "avx2,fma",
    direct: direct_f32,
    columns: direct_f32_columns,
    scalar: f32,
    lanes: 8,
    group: direct_group,
    mask: mask_ps,
    zero: _mm256_setzero_ps,
    set1: _mm256_set1_ps,
    loadu: _mm256_loadu_ps,
    load_tail: _mm256_maskload_ps,
    storeu: _mm256_storeu_ps,
    store_tail: _mm256_maskstore_ps,
    fmadd: _mm256_fmadd_ps,
);

direct_vector_kernels!(
    features: "avx2,fma",
    direct: direct_f64,
    columns: direct_f64_columns,
    scalar: f64,
    lanes: 4,
    group: direct_group,
    mask: mask_pd,
    zero: _mm256_setzero_pd,
    set1: _mm256_set1_pd,
    loadu: _mm256_loadu_pd,
    load_tail: _mm256_maskload_pd,
    storeu: _mm256_storeu_pd,
    store_tail: _mm256_maskstore_pd,
    fmadd: _mm256_fmadd_pd,
);

/// A micro-kernel for [`stream::gemm`]: a `2·LANES × 6` tile of `C` in 12 `ymm`
/// accumulators (two vectors of `A` times six broadcasts of `B` per step of `k`: 12 FMAs for
/// 8 loads), plain loads and stores for whole tiles, masked ones at the edges.
macro_rules! micro_kernel {
    ($kernel:ident, $run:ident, $t:ty, $mr:literal, $lanes:literal, $mask:ident, $zero:ident,
     $set1:ident, $loadu:ident, $maskload:ident, $storeu:ident, $maskstore:ident,
     $fmadd:ident, $add:ident) => {
        #[doc = concat!("`", stringify!($t), "` micro-kernel: a ", stringify!($mr),
                                                        " × 6 tile in 12 `ymm` accumulators.")]
        pub(crate) struct $kernel;

        const _: () = assert!($mr == 2 * $lanes);

        impl MicroKernel<$t> for $kernel {
            const MR: usize = $mr;
            const NR: usize = 6;
            /// 128 steps.
            type Panel = Tile<{ 128 * $mr * size_of::<$t>() }>;

            #[inline]
            unsafe fn run(
                kc: usize,
                a: *const $t,
                lda: usize,
                b: View<$t>,
                c: *mut $t,
                ldc: usize,
                accumulate: bool,
                m: usize,
                n: usize,
            ) {
                // SAFETY: the caller's contract (MicroKernel::run), which includes AVX2 and
                // FMA; each arm's `n` is at most its number of columns.
                unsafe {
                    match n {
                        1 => $run::<1>(kc, a, lda, b, c, ldc, accumulate, m, n),
                        2 => $run::<2>(kc, a, lda, b, c, ldc, accumulate, m, n),
                        3 => $run::<3>(kc, a, lda, b, c, ldc, accumulate, m, n),
                        4 => $run::<4>(kc, a, lda, b, c, ldc, accumulate, m, n),
                        _ => $run::<6>(kc, a, lda, b, c, ldc, accumulate, m, n),
                    }
                }
            }
        }

        /// The tile's first `COLUMNS ≥ n` columns: a panel of fewer than six columns (a batch
        /// of one to four samples, the last panel of a batch) computes no more than it has.
        ///
        /// # Safety
        /// As [`MicroKernel::run`], with `n ≤ COLUMNS`; the CPU has AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $run<const COLUMNS: usize>(
            kc: usize,
            a: *const $t,
            lda: usize,
            b: View<$t>,
            c: *mut $t,
            ldc: usize,
            accumulate: bool,
            m: usize,
            n: usize,
        ) {
            let mut lo = [$zero(); COLUMNS];
            let mut hi = [$zero(); COLUMNS];
            // SAFETY: the caller's contract: n ≥ 1 columns of B.
            let bc = unsafe { columns::<$t, COLUMNS>(b, n) };
            // One step of k: two vectors of A times `COLUMNS` broadcasts of B.
            let mut step = |p: usize, a0, a1| {
                for j in 0..COLUMNS {
                    // SAFETY: p < kc: row p of a column of B.
                    let bj = $set1(unsafe { *bc[j].add(p * b.rs) });
                    lo[j] = $fmadd(a0, bj, lo[j]);
                    hi[j] = $fmadd(a1, bj, hi[j]);
                }
            };
            let whole = m == 2 * $lanes;
            let (k0, k1) = ($mask(m), $mask(m.saturating_sub($lanes)));
            if whole {
                // Whole tile: plain loads, two steps per iteration.
                let mut p = 0;
                while p + 2 <= kc {
                    // SAFETY: p + 1 < kc: the 2·LANES rows of columns p and p + 1 of the
                    // panel (the caller's contract for a whole tile).
                    unsafe {
                        let ap = a.add(p * lda);
                        let aq = a.add((p + 1) * lda);
                        step(p, $loadu(ap), $loadu(ap.add($lanes)));
                        step(p + 1, $loadu(aq), $loadu(aq.add($lanes)));
                    }
                    p += 2;
                }
                if p < kc {
                    // SAFETY: as above, for the last step.
                    unsafe {
                        let ap = a.add(p * lda);
                        step(p, $loadu(ap), $loadu(ap.add($lanes)));
                    }
                }
            } else {
                for p in 0..kc {
                    // SAFETY: p < kc; the lanes of rows past m are masked off (not read,
                    // cannot fault): the second vector's address may lie past the matrix
                    // (computed with wrapping_add, never dereferenced) when m ≤ LANES.
                    unsafe {
                        let ap = a.add(p * lda);
                        step(p, $maskload(ap, k0), $maskload(ap.wrapping_add($lanes), k1));
                    }
                }
            }
            for j in 0..n {
                // SAFETY: column j < n of the m-row block of C; for a partial tile the lanes
                // past m are masked (neither read nor written, cannot fault).
                unsafe {
                    let col = c.add(j * ldc);
                    let (mut v0, mut v1) = (lo[j], hi[j]);
                    if whole {
                        if accumulate {
                            v0 = $add(v0, $loadu(col));
                            v1 = $add(v1, $loadu(col.add($lanes)));
                        }
                        $storeu(col, v0);
                        $storeu(col.add($lanes), v1);
                    } else {
                        let col1 = col.wrapping_add($lanes);
                        if accumulate {
                            v0 = $add(v0, $maskload(col, k0));
                            v1 = $add(v1, $maskload(col1, k1));
                        }
                        $maskstore(col, k0, v0);
                        $maskstore(col1, k1, v1);
                    }
                }
            }
        }
    };
}

micro_kernel!(
    Avx2F32,
    kernel_f32,
    f32,
    16,
    8,
    mask_ps,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_maskload_ps,
    _mm256_storeu_ps,
    _mm256_maskstore_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps
);
micro_kernel!(
    Avx2F64,
    kernel_f64,
    f64,
    8,
    4,
    mask_pd,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_maskload_pd,
    _mm256_storeu_pd,
    _mm256_maskstore_pd,
    _mm256_fmadd_pd,
    _mm256_add_pd
);

/// `y (+)= A·x` for a column-major matrix `A` (`m × k`, leading dimension `lda`) and a vector
/// `x` with stride `incx`: `12·LANES` rows at a time in 12 accumulators (96 rows of `f32`, 48
/// of `f64`), streaming the columns of `A` once.
macro_rules! gemv {
    ($name:ident, $block:ident, $t:ty, $lanes:literal, $mask:ident, $zero:ident, $set1:ident,
     $loadu:ident, $maskload:ident, $storeu:ident, $maskstore:ident, $fmadd:ident,
     $add:ident) => {
        /// # Safety
        /// `a` addresses the `m × k` matrix, `x` `k` scalars at stride `incx`, `y` `m`
        /// writable scalars not overlapping them; the CPU has AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn $name(
            m: usize,
            k: usize,
            a: *const $t,
            lda: usize,
            x: *const $t,
            incx: usize,
            y: *mut $t,
            accumulate: bool,
        ) {
            const BLOCK: usize = 12 * $lanes;
            let mut i0 = 0;
            while i0 < m {
                let rows = (m - i0).min(BLOCK);
                // SAFETY: rows i0..i0 + rows of A and y; the caller's contract.
                unsafe {
                    let (a, y) = (a.add(i0), y.add(i0));
                    // A constant number of accumulators each, so that they stay in registers.
                    match rows.div_ceil($lanes) {
                        12 => $block::<12>(rows, k, a, lda, x, incx, y, accumulate),
                        11 => $block::<11>(rows, k, a, lda, x, incx, y, accumulate),
                        10 => $block::<10>(rows, k, a, lda, x, incx, y, accumulate),
                        9 => $block::<9>(rows, k, a, lda, x, incx, y, accumulate),
                        8 => $block::<8>(rows, k, a, lda, x, incx, y, accumulate),
                        7 => $block::<7>(rows, k, a, lda, x, incx, y, accumulate),
                        6 => $block::<6>(rows, k, a, lda, x, incx, y, accumulate),
                        5 => $block::<5>(rows, k, a, lda, x, incx, y, accumulate),
                        4 => $block::<4>(rows, k, a, lda, x, incx, y, accumulate),
                        3 => $block::<3>(rows, k, a, lda, x, incx, y, accumulate),
                        2 => $block::<2>(rows, k, a, lda, x, incx, y, accumulate),
                        _ => $block::<1>(rows, k, a, lda, x, incx, y, accumulate),
                    }
                }
                i0 += BLOCK;
            }
        }

        /// `rows ≤ LANES·V` rows of the matrix-vector product in `V` accumulators: whole
        /// vectors with plain loads, the last one masked.
        ///
        /// # Safety
        /// As the product's, for the `rows × k` block at `a` and the `rows` scalars at `y`.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $block<const V: usize>(
            rows: usize,
            k: usize,
            a: *const $t,
            lda: usize,
            x: *const $t,
            incx: usize,
            y: *mut $t,
            accumulate: bool,
        ) {
            let mut acc = [$zero(); V];
            let tail = rows - (V - 1) * $lanes;
            let last = $mask(tail);
            for p in 0..k {
                // SAFETY: x[p] and the rows of column p are inside their extents; the lanes
                // past `rows` of the last vector are masked (not read).
                unsafe {
                    let xp = $set1(*x.add(p * incx));
                    let col = a.add(p * lda);
                    for (v, acc) in acc.iter_mut().enumerate() {
                        let av = if v + 1 < V || tail == $lanes {
                            $loadu(col.add(v * $lanes))
                        } else {
                            $maskload(col.add(v * $lanes), last)
                        };
                        *acc = $fmadd(av, xp, *acc);
                    }
                }
            }
            for (v, &acc) in acc.iter().enumerate() {
                // SAFETY: rows LANES·v.. of y, masked to `rows` in the last vector.
                unsafe {
                    let dst = y.add(v * $lanes);
                    if v + 1 < V || tail == $lanes {
                        let r = if accumulate {
                            $add(acc, $loadu(dst))
                        } else {
                            acc
                        };
                        $storeu(dst, r);
                    } else {
                        let r = if accumulate {
                            $add(acc, $maskload(dst, last))
                        } else {
                            acc
                        };
                        $maskstore(dst, last, r);
                    }
                }
            }
        }
    };
}

gemv!(
    gemv_f32,
    gemv_block_f32,
    f32,
    8,
    mask_ps,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_maskload_ps,
    _mm256_storeu_ps,
    _mm256_maskstore_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps
);
gemv!(
    gemv_f64,
    gemv_block_f64,
    f64,
    4,
    mask_pd,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_maskload_pd,
    _mm256_storeu_pd,
    _mm256_maskstore_pd,
    _mm256_fmadd_pd,
    _mm256_add_pd
);

/// `C (+)= Aᵀ·B` by dot products, for `A` stored `k × m` and `B` stored `k × n`, both
/// column-major, as [`super::x86`]'s: every element of `C` is the dot product of two
/// contiguous columns, so neither operand is packed. A 3 × 4 tile of `C` is 12 vector
/// accumulators over `k` (with the three vectors of `A` and one of `B`, the 16 `ymm`
/// registers), reduced at the end; `B` is taken 16 columns at a time so that they stay in L1
/// while all of `A` streams past.
macro_rules! gemm_tn {
    ($name:ident, $t:ty, $lanes:literal, $mask:ident, $zero:ident, $loadu:ident,
     $maskload:ident, $fma:ident, $hsum:ident) => {
        /// # Safety
        /// `a` addresses a `k × m` column-major matrix with leading dimension `lda`, `b` a
        /// `k × n` one with `ldb`, `c` a writable `m × n` one with `ldc`, not overlapping
        /// them; the CPU has AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn $name(
            m: usize,
            n: usize,
            k: usize,
            a: *const $t,
            lda: usize,
            b: *const $t,
            ldb: usize,
            c: *mut $t,
            ldc: usize,
            accumulate: bool,
        ) {
            const JB: usize = 16;
            const TI: usize = 3;
            const TJ: usize = 4;
            let whole = k / $lanes * $lanes;
            let tail = $mask(k - whole);
            let mut jb = 0;
            while jb < n {
                let jb_end = (jb + JB).min(n);
                let mut i0 = 0;
                while i0 < m {
                    let rows = (m - i0).min(TI);
                    let mut j0 = jb;
                    while j0 < jb_end {
                        let cols = (jb_end - j0).min(TJ);
                        let mut acc = [[$zero(); TI]; TJ];
                        // Columns past the matrix repeat its last one (read, never stored).
                        // SAFETY: the clamped column indices are inside A and B.
                        let ac: [*const $t; TI] = core::array::from_fn(|ii| unsafe {
                            a.add((i0 + ii.min(rows - 1)) * lda)
                        });
                        let bc: [*const $t; TJ] = core::array::from_fn(|jj| unsafe {
                            b.add((j0 + jj.min(cols - 1)) * ldb)
                        });
                        let mut p = 0;
                        while p < whole {
                            // SAFETY: p + lanes ≤ k: inside every column.
                            unsafe {
                                let av: [_; TI] = core::array::from_fn(|ii| $loadu(ac[ii].add(p)));
                                for jj in 0..TJ {
                                    let bv = $loadu(bc[jj].add(p));
                                    for ii in 0..TI {
                                        acc[jj][ii] = $fma(av[ii], bv, acc[jj][ii]);
                                    }
                                }
                            }
                            p += $lanes;
                        }
                        if whole < k {
                            // SAFETY: the masked lanes (past k) are not read.
                            unsafe {
                                let av: [_; TI] =
                                    core::array::from_fn(|ii| $maskload(ac[ii].add(whole), tail));
                                for jj in 0..TJ {
                                    let bv = $maskload(bc[jj].add(whole), tail);
                                    for ii in 0..TI {
                                        acc[jj][ii] = $fma(av[ii], bv, acc[jj][ii]);
                                    }
                                }
                            }
                        }
                        for jj in 0..cols {
                            for ii in 0..rows {
                                let v = $hsum(acc[jj][ii]);
                                // SAFETY: (i0 + ii, j0 + jj) is inside C.
                                unsafe {
                                    let dst = c.add(i0 + ii + (j0 + jj) * ldc);
                                    *dst = if accumulate { *dst + v } else { v };
                                }
                            }
                        }
                        j0 += TJ;
                    }
                    i0 += TI;
                }
                jb = jb_end;
            }
        }
    };
}

/// The sum of the 8 lanes of `v`.
#[target_feature(enable = "avx2")]
#[inline]
fn hsum_ps(v: __m256) -> f32 {
    let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)))
}

/// The sum of the 4 lanes of `v`.
#[target_feature(enable = "avx2")]
#[inline]
fn hsum_pd(v: __m256d) -> f64 {
    let q = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
    _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)))
}

gemm_tn!(
    dots_f32,
    f32,
    8,
    mask_ps,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_maskload_ps,
    _mm256_fmadd_ps,
    hsum_ps
);
gemm_tn!(
    dots_f64,
    f64,
    4,
    mask_pd,
    _mm256_setzero_pd,
    _mm256_loadu_pd,
    _mm256_maskload_pd,
    _mm256_fmadd_pd,
    hsum_pd
);
