//! AVX-512 kernels for x86-64, used only when the CPU has AVX-512F (detected at run time
//! with `std`, or enabled at compile time with `-C target-feature=+avx512f`).

use super::View;
use super::stream::{self, MicroKernel, Tile, columns};
use core::arch::x86_64::*;

#[cfg(test)]
pub(crate) mod tests {
    // Set by the tests to run the portable kernels on this thread on a CPU with AVX-512.
    std::thread_local!(pub(crate) static PORTABLE_ONLY: core::cell::Cell<bool> = const { core::cell::Cell::new(false) });
}

/// Whether the AVX-512 kernels (and the layers' own AVX-512 loops) may run on this CPU: it
/// has AVX-512F, and [`super::max_isa`] allows them.
#[inline]
pub(crate) fn has_avx512() -> bool {
    if super::max_isa() < super::Isa::Avx512 {
        return false;
    }
    #[cfg(feature = "std")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx512f")
    }
}

/// The blocked GEMM for `f32` with the AVX-512 kernel, the driver compiled for AVX-512 too.
///
/// # Safety
/// As [`stream::gemm`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
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
    unsafe { stream::gemm::<f32, Avx512F32>(m, n, k, a, b, c, ldc, accumulate) }
}

/// As [`gemm_f32`], for `f64`.
///
/// # Safety
/// As [`stream::gemm`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
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
    unsafe { stream::gemm::<f64, Avx512F64>(m, n, k, a, b, c, ldc, accumulate) }
}

