//! Every kernel against the naive triple loop, in `f64`, on sizes that cross every block and
//! panel boundary, with and without accumulation.

use super::*;
use crate::ConstZero;
use std::vec::Vec;

/// A deterministic value in [-1, 1).
fn value(seed: usize) -> f64 {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

fn filled<T: Real, const R: usize, const C: usize>(seed: usize) -> SMatrix<T, R, C> {
    SMatrix::from_fn(|i, j| T::of(value(seed + i * 7919 + j * 104_729)))
}

/// `C0 (+)= op(A)·op(B)` by the definition, in f64.
fn reference(
    m: usize,
    n: usize,
    k: usize,
    a: impl Fn(usize, usize) -> f64,
    b: impl Fn(usize, usize) -> f64,
    c0: impl Fn(usize, usize) -> f64,
    accumulate: bool,
) -> Vec<f64> {
    let mut c = std::vec![0.0; m * n];
    for j in 0..n {
        for i in 0..m {
            let mut s = if accumulate { c0(i, j) } else { 0.0 };
            for p in 0..k {
                s += a(i, p) * b(p, j);
            }
            c[i + j * m] = s;
        }
    }
    c
}

/// Largest difference relative to `1 + |reference|`.
fn max_error<T: Real>(got: &[T], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g.to_f64() - w).abs() / (1.0 + w.abs()))
        .fold(0.0, f64::max)
}

/// Tolerance for a sum of `k` products of values in [-1, 1].
fn tolerance<T: Real>(k: usize) -> f64 {
    let eps = if size_of::<T>() == 4 { 1.2e-7 } else { 2.3e-16 };
    4.0 * eps * (k as f64).sqrt().max(1.0) * 4.0
}

fn check_all_three<T: Real, const M: usize, const K: usize, const N: usize>() {
    for accumulate in [false, true] {
        let a: SMatrix<T, M, K> = filled(1);
        let b: SMatrix<T, K, N> = filled(2);
        let c0: SMatrix<T, M, N> = filled(3);
        let want = reference(
            M,
            N,
            K,
            |i, j| a[(i, j)].to_f64(),
            |i, j| b[(i, j)].to_f64(),
            |i, j| c0[(i, j)].to_f64(),
            accumulate,
        );
        let tol = tolerance::<T>(K);

        let mut c = c0;
        matmul(&mut c, &a, &b, accumulate);
        let e = max_error(c.as_slice(), &want);
        assert!(e < tol, "matmul {M}×{K}×{N} acc={accumulate}: {e:e}");

        let bt: SMatrix<T, N, K> = b.transpose();
        let mut c = c0;
        matmul_abt(&mut c, &a, &bt, accumulate);
        let e = max_error(c.as_slice(), &want);
        assert!(e < tol, "matmul_abt {M}×{K}×{N} acc={accumulate}: {e:e}");

        let at: SMatrix<T, K, M> = a.transpose();
        let mut c = c0;
        matmul_atb(&mut c, &at, &b, accumulate);
        let e = max_error(c.as_slice(), &want);
        assert!(e < tol, "matmul_atb {M}×{K}×{N} acc={accumulate}: {e:e}");
    }
}

#[test]
fn small_products_match_the_definition() {
    check_all_three::<f64, 1, 1, 1>();
    check_all_three::<f64, 3, 2, 1>();
    check_all_three::<f64, 16, 2, 1>();
    check_all_three::<f64, 1, 16, 1>();
    check_all_three::<f64, 16, 16, 4>();
    check_all_three::<f32, 10, 16, 32>();
    check_all_three::<f32, 32, 64, 13>();
    check_all_three::<f64, 5, 3, 7>();
}

#[test]
fn matrix_vector_products_match_the_definition() {
    // Below and above the SIMD threshold, with row tails (300 = 256 + 44, 130 = 128 + 2).
    check_all_three::<f32, 16, 16, 1>();
    check_all_three::<f32, 300, 50, 1>();
    check_all_three::<f64, 130, 40, 1>();
    check_all_three::<f32, 10, 700, 1>();
}

#[test]
fn blocked_products_match_the_definition() {
    // Above DIRECT_MAX_WORK; edges of MR, NR, MC, NC and two depth blocks (K > 256).
    check_all_three::<f32, 70, 300, 70>();
    check_all_three::<f64, 37, 150, 9>();
    check_all_three::<f32, 64, 64, 64>();
    check_all_three::<f64, 128, 64, 32>();
    // Small products taller than DIRECT_MAX_ROWS (the GEMM), a shallow Aᵀ·B too big to copy
    // (the GEMM on transposed tiles) and a deep one (the dot products).
    check_all_three::<f32, 65, 8, 3>();
    check_all_three::<f64, 100, 20, 16>();
    check_all_three::<f32, 40, 100, 8>();
    // Above DIRECT_MAX_WORK with few rows (the direct loops), masked last vectors, more
    // than one depth block of the GEMM (K > 256), and B column-major and transposed.
    check_all_three::<f32, 40, 300, 70>();
    check_all_three::<f64, 20, 400, 30>();
}

#[test]
fn the_sizes_choose_the_algorithm() {
    use Algorithm::*;
    assert_eq!(algorithm(16, 16, 1, false, 4), MatrixVectorInline);
    assert_eq!(algorithm(256, 784, 1, false, 4), MatrixVector);
    assert_eq!(algorithm(784, 256, 1, true, 4), RowDots);
    assert_eq!(algorithm(32, 64, 32, false, 4), Direct);
    assert_eq!(algorithm(16, 10, 32, true, 4), TransposedDirect);
    assert_eq!(algorithm(128, 10, 64, true, 4), Gemm);
    assert_eq!(algorithm(256, 128, 64, true, 4), Dots);
    assert_eq!(algorithm(256, 784, 64, false, 4), Gemm);
    assert_eq!(algorithm(100, 4, 4, false, 8), Gemm);
    // Few rows, any size, while A fits DIRECT_MAX_A_BYTES; not for a transposed A.
    assert_eq!(algorithm(16, 784, 64, false, 4), Direct);
    assert_eq!(algorithm(10, 4096, 64, false, 4), Direct);
    assert_eq!(algorithm(48, 1365, 64, false, 4), Direct);
    assert_eq!(algorithm(48, 1366, 64, false, 4), Gemm);
    assert_eq!(algorithm(24, 1365, 64, false, 8), Direct);
    assert_eq!(algorithm(25, 100, 64, false, 8), Gemm);
    assert_eq!(algorithm(64, 256, 64, false, 4), Gemm);
    assert_eq!(algorithm(16, 784, 64, true, 4), Dots);
}

