//! Blocked matrix product `C (+)= A·B` that reads its operands in place: the loop nest of the
//! BLIS scheme (Goto and van de Geijn, "Anatomy of high-performance matrix multiplication",
//! 2008) without its packing buffers, so that it needs no scratch memory from anyone.
//!
//! A micro-kernel multiplies an `MR × kc` panel of `A` by a `kc × NR` panel of `B` into an
//! `MR × NR` tile of `C` held in registers. The cache blocks keep a panel of `B` in L1 while
//! the panels of an `MC × KC` block of `A` pass (the block stays in L2), as packing would;
//! what packing adds (contiguous panels: fewer TLB entries, no cache-set conflicts) measured
//! within noise for the layers' sizes (BENCHMARKS.md, "The kernels"), so it is not done.
//!
//! `A` is read in place when column-major (its panels' steps are its columns). A transposed
//! `A` (the product `Wᵀ·∂Y` of a layer's input gradient, when no dot-product kernel runs it)
//! is transposed a tile at a time into a 2 KiB buffer on the stack: `MR` rows by as many
//! steps as fit. `B` is read in place in either layout. `C` is column-major.

use super::View;
use crate::Real;
use core::mem::MaybeUninit;

/// Rows of `A` in a cache block (a multiple of every micro-kernel's `MR`).
const MC: usize = 64;
/// Columns of `B` in a cache block (a multiple of the AVX-512 and portable kernels' `NR`;
/// the AVX2 kernels' 6 leaves one narrower panel per block).
const NC: usize = 64;
/// Bytes of an `MC × KC` block of `A`: 64 KiB (L2-resident), so `KC` is 256 for `f32`, 128
/// for `f64`.
const A_BLOCK_BYTES: usize = 64 * 1024;
/// Bytes of the stack tile a transposed `A` is copied into, a micro-panel at a time.
pub(crate) const TILE_BYTES: usize = 2 * 1024;

/// A register-blocked kernel: `C[0..m, 0..n] (+)= A·B` for one panel of `A` (`m × kc`,
/// column `p` at `a + p·lda`) and one panel of `B` (`kc × n`, read through its view).
pub(crate) trait MicroKernel<T> {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// The stack tile [`in_tiles`] copies a micro-panel of `A` into (a [`Tile`]): `MR` rows
    /// by as many steps of `k` as it holds.
    type Panel;

    /// # Safety
    /// `a + i + p·lda` is readable for `i < m`, `p < kc` (for `i < MR` if `m == MR`); `b`
    /// addresses a `kc × n` matrix; `c` points to an `m × n` column-major block with leading
    /// dimension `ldc`, writable, not overlapping `a` or `b`, with `1 ≤ m ≤ MR` and
    /// `1 ≤ n ≤ NR`; the CPU has the kernel's target features.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        kc: usize,
        a: *const T,
        lda: usize,
        b: View<T>,
        c: *mut T,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    );

    /// Rows of [`MicroKernel::run_tall`]'s tile: 0 when the kernel has no tall tile.
    const TALL_MR: usize = 0;

    /// [`MicroKernel::run`] for a panel of `B` of at most [`TALL_COLUMNS`] columns, on a tile
    /// of up to `TALL_MR` rows: each column of `A`'s panel read as one run of lines, the way
    /// a matrix-vector product reads it. Each element in `run`'s order (its own accumulator
    /// from zero over the `kc` steps, then stored or added), so the same bits.
    ///
    /// # Safety
    /// As [`MicroKernel::run`], with `1 ≤ m ≤ TALL_MR` and `1 ≤ n ≤ TALL_COLUMNS`; only
    /// called when `TALL_MR > 0`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run_tall(
        kc: usize,
        a: *const T,
        lda: usize,
        b: View<T>,
        c: *mut T,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    ) {
        let _ = (kc, a, lda, b, c, ldc, accumulate, m, n);
        unreachable!("a kernel without a tall tile (TALL_MR == 0)")
    }
}

/// The most columns of `B` that [`MicroKernel::run_tall`] takes.
pub(crate) const TALL_COLUMNS: usize = 2;