/// [`super::direct`] compiled for AVX-512 (the compiler vectorises it 16 lanes wide), with
/// fused multiply-adds when `std` provides `mul_add` (without `std` it would be libm's
/// software `fma`).
///
/// # Safety
/// As [`super::direct`]; the CPU has AVX-512F (which includes FMA).
#[target_feature(enable = "avx512f,fma")]
#[inline(never)]
pub(crate) unsafe fn direct<T: crate::Real, const M: usize, const K: usize, const N: usize>(
    c: *mut T,
    a: &nalgebra::SMatrix<T, M, K>,
    b: View<T>,
    accumulate: bool,
    columns: core::ops::Range<usize>,
) {
    // With fused multiply-adds (`std`), products of 4 to 64 rows take the explicit kernels:
    // a column of `C` in ⌈M/lanes⌉ vectors. Compiled from the generic loops, LLVM packed the
    // 4 × M accumulators of a product of up to 16 rows across vectors and spent most of its
    // time in shuffles (4.1 µs for W3's 10 × 128 × 64 output layer), and for rows not a
    // multiple of 16 (20, 40) ran the last rows' lanes apart (about 100 GFLOP/s against
    // 200 for 32 rows).
    if cfg!(feature = "std") && (4..=super::DIRECT_MAX_ROWS).contains(&M) {
        // SAFETY (both): `Real` is `f32` or `f64`, told apart by their sizes; the caller's
        // contract; AVX-512F is present (this function's own contract).
        if size_of::<T>() == 4 {
            unsafe {
                direct_f32::<M, K>(c.cast(), a.as_ptr().cast(), b.cast(), accumulate, columns)
            };
        } else {
            unsafe {
                direct_f64::<M, K>(c.cast(), a.as_ptr().cast(), b.cast(), accumulate, columns)
            };
        }
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { super::direct::<T, M, K, N, { cfg!(feature = "std") }>(c, a, b, accumulate, columns) }
}

/// Columns at a time in the AVX-512 direct kernels for a column of `vectors` vectors: eight
/// for one or two (eight or more independent chains of multiply-adds, enough to hide their
/// latency: four left W3's 10-row output layer latency-bound), four for three or four (five
/// measured slower for 40 rows), fewer above (`f64`), so that at most 16 of the 32 registers
/// are accumulators.
const fn direct_group(vectors: usize) -> usize {
    match vectors {
        1 | 2 => 8,
        3 | 4 => 4,
        _ => 16 / vectors,
    }
}

direct_vector_kernels!(
    features: "avx512f",
    direct: direct_f32,
    columns: direct_f32_columns,
    scalar: f32,
    lanes: 16,
    group: direct_group,
    mask: mask16,
    zero: _mm512_setzero_ps,
    set1: _mm512_set1_ps,
    loadu: _mm512_loadu_ps,
    load_tail: |ptr, mask| _mm512_maskz_loadu_ps(mask, ptr),
    storeu: _mm512_storeu_ps,
    store_tail: _mm512_mask_storeu_ps,
    fmadd: _mm512_fmadd_ps,
);

direct_vector_kernels!(
    features: "avx512f",
    direct: direct_f64,
    columns: direct_f64_columns,
    scalar: f64,
    lanes: 8,
    group: direct_group,
    mask: mask8,
    zero: _mm512_setzero_pd,
    set1: _mm512_set1_pd,
    loadu: _mm512_loadu_pd,
    load_tail: |ptr, mask| _mm512_maskz_loadu_pd(mask, ptr),
    storeu: _mm512_storeu_pd,
    store_tail: _mm512_mask_storeu_pd,
    fmadd: _mm512_fmadd_pd,
);

/// The mask of the first `n` of 16 lanes.
#[inline(always)]
fn mask16(n: usize) -> __mmask16 {
    if n >= 16 {
        0xFFFF
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// The mask of the first `n` of 8 lanes.
#[inline(always)]
fn mask8(n: usize) -> __mmask8 {
    if n >= 8 {
        0xFF
    } else {
        ((1u32 << n) - 1) as __mmask8
    }
}

/// `f32` micro-kernel: a 32 × 8 tile in 16 `zmm` accumulators, one FMA per 16 products.
pub(crate) struct Avx512F32;

impl MicroKernel<f32> for Avx512F32 {
    const MR: usize = 32;
    const NR: usize = 8;
    /// 128 steps.
    type Panel = Tile<{ 16 * 1024 }>;
    const TALL_MR: usize = 128;

    #[inline]
    unsafe fn run_tall(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: View<f32>,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    ) {
        // SAFETY: the caller's contract (MicroKernel::run_tall), which includes AVX-512F.
        unsafe {
            match n {
                1 => tall_f32::<1>(kc, a, lda, b, c, ldc, accumulate, m, n),
                _ => tall_f32::<2>(kc, a, lda, b, c, ldc, accumulate, m, n),
            }
        }
    }

    #[inline]
    unsafe fn run(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: View<f32>,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    ) {
        // SAFETY: the caller's contract (MicroKernel::run), which includes AVX-512F; each
        // arm's `n` is at most its number of columns.
        unsafe {
            match n {
                1 => kernel_f32::<1>(kc, a, lda, b, c, ldc, accumulate, m, n),
                2 => kernel_f32::<2>(kc, a, lda, b, c, ldc, accumulate, m, n),
                3 => kernel_f32::<3>(kc, a, lda, b, c, ldc, accumulate, m, n),
                4 => kernel_f32::<4>(kc, a, lda, b, c, ldc, accumulate, m, n),
                _ => kernel_f32::<8>(kc, a, lda, b, c, ldc, accumulate, m, n),
            }
        }
    }
}

/// The tile's first `COLUMNS ≥ n` columns: a panel of fewer than eight columns (a batch of one
/// to four samples, the last panel of a batch) computes no more than it has, and each column
/// gives the same bits as in a whole tile (its own accumulators, the same order).
///
/// # Safety
/// As [`MicroKernel::run`], with `n ≤ COLUMNS`; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_f32<const COLUMNS: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: View<f32>,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    m: usize,
    n: usize,
) {
    let mut lo = [_mm512_setzero_ps(); COLUMNS];
    let mut hi = [_mm512_setzero_ps(); COLUMNS];
    let (k0, k1) = (mask16(m), mask16(m.saturating_sub(16)));
    // SAFETY: the caller's contract: n ≥ 1 columns of B.
    let bc = unsafe { columns::<f32, COLUMNS>(b, n) };
    // One step of k: two vectors of A times `COLUMNS` broadcasts of B.
    let mut step = |p: usize, a0: __m512, a1: __m512| {
        for j in 0..COLUMNS {
            // SAFETY: p < kc: row p of a column of B.
            let bj = _mm512_set1_ps(unsafe { *bc[j].add(p * b.rs) });
            lo[j] = _mm512_fmadd_ps(a0, bj, lo[j]);
            hi[j] = _mm512_fmadd_ps(a1, bj, hi[j]);
        }
    };
    if m == 32 {
        // Whole tile: plain loads, two steps per iteration.
        let mut p = 0;
        while p + 2 <= kc {
            // SAFETY: p + 1 < kc: 32 rows of columns p and p + 1 of the panel.
            unsafe {
                let ap = a.add(p * lda);
                let aq = a.add((p + 1) * lda);
                step(p, _mm512_loadu_ps(ap), _mm512_loadu_ps(ap.add(16)));
                step(p + 1, _mm512_loadu_ps(aq), _mm512_loadu_ps(aq.add(16)));
            }
            p += 2;
        }
        if p < kc {
            // SAFETY: as above, for the last step.
            unsafe {
                let ap = a.add(p * lda);
                step(p, _mm512_loadu_ps(ap), _mm512_loadu_ps(ap.add(16)));
            }
        }
    } else {
        for p in 0..kc {
            // SAFETY: p < kc; rows past m are masked off (not read, cannot fault).
            unsafe {
                let ap = a.add(p * lda);
                step(
                    p,
                    _mm512_maskz_loadu_ps(k0, ap),
                    _mm512_maskz_loadu_ps(k1, ap.add(16)),
                );
            }
        }
    }
    for j in 0..n {
        // SAFETY: column j < n of the m-row block of C; masked lanes are neither read nor
        // written (and cannot fault).
        unsafe {
            let col = c.add(j * ldc);
            let (mut v0, mut v1) = (lo[j], hi[j]);
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k0, col));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k1, col.add(16)));
            }
            _mm512_mask_storeu_ps(col, k0, v0);
            _mm512_mask_storeu_ps(col.add(16), k1, v1);
        }
    }
}

