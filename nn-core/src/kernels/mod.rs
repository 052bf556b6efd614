//! Matrix-product kernels for the layers, chosen per product size at compile time (the sizes
//! are const generics) and per CPU at run time; none allocates, all are `no_std`.
//!
//! The three products a dense layer needs, on column-major nalgebra matrices:
//!
//! | function | computes | a dense layer's |
//! |---|---|---|
//! | [`matmul`] | `C (+)= A·B` | forward `Y = W·X` |
//! | [`matmul_abt`] | `C (+)= A·Bᵀ` | weight gradient `∂W += ∂Y·Xᵀ` |
//! | [`matmul_atb`] | `C (+)= Aᵀ·B` | input gradient `∂X += Wᵀ·∂Y` |
//!
//! Each overwrites `C` or, with `accumulate`, adds to it. The kernel is picked from the sizes
//! (measured thresholds, see BENCHMARKS.md):
//!
//! - one column (`N = 1`, a batch of one sample): a matrix-vector loop that streams the
//!   matrix once — packing it would cost as much as the product;
//! - small products (`M·K·N` below [`PACKED_MIN_WORK`]): direct loops over the
//!   fixed-size matrices, four columns at a time, vectorised by the compiler (and compiled a
//!   second time for AVX-512 with fused multiply-adds, chosen at run time);
//! - larger products: a blocked GEMM (Goto/BLIS scheme) whose packing buffers are two
//!   64 KiB arrays on the stack — no allocator — with an AVX-512 micro-kernel when the CPU
//!   has AVX-512F (detected at run time with `std`, or at compile time with
//!   `-C target-feature=+avx512f` without it) and a portable one otherwise; `Aᵀ·B` (a
//!   layer's input gradient) with AVX-512 by a dot-product kernel that reads both operands'
//!   columns in place instead (packing `Aᵀ` would be a transpose).
//!
//! Results agree with the naive triple loop to rounding, not bit for bit: the summation
//! order differs between kernels (the tests bound the difference).

mod packed;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::Real;
use core::any::TypeId;
use nalgebra::SMatrix;

/// Products with at least this many multiply-adds (`M·K·N`, with `N > 1`) use the packed
/// GEMM; smaller ones the direct loops. Measured on the dense layers of the benchmarks: at
/// 32·64·32 the direct loops (AVX-512 with fused multiply-adds) take 0.97 µs, the packed
/// GEMM 1.9 µs and matrixmultiply 1.5 µs.
pub const PACKED_MIN_WORK: usize = 128 * 1024;

/// `Aᵀ·B` products below this many multiply-adds transpose `A` into a stack copy and use the
/// direct loops; larger ones use the dot-product kernel (with AVX-512) or the packed GEMM.
pub const TRANSPOSED_DIRECT_MAX_WORK: usize = 128 * 1024;

/// Direct products with at least this many multiply-adds run a copy compiled for AVX-512
/// when the CPU has it (below, the call and the check cost more than the wider vectors save).
const DIRECT_SIMD_MIN_WORK: usize = 1024;

/// Matrix-vector products with at least this many multiply-adds use the explicit SIMD loop
/// when the CPU has one (below, the call costs more than the wider vectors save: measured
/// on W4's 16×16 layer, where a dispatched AVX-512 loop made the step slower).
const GEMV_SIMD_MIN_WORK: usize = 4 * 1024;

/// A read-only matrix seen through strides: element `(i, j)` at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<T> {
    ptr: *const T,
    rs: usize,
    cs: usize,
}

impl<T: Copy> View<T> {
    /// Element `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` is inside the matrix this view was made for.
    #[inline(always)]
    unsafe fn at(&self, i: usize, j: usize) -> T {
        // SAFETY: the caller's contract.
        unsafe { *self.ptr.add(i * self.rs + j * self.cs) }
    }

    /// The view of the sub-matrix starting at `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` is inside the matrix (or one past its end, for an empty sub-matrix).
    #[inline(always)]
    unsafe fn offset(&self, i: usize, j: usize) -> Self {
        View {
            // SAFETY: the caller's contract.
            ptr: unsafe { self.ptr.add(i * self.rs + j * self.cs) },
            ..*self
        }
    }

