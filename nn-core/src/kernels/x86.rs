//! AVX-512 kernels for x86-64, used only when the CPU has AVX-512F (detected at run time
//! with `std`, or enabled at compile time with `-C target-feature=+avx512f`).

use super::View;
use super::packed::{self, MicroKernel};
use core::arch::x86_64::*;

/// Whether the AVX-512 kernels may run on this CPU.
#[inline]
pub(crate) fn has_avx512() -> bool {
    #[cfg(feature = "std")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx512f")
    }
}

/// The packed GEMM for `f32` with the AVX-512 kernel, the driver and the packing compiled
/// for AVX-512 too.
///
/// # Safety
/// As [`packed::gemm`]; the CPU has AVX-512F.
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
    unsafe { packed::gemm::<f32, Avx512F32>(m, n, k, a, b, c, ldc, accumulate) }
}

/// As [`gemm_f32`], for `f64`.
///
/// # Safety
/// As [`packed::gemm`]; the CPU has AVX-512F.
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
    unsafe { packed::gemm::<f64, Avx512F64>(m, n, k, a, b, c, ldc, accumulate) }
}

/// The mask of the first `n` of 16 lanes.
#[inline(always)]
fn mask16(n: usize) -> __mmask16 {
    if n >= 16 { 0xFFFF } else { ((1u32 << n) - 1) as __mmask16 }
}

/// The mask of the first `n` of 8 lanes.
#[inline(always)]
fn mask8(n: usize) -> __mmask8 {
    if n >= 8 { 0xFF } else { ((1u32 << n) - 1) as __mmask8 }
}

/// `f32` micro-kernel: a 32 × 8 tile in 16 `zmm` accumulators, one FMA per 16 products.
pub(crate) struct Avx512F32;

impl MicroKernel<f32> for Avx512F32 {
    const MR: usize = 32;
    const NR: usize = 8;

    #[inline]
    unsafe fn run(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    ) {
        // SAFETY: the caller's contract (MicroKernel::run), which includes AVX-512F.
        unsafe { kernel_f32(kc, a, b, c, ldc, accumulate, m, n) }
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_f32(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    m: usize,
    n: usize,
) {
    let mut lo = [_mm512_setzero_ps(); 8];
    let mut hi = [_mm512_setzero_ps(); 8];
    for p in 0..kc {
        // SAFETY: p < kc: the 32 scalars of A and 8 of B of step p are in the panels,
        // which are 64-byte aligned (and 32·4 and 8·4 bytes per step keep A aligned).
        unsafe {
            let a0 = _mm512_load_ps(a.add(p * 32));
            let a1 = _mm512_load_ps(a.add(p * 32 + 16));
            let bp = b.add(p * 8);
            for j in 0..8 {
                let bj = _mm512_set1_ps(*bp.add(j));
                lo[j] = _mm512_fmadd_ps(a0, bj, lo[j]);
                hi[j] = _mm512_fmadd_ps(a1, bj, hi[j]);
            }
        }
    }
    let (k0, k1) = (mask16(m), mask16(m.saturating_sub(16)));
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

/// `f64` micro-kernel: a 16 × 8 tile in 16 `zmm` accumulators.
pub(crate) struct Avx512F64;

impl MicroKernel<f64> for Avx512F64 {
    const MR: usize = 16;
    const NR: usize = 8;

    #[inline]
    unsafe fn run(
        kc: usize,
        a: *const f64,
        b: *const f64,
        c: *mut f64,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    ) {
        // SAFETY: the caller's contract (MicroKernel::run), which includes AVX-512F.
        unsafe { kernel_f64(kc, a, b, c, ldc, accumulate, m, n) }
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_f64(
    kc: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    ldc: usize,
    accumulate: bool,
    m: usize,
    n: usize,
) {
    let mut lo = [_mm512_setzero_pd(); 8];
    let mut hi = [_mm512_setzero_pd(); 8];
    for p in 0..kc {
        // SAFETY: as in `kernel_f32`, with 16 scalars of A per step.
        unsafe {
            let a0 = _mm512_load_pd(a.add(p * 16));
            let a1 = _mm512_load_pd(a.add(p * 16 + 8));
            let bp = b.add(p * 8);
            for j in 0..8 {
                let bj = _mm512_set1_pd(*bp.add(j));
                lo[j] = _mm512_fmadd_pd(a0, bj, lo[j]);
                hi[j] = _mm512_fmadd_pd(a1, bj, hi[j]);
            }
        }
    }
    let (k0, k1) = (mask8(m), mask8(m.saturating_sub(8)));
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
        let vectors = rows.div_ceil(16);
        let mut acc = [_mm512_setzero_ps(); 16];
        let masks: [__mmask16; 16] = core::array::from_fn(|v| mask16(rows.saturating_sub(v * 16)));
        for p in 0..k {
            // SAFETY: x[p] and the rows i0..i0+rows of column p are inside their extents;
            // masked lanes are not read.
            unsafe {
                let xp = _mm512_set1_ps(*x.add(p * incx));
                let col = a.add(i0 + p * lda);
                for v in 0..16 {
                    if v < vectors {
                        let av = _mm512_maskz_loadu_ps(masks[v], col.add(v * 16));
                        acc[v] = _mm512_fmadd_ps(av, xp, acc[v]);
                    }
                }
            }
        }
        for v in 0..vectors {
            // SAFETY: rows i0 + 16v .. of y, masked to the m rows.
            unsafe {
                let dst = y.add(i0 + v * 16);
                let mut r = acc[v];
                if accumulate {
                    r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(masks[v], dst));
                }
                _mm512_mask_storeu_ps(dst, masks[v], r);
            }
        }
        i0 += 256;
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