/// A tall tile for [`MicroKernel::run_tall`]: 8 vectors of rows (128 `f32`, 64 `f64`) by
/// `COLUMNS ≤ 2`, in at most 16 accumulators; each column of the panel of `A` is read as 8
/// lines in a row. Each element: its accumulator from zero over the `kc` steps in order
/// (`a·b + acc`), then stored or added to `C`, as the 32- and 16-row tiles do.
macro_rules! tall_kernel {
    ($name:ident, $t:ty, $lanes:literal, $vector:ty, $mask_type:ty, $mask:ident, $zero:ident,
     $loadu:ident, $maskz_loadu:ident, $set1:ident, $fmadd:ident, $add:ident,
     $mask_storeu:ident) => {
        /// # Safety
        /// As [`MicroKernel::run_tall`], with `n ≤ COLUMNS`; the CPU has AVX-512F.
        #[target_feature(enable = "avx512f")]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name<const COLUMNS: usize>(
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
            let mut acc = [[$zero(); 8]; COLUMNS];
            let masks: [$mask_type; 8] =
                core::array::from_fn(|v| $mask(m.saturating_sub($lanes * v)));
            let whole = m == 8 * $lanes;
            // SAFETY: the caller's contract: n ≥ 1 columns of B.
            let bc = unsafe { columns::<$t, COLUMNS>(b, n) };
            for p in 0..kc {
                let ap = a.wrapping_add(p * lda);
                // SAFETY: p < kc; the rows of column p of the panel, the lanes past m masked
                // off (not read, cannot fault; their addresses computed with wrapping_add).
                let av: [$vector; 8] = core::array::from_fn(|v| unsafe {
                    if whole {
                        $loadu(ap.add($lanes * v))
                    } else {
                        $maskz_loadu(masks[v], ap.wrapping_add($lanes * v))
                    }
                });
                for (j, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: p < kc: row p of a column of B.
                    let bj = $set1(unsafe { *bc[j].add(p * b.rs) });
                    for (acc, &av) in acc.iter_mut().zip(&av) {
                        *acc = $fmadd(av, bj, *acc);
                    }
                }
            }
            for (j, acc) in acc.iter().enumerate().take(n) {
                for (v, (&value, &mask)) in acc.iter().zip(&masks).enumerate() {
                    if mask == 0 {
                        break;
                    }
                    // SAFETY: the vector's rows of column j < n of the m-row block of C,
                    // masked to m.
                    unsafe {
                        let dst = c.add(j * ldc + $lanes * v);
                        let value = if accumulate {
                            $add(value, $maskz_loadu(mask, dst))
                        } else {
                            value
                        };
                        $mask_storeu(dst, mask, value);
                    }
                }
            }
        }
    };
}