/// Runs the blocked GEMM with kernel `K` on heap matrices, for sizes too big for the stack.
fn check_blocked_kernel<T: Real, K: stream::MicroKernel<T>>(m: usize, n: usize, k: usize) {
    let a: Vec<T> = (0..m * k).map(|s| T::of(value(s + 11))).collect();
    let b: Vec<T> = (0..k * n).map(|s| T::of(value(s + 12))).collect();
    let c0: Vec<T> = (0..m * n).map(|s| T::of(value(s + 13))).collect();
    for (transpose_a, transpose_b, accumulate) in [
        (false, false, false),
        (false, true, true),
        (true, false, true),
        (true, true, false),
    ] {
        // Stored column-major as given, or as the transpose (row-major view).
        let va = if transpose_a {
            View {
                ptr: a.as_ptr(),
                rs: k,
                cs: 1,
            }
        } else {
            View {
                ptr: a.as_ptr(),
                rs: 1,
                cs: m,
            }
        };
        let vb = if transpose_b {
            View {
                ptr: b.as_ptr(),
                rs: n,
                cs: 1,
            }
        } else {
            View {
                ptr: b.as_ptr(),
                rs: 1,
                cs: k,
            }
        };
        let want = reference(
            m,
            n,
            k,
            // SAFETY: inside the m × k and k × n extents.
            |i, p| unsafe { va.at(i, p) }.to_f64(),
            |p, j| unsafe { vb.at(p, j) }.to_f64(),
            |i, j| c0[i + j * m].to_f64(),
            accumulate,
        );
        let mut c = c0.clone();
        // SAFETY: the views address their extents; c is m × n column-major; the kernel's
        // target features were checked by the caller.
        unsafe { stream::gemm::<T, K>(m, n, k, va, vb, c.as_mut_ptr(), m, accumulate) };
        let e = max_error(&c, &want);
        assert!(
            e < tolerance::<T>(k),
            "{m}×{k}×{n} tA={transpose_a} tB={transpose_b} acc={accumulate}: {e:e}"
        );
    }
}

/// A product of `n < NR` columns (a batch of a few samples, the last panel of a batch) gives
/// each column the bits that the same column gets in a product of `NR` columns: the kernels'
/// narrower tiles, and for one or two columns their tall tiles, compute fewer columns in the
/// same order. `m` of 1,024 `f32` rows (512
/// `f64`) is a product whose `A` has 4 KiB columns: read in place, like the narrower ones,
/// when there is one panel of `B`.
fn check_narrow_panels<T: Real, K: stream::MicroKernel<T>>(m: usize, k: usize) {
    let nr = K::NR;
    let a: Vec<T> = (0..m * k).map(|s| T::of(value(s + 21))).collect();
    let b: Vec<T> = (0..k * nr).map(|s| T::of(value(s + 22))).collect();
    let c0: Vec<T> = (0..m * nr).map(|s| T::of(value(s + 23))).collect();
    let va = View {
        ptr: a.as_ptr(),
        rs: 1,
        cs: m,
    };
    for (transpose_b, accumulate) in [(false, false), (true, true)] {
        // B (k × nr) column-major or stored row-major; a product of n columns reads its
        // first n.
        let vb = if transpose_b {
            View {
                ptr: b.as_ptr(),
                rs: nr,
                cs: 1,
            }
        } else {
            View {
                ptr: b.as_ptr(),
                rs: 1,
                cs: k,
            }
        };
        let mut whole = c0.clone();
        // SAFETY: the views address their extents; C is m × nr column-major; the kernel's
        // target features were checked by the caller.
        unsafe { stream::gemm::<T, K>(m, nr, k, va, vb, whole.as_mut_ptr(), m, accumulate) };
        for n in 1..nr {
            let mut part = c0[..m * n].to_vec();
            // SAFETY: as above, with n ≤ nr columns.
            unsafe { stream::gemm::<T, K>(m, n, k, va, vb, part.as_mut_ptr(), m, accumulate) };
            let bits = |c: &[T]| c.iter().map(|v| v.to_f64().to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&part),
                bits(&whole[..m * n]),
                "{m}×{k}×{n} tB={transpose_b} acc={accumulate}"
            );
        }
    }
}

#[test]
fn portable_blocked_kernel_matches_the_definition() {
    check_blocked_kernel::<f32, stream::Portable>(133, 71, 517);
    check_blocked_kernel::<f64, stream::Portable>(65, 130, 129);
    check_blocked_kernel::<f64, stream::Portable>(1, 1, 1);
    check_blocked_kernel::<f32, stream::Portable>(5, 3, 0);
    // Columns of 4 KiB (the copied micro-panels of `stream::in_tiles`).
    check_blocked_kernel::<f32, stream::Portable>(1024, 70, 300);
    check_blocked_kernel::<f64, stream::Portable>(512, 9, 300);
    // Batches of a few samples: the narrower tiles.
    for n in 1..=3 {
        check_blocked_kernel::<f32, stream::Portable>(37, n, 300);
        check_blocked_kernel::<f64, stream::Portable>(37, n, 300);
    }
    for m in [1, 13, 1024] {
        check_narrow_panels::<f32, stream::Portable>(m, 300);
    }
    for m in [5, 512] {
        check_narrow_panels::<f64, stream::Portable>(m, 300);
    }
}

/// The signature of the dot-product kernels (`x86::dots_f32`, `avx2::dots_f64`, …).
#[cfg(target_arch = "x86_64")]
type DotsKernel<T> =
    unsafe fn(usize, usize, usize, *const T, usize, *const T, usize, *mut T, usize, bool);

/// The signature of the matrix-vector kernels (`x86::gemv_f32`, …).
#[cfg(target_arch = "x86_64")]
type GemvKernel<T> = unsafe fn(usize, usize, *const T, usize, *const T, usize, *mut T, bool);

/// A pair of dot-product kernels for `Aᵀ·B` against the definition: tails in m, n (tiles of
/// 3 or 4, blocks of 16) and k (vectors of 4, 8 or 16).
///
/// # Safety
/// The CPU has the kernels' target features.
#[cfg(target_arch = "x86_64")]
unsafe fn check_dots(what: &str, dots_f32: DotsKernel<f32>, dots_f64: DotsKernel<f64>) {
    for (m, n, k) in [
        (1, 1, 1),
        (5, 7, 17),
        (9, 19, 33),
        (4, 16, 16),
        (13, 3, 100),
        (3, 4, 8),
        (7, 33, 3),
        (31, 17, 64),
        (2, 5, 259),
    ] {
        let a: Vec<f64> = (0..k * m).map(|s| value(s + 31)).collect();
        let b: Vec<f64> = (0..k * n).map(|s| value(s + 32)).collect();
        let c0: Vec<f64> = (0..m * n).map(|s| value(s + 33)).collect();
        for accumulate in [false, true] {
            let want = reference(
                m,
                n,
                k,
                |i, p| a[p + i * k],
                |p, j| b[p + j * k],
                |i, j| c0[i + j * m],
                accumulate,
            );
            let (a32, b32): (Vec<f32>, Vec<f32>) = (
                a.iter().map(|&v| v as f32).collect(),
                b.iter().map(|&v| v as f32).collect(),
            );
            let mut c32: Vec<f32> = c0.iter().map(|&v| v as f32).collect();
            let mut c64 = c0.clone();
            // SAFETY: A is k × m, B k × n, C m × n, all column-major; the caller checked the CPU.
            unsafe {
                dots_f32(
                    m,
                    n,
                    k,
                    a32.as_ptr(),
                    k,
                    b32.as_ptr(),
                    k,
                    c32.as_mut_ptr(),
                    m,
                    accumulate,
                );
                dots_f64(
                    m,
                    n,
                    k,
                    a.as_ptr(),
                    k,
                    b.as_ptr(),
                    k,
                    c64.as_mut_ptr(),
                    m,
                    accumulate,
                );
            }
            assert!(
                max_error(&c32, &want) < tolerance::<f32>(k),
                "{what} dots_f32 {m}×{k}×{n}"
            );
            assert!(
                max_error(&c64, &want) < tolerance::<f64>(k),
                "{what} dots_f64 {m}×{k}×{n}"
            );
        }
    }
}