/// The addresses of the `NR` columns of a `B` panel with `n` columns, the missing ones
/// repeating the last (read, never stored): no bounds check in the kernel's inner loop.
///
/// # Safety
/// `b` addresses a matrix with `n ≥ 1` columns.
#[inline(always)]
pub(crate) unsafe fn columns<T, const NR: usize>(b: View<T>, n: usize) -> [*const T; NR] {
    // SAFETY: column min(j, n − 1) < n exists.
    core::array::from_fn(|j| unsafe { b.ptr.add(j.min(n - 1) * b.cs) })
}

/// The portable micro-kernel: 8 × 4, plain multiply and add, vectorised by the compiler
/// for whatever the target offers.
pub(crate) struct Portable;

impl<T: Real> MicroKernel<T> for Portable {
    const MR: usize = 8;
    const NR: usize = 4;
    /// 128 steps of `f32`, 64 of `f64`: the targets without AVX2 are the small ones.
    type Panel = Tile<{ 4 * 1024 }>;

    #[inline]
    unsafe fn run(
        kc: usize,
        a: *const T,
        lda: usize,
        b: View<T>,
        c: *mut T,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    ) {
        // SAFETY: the caller's contract; each arm's `n` is at most its number of columns.
        // (Three columns run as four: on the x86-64 baseline a 3-column tile was no faster.)
        unsafe {
            match n {
                1 => portable::<T, 1>(kc, a, lda, b, c, ldc, accumulate, m, n),
                2 => portable::<T, 2>(kc, a, lda, b, c, ldc, accumulate, m, n),
                _ => portable::<T, 4>(kc, a, lda, b, c, ldc, accumulate, m, n),
            }
        }
    }
}

/// [`Portable`]'s tile: its first `COLUMNS ≥ n` columns (a panel of a batch of one or two
/// samples computes no more than it has; each column gets the bits it has in a whole tile).
///
/// # Safety
/// As [`MicroKernel::run`], with `n ≤ COLUMNS`.
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn portable<T: Real, const COLUMNS: usize>(
    kc: usize,
    a: *const T,
    lda: usize,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
    m: usize,
    n: usize,
) {
    // SAFETY: the caller's contract: n ≥ 1 columns.
    let bc = unsafe { columns::<T, COLUMNS>(b, n) };
    let mut acc = [[T::ZERO; 8]; COLUMNS];
    let mut step = |p: usize, ap: [T; 8]| {
        for (column, &bj) in acc.iter_mut().zip(&bc) {
            // SAFETY: row p < kc of a column of B.
            let bpj = unsafe { *bj.add(p * b.rs) };
            for (c, &ai) in column.iter_mut().zip(&ap) {
                *c += ai * bpj;
            }
        }
    };
    if m == 8 {
        // A whole tile: its column in one load. (A test per row inside the loop kept the
        // compiler from vectorising it: 9 against 20 GFLOP/s on the x86-64 baseline.)
        for p in 0..kc {
            // SAFETY: p < kc; the tile's eight rows of column p (the caller's contract).
            step(p, unsafe {
                core::ptr::read_unaligned(a.add(p * lda).cast::<[T; 8]>())
            });
        }
    } else {
        for p in 0..kc {
            // SAFETY: p < kc and i < m: inside the panel (the caller's contract).
            let ap = core::array::from_fn(|i| {
                if i < m {
                    unsafe { *a.add(i + p * lda) }
                } else {
                    T::ZERO
                }
            });
            step(p, ap);
        }
    }
    for (j, column) in acc.iter().enumerate().take(n) {
        for (i, &v) in column.iter().enumerate().take(m) {
            // SAFETY: i < m and j < n: inside the caller's m × n block of C.
            let c = unsafe { &mut *c.add(i + j * ldc) };
            *c = if accumulate { *c + v } else { v };
        }
    }
}