tall_kernel!(
    tall_f32,
    f32,
    16,
    __m512,
    __mmask16,
    mask16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_maskz_loadu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    _mm512_mask_storeu_ps
);
tall_kernel!(
    tall_f64,
    f64,
    8,
    __m512d,
    __mmask8,
    mask8,
    _mm512_setzero_pd,
    _mm512_loadu_pd,
    _mm512_maskz_loadu_pd,
    _mm512_set1_pd,
    _mm512_fmadd_pd,
    _mm512_add_pd,
    _mm512_mask_storeu_pd
);

/// `f64` micro-kernel: a 16 × 8 tile in 16 `zmm` accumulators.
pub(crate) struct Avx512F64;

impl MicroKernel<f64> for Avx512F64 {
    const MR: usize = 16;
    const NR: usize = 8;
    /// 128 steps.
    type Panel = Tile<{ 16 * 1024 }>;
    const TALL_MR: usize = 64;

    #[inline]
    unsafe fn run_tall(
        kc: usize,
        a: *const f64,
        lda: usize,
        b: View<f64>,
        c: *mut f64,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    ) {
        // SAFETY: the caller's contract (MicroKernel::run_tall), which includes AVX-512F.
        unsafe {
            match n {
                1 => tall_f64::<1>(kc, a, lda, b, c, ldc, accumulate, m, n),
                _ => tall_f64::<2>(kc, a, lda, b, c, ldc, accumulate, m, n),
            }
        }
    }

    #[inline]
    unsafe fn run(
        kc: usize,
        a: *const f64,
        lda: usize,
        b: View<f64>,
        c: *mut f64,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    ) {
        // SAFETY: as for `f32`.
        unsafe {
            match n {
                1 => kernel_f64::<1>(kc, a, lda, b, c, ldc, accumulate, m, n),
                2 => kernel_f64::<2>(kc, a, lda, b, c, ldc, accumulate, m, n),
                3 => kernel_f64::<3>(kc, a, lda, b, c, ldc, accumulate, m, n),
                4 => kernel_f64::<4>(kc, a, lda, b, c, ldc, accumulate, m, n),
                _ => kernel_f64::<8>(kc, a, lda, b, c, ldc, accumulate, m, n),
            }
        }
    }
}

/// As [`kernel_f32`], with 16 rows of `f64`.
///
/// # Safety
/// As [`MicroKernel::run`], with `n ≤ COLUMNS`; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_f64<const COLUMNS: usize>(
    kc: usize,
    a: *const f64,
    lda: usize,
    b: View<f64>,
    c: *mut f64,
    ldc: usize,
    accumulate: bool,
    m: usize,
    n: usize,
) {
    let mut lo = [_mm512_setzero_pd(); COLUMNS];
    let mut hi = [_mm512_setzero_pd(); COLUMNS];
    let (k0, k1) = (mask8(m), mask8(m.saturating_sub(8)));
    let whole = m == 16;
    // SAFETY: the caller's contract: n ≥ 1 columns of B.
    let bc = unsafe { columns::<f64, COLUMNS>(b, n) };
    for p in 0..kc {
        // SAFETY: as in `kernel_f32`, with 16 rows.
        unsafe {
            let ap = a.add(p * lda);
            let (a0, a1) = if whole {
                (_mm512_loadu_pd(ap), _mm512_loadu_pd(ap.add(8)))
            } else {
                (
                    _mm512_maskz_loadu_pd(k0, ap),
                    _mm512_maskz_loadu_pd(k1, ap.add(8)),
                )
            };
            for j in 0..COLUMNS {
                let bj = _mm512_set1_pd(*bc[j].add(p * b.rs));
                lo[j] = _mm512_fmadd_pd(a0, bj, lo[j]);
                hi[j] = _mm512_fmadd_pd(a1, bj, hi[j]);
            }
        }
    }
    for j in 0..n {
        // SAFETY: as in `kernel_f32`.
        unsafe {
            let col = c.add(j * ldc);
            let (mut v0, mut v1) = (lo[j], hi[j]);
            if accumulate {
                v0 = _mm512_add_pd(v0, _mm512_maskz_loadu_pd(k0, col));
                v1 = _mm512_add_pd(v1, _mm512_maskz_loadu_pd(k1, col.add(8)));
            }
            _mm512_mask_storeu_pd(col, k0, v0);
            _mm512_mask_storeu_pd(col.add(8), k1, v1);
        }
    }
}