    /// The transposed view (no copy).
    #[inline(always)]
    fn t(self) -> Self {
        View {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A column-major `R × C` matrix as a view.
#[inline(always)]
fn view<T: Real, const R: usize, const C: usize>(m: &SMatrix<T, R, C>) -> View<T> {
    View {
        ptr: m.as_ptr(),
        rs: 1,
        cs: R,
    }
}

/// `C = A·B`, or `C += A·B` when `accumulate`.
#[inline]
pub fn matmul<T: Real, const M: usize, const K: usize, const N: usize>(
    c: &mut SMatrix<T, M, N>,
    a: &SMatrix<T, M, K>,
    b: &SMatrix<T, K, N>,
    accumulate: bool,
) {
    // SAFETY: the views address exactly the M × K and K × N matrices, and `c` is an
    // M × N column-major matrix that cannot overlap them (it is borrowed mutably).
    unsafe { product::<T, M, K, N>(c, Some(a), view(a), view(b), accumulate) }
}

/// `C = A·Bᵀ`, or `C += A·Bᵀ` when `accumulate`.
#[inline]
pub fn matmul_abt<T: Real, const M: usize, const K: usize, const N: usize>(
    c: &mut SMatrix<T, M, N>,
    a: &SMatrix<T, M, K>,
    b: &SMatrix<T, N, K>,
    accumulate: bool,
) {
    // SAFETY: as in `matmul`; `view(b).t()` addresses the K × N matrix Bᵀ.
    unsafe { product::<T, M, K, N>(c, Some(a), view(a), view(b).t(), accumulate) }
}

/// `C = Aᵀ·B`, or `C += Aᵀ·B` when `accumulate`.
#[inline]
pub fn matmul_atb<T: Real, const M: usize, const K: usize, const N: usize>(
    c: &mut SMatrix<T, M, N>,
    a: &SMatrix<T, K, M>,
    b: &SMatrix<T, K, N>,
    accumulate: bool,
) {
    if N > 1 && M * K * N < TRANSPOSED_DIRECT_MAX_WORK {
        // Small: transpose A once (M·K copies, amortised over N columns), then the
        // direct loops with contiguous columns.
        let at: SMatrix<T, M, K> = a.transpose();
        return matmul(c, &at, b, accumulate);
    }
    // SAFETY: as in `matmul`; `view(a).t()` addresses the M × K matrix Aᵀ.
    unsafe { product::<T, M, K, N>(c, None, view(a).t(), view(b), accumulate) }
}

/// The kernel choice. `a` is `M × K` (given as a matrix too when it is one, not a
/// transposed view), `b` `K × N`.
///
/// # Safety
/// `a` and `b` address every element of their extents; `c` does not overlap them.
#[inline(always)]
unsafe fn product<T: Real, const M: usize, const K: usize, const N: usize>(
    c: &mut SMatrix<T, M, N>,
    matrix: Option<&SMatrix<T, M, K>>,
    a: View<T>,
    b: View<T>,
    accumulate: bool,
) {
    let work = M * K * N;
    if N == 1 {
        // SAFETY: the caller's contract.
        unsafe { gemv::<T, M, K>(c.as_mut_ptr(), a, b, accumulate) };
    } else if let (true, Some(a)) = (work < PACKED_MIN_WORK, matrix) {
        #[cfg(target_arch = "x86_64")]
        if work >= DIRECT_SIMD_MIN_WORK && x86::has_avx512() {
            // SAFETY: the caller's contract; AVX-512F is present.
            unsafe { x86::direct::<T, M, K, N>(c, a, b, accumulate) };
            return;
        }
        // SAFETY: the caller's contract.
        unsafe { direct::<T, M, K, N, false>(c, a, b, accumulate) };
    } else {
        #[cfg(target_arch = "x86_64")]
        if a.cs == 1 && b.rs == 1 && x86::has_avx512() {
            // Aᵀ·B: the dot-product kernel, which reads both operands' columns in place.
            if TypeId::of::<T>() == TypeId::of::<f32>() {
                // SAFETY: T is f32; A is stored K × M column-major with leading dimension
                // a.rs, B K × N with b.cs, C M × N with M; AVX-512F is present.
                unsafe {
                    x86::gemm_tn_f32(
                        M,
                        N,
                        K,
                        a.ptr.cast(),
                        a.rs,
                        b.ptr.cast(),
                        b.cs,
                        c.as_mut_ptr().cast(),
                        M,
                        accumulate,
                    )
                };
                return;
            }
            if TypeId::of::<T>() == TypeId::of::<f64>() {
                // SAFETY: as above, for f64.
                unsafe {
                    x86::gemm_tn_f64(
                        M,
                        N,
                        K,
                        a.ptr.cast(),
                        a.rs,
                        b.ptr.cast(),
                        b.cs,
                        c.as_mut_ptr().cast(),
                        M,
                        accumulate,
                    )
                };
                return;
            }
        }
        // SAFETY: the caller's contract; C is column-major with leading dimension M.
        unsafe { packed_gemm(M, N, K, a, b, c.as_mut_ptr(), M, accumulate) };
    }
}

/// The packed GEMM with the best micro-kernel for `T` on this CPU.
///
/// # Safety
/// As [`packed::gemm`], without the target-feature condition.
#[allow(clippy::too_many_arguments)]
unsafe fn packed_gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: View<T>,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx512() {
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            // SAFETY: T is f32 (same type, so the casts are identities); AVX-512F is present.
            unsafe { x86::gemm_f32(m, n, k, cast(a), cast(b), c.cast(), ldc, accumulate) };
            return;
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            // SAFETY: as above, for f64.
            unsafe { x86::gemm_f64(m, n, k, cast(a), cast(b), c.cast(), ldc, accumulate) };
            return;
        }
    }
    // SAFETY: the caller's contract.
    unsafe { portable_gemm(m, n, k, a, b, c, ldc, accumulate) }
}

/// The packed GEMM with the portable micro-kernel.
///
/// # Safety
/// As [`packed::gemm`] (the portable kernel needs no target feature).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn portable_gemm<T: Real>(
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
    unsafe { packed::gemm::<T, packed::Portable>(m, n, k, a, b, c, ldc, accumulate) }
}