/// A pair of matrix-vector kernels against the definition, with row tails and strided x.
///
/// # Safety
/// The CPU has the kernels' target features.
#[cfg(target_arch = "x86_64")]
unsafe fn check_gemv(what: &str, gemv_f32: GemvKernel<f32>, gemv_f64: GemvKernel<f64>) {
    for (m, k) in [
        (1, 1),
        (15, 3),
        (300, 70),
        (513, 9),
        (8, 5),
        (96, 4),
        (97, 6),
        (48, 7),
        (191, 2),
    ] {
        let a: Vec<f64> = (0..m * k).map(|s| value(s + 21)).collect();
        let x: Vec<f64> = (0..2 * k).map(|s| value(s + 22)).collect();
        for accumulate in [false, true] {
            let y0: Vec<f64> = (0..m).map(|s| value(s + 23)).collect();
            let want = reference(
                m,
                1,
                k,
                |i, p| a[i + p * m],
                |p, _| x[2 * p],
                |i, _| y0[i],
                accumulate,
            );
            let (a32, x32): (Vec<f32>, Vec<f32>) = (
                a.iter().map(|&v| v as f32).collect(),
                x.iter().map(|&v| v as f32).collect(),
            );
            let mut y32: Vec<f32> = y0.iter().map(|&v| v as f32).collect();
            let mut y64 = y0.clone();
            // SAFETY: a is m × k column-major, x holds 2k scalars (stride 2), y m; the caller
            // checked the CPU.
            unsafe {
                gemv_f32(
                    m,
                    k,
                    a32.as_ptr(),
                    m,
                    x32.as_ptr(),
                    2,
                    y32.as_mut_ptr(),
                    accumulate,
                );
                gemv_f64(
                    m,
                    k,
                    a.as_ptr(),
                    m,
                    x.as_ptr(),
                    2,
                    y64.as_mut_ptr(),
                    accumulate,
                );
            }
            assert!(
                max_error(&y32, &want) < tolerance::<f32>(k),
                "{what} gemv_f32 {m}×{k}"
            );
            assert!(
                max_error(&y64, &want) < tolerance::<f64>(k),
                "{what} gemv_f64 {m}×{k}"
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_kernels_match_the_definition() {
    if !x86::has_avx512() {
        return; // nothing to test on this CPU
    }
    check_blocked_kernel::<f32, x86::Avx512F32>(133, 71, 517);
    check_blocked_kernel::<f32, x86::Avx512F32>(256, 64, 300);
    check_blocked_kernel::<f32, x86::Avx512F32>(7, 9, 3);
    check_blocked_kernel::<f64, x86::Avx512F64>(65, 130, 129);
    check_blocked_kernel::<f64, x86::Avx512F64>(17, 8, 300);
    check_blocked_kernel::<f32, x86::Avx512F32>(1024, 70, 300);
    check_blocked_kernel::<f64, x86::Avx512F64>(512, 9, 300);
    // Batches of a few samples: the narrower tiles.
    for n in 1..=4 {
        check_blocked_kernel::<f32, x86::Avx512F32>(77, n, 300);
        check_blocked_kernel::<f64, x86::Avx512F64>(77, n, 300);
        check_blocked_kernel::<f32, x86::Avx512F32>(1024, n, 70);
    }
    // One or two columns take the tall tiles (128 rows of `f32`, 64 of `f64`): whole ones,
    // several, and a last one with a partial vector.
    for m in [1, 33, 64, 200, 1024] {
        check_narrow_panels::<f32, x86::Avx512F32>(m, 300);
    }
    for m in [1, 17, 200, 512] {
        check_narrow_panels::<f64, x86::Avx512F64>(m, 300);
    }
    // SAFETY: AVX-512F was detected.
    unsafe {
        check_dots("AVX-512", x86::dots_f32, x86::dots_f64);
        check_gemv("AVX-512", x86::gemv_f32, x86::gemv_f64);
    }
}

/// The AVX-512 and AVX2 direct loops give the generic loops' bits (with fused
/// multiply-adds) for every row count, their explicit kernels included (AVX-512: `f32` and
/// `f64`, 4 to 64 rows, a column in masked vectors; AVX2: `f32`, 4 rows and more, in groups
/// of columns): writing and adding, whole and on runs of columns, B column-major and
/// transposed.
#[cfg(target_arch = "x86_64")]
#[test]
fn vector_direct_loops_equal_the_generic_ones_bit_for_bit() {
    fn check<const M: usize, const K: usize, const N: usize>() {
        check_type::<f32, M, K, N>();
        check_type::<f64, M, K, N>();
    }
    fn check_type<T: Real, const M: usize, const K: usize, const N: usize>() {
        if x86::has_avx512() {
            check_with::<T, M, K, N>("AVX-512", |c, a, b, accumulate, columns| {
                // SAFETY: as `check_with` promises; AVX-512F was detected.
                unsafe { x86::direct::<T, M, K, N>(c, a, b, accumulate, columns) }
            });
        }
        if avx2::has_avx2_fma() {
            check_with::<T, M, K, N>("AVX2", |c, a, b, accumulate, columns| {
                // SAFETY: as `check_with` promises; AVX2 and FMA were detected.
                unsafe { avx2::direct::<T, M, K, N>(c, a, b, accumulate, columns) }
            });
        }
    }
    /// `direct` against the generic loops; it is called with views of `K × N` matrices and
    /// a column range inside `C`.
    fn check_with<T: Real, const M: usize, const K: usize, const N: usize>(
        tier: &str,
        direct_of_set: impl Fn(*mut T, &SMatrix<T, M, K>, View<T>, bool, core::ops::Range<usize>),
    ) {
        let a = filled::<T, M, K>(1);
        let b = filled::<T, K, N>(2);
        let bt = filled::<T, N, K>(3);
        for (bv, layout) in [(view(&b), "B"), (view(&bt).t(), "Bᵀ")] {
            for accumulate in [false, true] {
                for columns in [0..N, 0..N / 2, N / 2..N, 1..N.min(6)] {
                    let mut want = filled::<T, M, N>(4);
                    let mut got = want;
                    // SAFETY: the views address K × N matrices; the columns are inside C.
                    unsafe {
                        direct::<T, M, K, N, true>(
                            want.as_mut_ptr(),
                            &a,
                            bv,
                            accumulate,
                            columns.clone(),
                        );
                    }
                    direct_of_set(got.as_mut_ptr(), &a, bv, accumulate, columns.clone());
                    let bits = |m: &SMatrix<T, M, N>| -> Vec<u64> {
                        m.iter().map(|v| v.to_f64().to_bits()).collect()
                    };
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "{tier} {}, {M}×{K}×{N}, {layout}, accumulate {accumulate}, columns \
                         {columns:?}",
                        core::any::type_name::<T>(),
                    );
                }
            }
        }
    }
    check::<3, 20, 9>();
    check::<4, 1, 4>();
    check::<5, 33, 7>();
    check::<8, 7, 9>();
    check::<10, 128, 64>();
    check::<10, 64, 13>();
    check::<16, 17, 5>();
    check::<17, 40, 12>();
    check::<20, 12, 11>();
    check::<24, 11, 7>();
    check::<32, 9, 8>();
    check::<32, 64, 32>();
    check::<40, 10, 9>();
    check::<41, 6, 5>();
    check::<48, 5, 7>();
    check::<57, 4, 6>();
    check::<64, 13, 6>();
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_kernels_match_the_definition() {
    if !avx2::has_avx2_fma() {
        return; // nothing to test on this CPU
    }
    // Tiles of 16 × 6 (f32) and 8 × 6 (f64): whole, and every kind of edge in m, n and k;
    // one row, one column, one step; more than one cache block (64 rows or columns, 256 or
    // 128 steps) in every direction.
    for (m, n, k) in [
        (1, 1, 1),
        (16, 6, 1),
        (8, 6, 2),
        (15, 5, 3),
        (17, 7, 9),
        (7, 9, 3),
        (9, 1, 33),
        (1, 13, 40),
        (24, 12, 5),
        (31, 11, 16),
        (64, 64, 64),
        (65, 70, 129),
        (133, 71, 517),
        (256, 64, 300),
        (5, 3, 0),
        (1024, 70, 300),
        (512, 9, 300),
    ] {
        check_blocked_kernel::<f32, avx2::Avx2F32>(m, n, k);
        check_blocked_kernel::<f64, avx2::Avx2F64>(m, n, k);
    }
    // Batches of a few samples: the narrower tiles.
    for n in 1..=4 {
        check_blocked_kernel::<f32, avx2::Avx2F32>(77, n, 300);
        check_blocked_kernel::<f64, avx2::Avx2F64>(77, n, 300);
    }
    for m in [1, 33, 1024] {
        check_narrow_panels::<f32, avx2::Avx2F32>(m, 300);
    }
    for m in [1, 9, 512] {
        check_narrow_panels::<f64, avx2::Avx2F64>(m, 300);
    }
    // SAFETY: AVX2 and FMA were detected.
    unsafe {
        check_dots("AVX2", avx2::dots_f32, avx2::dots_f64);
        check_gemv("AVX2", avx2::gemv_f32, avx2::gemv_f64);
    }
}

/// The tiers: `NN_MAX_ISA`'s values, and the test hooks that cap them on one thread.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_tiers_can_be_capped() {
    assert_eq!(parse_max_isa("baseline"), Isa::Baseline);
    assert_eq!(parse_max_isa("SSE2"), Isa::Baseline);
    assert_eq!(parse_max_isa(" avx2 "), Isa::Avx2);
    assert_eq!(parse_max_isa("AVX2"), Isa::Avx2);
    assert_eq!(parse_max_isa("avx512"), Isa::Avx512);
    assert_eq!(parse_max_isa(""), Isa::Avx512);
    assert_eq!(parse_max_isa("nonsense"), Isa::Avx512);
    assert!(Isa::Baseline < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
    on_the_avx2_tier(|| {
        assert!(!has_avx512());
        assert!(max_isa() <= Isa::Avx2);
        if std::env::var_os("NN_MAX_ISA").is_none() {
            assert_eq!(
                avx2::has_avx2_fma(),
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            );
        }
    });
    on_the_baseline(|| {
        assert!(!has_avx512());
        assert!(!avx2::has_avx2_fma());
        assert_eq!(max_isa(), Isa::Baseline);
    });
    if std::env::var_os("NN_MAX_ISA").is_none() {
        assert_eq!(max_isa(), Isa::Avx512);
        assert_eq!(has_avx512(), std::arch::is_x86_feature_detected!("avx512f"));
    }
}

#[test]
fn zero_depth_overwrites_with_zero_or_keeps() {
    let a = SMatrix::<f64, 40, 0>::ZERO;
    let b = SMatrix::<f64, 0, 40>::ZERO;
    let mut c = SMatrix::<f64, 40, 40>::repeat(2.0);
    matmul(&mut c, &a, &b, true);
    assert!(c.iter().all(|&v| v == 2.0));
    matmul(&mut c, &a, &b, false);
    assert!(c.iter().all(|&v| v == 0.0));
}

/// Runs `f` with the portable kernels only (on an x86-64 CPU with AVX-512), then capped at
/// AVX2, then with the CPU's best.
fn on_every_path(f: impl Fn()) {
    #[cfg(target_arch = "x86_64")]
    {
        x86::tests::PORTABLE_ONLY.with(|p| p.set(true));
        f();
        x86::tests::PORTABLE_ONLY.with(|p| p.set(false));
        on_the_avx2_tier(&f);
    }
    f();
}

#[test]
fn portable_paths_match_the_definition() {
    #[cfg(target_arch = "x86_64")]
    x86::tests::PORTABLE_ONLY.with(|p| p.set(true));
    small_products_match_the_definition();
    matrix_vector_products_match_the_definition();
    blocked_products_match_the_definition();
}

#[test]
fn avx2_paths_match_the_definition() {
    on_the_avx2_tier(|| {
        small_products_match_the_definition();
        matrix_vector_products_match_the_definition();
        blocked_products_match_the_definition();
    });
}

/// A heap matrix of deterministic values (a stack value of this size would overflow).
fn boxed<T: Real, const R: usize, const C: usize>(
    seed: usize,
) -> std::boxed::Box<SMatrix<T, R, C>> {
    let mut m = <SMatrix<T, R, C> as crate::Zeroable>::new_boxed();
    for (s, v) in m.iter_mut().enumerate() {
        *v = T::of(value(seed + s));
    }
    m
}

/// The stack bytes `f` uses, measured on a thread of its own: the stack below the caller is
/// painted with a pattern, `f` runs, and the deepest overwritten byte is found.
fn stack_use(f: impl FnOnce() + Send) -> usize {
    const PATTERN: u64 = 0x5A5A_A5A5_C3C3_3C3C;
    const PAINTED: usize = 512 * 1024;
    /// Paints `PAINTED` bytes below its own frame; returns the lowest painted address.
    #[inline(never)]
    fn paint() -> usize {
        let marker = 0u8;
        let top = (core::hint::black_box(&marker) as *const u8 as usize - 256) & !7;
        let bottom = top - PAINTED;
        for address in (bottom..top).step_by(8) {
            // SAFETY: below this frame, inside this thread's stack (4 MiB, of which less
            // than 64 KiB are used above this point): memory no live value occupies.
            unsafe { core::ptr::write_volatile(address as *mut u64, PATTERN) };
        }
        bottom
    }
    /// The lowest address above `bottom` whose pattern was overwritten.
    #[inline(never)]
    fn deepest(bottom: usize) -> usize {
        let mut address = bottom;
        // SAFETY: as in `paint`: the painted region, below this frame.
        while unsafe { core::ptr::read_volatile(address as *const u64) } == PATTERN {
            address += 8;
        }
        address
    }
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn_scoped(s, move || {
                let marker = 0u8;
                let top = core::hint::black_box(&marker) as *const u8 as usize;
                let bottom = paint();
                f();
                top - deepest(bottom)
            })
            .unwrap()
            .join()
            .unwrap()
    })
}

/// The stack used by the three products of one size, in one scalar type.
fn products_stack_use<T: Real, const M: usize, const K: usize, const N: usize>() -> usize {
    let a = boxed::<T, M, K>(1);
    let at = boxed::<T, K, M>(2);
    let b = boxed::<T, K, N>(3);
    let bt = boxed::<T, N, K>(4);
    let mut c = boxed::<T, M, N>(5);
    // The calling thread's tier, set again on the measuring thread.
    let portable = cfg!(target_arch = "x86_64") && !x86::has_avx512();
    #[cfg(target_arch = "x86_64")]
    let at_most_avx2 = avx2::tests::AT_MOST_AVX2.with(|p| p.get());
    #[cfg(not(target_arch = "x86_64"))]
    let at_most_avx2 = false;
    let on_tier = |f: &mut dyn FnMut()| {
        on_path(portable, || {
            if at_most_avx2 {
                on_the_avx2_tier(f)
            } else {
                f()
            }
        })
    };
    [
        stack_use(|| on_tier(&mut || matmul(&mut *c, &*a, &*b, true))),
        stack_use(|| on_tier(&mut || matmul_abt(&mut *c, &*a, &*bt, true))),
        stack_use(|| on_tier(&mut || matmul_atb(&mut *c, &*at, &*b, true))),
    ]
    .into_iter()
    .max()
    .unwrap()
}

/// Runs `f` on this thread with the portable kernels only, or with the CPU's best.
#[inline(never)]
fn on_path(portable: bool, f: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    x86::tests::PORTABLE_ONLY.with(|p| p.set(portable));
    #[cfg(not(target_arch = "x86_64"))]
    let _ = portable;
    f();
}

/// Nothing batch-sized or weight-sized on the stack (issue 11): a product's stack use is a
/// constant, whatever its sizes: at most 4 KiB of locals (`MAX_STACK_BYTES`' "every other
/// product") plus the frames of the calls (the harness's own and, in debug builds, every
/// unoptimised kernel function's), and for a column-major `A` with 4 KiB columns
/// (`stream::in_tiles`, in a frame of its own) at most `MAX_STACK_BYTES` more.
#[test]
fn stack_use_does_not_grow_with_the_sizes() {
    let frames = if cfg!(debug_assertions) {
        16 * 1024
    } else {
        2 * 1024
    };
    on_every_path(|| {
        let uses = [
            ("f32 16×16×1", products_stack_use::<f32, 16, 16, 1>()),
            ("f32 256×784×1", products_stack_use::<f32, 256, 784, 1>()),
            ("f32 32×64×32", products_stack_use::<f32, 32, 64, 32>()),
            ("f32 64×64×64", products_stack_use::<f32, 64, 64, 64>()),
            ("f32 256×784×64", products_stack_use::<f32, 256, 784, 64>()),
            // Few rows, large: the direct loops (`DIRECT_WIDE_MAX_COLUMN_BYTES`).
            ("f32 48×1024×64", products_stack_use::<f32, 48, 1024, 64>()),
            ("f64 24×1024×64", products_stack_use::<f64, 24, 1024, 64>()),
            ("f64 64×64×64", products_stack_use::<f64, 64, 64, 64>()),
            // `A` with columns of 4 KiB and one panel of `B` (every kernel's `NR` is at least
            // 4): read in place.
            (
                "f32 1024×1024×4",
                products_stack_use::<f32, 1024, 1024, 4>(),
            ),
        ];
        // `A` with columns of 4 KiB and several panels of `B`: `stream::in_tiles` and its
        // tile.
        let tiled = [
            (
                "f32 1024×1024×16",
                products_stack_use::<f32, 1024, 1024, 16>(),
            ),
            (
                "f32 1024×1024×32",
                products_stack_use::<f32, 1024, 1024, 32>(),
            ),
            (
                "f64 1024×512×16",
                products_stack_use::<f64, 1024, 512, 16>(),
            ),
        ];
        std::println!("{uses:?} {tiled:?}");
        for (size, bytes) in uses {
            assert!(bytes <= 4 * 1024 + frames, "{size}: {bytes} bytes of stack");
        }
        // The tiled products: the most of the others, the tile, and a frame of 2 KiB.
        let most = uses.iter().map(|u| u.1).max().unwrap_or(0);
        for (size, bytes) in tiled {
            assert!(
                bytes <= most + MAX_STACK_BYTES + 2 * 1024,
                "{size}: {bytes} bytes of stack, {most} for the others"
            );
        }
        // The same for both sizes of the same shape class.
        assert_eq!(tiled[0].1, tiled[1].1);
    });
}

/// [`matmul_view`] on `m × k` by `k × n`, every combination of transposed operands and
/// accumulation, with leading dimensions larger than the matrices (the gaps, and `C`'s, must
/// be neither read into the result nor written).
fn check_strided<T: Real>(m: usize, k: usize, n: usize) {
    for (a_t, b_t, accumulate) in (0..8).map(|f| (f & 1 != 0, f & 2 != 0, f & 4 != 0)) {
        // Stored (before any transposition): A as rows_a × cols_a with ld rows_a + 3.
        let (ra, ca) = if a_t { (k, m) } else { (m, k) };
        let (rb, cb) = if b_t { (n, k) } else { (k, n) };
        let (lda, ldb, ldc) = (ra + 3, rb + 2, m + 5);
        let a: Vec<T> = (0..lda * ca).map(|s| T::of(value(s + 21))).collect();
        let b: Vec<T> = (0..ldb * cb).map(|s| T::of(value(s + 22))).collect();
        let c0: Vec<T> = (0..ldc * n).map(|s| T::of(value(s + 23))).collect();
        // (i, j) of op(A), op(B).
        let a_at = |i: usize, p: usize| if a_t { a[p + i * lda] } else { a[i + p * lda] };
        let b_at = |p: usize, j: usize| if b_t { b[j + p * ldb] } else { b[p + j * ldb] };
        let want = reference(
            m,
            n,
            k,
            |i, p| a_at(i, p).to_f64(),
            |p, j| b_at(p, j).to_f64(),
            |i, j| c0[i + j * ldc].to_f64(),
            accumulate,
        );
        let (sa, sb) = (MatView::new(&a, lda), MatView::new(&b, ldb));
        let (sa, sb) = (if a_t { sa.t() } else { sa }, if b_t { sb.t() } else { sb });
        let mut c = c0.clone();
        matmul_view(m, n, k, &mut c, ldc, sa, sb, accumulate);
        let got: Vec<T> = (0..m * n).map(|s| c[s % m + s / m * ldc]).collect();
        let e = max_error(&got, &want);
        let what = std::format!("{m}×{k}×{n} a_t={a_t} b_t={b_t} acc={accumulate}");
        assert!(e < tolerance::<T>(k), "matmul_view {what}: {e:e}");
        for j in 0..n {
            assert_eq!(
                c[j * ldc + m..(j + 1) * ldc],
                c0[j * ldc + m..(j + 1) * ldc],
                "{what}"
            );
        }
    }
}

#[test]
fn strided_products_match_the_definition() {
    on_every_path(|| {
        // One column (matrix-vector loop, row dots), small (direct sizes: the GEMM), deep
        // Aᵀ·B (dot products), large (GEMM), edges of every block, and zero depth.
        for (m, k, n) in [
            (1, 1, 1),
            (7, 5, 1),
            (300, 50, 1),
            (10, 700, 1),
            (5, 3, 7),
            (16, 16, 4),
            (6, 784, 25),
            (16, 100, 150),
            (784, 25, 6),
            (100, 150, 16),
            (70, 300, 70),
            (3, 0, 4),
        ] {
            check_strided::<f64>(m, k, n);
            check_strided::<f32>(m, k, n);
        }
    });
}

/// The bits of every product of `M × K` by `K × N` (all three entry points, and
/// [`matmul_view`] with both operands transposed), overwriting and accumulating.
fn product_bits<T: Real, const M: usize, const K: usize, const N: usize>() -> Vec<u64> {
    let a = boxed::<T, M, K>(1);
    let at = boxed::<T, K, M>(2);
    let b = boxed::<T, K, N>(3);
    let bt = boxed::<T, N, K>(4);
    let mut c = boxed::<T, M, N>(5);
    let mut scratch = std::vec![T::ZERO; M * N];
    let mut bits = Vec::new();
    let mut record = |c: &SMatrix<T, M, N>| bits.extend(c.iter().map(|v| v.to_f64().to_bits()));
    for accumulate in [false, true] {
        matmul(&mut *c, &*a, &*b, accumulate);
        record(&c);
        matmul_depth_halves(&mut *c, &*a, &*b, accumulate, &mut scratch);
        record(&c);
        matmul_abt(&mut *c, &*a, &*bt, accumulate);
        record(&c);
        matmul_atb(&mut *c, &*at, &*b, accumulate);
        record(&c);
        let (va, vb) = (
            MatView::new(at.as_slice(), K).t(),
            MatView::new(bt.as_slice(), N).t(),
        );
        matmul_view(M, N, K, c.as_mut_slice(), M, va, vb, accumulate);
        record(&c);
    }
    bits
}

/// Products large enough to be split across a pool's threads give the same bits as on the
/// calling thread alone, whatever the number of threads (the parts start at multiples of
/// `ROW_GRANULE` rows, or `COLUMN_GRANULE` columns for the dot products and
/// `GEMM_COLUMN_GRANULE` for the GEMM, whose parts then start inside an AVX2 tile of 6; see
/// `parallel`). Sizes: every algorithm that splits (the GEMM, the dot
/// products), row counts that are not multiples of the granule, above and at the threshold.
#[test]
fn split_products_equal_whole_ones_bit_for_bit() {
    fn check<T: Real, const M: usize, const K: usize, const N: usize>() {
        assert!(M * K * N >= parallel::PARALLEL_MIN_WORK);
        let whole = product_bits::<T, M, K, N>();
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for portable in [true, false] {
                #[cfg(target_arch = "x86_64")]
                pool.broadcast(|_| x86::tests::PORTABLE_ONLY.with(|p| p.set(portable)));
                let whole_on_path = if portable {
                    let mut bits = Vec::new();
                    on_path(true, || bits = product_bits::<T, M, K, N>());
                    on_path(false, || {});
                    bits
                } else {
                    whole.clone()
                };
                let before = parallel::SPLITS.load(core::sync::atomic::Ordering::Relaxed);
                let split = pool.install(product_bits::<T, M, K, N>);
                let splits = parallel::SPLITS.load(core::sync::atomic::Ordering::Relaxed) - before;
                assert!(
                    splits >= 8,
                    "{M}×{K}×{N}: only {splits} products were split"
                );
                assert!(
                    split == whole_on_path,
                    "{M}×{K}×{N} ({}), {threads} threads, portable {portable}",
                    core::any::type_name::<T>()
                );
                // The same inside a region (the pool's threads waiting for the parts).
                let in_region = pool.install(|| parallel::region(product_bits::<T, M, K, N>));
                assert!(
                    in_region == whole_on_path,
                    "{M}×{K}×{N} ({}), {threads} threads in a region, portable {portable}",
                    core::any::type_name::<T>()
                );
            }
        }
    }
    check::<f32, 256, 128, 64>();
    check::<f64, 197, 129, 33>();
    check::<f32, 70, 300, 25>();
    // More columns than rows: split by columns.
    check::<f32, 40, 70, 300>();
    check::<f64, 64, 64, 197>();
    // Deep enough for `matmul_depth_halves` to cut the depth (an odd one too).
    check::<f32, 64, 600, 20>();
    check::<f64, 40, 521, 30>();
}

/// `matmul_depth_halves` computes `C (+)= A·B` (against sums in `f64`) for products it cuts
/// in halves of their depth and for those it leaves whole, with a scratch it overwrites (NaN
/// before), and asks for the scratch only when it cuts.
#[test]
fn depth_halves_compute_the_product() {
    fn check<T: Real, const M: usize, const K: usize, const N: usize>(cut: bool) {
        assert_eq!(depth_halves(M, K, N, size_of::<T>()), cut);
        let (a, b) = (boxed::<T, M, K>(1), boxed::<T, K, N>(2));
        for accumulate in [false, true] {
            let c0 = boxed::<T, M, N>(3);
            let mut c = c0.clone();
            let mut scratch = std::vec![T::of(f64::NAN); if cut { M * N } else { 0 }];
            matmul_depth_halves(&mut *c, &*a, &*b, accumulate, &mut scratch);
            for i in 0..M {
                for j in 0..N {
                    let start = if accumulate { c0[(i, j)].to_f64() } else { 0.0 };
                    let want = start
                        + (0..K)
                            .map(|p| a[(i, p)].to_f64() * b[(p, j)].to_f64())
                            .sum::<f64>();
                    let tolerance = if size_of::<T>() == 4 { 1e-3 } else { 1e-11 };
                    assert!(
                        (c[(i, j)].to_f64() - want).abs() <= tolerance * (1.0 + want.abs()),
                        "{M}×{K}×{N}, C[{i}, {j}] = {} against {want}",
                        c[(i, j)].to_f64()
                    );
                }
            }
        }
    }
    check::<f32, 64, 600, 20>(true);
    check::<f64, 40, 521, 30>(true);
    check::<f32, 256, 784, 64>(true);
    // Too shallow, or one column (the matrix-vector kernel): `matmul`, no scratch.
    check::<f32, 64, 500, 20>(false);
    check::<f32, 64, 600, 1>(false);
}

/// Products between `REGION_MIN_WORK` and `PARALLEL_MIN_WORK` multiply-adds split only inside
/// a region, and give the bits of whole ones there (the output layers of W3-sized networks).
#[test]
fn region_splits_smaller_products_with_the_same_bits() {
    fn check<T: Real, const M: usize, const K: usize, const N: usize>(min_splits: usize) {
        let work = M * K * N;
        assert!((parallel::REGION_MIN_WORK..parallel::PARALLEL_MIN_WORK).contains(&work));
        let whole = product_bits::<T, M, K, N>();
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let splits = || parallel::SPLITS.load(core::sync::atomic::Ordering::Relaxed);
            let outside = pool.install(product_bits::<T, M, K, N>);
            let before = splits();
            let inside = pool.install(|| parallel::region(product_bits::<T, M, K, N>));
            let inside_splits = splits() - before;
            // Other tests split products at the same time: only a lower bound can be checked.
            assert!(
                inside_splits >= min_splits,
                "{M}×{K}×{N}: {inside_splits} products split in a region"
            );
            let what = core::any::type_name::<T>();
            assert!(outside == whole, "{M}×{K}×{N} ({what}), {threads} threads");
            assert!(
                inside == whole,
                "{M}×{K}×{N} ({what}), {threads} threads in a region"
            );
        }
    }
    // Split by rows: W3's ∂H2 = W3ᵀ·∂Y3 (128 × 10 × 64).
    check::<f32, 128, 10, 64>(8);
    check::<f64, 97, 30, 40>(8);
    // Split by columns: W3's ∂W3 = ∂Y3·H2ᵀ (10 × 64 × 128) and its forward product W3·H2
    // (10 × 128 × 64) by the direct loops, in runs of columns; the products by dot products
    // of rows (fewer rows than a tile) do not split.
    check::<f32, 10, 64, 128>(4);
    check::<f32, 10, 128, 64>(4);
    check::<f64, 12, 100, 60>(4);
    check::<f64, 3, 200, 120>(4);
}