/// `y (+)= A·x` for a column-major `f32` matrix `A` (`m × k`, leading dimension `lda`)
/// and a vector `x` with stride `incx`: 256 rows at a time in 16 accumulators, streaming
/// the columns of `A` once.
///
/// # Safety
/// `a` addresses the `m × k` matrix, `x` `k` scalars at stride `incx`, `y` `m` writable
/// scalars not overlapping them; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemv_f32(
    m: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    x: *const f32,
    incx: usize,
    y: *mut f32,
    accumulate: bool,
) {
    let mut i0 = 0;
    while i0 < m {
        let rows = (m - i0).min(256);
        // SAFETY: rows i0..i0 + rows of A and y; the caller's contract.
        unsafe {
            let (a, y) = (a.add(i0), y.add(i0));
            // A constant number of accumulators each, so that they stay in registers.
            match rows.div_ceil(16) {
                16 => gemv_block_f32::<16>(rows, k, a, lda, x, incx, y, accumulate),
                15 => gemv_block_f32::<15>(rows, k, a, lda, x, incx, y, accumulate),
                14 => gemv_block_f32::<14>(rows, k, a, lda, x, incx, y, accumulate),
                13 => gemv_block_f32::<13>(rows, k, a, lda, x, incx, y, accumulate),
                12 => gemv_block_f32::<12>(rows, k, a, lda, x, incx, y, accumulate),
                11 => gemv_block_f32::<11>(rows, k, a, lda, x, incx, y, accumulate),
                10 => gemv_block_f32::<10>(rows, k, a, lda, x, incx, y, accumulate),
                9 => gemv_block_f32::<9>(rows, k, a, lda, x, incx, y, accumulate),
                8 => gemv_block_f32::<8>(rows, k, a, lda, x, incx, y, accumulate),
                7 => gemv_block_f32::<7>(rows, k, a, lda, x, incx, y, accumulate),
                6 => gemv_block_f32::<6>(rows, k, a, lda, x, incx, y, accumulate),
                5 => gemv_block_f32::<5>(rows, k, a, lda, x, incx, y, accumulate),
                4 => gemv_block_f32::<4>(rows, k, a, lda, x, incx, y, accumulate),
                3 => gemv_block_f32::<3>(rows, k, a, lda, x, incx, y, accumulate),
                2 => gemv_block_f32::<2>(rows, k, a, lda, x, incx, y, accumulate),
                _ => gemv_block_f32::<1>(rows, k, a, lda, x, incx, y, accumulate),
            }
        }
        i0 += 256;
    }
}

/// `rows ≤ 16·V` rows of [`gemv_f32`] in `V` accumulators: whole vectors with plain loads,
/// the last one masked.
///
/// # Safety
/// As [`gemv_f32`], for the `rows × k` block at `a` and the `rows` scalars at `y`.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn gemv_block_f32<const V: usize>(
    rows: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    x: *const f32,
    incx: usize,
    y: *mut f32,
    accumulate: bool,
) {
    let mut acc = [_mm512_setzero_ps(); V];
    let last = mask16(rows - (V - 1) * 16);
    for p in 0..k {
        // SAFETY: x[p] and the rows of column p are inside their extents; the lanes past
        // `rows` of the last vector are masked (not read).
        unsafe {
            let xp = _mm512_set1_ps(*x.add(p * incx));
            let col = a.add(p * lda);
            for (v, acc) in acc.iter_mut().enumerate() {
                let av = if v + 1 < V {
                    _mm512_loadu_ps(col.add(v * 16))
                } else {
                    _mm512_maskz_loadu_ps(last, col.add(v * 16))
                };
                *acc = _mm512_fmadd_ps(av, xp, *acc);
            }
        }
    }
    for (v, &acc) in acc.iter().enumerate() {
        let mask = if v + 1 < V { 0xFFFF } else { last };
        // SAFETY: rows 16v.. of y, masked to `rows`.
        unsafe {
            let dst = y.add(v * 16);
            let r = if accumulate {
                _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mask, dst))
            } else {
                acc
            };
            _mm512_mask_storeu_ps(dst, mask, r);
        }
    }
}

