//! Blocked, packed matrix product `C (+)= A·B` for products too large for the direct loops:
//! the BLIS scheme (Goto and van de Geijn, "Anatomy of high-performance matrix
//! multiplication", 2008) with the packing buffers on the stack, so it never allocates.
//!
//! `A` (`m × k`) and `B` (`k × n`) are read through arbitrary strides, so `Aᵀ` and `Bᵀ` cost
//! nothing but a different packing order. `C` is column-major (every matrix of this crate
//! is). Blocks of `A` (`MC × KC`) are copied into micro-panels of `MR` rows, blocks of `B`
//! (`KC × NC`) into micro-panels of `NR` columns, both zero-padded to whole panels, and a
//! micro-kernel multiplies one `A` panel by one `B` panel into an `MR × NR` tile of `C`
//! held in registers.

use super::View;
use crate::Real;
use core::mem::MaybeUninit;

/// Rows of `A` packed at a time (a multiple of every micro-kernel's `MR`).
pub(crate) const MC: usize = 64;
/// Columns of `B` packed at a time (a multiple of every micro-kernel's `NR`).
pub(crate) const NC: usize = 64;
/// Bytes of each packing buffer (`MC × KC` and `KC × NC` scalars): 64 KiB, on the stack.
const BYTES: usize = 64 * 1024;

/// Depth of a packed block: 256 for `f32`, 128 for `f64`.
#[inline(always)]
fn kc_max<T>() -> usize {
    BYTES / size_of::<T>() / MC
}

/// A register-blocked kernel: `C[0..m, 0..n] (+)= A·B̂` for one panel of `A` (`m × kc`,
/// column `p` at `a + p·lda`: a packed panel with `lda = MR`, or a column-major matrix
/// read in place) and one packed panel of `B` (`kc × NR`, `NR` scalars per step).
pub(crate) trait MicroKernel<T> {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;

    /// # Safety
    /// `a + i + p·lda` is readable for `i < m`, `p < kc` (for `i < MR` if `m == MR`); `b`
    /// holds `kc·NR` readable scalars; `c` points to an `m × n` column-major block with
    /// leading dimension `ldc`, writable, with `m ≤ MR` and `n ≤ NR`; the CPU has the
    /// kernel's target features.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        kc: usize,
        a: *const T,
        lda: usize,
        b: *const T,
        c: *mut T,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    );
}

/// The portable micro-kernel: 8 × 4, plain multiply and add, vectorised by the compiler
/// for whatever the target offers.
pub(crate) struct Portable;

impl<T: Real> MicroKernel<T> for Portable {
    const MR: usize = 8;
    const NR: usize = 4;