/// As `split_products_equal_whole_ones_bit_for_bit`, on the AVX2 tier: split products give
/// the bits of whole ones (the AVX2 kernels' sums do not depend on where a part starts).
#[cfg(target_arch = "x86_64")]
#[test]
fn split_products_on_the_avx2_tier_equal_whole_ones_bit_for_bit() {
    fn check<T: Real, const M: usize, const K: usize, const N: usize>() {
        assert!(M * K * N >= parallel::PARALLEL_MIN_WORK);
        let whole = on_the_avx2_tier(product_bits::<T, M, K, N>);
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.broadcast(|_| avx2::tests::AT_MOST_AVX2.with(|p| p.set(true)));
            let before = parallel::SPLITS.load(core::sync::atomic::Ordering::Relaxed);
            let split = pool.install(|| on_the_avx2_tier(product_bits::<T, M, K, N>));
            let splits = parallel::SPLITS.load(core::sync::atomic::Ordering::Relaxed) - before;
            assert!(
                splits >= 8,
                "{M}×{K}×{N}: only {splits} products were split"
            );
            assert!(
                split == whole,
                "{M}×{K}×{N} ({}), {threads} threads",
                core::any::type_name::<T>()
            );
        }
    }
    check::<f32, 256, 128, 64>();
    check::<f64, 197, 129, 33>();
    check::<f32, 70, 300, 25>();
    check::<f32, 40, 70, 300>();
    check::<f64, 64, 64, 197>();
}