/// `y (+)= A·x` for `f64`, as [`gemv_f32`] with 128 rows at a time.
///
/// # Safety
/// As [`gemv_f32`].
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemv_f64(
    m: usize,
    k: usize,
    a: *const f64,
    lda: usize,
    x: *const f64,
    incx: usize,
    y: *mut f64,
    accumulate: bool,
) {
    let mut i0 = 0;
    while i0 < m {
        let rows = (m - i0).min(128);
        let vectors = rows.div_ceil(8);
        let mut acc = [_mm512_setzero_pd(); 16];
        let masks: [__mmask8; 16] = core::array::from_fn(|v| mask8(rows.saturating_sub(v * 8)));
        for p in 0..k {
            // SAFETY: as in `gemv_f32`.
            unsafe {
                let xp = _mm512_set1_pd(*x.add(p * incx));
                let col = a.add(i0 + p * lda);
                for v in 0..16 {
                    if v < vectors {
                        let av = _mm512_maskz_loadu_pd(masks[v], col.add(v * 8));
                        acc[v] = _mm512_fmadd_pd(av, xp, acc[v]);
                    }
                }
            }
        }
        for v in 0..vectors {
            // SAFETY: as in `gemv_f32`.
            unsafe {
                let dst = y.add(i0 + v * 8);
                let mut r = acc[v];
                if accumulate {
                    r = _mm512_add_pd(r, _mm512_maskz_loadu_pd(masks[v], dst));
                }
                _mm512_mask_storeu_pd(dst, masks[v], r);
            }
        }
        i0 += 128;
    }
}

/// `C (+)= Aᵀ·B` by dot products, for `A` stored `k × m` and `B` stored `k × n`, both
/// column-major: every element of `C` is the dot product of two contiguous columns, so
/// neither operand is packed (packing `Aᵀ` for the outer-product kernel means a transpose).
/// A 4 × 4 tile of `C` is 16 vector accumulators over `k`, reduced at the end; `B` is taken
/// 16 columns at a time so that they stay in L1 while all of `A` streams past.
macro_rules! gemm_tn {
    ($name:ident, $t:ty, $lanes:literal, $mask:ident, $mask_ty:ty, $zero:ident, $load:ident,
     $fma:ident, $reduce:ident) => {
        /// # Safety
        /// `a` addresses a `k × m` column-major matrix with leading dimension `lda`, `b` a
        /// `k × n` one with `ldb`, `c` a writable `m × n` one with `ldc`, not overlapping
        /// them; the CPU has AVX-512F.
        #[target_feature(enable = "avx512f")]
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
            let whole = k / $lanes * $lanes;
            let tail: $mask_ty = $mask(k - whole);
            let mut jb = 0;
            while jb < n {
                let jb_end = (jb + JB).min(n);
                let mut i0 = 0;
                while i0 < m {
                    let rows = (m - i0).min(4);
                    let mut j0 = jb;
                    while j0 < jb_end {
                        let cols = (jb_end - j0).min(4);
                        let mut acc = [[$zero(); 4]; 4];
                        // Columns past the matrix repeat its last one (read, never stored).
                        // SAFETY: the clamped column indices are inside A and B.
                        let ac: [*const $t; 4] = core::array::from_fn(|ii| unsafe {
                            a.add((i0 + ii.min(rows - 1)) * lda)
                        });
                        let bc: [*const $t; 4] = core::array::from_fn(|jj| unsafe {
                            b.add((j0 + jj.min(cols - 1)) * ldb)
                        });
                        let mut p = 0;
                        while p < whole {
                            // SAFETY: p + lanes ≤ k: inside every column.
                            unsafe {
                                let av: [_; 4] = core::array::from_fn(|ii| $load(ac[ii].add(p)));
                                for jj in 0..4 {
                                    let bv = $load(bc[jj].add(p));
                                    for ii in 0..4 {
                                        acc[jj][ii] = $fma(av[ii], bv, acc[jj][ii]);
                                    }
                                }
                            }
                            p += $lanes;
                        }
                        if whole < k {
                            // SAFETY: the masked lanes (past k) are not read.
                            unsafe {
                                let av: [_; 4] = core::array::from_fn(|ii| {
                                    paste_masked!($load, tail, ac[ii].add(whole))
                                });
                                for jj in 0..4 {
                                    let bv = paste_masked!($load, tail, bc[jj].add(whole));
                                    for ii in 0..4 {
                                        acc[jj][ii] = $fma(av[ii], bv, acc[jj][ii]);
                                    }
                                }
                            }
                        }
                        for jj in 0..cols {
                            let sums: [$t; 4] = $reduce(acc[jj]);
                            for (ii, &v) in sums.iter().enumerate().take(rows) {
                                // SAFETY: (i0 + ii, j0 + jj) is inside C.
                                unsafe {
                                    let dst = c.add(i0 + ii + (j0 + jj) * ldc);
                                    *dst = if accumulate { *dst + v } else { v };
                                }
                            }
                        }
                        j0 += 4;
                    }
                    i0 += 4;
                }
                jb = jb_end;
            }
        }
    };
}

