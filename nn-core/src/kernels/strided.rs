//! Products on matrices given as slices with a leading dimension, of sizes known at run time:
//! [`matmul_view`] and its operands [`MatView`]. For the products whose operands are not one
//! fixed-size matrix each: a recurrent layer's input projections of every time step of every
//! sample (a `D × S·B` matrix inside the batch), its weight gradients summed over the steps,
//! a time step of a batch seen through a stride.
//!
//! The fixed-size loops of [`Algorithm::Direct`] and its kin need compile-time sizes, so
//! here every product runs on the kernel set: its matrix-vector loop, its dot-product kernel
//! or its blocked GEMM, as [`algorithm`] picks for the sizes (the fixed-size algorithms run
//! as the GEMM).

use super::{Algorithm, DOTS_MIN_DEPTH, KernelSet, View, algorithm, split_product};
use crate::Real;
use crate::parallel::{COLUMN_GRANULE, GEMM_COLUMN_GRANULE};

/// The depth of the GEMM's blocks times the size of a scalar (`stream.rs`: an `MC × KC`
/// block of 64 KiB, `MC = 64`): up to this depth its columns are single chains of
/// multiply-adds from zero, as the matrix-vector loop's, so a one-column product runs that
/// loop with the same result; deeper ones run the GEMM. Either way column `j` of `C` is the
/// same, bit for bit, whatever the number of columns (`gemv_equals_a_column_of_the_gemm`).
const GEMM_DEPTH_BLOCK_BYTES: usize = 64 * 1024 / 64;

/// A read-only operand of [`matmul_view`]: a column-major matrix in a slice, element `(i, j)`
/// at `data[i + j·ld]` ([`MatView::new`]), or the transpose of one ([`MatView::t`]).
#[derive(Clone, Copy, Debug)]
pub struct MatView<'a, T> {
    data: &'a [T],
    ld: usize,
    transposed: bool,
}

impl<'a, T> MatView<'a, T> {
    /// The column-major matrix in `data` whose columns start `ld` scalars apart (its rows
    /// and columns are given to [`matmul_view`], which checks that `data` holds them).
    pub const fn new(data: &'a [T], ld: usize) -> Self {
        MatView {
            data,
            ld,
            transposed: false,
        }
    }

    /// The transposed matrix (no copy).
    pub const fn t(self) -> Self {
        MatView {
            transposed: !self.transposed,
            ..self
        }
    }

    /// Asserts that the view holds a `rows × cols` matrix and returns its kernel view.
    fn view(&self, rows: usize, cols: usize, what: &str) -> View<T> {
        // The stored (column-major) matrix: the transpose's columns are its rows.
        let (stored_rows, stored_cols) = if self.transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        if rows > 0 && cols > 0 {
            assert!(
                self.ld >= stored_rows,
                "matmul_view: {what}'s leading dimension {} is below its {stored_rows} stored rows",
                self.ld
            );
            let needed = (stored_cols - 1) * self.ld + stored_rows;
            assert!(
                self.data.len() >= needed,
                "matmul_view: {what} holds {} scalars, its {rows} × {cols} extent needs {needed}",
                self.data.len()
            );
        }
        let (rs, cs) = if self.transposed {
            (self.ld, 1)
        } else {
            (1, self.ld)
        };
        View {
            ptr: self.data.as_ptr(),
            rs,
            cs,
        }
    }
}