/// A value of `value`'s with a magnitude between 2⁻²⁰ and 2²⁰ (so that other additions, or
/// the same ones in another order, would show in the bits), or a zero of either sign.
fn mixed(seed: usize) -> f64 {
    match seed % 13 {
        0 => 0.0,
        1 => -0.0,
        _ => value(seed) * 2f64.powi((value(seed ^ 0x5555) * 20.0) as i32),
    }
}

/// `y (+)= Aᵀ·x` for one column (`row_dots`, the definition) against the kernel set's version,
/// through `matmul_atb` on every tier: bit for bit.
fn check_row_dots<T: Real, const M: usize, const K: usize>() {
    check_row_dots_of::<T, M, K>(
        |p, i| mixed(11 + p * 7919 + i * 104_729),
        |p| mixed(12 + p * 7919),
        |i| mixed(13 + i * 7919),
    );
}

/// As `check_row_dots`, with `A[p, i] = a(p, i)`, `x_p = x(p)` and `y_i = y(i)` before.
fn check_row_dots_of<T: Real, const M: usize, const K: usize>(
    a: impl Fn(usize, usize) -> f64,
    x: impl Fn(usize) -> f64,
    y: impl Fn(usize) -> f64,
) {
    let a: SMatrix<T, K, M> = SMatrix::from_fn(|p, i| T::of(a(p, i)));
    let x: SMatrix<T, K, 1> = SMatrix::from_fn(|p, _| T::of(x(p)));
    let y0: SMatrix<T, M, 1> = SMatrix::from_fn(|i, _| T::of(y(i)));
    let bits =
        |y: &SMatrix<T, M, 1>| -> Vec<u64> { y.iter().map(|v| v.to_f64().to_bits()).collect() };
    for accumulate in [false, true] {
        let mut want = y0;
        // SAFETY: x is K × 1, want M × 1.
        unsafe { row_dots::<T, M, K>(want.as_mut_ptr(), &a, view(&x), accumulate) };
        on_every_path(|| {
            let mut got = y0;
            matmul_atb(&mut got, &a, &x, accumulate);
            assert_eq!(
                bits(&got),
                bits(&want),
                "{M}×{K}, {} bytes, accumulate = {accumulate}, {:?}",
                size_of::<T>(),
                max_isa_now(),
            );
        });
    }
}