/// `C (+)= A·B` with `A` `m × k`, `B` `k × n`, `C` column-major with leading dimension `ldc`.
///
/// # Safety
/// `a` and `b` address every element of their `m × k` and `k × n` extents through their
/// strides, `c` every element of an `m × n` column-major block (`ldc ≥ m`), writable and not
/// overlapping `a` or `b`; the CPU has the target features of `K`.
///
/// Inlined into a non-inlined wrapper per kernel (compiled with the kernel's target
/// features).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm<T: Real, K: MicroKernel<T>>(
    m: usize,
    n: usize,
    k: usize,
    a: View<T>,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for j in 0..n {
                for i in 0..m {
                    // SAFETY: inside C's m × n block.
                    unsafe { *c.add(i + j * ldc) = T::ZERO };
                }
            }
        }
        return;
    }
    // SAFETY: the caller's contract.
    unsafe {
        // With one panel of `B` (a batch of a few samples), each micro-panel of `A` is read
        // once: nothing for `in_tiles`' copy to keep in L1, so it would only add a copy (W·X
        // 1024×1024×8: 168 against 324 µs, ×4: 152 against 248 µs; BENCHMARKS.md).
        if a.rs == 1 && n <= TALL_COLUMNS && K::TALL_MR > 0 {
            tall::<T, K>(m, n, k, a, b, c, ldc, accumulate)
        } else if a.rs == 1
            && (n <= K::NR || !(a.cs * size_of::<T>()).is_multiple_of(ALIASING_STRIDE))
        {
            in_place::<T, K>(m, n, k, a, b, c, ldc, accumulate)
        } else if a.rs == 1 {
            in_tiles::<T, K>(m, n, k, a, b, c, ldc, accumulate)
        } else {
            transposed_tiles::<T, K>(m, n, k, a, b, c, ldc, accumulate)
        }
    }
}

/// [`gemm`] with a column-major `A`, read in place.
///
/// # Safety
/// As [`gemm`], with `a.rs == 1` and `m, n, k ≥ 1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn in_place<T: Real, K: MicroKernel<T>>(
    m: usize,
    n: usize,
    k: usize,
    a: View<T>,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let (mr, nr) = (K::MR, K::NR);
    debug_assert!(MC.is_multiple_of(mr));
    let kc_step = depth_step::<T>(k);
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(kc_step) {
            let kc = kc_step.min(k - pc);
            let acc = accumulate || pc > 0;
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                for jr in (0..nc).step_by(nr) {
                    for ir in (0..mc).step_by(mr) {
                        // SAFETY: the panel of A starts at (ic + ir, pc) and has
                        // min(MR, mc − ir) rows, MR of them when the tile is whole; the
                        // panel of B at (pc, jc + jr) has kc rows and min(NR, nc − jr)
                        // columns; the tile of C is inside its block.
                        unsafe {
                            K::run(
                                kc,
                                a.offset(ic + ir, pc).ptr,
                                a.cs,
                                b.offset(pc, jc + jr),
                                c.add(ic + ir + (jc + jr) * ldc),
                                ldc,
                                acc,
                                mr.min(mc - ir),
                                nr.min(nc - jr),
                            )
                        };
                    }
                }
            }
        }
    }
}

/// The depth of [`in_place`]'s blocks (and [`tall`]'s, so that both give the same bits):
/// equal blocks of at most `KC` steps.
#[inline(always)]
fn depth_step<T>(k: usize) -> usize {
    let kc_max = A_BLOCK_BYTES / size_of::<T>() / MC;
    k.div_ceil(k.div_ceil(kc_max))
}

/// [`gemm`] with a column-major `A` and at most [`TALL_COLUMNS`] columns of `B` (a batch
/// of one or two samples, the last panel of a batch): [`MicroKernel::run_tall`] on blocks of
/// `TALL_MR` rows, with [`in_place`]'s depth blocks.
///
/// # Safety
/// As [`gemm`], with `a.rs == 1`, `m, k ≥ 1` and `1 ≤ n ≤ TALL_COLUMNS`, `K::TALL_MR > 0`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tall<T: Real, K: MicroKernel<T>>(
    m: usize,
    n: usize,
    k: usize,
    a: View<T>,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let kc_step = depth_step::<T>(k);
    for pc in (0..k).step_by(kc_step) {
        let kc = kc_step.min(k - pc);
        let acc = accumulate || pc > 0;
        for ic in (0..m).step_by(K::TALL_MR) {
            // SAFETY: rows ic.. (at most TALL_MR of them) and depth pc..pc + kc of A, the
            // same depth of B's n columns, the same rows of C: inside the product.
            unsafe {
                K::run_tall(
                    kc,
                    a.offset(ic, pc).ptr,
                    a.cs,
                    b.offset(pc, 0),
                    c.add(ic),
                    ldc,
                    acc,
                    K::TALL_MR.min(m - ic),
                    n,
                )
            };
        }
    }
}