/// `C = A·B`, or `C += A·B` when `accumulate`, for `A` `m × k` and `B` `k × n` (each
/// column-major or transposed), `C` column-major in `c` with leading dimension `ldc ≥ m`.
///
/// With a column-major `A`, each column of `C` comes out the same, bit for bit, whatever
/// the other columns of `B` (`n`): the recurrent layers' streaming `step` (one column) gives
/// exactly their forward pass's states (all the steps' columns at once).
///
/// Panics if an operand's slice does not hold its extent (or `ldc < m`).
#[allow(clippy::too_many_arguments)]
pub fn matmul_view<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [T],
    ldc: usize,
    a: MatView<'_, T>,
    b: MatView<'_, T>,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= m,
        "matmul_view: C's leading dimension {ldc} is below its {m} rows"
    );
    let needed = (n - 1) * ldc + m;
    assert!(
        c.len() >= needed,
        "matmul_view: C holds {} scalars, its {m} × {n} extent needs {needed}",
        c.len()
    );
    let (av, bv) = (a.view(m, k, "A"), b.view(k, n, "B"));
    let y = c.as_mut_ptr();
    if k == 0 {
        if !accumulate {
            for j in 0..n {
                c[j * ldc..j * ldc + m].fill(T::ZERO);
            }
        }
        return;
    }
    // SAFETY (every arm): the views address every element of their extents (asserted
    // above), `c` every element of C's and cannot overlap them (it is borrowed mutably, they
    // immutably); each kernel's layout condition is checked in its arm: the matrix-vector
    // loop wants a column-major `A` (`a.rs == 1`), the dot products a transposed `A` and a
    // column-major `B` (contiguous columns of both); the GEMM takes any of these layouts.
    unsafe {
        match algorithm(m, k, n, a.transposed, size_of::<T>()) {
            Algorithm::MatrixVector | Algorithm::MatrixVectorInline
                if !a.transposed && k <= GEMM_DEPTH_BLOCK_BYTES / size_of::<T>() =>
            {
                T::Kernels::gemv(m, k, av, bv, y, accumulate)
            }
            Algorithm::Dots | Algorithm::RowDots if !b.transposed => {
                split_product(m, n, k, av, bv, y, ldc, COLUMN_GRANULE, |m, n, a, b, c| {
                    T::Kernels::dots(m, n, k, a, b, c, ldc, accumulate)
                })
            }
            Algorithm::TransposedDirect if !b.transposed && k >= DOTS_MIN_DEPTH => {
                split_product(m, n, k, av, bv, y, ldc, COLUMN_GRANULE, |m, n, a, b, c| {
                    T::Kernels::dots(m, n, k, a, b, c, ldc, accumulate)
                })
            }
            _ => split_product(
                m,
                n,
                k,
                av,
                bv,
                y,
                ldc,
                GEMM_COLUMN_GRANULE,
                |m, n, a, b, c| T::Kernels::gemm(m, n, k, a, b, c, ldc, accumulate),
            ),
        }
    }
}

