//! The kernel sets of `f32` and `f64` ([`Real::Kernels`](crate::Real::Kernels)): AVX-512
//! kernels when the CPU has AVX-512F, AVX2 kernels when it has AVX2 and FMA, the portable
//! ones of [`stream`] otherwise (each tier as far as [`super::max_isa`] allows). The
//! algorithm is already chosen (by the sizes, in [`super::algorithm`]); a set only picks the
//! machine code, so each product makes one CPU check and one call.

use super::stream::{self, Portable};
use super::{KernelSet, View};
#[cfg(target_arch = "x86_64")]
use super::{avx2, row_dots, x86};
use nalgebra::SMatrix;

/// The kernels of `f32`.
#[derive(Clone, Copy, Debug)]
pub struct F32Kernels;

/// The kernels of `f64`.
#[derive(Clone, Copy, Debug)]
pub struct F64Kernels;

/// One set per scalar type: the same dispatch, with that type's AVX-512 and AVX2 kernels.
macro_rules! kernel_set {
    (
        $set:ident,
        $t:ty,
        $gemv:ident,
        $gemm:ident,
        $dots:ident,
        $row_dots_avx:ident,
        $row_dots_sse2:ident
    ) => {
        impl KernelSet<$t> for $set {
            #[inline]
            unsafe fn gemv(
                m: usize,
                k: usize,
                a: View<$t>,
                x: View<$t>,
                y: *mut $t,
                accumulate: bool,
            ) {
                #[cfg(target_arch = "x86_64")]
                if x86::has_avx512() {
                    // SAFETY: the caller's contract (A column-major, leading dimension
                    // a.cs; x with stride x.rs); AVX-512F is present.
                    unsafe { x86::$gemv(m, k, a.ptr, a.cs, x.ptr, x.rs, y, accumulate) };
                    return;
                }
                #[cfg(target_arch = "x86_64")]
                if avx2::has_avx2_fma() {
                    // SAFETY: as above; AVX2 and FMA are present.
                    unsafe { avx2::$gemv(m, k, a.ptr, a.cs, x.ptr, x.rs, y, accumulate) };
                    return;
                }
                // SAFETY: the caller's contract.
                unsafe { portable_gemv(m, k, a, x, y, accumulate) }
            }

            #[inline]
            unsafe fn gemm(
                m: usize,
                n: usize,
                k: usize,
                a: View<$t>,
                b: View<$t>,
                c: *mut $t,
                ldc: usize,
                accumulate: bool,
            ) {
                #[cfg(target_arch = "x86_64")]
                if x86::has_avx512() {
                    // SAFETY: the caller's contract; AVX-512F is present.
                    unsafe { x86::$gemm(m, n, k, a, b, c, ldc, accumulate) };
                    return;
                }
                #[cfg(target_arch = "x86_64")]
                if avx2::has_avx2_fma() {
                    // SAFETY: the caller's contract; AVX2 and FMA are present.
                    unsafe { avx2::$gemm(m, n, k, a, b, c, ldc, accumulate) };
                    return;
                }
                // SAFETY: the caller's contract.
                unsafe { portable_gemm(m, n, k, a, b, c, ldc, accumulate) }
            }

            #[inline]
            unsafe fn dots(
                m: usize,
                n: usize,
                k: usize,
                a: View<$t>,
                b: View<$t>,
                c: *mut $t,
                ldc: usize,
                accumulate: bool,
            ) {
                #[cfg(target_arch = "x86_64")]
                if x86::has_avx512() {
                    // SAFETY: the caller's contract: A stored k × m column-major with
                    // leading dimension a.rs, B k × n with b.cs; AVX-512F is present.
                    unsafe { x86::$dots(m, n, k, a.ptr, a.rs, b.ptr, b.cs, c, ldc, accumulate) };
                    return;
                }
                #[cfg(target_arch = "x86_64")]
                if avx2::has_avx2_fma() {
                    // SAFETY: as above; AVX2 and FMA are present.
                    unsafe { avx2::$dots(m, n, k, a.ptr, a.rs, b.ptr, b.cs, c, ldc, accumulate) };
                    return;
                }
                // SAFETY: the caller's contract.
                unsafe { portable_gemm(m, n, k, a, b, c, ldc, accumulate) }
            }

            #[inline]
            unsafe fn direct<const M: usize, const K: usize, const N: usize>(
                c: *mut $t,
                a: &SMatrix<$t, M, K>,
                b: View<$t>,
                accumulate: bool,
                columns: core::ops::Range<usize>,
            ) {
                #[cfg(target_arch = "x86_64")]
                if x86::has_avx512() {
                    // SAFETY: the caller's contract; AVX-512F is present.
                    unsafe { x86::direct::<$t, M, K, N>(c, a, b, accumulate, columns) };
                    return;
                }
                #[cfg(target_arch = "x86_64")]
                if avx2::has_avx2_fma() {
                    // SAFETY: the caller's contract; AVX2 and FMA are present.
                    unsafe { avx2::direct::<$t, M, K, N>(c, a, b, accumulate, columns) };
                    return;
                }
                // SAFETY: the caller's contract.
                unsafe { super::direct::<$t, M, K, N, false>(c, a, b, accumulate, columns) }
            }

            /// The vector versions (the same bits) for `K ≥ 8` on x86-64: AVX where the tier
            /// allows it (inlined into the passes compiled for AVX2 or AVX-512), SSE2
            /// otherwise. `K < 8` is one sequential sum per output, which the compiler
            /// vectorises across the outputs with contiguous loads.
            #[inline(always)]
            unsafe fn row_dots<const M: usize, const K: usize>(
                y: *mut $t,
                a: &SMatrix<$t, K, M>,
                x: View<$t>,
                accumulate: bool,
            ) {
                #[cfg(target_arch = "x86_64")]
                if K >= 8 && x.rs == 1 {
                    if avx2::has_avx2_fma() {
                        // SAFETY: the caller's contract (x contiguous); AVX2 is present.
                        unsafe {
                            row_dots::$row_dots_avx::<M, K>(y, a.as_ptr(), x.ptr, accumulate)
                        };
                    } else {
                        // SAFETY: as above; SSE2 is part of x86-64.
                        unsafe {
                            row_dots::$row_dots_sse2::<M, K>(y, a.as_ptr(), x.ptr, accumulate)
                        };
                    }
                    return;
                }
                // SAFETY: the caller's contract.
                unsafe { super::row_dots::<$t, M, K>(y, a, x, accumulate) }
            }
        }
    };
}

kernel_set!(
    F32Kernels, f32, gemv_f32, gemm_f32, dots_f32, avx_f32, sse2_f32
);
kernel_set!(
    F64Kernels, f64, gemv_f64, gemm_f64, dots_f64, avx_f64, sse2_f64
);

/// The portable matrix-vector loop, not inlined (it is the large-size path).
///
/// # Safety
/// As [`stream::gemv`].
#[inline(never)]
unsafe fn portable_gemv<T: crate::Real>(
    m: usize,
    k: usize,
    a: View<T>,
    x: View<T>,
    y: *mut T,
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe { stream::gemv(m, k, a, x, y, accumulate) }
}

/// The blocked GEMM with the portable micro-kernel, not inlined.
///
/// # Safety
/// As [`stream::gemm`] (the portable kernel needs no target feature).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn portable_gemm<T: crate::Real>(
    m: usize,
    n: usize,
    k: usize,
    a: View<T>,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe { stream::gemm::<T, Portable>(m, n, k, a, b, c, ldc, accumulate) }
}