/// The tier the kernels run on now (for the messages).
fn max_isa_now() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            return "AVX-512";
        }
        if avx2::has_avx2_fma() {
            return "AVX2";
        }
    }
    "baseline"
}

/// `check_row_dots` for every `M` of a list and every `K` of another.
macro_rules! check_row_dots_sizes {
    ($t:ty; [$($m:literal),*]; $ks:tt) => {
        $(check_row_dots_sizes!(@ $t, $m, $ks);)*
    };
    (@ $t:ty, $m:literal, [$($k:literal),*]) => {
        $(check_row_dots::<$t, $m, $k>();)*
    };
}

#[test]
fn row_dots_equal_the_definition_bit_for_bit_on_every_tier() {
    check_row_dots_sizes!(f32; [1, 3, 8, 16, 20]; [1, 7, 8, 9, 16, 17, 33]);
    check_row_dots_sizes!(f64; [1, 3, 8, 16, 20]; [1, 7, 8, 9, 16, 17, 33]);
    // Longer columns, and blocks of outputs with every remainder.
    check_row_dots_sizes!(f32; [2, 5, 7, 9, 15, 33]; [24, 100]);
    check_row_dots_sizes!(f64; [2, 5, 7, 9, 15, 33]; [24, 100]);
}

/// Zeros of both signs: columns of `+0` or `−0` (with an `x` of one sign, every product a
/// zero of one sign), columns zero but for one value, columns whose products cancel
/// exactly, and `−0` before accumulating: the sign of every zero result as defined (each
/// lane starts from `+0`).
#[test]
fn row_dots_give_the_defined_signs_of_zeros_on_every_tier() {
    fn check<T: Real, const M: usize, const K: usize>() {
        for sign in [1.0, -1.0] {
            check_row_dots_of::<T, M, K>(
                |p, i| match i % 5 {
                    0 => 0.0,
                    1 => -0.0,
                    2 if p == i % K => 1.5,
                    2 => -0.0,
                    // With x's pairs of equal values: products ∓x, ±x, which cancel exactly.
                    3 => {
                        if p % 2 == 0 {
                            -1.0
                        } else {
                            1.0
                        }
                    }
                    _ => mixed(21 + p * 7919 + i * 104_729),
                },
                |p| sign * (1.0 + (p / 2) as f64),
                |i| if i % 2 == 0 { -0.0 } else { 0.0 },
            );
        }
    }
    check::<f32, 16, 16>();
    check::<f32, 20, 17>();
    check::<f32, 5, 9>();
    check::<f32, 8, 8>();
    check::<f64, 16, 16>();
    check::<f64, 7, 33>();
    check::<f64, 3, 8>();
}