/// The same view with another scalar type.
///
/// # Safety (for the caller's use of the result)
/// `U` is `T` (checked by `TypeId` at the call sites).
#[inline(always)]
fn cast<T, U>(v: View<T>) -> View<U> {
    View {
        ptr: v.ptr.cast(),
        rs: v.rs,
        cs: v.cs,
    }
}

/// `y (+)= A·x`, `A` `M × K`, `x` `K × 1` (`b`), `y` `M` scalars at `y`.
///
/// # Safety
/// As [`product`], with `y` addressing `M` writable scalars.
#[inline(always)]
unsafe fn gemv<T: Real, const M: usize, const K: usize>(
    y: *mut T,
    a: View<T>,
    x: View<T>,
    accumulate: bool,
) {
    if a.rs == 1 {
        #[cfg(target_arch = "x86_64")]
        if M * K >= GEMV_SIMD_MIN_WORK && x86::has_avx512() {
            if TypeId::of::<T>() == TypeId::of::<f32>() {
                // SAFETY: T is f32; A is column-major with leading dimension a.cs; x has
                // stride x.rs; AVX-512F is present.
                unsafe {
                    x86::gemv_f32(
                        M,
                        K,
                        a.ptr.cast(),
                        a.cs,
                        x.ptr.cast(),
                        x.rs,
                        y.cast(),
                        accumulate,
                    )
                };
                return;
            }
            if TypeId::of::<T>() == TypeId::of::<f64>() {
                // SAFETY: as above, for f64.
                unsafe {
                    x86::gemv_f64(
                        M,
                        K,
                        a.ptr.cast(),
                        a.cs,
                        x.ptr.cast(),
                        x.rs,
                        y.cast(),
                        accumulate,
                    )
                };
                return;
            }
        }
        if M < 4 {
            // Too few rows to vectorise over: one dot product per row.
            let mut acc = [T::ZERO; M];
            for (i, acc) in acc.iter_mut().enumerate() {
                // SAFETY: i < M, p < K: inside the extents.
                *acc = dot::<T, K>(|p| unsafe { a.at(i, p) }, |p| unsafe { x.at(p, 0) });
            }
            store(y, &acc, accumulate);
            return;
        }
        // Column-major A: y = Σ_p x_p·A[:, p], in an accumulator of M scalars.
        let mut acc = [T::ZERO; M];
        for p in 0..K {
            // SAFETY: p < K, rows < M: inside the extents.
            let xp = unsafe { x.at(p, 0) };
            for (i, acc) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                *acc += unsafe { a.at(i, p) } * xp;
            }
        }
        store(y, &acc, accumulate);
    } else {
        // Row-major A (a transposed matrix): each y_i is a dot product of contiguous runs.
        let mut acc = [T::ZERO; M];
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i < M, p < K: inside the extents.
            *acc = dot::<T, K>(|p| unsafe { a.at(i, p) }, |p| unsafe { x.at(p, 0) });
        }
        store(y, &acc, accumulate);
    }
}