    #[inline]
    unsafe fn run(
        kc: usize,
        a: *const T,
        lda: usize,
        b: *const T,
        c: *mut T,
        ldc: usize,
        accumulate: bool,
        m: usize,
        n: usize,
    ) {
        let mut acc = [[T::ZERO; 8]; 4];
        for p in 0..kc {
            // SAFETY: p < kc: the caller's contract; rows past m are read only when m == 8.
            let ap: [T; 8] = core::array::from_fn(|i| {
                if m == 8 || i < m {
                    unsafe { *a.add(i + p * lda) }
                } else {
                    T::ZERO
                }
            });
            // SAFETY: p·4 + 4 ≤ kc·NR.
            let bp = unsafe { &*b.add(p * 4).cast::<[T; 4]>() };
            for (column, &bj) in acc.iter_mut().zip(bp) {
                for (c, &ai) in column.iter_mut().zip(&ap) {
                    *c += ai * bj;
                }
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
}

/// 64-byte aligned, uninitialised storage for a packing buffer.
#[repr(C, align(64))]
struct Buffer([MaybeUninit<u8>; BYTES]);

impl Buffer {
    #[inline(always)]
    fn new() -> Self {
        Buffer([MaybeUninit::uninit(); BYTES])
    }
    /// The buffer as `BYTES / size_of::<T>()` scalars (a float's alignment divides 64).
    #[inline(always)]
    fn ptr<T>(&mut self) -> *mut T {
        self.0.as_mut_ptr().cast()
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
/// features), which holds the two 64 KiB buffers in its stack frame only while it runs.
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
    let (mr, nr) = (K::MR, K::NR);
    debug_assert!(MC.is_multiple_of(mr) && NC.is_multiple_of(nr));
    let mut a_buf = Buffer::new();
    let mut b_buf = Buffer::new();
    let (a_pack, b_pack) = (a_buf.ptr::<T>(), b_buf.ptr::<T>());
    // Equal depth blocks, each at most `kc_max`.
    let k_blocks = k.div_ceil(kc_max::<T>());
    let kc_step = k.div_ceil(k_blocks);
    let mut jc = 0;
    while jc < n {
        let nc = NC.min(n - jc);
        let mut pc = 0;
        while pc < k {
            let kc = kc_step.min(k - pc);
            // SAFETY: the block of B is inside its extent; the buffer holds
            // kc·round_up(nc, NR) ≤ KC·NC scalars (BYTES).
            unsafe { pack_b(kc, nc, nr, b.offset(pc, jc), b_pack) };
            let acc = accumulate || pc > 0;
            // A column-major A is read in place (its columns are the panels' steps);
            // otherwise (a transposed A) it is packed.
            let in_place = a.rs == 1;
            let mut ic = 0;
            while ic < m {
                let mc = MC.min(m - ic);
                if !in_place {
                    // SAFETY: as for B, MC·KC scalars fill the buffer exactly.
                    unsafe { pack_a(mc, kc, mr, a.offset(ic, pc), a_pack) };
                }
                let mut jr = 0;
                while jr < nc {
                    let mut ir = 0;
                    while ir < mc {
                        let (a_panel, lda) = if in_place {
                            // SAFETY: (ic + ir, pc) is inside A.
                            (unsafe { a.offset(ic + ir, pc).ptr }, a.cs)
                        } else {
                            // SAFETY: panel ir/MR of the packed block.
                            (unsafe { a_pack.add(ir * kc) as *const T }, mr)
                        };
                        // SAFETY: the A panel is packed (whole, zero-padded) or in place
                        // (rows ic+ir.. < m readable, MR of them when the tile is whole);
                        // the B panel was packed above; the tile (ic+ir, jc+jr) of at most
                        // MR × NR is inside C.
                        unsafe {
                            K::run(
                                kc,
                                a_panel,
                                lda,
                                b_pack.add(jr * kc),
                                c.add(ic + ir + (jc + jr) * ldc),
                                ldc,
                                acc,
                                mr.min(mc - ir),
                                nr.min(nc - jr),
                            )
                        };
                        ir += mr;
                    }
                    jr += nr;
                }
                ic += MC;
            }
            pc += kc;
        }
        jc += NC;
    }
}

/// Copies the `mc × kc` block `a` into panels of `mr` rows: panel `r` holds, for each
/// `p`, rows `r·mr .. r·mr + mr` of column `p`, zero past `mc`.
///
/// # Safety
/// `a` addresses an `mc × kc` block; `dst` has room for `round_up(mc, mr)·kc` scalars.
#[inline(always)]
unsafe fn pack_a<T: Real>(mc: usize, kc: usize, mr: usize, a: View<T>, dst: *mut T) {
    let mut r = 0;
    while r < mc {
        let rows = mr.min(mc - r);
        // SAFETY: panel r/mr starts at r·kc and holds kc·mr scalars, inside `dst`.
        let panel = unsafe { dst.add(r * kc) };
        if a.rs == 1 && rows == mr {
            for p in 0..kc {
                // SAFETY: rows r..r+mr of column p are inside the block, contiguous; the
                // buffer does not overlap A. (`mr` is a constant here, so the copy is a few
                // vector moves, not a call to memcpy.)
                unsafe {
                    core::ptr::copy_nonoverlapping(a.ptr.add(r + p * a.cs), panel.add(p * mr), mr)
                };
            }
        } else if a.rs == 1 {
            for p in 0..kc {
                for i in 0..mr {
                    // SAFETY: (r + i, p) is inside the block when i < rows.
                    unsafe {
                        *panel.add(p * mr + i) = if i < rows {
                            *a.ptr.add(r + i + p * a.cs)
                        } else {
                            T::ZERO
                        };
                    }
                }
            }
        } else if a.cs == 1 && rows == mr {
            // A transposed matrix, whole panel: for each step p, gather one scalar from each
            // of the MR rows (all in L1 after the first step) and write MR contiguous ones.
            for p in 0..kc {
                // SAFETY: (r + i, p) is inside the block for i < mr; the panel holds kc·mr.
                unsafe {
                    let (src, dst) = (a.ptr.add(r * a.rs + p), panel.add(p * mr));
                    for i in 0..mr {
                        *dst.add(i) = *src.add(i * a.rs);
                    }
                }
            }
        } else {
            for i in 0..mr {
                for p in 0..kc {
                    // SAFETY: (r + i, p) is inside the block when i < rows.
                    unsafe {
                        *panel.add(p * mr + i) = if i < rows { a.at(r + i, p) } else { T::ZERO };
                    }
                }
            }
        }
        r += mr;
    }
}

/// Copies the `kc × nc` block `b` into panels of `nr` columns: panel `s` holds, for each
/// `p`, columns `s·nr .. s·nr + nr` of row `p`, zero past `nc`.
///
/// # Safety
/// `b` addresses a `kc × nc` block; `dst` has room for `kc·round_up(nc, nr)` scalars.
#[inline(always)]
unsafe fn pack_b<T: Real>(kc: usize, nc: usize, nr: usize, b: View<T>, dst: *mut T) {
    let mut s = 0;
    while s < nc {
        let cols = nr.min(nc - s);
        // SAFETY: panel s/nr starts at s·kc and holds kc·nr scalars, inside `dst`.
        let panel = unsafe { dst.add(s * kc) };
        if b.cs == 1 && cols == nr {
            for p in 0..kc {
                // SAFETY: columns s..s+nr of row p are inside the block, contiguous; the
                // buffer does not overlap B (`nr` is a constant: vector moves).
                unsafe {
                    core::ptr::copy_nonoverlapping(b.ptr.add(p * b.rs + s), panel.add(p * nr), nr)
                };
            }
        } else {
            // For each step p, one scalar from each of the NR columns (all in L1 after the
            // first step), written contiguously.
            for p in 0..kc {
                for j in 0..nr {
                    // SAFETY: (p, s + j) is inside the block when j < cols; the panel holds
                    // kc·nr scalars.
                    unsafe {
                        *panel.add(p * nr + j) = if j < cols { b.at(p, s + j) } else { T::ZERO };
                    }
                }
            }
        }
        s += nr;
    }
}