/// The operands of the few-row tests: `A` (`M × K`), `B` (`K × N`) and a starting `C`.
#[allow(clippy::type_complexity)]
fn few_rows_operands<T: Real, const M: usize, const K: usize, const N: usize>()
-> (SMatrix<T, M, K>, SMatrix<T, K, N>, SMatrix<T, M, N>) {
    (
        SMatrix::from_fn(|i, p| T::of(value(i * 31 + p * 7 + 1))),
        SMatrix::from_fn(|p, j| T::of(value(p * 13 + j * 5 + 2))),
        SMatrix::from_fn(|i, j| T::of(value(i + j * 3 + 4))),
    )
}

/// `C (+)= A·B` for an `A` of one to three rows and a column-major `B` (a layer of one to three
/// units over a batch): from the direct loops' vector threshold (`DIRECT_SIMD_MIN_WORK`) up,
/// each element is the dot product of `A`'s row with `B`'s column in [`dot`]'s order, plus
/// `C`'s old value when accumulating, bit for bit, on every path, in both types; below it,
/// the chain of multiply-adds over the depth in order (fused or not).
fn check_few_rows<T: Real, const M: usize, const K: usize, const N: usize>() {
    let (a, b, c0) = few_rows_operands::<T, M, K, N>();
    for accumulate in [false, true] {
        let mut c = c0;
        matmul(&mut c, &a, &b, accumulate);
        for j in 0..N {
            for i in 0..M {
                let start = if accumulate { c0[(i, j)] } else { T::ZERO };
                let ok = if M * K * N >= DIRECT_SIMD_MIN_WORK {
                    let v = dot::<T, K>(|p| a[(i, p)], |p| b[(p, j)]);
                    c[(i, j)] == if accumulate { c0[(i, j)] + v } else { v }
                } else {
                    let fused = (0..K).fold(start, |s, p| a[(i, p)].mul_add(b[(p, j)], s));
                    let unfused = (0..K).fold(start, |s, p| a[(i, p)] * b[(p, j)] + s);
                    c[(i, j)] == fused || c[(i, j)] == unfused
                };
                assert!(
                    ok,
                    "{M}×{K}×{N} ({i}, {j}), accumulate {accumulate}: {}",
                    c[(i, j)]
                );
            }
        }
    }
}