/// Columns of `A` whose length in bytes is a multiple of this (1,024 `f32` rows, 512 `f64`)
/// put every column of a micro-panel in the same L1 sets, so the panel does not stay in L1
/// while the panels of `B` pass ([`in_tiles`]).
const ALIASING_STRIDE: usize = 4096;

/// [`gemm`] with a column-major `A` whose columns are a multiple of [`ALIASING_STRIDE`] bytes
/// long, and more than one panel of `B`: as [`in_place`], but each `MR × kt` micro-panel of `A` copied into a tile on the
/// stack (contiguous, so it stays in L1 while every panel of `B` in the block passes), with
/// depth blocks as deep as the tile ([`MicroKernel::Panel`]) holds: 128 steps with AVX-512
/// and AVX2, as each block loads and stores its tiles of `C` once (with 4 KiB tiles, 32
/// steps, W·X 1024×784×64 ran at 65–70 % of the one-core peak; with 16 KiB, 76–82 %). Read in
/// place, such a panel's columns all fell in the same two L1 sets: 133 GFLOP/s against 255
/// for 1,008 rows.
///
/// # Safety
/// As [`gemm`], with `a.rs == 1` and `m, n, k ≥ 1`.
// A frame of its own, so that its tile (up to 16 KiB) is on the stack only for the products
// that take this path (a function reserves every local whichever branch runs).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn in_tiles<T: Real, K: MicroKernel<T>>(
    m: usize,
    n: usize,
    k: usize,
    a: View<T>,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let mr = K::MR;
    // Uninitialised in place (no array built and moved: two copies in a debug build's frame).
    let mut tile = MaybeUninit::<K::Panel>::uninit();
    let tile: *mut T = tile.as_mut_ptr().cast();
    let kt_max = size_of::<K::Panel>() / size_of::<T>() / mr;
    debug_assert!(kt_max >= 1);
    let kt_step = k.div_ceil(k.div_ceil(kt_max));
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for ic in (0..m).step_by(MC) {
            let mc = MC.min(m - ic);
            for pc in (0..k).step_by(kt_step) {
                let kt = kt_step.min(k - pc);
                let acc = accumulate || pc > 0;
                for ir in (ic..ic + mc).step_by(mr) {
                    let rows = mr.min(ic + mc - ir);
                    for p in 0..kt {
                        // SAFETY: rows ir..ir + rows of column pc + p are inside A; the tile
                        // holds mr·kt scalars (a float's alignment divides 64).
                        unsafe {
                            core::ptr::copy_nonoverlapping(
                                a.offset(ir, pc + p).ptr,
                                tile.add(p * mr),
                                rows,
                            )
                        };
                    }
                    // SAFETY: the tile's first `rows` rows are written; rows ir..ir + rows,
                    // depth pc..pc + kt and columns jc..jc + nc are inside the product.
                    unsafe {
                        tile_times_b::<T, K>(kt, tile, rows, b, c, ldc, acc, ir, pc, jc..jc + nc)
                    };
                }
            }
        }
    }
}