/// Writes (or adds) `acc` to the `M` scalars at `y`.
#[inline(always)]
fn store<T: Real, const M: usize>(y: *mut T, acc: &[T; M], accumulate: bool) {
    for (i, &v) in acc.iter().enumerate() {
        // SAFETY: the callers pass a `y` addressing M writable scalars.
        let y = unsafe { &mut *y.add(i) };
        *y = if accumulate { *y + v } else { v };
    }
}

/// `Σ_p a(p)·b(p)` over `K` terms, in 8 interleaved partial sums (vectorisable).
#[inline(always)]
fn dot<T: Real, const K: usize>(a: impl Fn(usize) -> T, b: impl Fn(usize) -> T) -> T {
    if K < 8 {
        let mut sum = T::ZERO;
        for p in 0..K {
            sum += a(p) * b(p);
        }
        return sum;
    }
    let mut lanes = [T::ZERO; 8];
    let whole = K / 8 * 8;
    let mut p = 0;
    while p < whole {
        for (l, lane) in lanes.iter_mut().enumerate() {
            *lane += a(p + l) * b(p + l);
        }
        p += 8;
    }
    for (l, lane) in lanes.iter_mut().enumerate().take(K - whole) {
        *lane += a(whole + l) * b(whole + l);
    }
    let [l0, l1, l2, l3, l4, l5, l6, l7] = lanes;
    ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))
}

/// The direct loops for small products with a column-major `A`:
/// `C[:, j] += B[p, j]·A[:, p]`, updating `C` in place (contiguous columns, vectorised over
/// the rows; for a single row, over the columns).
///
/// # Safety
/// `b` addresses a `K × N` matrix.
#[inline(always)]
unsafe fn direct<T: Real, const M: usize, const K: usize, const N: usize, const FMA: bool>(
    c: &mut SMatrix<T, M, N>,
    a: &SMatrix<T, M, K>,
    b: View<T>,
    accumulate: bool,
) {
    // `a·b + c`, fused when `FMA` (only where the CPU has FMA and `mul_add` is std's, not
    // libm's software `fma`).
    let mul_add = |a: T, b: T, c: T| if FMA { a.mul_add(b, c) } else { a * b + c };
    let c = c.as_mut_slice();
    let a = a.as_slice();
    if !accumulate {
        c.fill(T::ZERO);
    }
    if M < 4 {
        // Too few rows to vectorise over: vectorise over the columns of each row instead
        // (contiguous in C when M = 1).
        for i in 0..M {
            for p in 0..K {
                let aip = a[i + p * M];
                for j in 0..N {
                    // SAFETY: (p, j) is inside B.
                    c[i + j * M] = mul_add(aip, unsafe { b.at(p, j) }, c[i + j * M]);
                }
            }
        }
        return;
    }
    // Four columns at a time: four independent chains of additions per row.
    let mut j = 0;
    while j + 4 <= N {
        let mut acc: [[T; M]; 4] =
            core::array::from_fn(|l| c[(j + l) * M..(j + l + 1) * M].try_into().unwrap());
        for p in 0..K {
            let column = &a[p * M..(p + 1) * M];
            for (l, acc) in acc.iter_mut().enumerate() {
                // SAFETY: (p, j + l) is inside B.
                let bpj = unsafe { b.at(p, j + l) };
                for (c, &a) in acc.iter_mut().zip(column) {
                    *c = mul_add(a, bpj, *c);
                }
            }
        }
        for (l, acc) in acc.iter().enumerate() {
            c[(j + l) * M..(j + l + 1) * M].copy_from_slice(acc);
        }
        j += 4;
    }
    while j < N {
        let mut acc: [T; M] = c[j * M..(j + 1) * M].try_into().unwrap();
        for p in 0..K {
            // SAFETY: (p, j) is inside B.
            let bpj = unsafe { b.at(p, j) };
            for (c, &a) in acc.iter_mut().zip(&a[p * M..(p + 1) * M]) {
                *c = mul_add(a, bpj, *c);
            }
        }
        c[j * M..(j + 1) * M].copy_from_slice(&acc);
        j += 1;
    }
}

#[cfg(test)]
mod tests;