/// The four horizontal sums of four vectors, sharing the shuffles: pairwise interleaved
/// additions bring the four partial sums of each 128-bit lane together, then the lanes
/// are added.
#[target_feature(enable = "avx512f")]
#[inline]
fn reduce4_f32(v: [__m512; 4]) -> [f32; 4] {
    // [a0 b0 a1 b1 | …] + [a2 b2 a3 b3 | …]: per 128-bit lane, a and b interleaved.
    let ab = _mm512_add_ps(
        _mm512_unpacklo_ps(v[0], v[1]),
        _mm512_unpackhi_ps(v[0], v[1]),
    );
    let cd = _mm512_add_ps(
        _mm512_unpacklo_ps(v[2], v[3]),
        _mm512_unpackhi_ps(v[2], v[3]),
    );
    // Per lane: [a b c d] partial sums.
    let abcd = _mm512_add_ps(
        _mm512_shuffle_ps::<0b0100_0100>(ab, cd),
        _mm512_shuffle_ps::<0b1110_1110>(ab, cd),
    );
    let half = _mm256_add_ps(
        _mm512_castps512_ps256(abcd),
        _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(abcd))),
    );
    let quarter = _mm_add_ps(
        _mm256_castps256_ps128(half),
        _mm256_extractf128_ps::<1>(half),
    );
    let mut out = [0.0f32; 4];
    // SAFETY: `out` has room for four floats.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), quarter) };
    out
}

/// The four horizontal sums of four `f64` vectors.
#[target_feature(enable = "avx512f")]
#[inline]
fn reduce4_f64(v: [__m512d; 4]) -> [f64; 4] {
    v.map(|x| _mm512_reduce_add_pd(x))
}

/// The masked form of a full-vector load.
macro_rules! paste_masked {
    (_mm512_loadu_ps, $k:expr, $p:expr) => {
        _mm512_maskz_loadu_ps($k, $p)
    };
    (_mm512_loadu_pd, $k:expr, $p:expr) => {
        _mm512_maskz_loadu_pd($k, $p)
    };
}

gemm_tn!(
    dots_f32,
    f32,
    16,
    mask16,
    __mmask16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    reduce4_f32
);
gemm_tn!(
    dots_f64,
    f64,
    8,
    mask8,
    __mmask8,
    _mm512_setzero_pd,
    _mm512_loadu_pd,
    _mm512_fmadd_pd,
    reduce4_f64
);