/// `C[ir.., columns] (+)= tile·B[pc.., columns]` for a tile of `A` copied to the stack (`rows`
/// rows of `MR`, `kt` steps, column-major with leading dimension `MR`): the micro-kernel on
/// each panel of `NR` columns, as [`in_tiles`] and [`transposed_tiles`] run it.
///
/// # Safety
/// The tile's first `rows` rows of its `kt` columns are written (the kernel reads no more
/// unless `rows == MR`); rows `ir..ir + rows`, depth `pc..pc + kt` and `columns` are inside
/// the product whose `B` and `C` (leading dimension `ldc`) the caller's contract covers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_times_b<T: Real, K: MicroKernel<T>>(
    kt: usize,
    tile: *const T,
    rows: usize,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
    ir: usize,
    pc: usize,
    columns: core::ops::Range<usize>,
) {
    for jr in columns.clone().step_by(K::NR) {
        // SAFETY: the caller's contract; the panel of B and the tile of C are inside theirs.
        unsafe {
            K::run(
                kt,
                tile,
                K::MR,
                b.offset(pc, jr),
                c.add(ir + jr * ldc),
                ldc,
                accumulate,
                rows,
                K::NR.min(columns.end - jr),
            )
        };
    }
}

/// 64-byte aligned storage for a tile of `A` (`BYTES` long), used uninitialised
/// (`MaybeUninit<Tile<_>>`).
#[repr(C, align(64))]
pub(crate) struct Tile<const BYTES: usize>([u8; BYTES]);

/// [`gemm`] with a transposed (or otherwise strided) `A`: for each depth step of at most
/// `TILE_BYTES / (MR·size)` and each `MR` rows, the tile of `A` is copied into column-major
/// order on the stack, then multiplied by every panel of `B`.
///
/// # Safety
/// As [`gemm`], with `m, n, k ≥ 1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn transposed_tiles<T: Real, K: MicroKernel<T>>(
    m: usize,
    n: usize,
    k: usize,
    a: View<T>,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let mr = K::MR;
    let mut tile = MaybeUninit::<Tile<TILE_BYTES>>::uninit();
    let tile: *mut T = tile.as_mut_ptr().cast();
    let kt_max = TILE_BYTES / size_of::<T>() / mr;
    debug_assert!(kt_max >= 1);
    let kt_step = k.div_ceil(k.div_ceil(kt_max));
    for pc in (0..k).step_by(kt_step) {
        let kt = kt_step.min(k - pc);
        let acc = accumulate || pc > 0;
        for ir in (0..m).step_by(mr) {
            let rows = mr.min(m - ir);
            for p in 0..kt {
                for i in 0..rows {
                    // SAFETY: (ir + i, pc + p) is inside A; the tile holds mr·kt ≤
                    // TILE_BYTES / size scalars (a float's alignment divides 64).
                    unsafe { *tile.add(i + p * mr) = a.at(ir + i, pc + p) };
                }
            }
            // SAFETY: the tile's first `rows` rows are written; rows ir..ir + rows, depth
            // pc..pc + kt and columns 0..n are inside the product.
            unsafe { tile_times_b::<T, K>(kt, tile, rows, b, c, ldc, acc, ir, pc, 0..n) };
        }
    }
}

/// `y (+)= A·x` for a column-major `A` (`m × k`, `a.rs == 1`), 64 rows at a time in 64
/// accumulators on the stack (512 bytes of `f64`): each block of rows streams its part of
/// `A`'s columns once.
///
/// # Safety
/// `a` addresses the `m × k` matrix, `x` a `k × 1` one, `y` `m` writable scalars not
/// overlapping them.
#[inline(always)]
pub(crate) unsafe fn gemv<T: Real>(
    m: usize,
    k: usize,
    a: View<T>,
    x: View<T>,
    y: *mut T,
    accumulate: bool,
) {
    const ROWS: usize = 64;
    for i0 in (0..m).step_by(ROWS) {
        let rows = ROWS.min(m - i0);
        let mut acc = [T::ZERO; ROWS];
        for p in 0..k {
            // SAFETY: p < k, rows i0..i0 + rows < m: inside the extents.
            unsafe {
                let xp = x.at(p, 0);
                let column = core::slice::from_raw_parts(a.offset(i0, p).ptr, rows);
                for (acc, &a) in acc.iter_mut().zip(column) {
                    *acc += a * xp;
                }
            }
        }
        for (i, &v) in acc.iter().enumerate().take(rows) {
            // SAFETY: i0 + i < m: inside y.
            let y = unsafe { &mut *y.add(i0 + i) };
            *y = if accumulate { *y + v } else { v };
        }
    }
}