/// `C (+)= A·B` by the GEMM alone, on the calling thread, for `A` `m × k` column-major and
/// `B` `k × n`, with `C` (column-major, leading dimension `ldc ≥ m`) written through `c`: what
/// [`matmul_view`] computes for a column-major `A` and `n > 1`, without splitting. Each
/// element's sum is the same chain of multiply-adds whatever the other rows (for blocks of
/// rows starting at multiples of [`ROW_GRANULE`](crate::parallel::ROW_GRANULE)), so callers
/// may compute a product's blocks of rows on different threads, each from its own copy of
/// its rows of `A`, and get the whole product's bits.
///
/// # Safety
/// `c` addresses the `m × n` block with leading dimension `ldc`, writable, not overlapping
/// `a`'s or `b`'s slices, and no other thread touches it during the call.
///
/// # Panics
/// If `A` is transposed, or a view does not hold its extent, or `ldc < m`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_unsplit<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    c: *mut T,
    ldc: usize,
    a: MatView<'_, T>,
    b: MatView<'_, T>,
    accumulate: bool,
) {
    assert!(
        !a.transposed && ldc >= m,
        "gemm_unsplit: a transposed A, or ldc < m"
    );
    let (av, bv) = (a.view(m, k, "A"), b.view(k, n, "B"));
    // SAFETY: the views address their extents (asserted by `view`); `c` is the caller's. The
    // kernel set's GEMM (`stream::gemm` in every set) handles empty sizes and `k = 0`.
    unsafe { T::Kernels::gemm(m, n, k, av, bv, c, ldc, accumulate) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A deterministic pseudo-random slice.
    fn values(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// Element `(i, j)` of a view's logical matrix.
    fn at(data: &[f64], ld: usize, transposed: bool, i: usize, j: usize) -> f64 {
        if transposed {
            data[j + i * ld]
        } else {
            data[i + j * ld]
        }
    }

    /// Every layout, padding and accumulation against the naive triple loop, in `f64` and
    /// `f32`, for sizes that pick each algorithm (matrix-vector, dots, GEMM).
    #[test]
    fn matches_the_naive_product() {
        let sizes = [
            (1, 1, 1),
            (3, 1, 5),
            (70, 1, 9),
            (5, 7, 3),
            (16, 512, 192),
            (192, 33, 16),
            (64, 16, 192),
            (13, 9, 70),
            (100, 70, 3),
            (7, 3, 0),
        ];
        let mut seed = 1;
        for &(m, n, k) in &sizes {
            for a_t in [false, true] {
                for b_t in [false, true] {
                    for accumulate in [false, true] {
                        for pad in [0, 3] {
                            seed += 1;
                            check(m, n, k, a_t, b_t, accumulate, pad, seed);
                        }
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        m: usize,
        n: usize,
        k: usize,
        a_t: bool,
        b_t: bool,
        accumulate: bool,
        pad: usize,
        seed: u64,
    ) {
        let (a_rows, a_cols) = if a_t { (k, m) } else { (m, k) };
        let (b_rows, b_cols) = if b_t { (n, k) } else { (k, n) };
        let (lda, ldb, ldc) = (a_rows + pad, b_rows + pad, m + pad);
        let a = values(lda * a_cols, seed);
        let b = values(ldb * b_cols, seed + 1000);
        let c0 = values(ldc * n, seed + 2000);
        let mut c = c0.clone();
        let view = |data, ld, t| {
            let v = MatView::new(data, ld);
            if t { v.t() } else { v }
        };
        matmul_view(
            m,
            n,
            k,
            &mut c,
            ldc,
            view(&a, lda, a_t),
            view(&b, ldb, b_t),
            accumulate,
        );
        let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        let mut c32: Vec<f32> = c0.iter().map(|&v| v as f32).collect();
        matmul_view(
            m,
            n,
            k,
            &mut c32,
            ldc,
            MatView {
                data: &a32,
                ld: lda,
                transposed: a_t,
            },
            MatView {
                data: &b32,
                ld: ldb,
                transposed: b_t,
            },
            accumulate,
        );
        for j in 0..n {
            for i in 0..ldc {
                let index = i + j * ldc;
                if i >= m {
                    // Padding rows are not touched.
                    assert_eq!(c[index], c0[index]);
                    assert_eq!(c32[index], c0[index] as f32);
                    continue;
                }
                let mut expected = if accumulate { c0[index] } else { 0.0 };
                for p in 0..k {
                    expected += at(&a, lda, a_t, i, p) * at(&b, ldb, b_t, p, j);
                }
                let scale = 1.0 + k as f64;
                assert!(
                    (c[index] - expected).abs() <= 1e-13 * scale,
                    "f64 {m}×{k}·{k}×{n} (Aᵀ {a_t}, Bᵀ {b_t}, acc {accumulate}) at ({i}, {j}): {} vs {expected}",
                    c[index]
                );
                assert!(
                    (c32[index] as f64 - expected).abs() <= 1e-5 * scale,
                    "f32 {m}×{k}·{k}×{n} (Aᵀ {a_t}, Bᵀ {b_t}, acc {accumulate}) at ({i}, {j}): {} vs {expected}",
                    c32[index]
                );
            }
        }
    }

    /// A product of one column equals that column of a wider product, bit for bit, on both
    /// sides of the GEMM's depth block.
    #[test]
    fn gemv_equals_a_column_of_the_gemm() {
        for k in [3, 64, 127, 128, 129, 255, 256, 257, 300] {
            let m = 37;
            let a = values(m * k, k as u64);
            let b = values(k * 5, k as u64 + 7);
            let mut wide = std::vec![0.0; m * 5];
            matmul_view(
                m,
                5,
                k,
                &mut wide,
                m,
                MatView::new(&a, m),
                MatView::new(&b, k),
                false,
            );
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let mut wide32 = std::vec![0.0f32; m * 5];
            let (a32v, b32v) = (MatView::new(&a32, m), MatView::new(&b32, k));
            matmul_view(m, 5, k, &mut wide32, m, a32v, b32v, false);
            for j in 0..5 {
                let mut one = std::vec![0.0; m];
                let column = MatView::new(&b[j * k..(j + 1) * k], k);
                matmul_view(m, 1, k, &mut one, m, MatView::new(&a, m), column, false);
                assert_eq!(one, wide[j * m..(j + 1) * m], "f64, k = {k}, column {j}");
                let mut one32 = std::vec![0.0f32; m];
                let column = MatView::new(&b32[j * k..(j + 1) * k], k);
                matmul_view(m, 1, k, &mut one32, m, a32v, column, false);
                assert_eq!(
                    one32,
                    wide32[j * m..(j + 1) * m],
                    "f32, k = {k}, column {j}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "extent needs")]
    fn a_short_operand_panics() {
        let (a, b) = ([1.0f64; 6], [1.0f64; 5]);
        let mut c = [0.0f64; 4];
        // B (3 × 2, ld 3) needs 6 scalars.
        matmul_view(
            2,
            2,
            3,
            &mut c,
            2,
            MatView::new(&a, 2),
            MatView::new(&b, 3),
            false,
        );
    }
}