#[test]
fn few_rows_are_dot_products_in_dots_order() {
    fn both<const M: usize>() {
        check_few_rows::<f32, M, 5, 3>();
        check_few_rows::<f32, M, 16, 16>();
        check_few_rows::<f32, M, 16, 64>();
        check_few_rows::<f32, M, 37, 64>();
        check_few_rows::<f32, M, 300, 8>();
        check_few_rows::<f64, M, 7, 64>();
        check_few_rows::<f64, M, 37, 64>();
        check_few_rows::<f64, M, 300, 8>();
    }
    on_every_path(|| {
        both::<1>();
        both::<2>();
        both::<3>();
    });
}

/// `C (+)= A·Bᵀ` for an `A` of one to three rows (a weight gradient `∂Y·Xᵀ` of a layer of 1–3
/// units): each element the chain of multiply-adds over the depth in order from `C` (or
/// zero), fused or not as the path computes: blocked or not, the same operations.
fn check_few_rows_abt<T: Real, const M: usize, const K: usize, const N: usize>() {
    let (a, b, c0) = few_rows_operands::<T, M, K, N>();
    // Stored N × K: the same values as the other test's B, transposed.
    let b: SMatrix<T, N, K> = b.transpose();
    for accumulate in [false, true] {
        let mut c = c0;
        matmul_abt(&mut c, &a, &b, accumulate);
        for j in 0..N {
            for i in 0..M {
                let start = if accumulate { c0[(i, j)] } else { T::ZERO };
                let fused = (0..K).fold(start, |s, p| a[(i, p)].mul_add(b[(j, p)], s));
                let unfused = (0..K).fold(start, |s, p| a[(i, p)] * b[(j, p)] + s);
                assert!(
                    c[(i, j)] == fused || c[(i, j)] == unfused,
                    "{M}×{K}×{N} ({i}, {j}), accumulate {accumulate}: {} against {fused} or \
                     {unfused}",
                    c[(i, j)]
                );
            }
        }
    }
}

#[test]
fn few_rows_times_a_transposed_b_chain_in_order() {
    fn both<const M: usize>() {
        check_few_rows_abt::<f32, M, 5, 3>();
        check_few_rows_abt::<f32, M, 16, 100>();
        check_few_rows_abt::<f32, M, 64, 130>();
        check_few_rows_abt::<f64, M, 37, 64>();
        check_few_rows_abt::<f64, M, 64, 70>();
    }
    on_every_path(|| {
        both::<1>();
        both::<2>();
        both::<3>();
    });
}
