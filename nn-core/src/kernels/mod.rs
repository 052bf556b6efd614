//! Matrix-product kernels for the layers; none allocates, none keeps more than a few KiB on
//! the stack, all are `no_std`.
//!
//! The three products a dense layer needs, on column-major nalgebra matrices:
//!
//! | function | computes | a dense layer's |
//! |---|---|---|
//! | [`matmul`] | `C (+)= A·B` | forward `Y = W·X` |
//! | [`matmul_abt`] | `C (+)= A·Bᵀ` | weight gradient `∂W += ∂Y·Xᵀ` |
//! | [`matmul_atb`] | `C (+)= Aᵀ·B` | input gradient `∂X += Wᵀ·∂Y` |
//!
//! Each overwrites `C` or, with `accumulate`, adds to it. Two choices are made, each in one
//! place:
//!
//! - **The algorithm, from the product's sizes** ([`Algorithm`], chosen by [`algorithm`] at
//!   compile time, as the sizes are const generics): a matrix-vector loop for one column, direct
//!   loops over the fixed-size matrices for small products, a blocked GEMM that reads both
//!   operands in place for large ones (see the variants; thresholds measured, BENCHMARKS.md).
//! - **The machine code, from the scalar type and the CPU**: each [`Real`] names its
//!   [`KernelSet`] (`<T as Real>::Kernels`), which runs its AVX-512 kernels when the CPU has
//!   AVX-512F, its AVX2 kernels when it has AVX2 and FMA (detected at run time with `std`, or
//!   at compile time with `-C target-feature=+avx512f` or `+avx2,+fma` without it) and
//!   portable ones otherwise. With `std`, the environment variable `NN_MAX_ISA` = `avx2` or
//!   `baseline` caps the tier (`max_isa`).
//!
//! **Stack.** Nothing here is batch-sized or weight-sized: no kernel packs an operand into a
//! buffer (the blocked GEMM streams `A`'s columns and `B` in place; measured as fast as the
//! packing version it replaced, BENCHMARKS.md), so no caller has to provide scratch memory.
//! What stays on the stack is bounded by constants, whatever the sizes: at most
//! [`MAX_STACK_BYTES`] of accumulators and tiles per call (the test
//! `stack_use_does_not_grow_with_the_sizes` measures it on a painted thread stack).
//!
//! Results agree with the naive triple loop to rounding, not bit for bit: the summation
//! order differs between kernels (the tests bound the difference).

#[cfg(target_arch = "x86_64")]
#[macro_use]
mod direct_vectors;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod row_dots;
mod sets;
mod stream;
mod strided;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::has_avx2_fma;
pub use sets::{F32Kernels, F64Kernels};
pub(crate) use strided::gemm_unsplit;
pub use strided::{MatView, matmul_view};
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::has_avx512;

/// The x86-64 instruction-set tiers of the kernels (and of the layers' own AVX-512 loops),
/// in increasing order.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
// Without `std` only the tests cap the tier (no `NN_MAX_ISA`).
#[cfg_attr(not(any(feature = "std", test)), allow(dead_code))]
pub(crate) enum Isa {
    /// The portable code (SSE2, no FMA).
    Baseline,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512F.
    Avx512,
}

/// The highest tier the code may use, whatever the CPU has: with `std`, the environment
/// variable `NN_MAX_ISA` = `baseline` or `avx2` caps it (read once, at the first check;
/// any other value, or none, leaves it uncapped; as oneDNN's `ONEDNN_MAX_CPU_ISA`), to
/// measure or test the lower tiers on a CPU with AVX-512. Without `std`: uncapped (the
/// target features chosen at compile time decide).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn max_isa() -> Isa {
    #[cfg(test)]
    {
        if x86::tests::PORTABLE_ONLY.with(|p| p.get()) {
            return Isa::Baseline;
        }
        if avx2::tests::AT_MOST_AVX2.with(|p| p.get()) {
            return Isa::Avx2.min(env_max_isa());
        }
    }
    env_max_isa()
}

/// `NN_MAX_ISA`'s tier, read once and cached.
#[cfg(target_arch = "x86_64")]
#[inline]
fn env_max_isa() -> Isa {
    #[cfg(feature = "std")]
    {
        use core::sync::atomic::Ordering;
        let cap = MAX_ISA_CAP.load(Ordering::Relaxed);
        if let Some(&tier) = TIERS.get(cap as usize) {
            return tier;
        }
        read_max_isa()
    }
    #[cfg(not(feature = "std"))]
    {
        Isa::Avx512
    }
}

/// The tiers by index ([`MAX_ISA_CAP`]'s values).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
const TIERS: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

/// `NN_MAX_ISA`'s tier as an index of [`TIERS`], or `u8::MAX` before the variable is read.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
static MAX_ISA_CAP: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(u8::MAX);

/// Reads `NN_MAX_ISA` and caches its tier: out of line, so that the check of the cache (on
/// every dispatch) is inlined where the tier is asked for.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[cold]
#[inline(never)]
fn read_max_isa() -> Isa {
    let tier = parse_max_isa(std::env::var("NN_MAX_ISA").ok().as_deref().unwrap_or(""));
    MAX_ISA_CAP.store(tier as u8, core::sync::atomic::Ordering::Relaxed);
    tier
}

/// The tier a value of `NN_MAX_ISA` names: `baseline` (or `sse2`), `avx2`; anything else
/// leaves the tiers uncapped. Case-insensitive.
#[cfg(all(target_arch = "x86_64", any(feature = "std", test)))]
fn parse_max_isa(value: &str) -> Isa {
    let value = value.trim();
    if value.eq_ignore_ascii_case("baseline") || value.eq_ignore_ascii_case("sse2") {
        Isa::Baseline
    } else if value.eq_ignore_ascii_case("avx2") {
        Isa::Avx2
    } else {
        Isa::Avx512
    }
}

/// Runs `f` with [`has_avx512`] false on this thread (tests of the baseline loops on a CPU
/// with AVX-512).
#[cfg(test)]
pub(crate) fn on_the_baseline<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    x86::tests::PORTABLE_ONLY.with(|p| p.set(true));
    let result = f();
    #[cfg(target_arch = "x86_64")]
    x86::tests::PORTABLE_ONLY.with(|p| p.set(false));
    result
}

/// Runs `f` with the kernels capped at AVX2 on this thread ([`has_avx512`] false; the AVX2
/// kernels where the CPU has AVX2 and FMA).
#[cfg(test)]
pub(crate) fn on_the_avx2_tier<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    avx2::tests::AT_MOST_AVX2.with(|p| p.set(true));
    let result = f();
    #[cfg(target_arch = "x86_64")]
    avx2::tests::AT_MOST_AVX2.with(|p| p.set(false));
    result
}

use crate::Real;
use crate::parallel;
use nalgebra::SMatrix;

/// The most stack memory, in bytes, that any kernel of this module keeps in locals for
/// its accumulators and tiles, for every product size: the GEMM's tile for a column-major
/// `A` whose columns are a multiple of 4 KiB long (1,024 `f32` rows, 512 `f64`), 16 KiB with
/// AVX-512, 8 KiB with AVX2, 4 KiB elsewhere, in a frame of its own
/// that only those products enter. Every other product keeps at most 4 KiB: direct loops'
/// `4·64` accumulators (2 KiB in `f64`); a small `Aᵀ` copied for them: at most
/// [`TRANSPOSED_COPY_MAX_BYTES`]; the GEMM's transposed `A` tile: 2 KiB. Function frames come
/// on top: measured at most 3.3 KiB in all in release builds (19.4 KiB with the 16 KiB tile),
/// 15.2 KiB in debug builds (32.7 KiB), the same for every size.
pub const MAX_STACK_BYTES: usize = 16 * 1024;

/// Products below this many multiply-adds (`M·K·N`, with `N > 1` and `M ≤`
/// [`DIRECT_MAX_ROWS`]) use the direct loops; larger ones the blocked GEMM. Measured on the
/// dense layers of the benchmarks: at 32·64·32 the direct loops (AVX-512 with fused
/// multiply-adds) take 0.97 µs, matrixmultiply 1.5 µs.
pub const DIRECT_MAX_WORK: usize = 128 * 1024;

/// The direct loops keep `4 × M` accumulators on the stack, so they run only up to this many
/// rows (2 KiB of `f64`); taller products use the blocked GEMM, which has no such buffer.
pub const DIRECT_MAX_ROWS: usize = 64;

/// Products of a column-major `A` whose columns take at most this many bytes (48 rows of
/// `f32`, 24 of `f64`) use the direct loops whatever their size, when `A` takes at most
/// [`DIRECT_MAX_A_BYTES`] (it is read again for each group of columns, so it must stay in
/// L2). Their kernels (AVX-512, AVX2) keep a column of `C` in `⌈M/lanes⌉` vectors, the last
/// one masked, where the GEMM's 32-row (AVX-512) or 16-row (AVX2) tiles leave lanes idle:
/// measured on one core of the benchmark machine (AVX-512), `W·X` 16×784×64 took 7.6 µs
/// against the GEMM's 12.6, 48×512×32 5.9 against 8.1, 10×4096×64 42.5 against 66.9, and
/// products of 32 or 64 `f32` rows the same within 3 %; on the AVX2 tier 48 `f32` rows ran
/// 15 % faster and 32 within 5 %. Longer columns need so many vectors that few columns fit
/// the registers at once, one load of `A` per multiply-add or nearly: 64 `f32` rows on AVX2
/// 25 % slower than the GEMM, 40 and 48 `f64` rows 20–30 % slower on both tiers. On the
/// x86-64 baseline (the portable code) the direct loops ran at 15–31 GFLOP/s against the
/// portable GEMM's 5–20.
pub const DIRECT_WIDE_MAX_COLUMN_BYTES: usize = 192;

/// The most bytes of `A` for which a product of columns of at most
/// [`DIRECT_WIDE_MAX_COLUMN_BYTES`] takes the direct loops above [`DIRECT_MAX_WORK`] (a
/// quarter of the benchmark machine's L2).
pub const DIRECT_MAX_A_BYTES: usize = 256 * 1024;

/// Small `Aᵀ·B` products whose `Aᵀ` takes at most this many bytes copy it transposed onto the
/// stack and use the direct loops; the others use the GEMM (no copy).
pub const TRANSPOSED_COPY_MAX_BYTES: usize = 2 * 1024;

/// `Aᵀ·B` products at least this deep (`K`) use the dot-product kernel where the kernel set has
/// one (AVX-512, AVX2); shallower ones the blocked GEMM on tiles of `Aᵀ` transposed on the
/// stack.
pub const DOTS_MIN_DEPTH: usize = 64;

/// Direct products with at least this many multiply-adds run the kernel set's copy of the
/// direct loops (compiled for AVX-512 or AVX2 when the CPU has it); below, the call and the
/// check cost more than the wider vectors save, and the loops are inlined into the caller.
const DIRECT_SIMD_MIN_WORK: usize = 1024;

/// The parts of a direct product split across threads start at multiples of this many
/// columns (the generic loops' groups of four; every column's result is the same whichever
/// columns are computed with it, so the vector kernels' groups of eight need no more).
const DIRECT_COLUMNS: usize = 4;

/// Matrix-vector products with at least this many multiply-adds (or more than
/// [`DIRECT_MAX_ROWS`] rows) use the kernel set's loop (below, the call costs more than the
/// wider vectors save: measured on W4's 16×16 layer, where a dispatched AVX-512 loop made
/// the step slower).
const GEMV_SIMD_MIN_WORK: usize = 4 * 1024;

/// How a product `C (+)= op(A)·op(B)` (`M × K` by `K × N`) is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `N = 1`, column-major `A`, small: one pass over `A` into `M` accumulators, inlined.
    MatrixVectorInline,
    /// `N = 1`, column-major `A`: the kernel set's matrix-vector loop, which streams `A` once
    /// (packing it would cost as much as the product).
    MatrixVector,
    /// `N = 1`, `A` stored transposed: one dot product of contiguous runs per row, inlined
    /// ([`KernelSet::row_dots`]: on x86-64 in explicit vectors, several rows at a time, with
    /// the same bits).
    RowDots,
    /// Small product, column-major `A` of at most [`DIRECT_MAX_ROWS`] rows, or any product of
    /// a column-major `A` of columns of at most [`DIRECT_WIDE_MAX_COLUMN_BYTES`] and
    /// [`DIRECT_MAX_A_BYTES`]: groups of columns of `C` in registers, inlined (below 1 Ki
    /// multiply-adds) or the kernel set's copy (split into runs of columns among a region's
    /// threads, like the larger products). With one to three rows, a column-major `B` (a
    /// layer of 1–3 units over a batch) and at least 1 Ki multiply-adds, each element is
    /// instead the dot product of `A`'s row with `B`'s contiguous column, in
    /// [`KernelSet::row_dots`]'s order (one row: that kernel, on `B`'s columns): there is
    /// nothing to vectorise over in so few rows.
    Direct,
    /// Small `Aᵀ·B` whose `Aᵀ` fits in [`TRANSPOSED_COPY_MAX_BYTES`]: `Aᵀ` copied, then
    /// [`Algorithm::Direct`].
    TransposedDirect,
    /// Everything else: the kernel set's blocked GEMM (register tiles, cache blocks, both
    /// operands read in place; a transposed `A` in small tiles transposed on the stack).
    Gemm,
    /// Deep `Aᵀ·B`: dot products of `A`'s and `B`'s contiguous columns (where the kernel set
    /// has such a kernel; otherwise its GEMM).
    Dots,
}

/// The algorithm for an `M × K` by `K × N` product, `A` stored transposed when
/// `a_transposed` (`matmul_atb`). The one place where sizes choose code.
pub const fn algorithm(
    m: usize,
    k: usize,
    n: usize,
    a_transposed: bool,
    scalar_bytes: usize,
) -> Algorithm {
    let work = m * k * n;
    let small = work < DIRECT_MAX_WORK && m <= DIRECT_MAX_ROWS;
    let few_rows = m * scalar_bytes <= DIRECT_WIDE_MAX_COLUMN_BYTES
        && m * k * scalar_bytes <= DIRECT_MAX_A_BYTES;
    if n == 1 {
        if a_transposed {
            Algorithm::RowDots
        } else if m * k < GEMV_SIMD_MIN_WORK && m <= DIRECT_MAX_ROWS {
            Algorithm::MatrixVectorInline
        } else {
            Algorithm::MatrixVector
        }
    } else if !a_transposed && (small || few_rows) {
        Algorithm::Direct
    } else if small {
        if m * k * scalar_bytes <= TRANSPOSED_COPY_MAX_BYTES {
            Algorithm::TransposedDirect
        } else if k >= DOTS_MIN_DEPTH {
            Algorithm::Dots
        } else {
            Algorithm::Gemm
        }
    } else if a_transposed && k >= DOTS_MIN_DEPTH {
        Algorithm::Dots
    } else {
        Algorithm::Gemm
    }
}

/// The products of one scalar type, in the best machine code for this CPU: named by
/// [`Real::Kernels`]. The algorithm is chosen before (by the sizes, [`algorithm`]); a kernel
/// set only picks the instructions.
///
/// Every method is `unsafe`: the views must address every element of their extents, `C`
/// (`c`, column-major with leading dimension `ldc ≥ m`) must be writable and overlap neither.
pub trait KernelSet<T: Real> {
    /// `y (+)= A·x`: `A` `m × k` column-major (`a.rs == 1`), `x` `k × 1`, `y` `m` scalars.
    ///
    /// # Safety
    /// As the trait says.
    unsafe fn gemv(m: usize, k: usize, a: View<T>, x: View<T>, y: *mut T, accumulate: bool);

    /// `C (+)= A·B`, blocked: `A` `m × k` column-major or transposed (`a.rs == 1` or
    /// `a.cs == 1`), `B` `k × n` column-major or transposed.
    ///
    /// # Safety
    /// As the trait says.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        n: usize,
        k: usize,
        a: View<T>,
        b: View<T>,
        c: *mut T,
        ldc: usize,
        accumulate: bool,
    );

    /// `C (+)= A·B` by dot products of contiguous columns: `A` stored transposed
    /// (`a.cs == 1`), `B` column-major (`b.rs == 1`). Falls back to [`KernelSet::gemm`] where
    /// the set has no such kernel.
    ///
    /// # Safety
    /// As the trait says.
    #[allow(clippy::too_many_arguments)]
    unsafe fn dots(
        m: usize,
        n: usize,
        k: usize,
        a: View<T>,
        b: View<T>,
        c: *mut T,
        ldc: usize,
        accumulate: bool,
    );

    /// The direct loops (see [`Algorithm::Direct`]) in the set's best compiled copy, on the
    /// columns `columns` of `C` (column-major `M × N` at `c`).
    ///
    /// # Safety
    /// `b` addresses a `K × N` matrix; `c` an `M × N` one whose columns `columns` (inside
    /// `0..N`) are writable and overlap nothing else; `M ≤` [`DIRECT_MAX_ROWS`].
    unsafe fn direct<const M: usize, const K: usize, const N: usize>(
        c: *mut T,
        a: &SMatrix<T, M, K>,
        b: View<T>,
        accumulate: bool,
        columns: core::ops::Range<usize>,
    );

    /// `y (+)= Aᵀ·x` ([`Algorithm::RowDots`]) with `A` stored `K × M`: each `y_i` the dot
    /// product of `A`'s column `i` with `x` in 8 interleaved partial sums (`p mod 8`),
    /// combined `((l₀+l₄)+(l₁+l₅))+((l₂+l₆)+(l₃+l₇))` (sequentially for `K < 8`), bit for bit
    /// in every set (the default: the scalar definition; `f32`'s and `f64`'s sets: the same
    /// additions in explicit vectors on x86-64).
    ///
    /// # Safety
    /// `x` addresses `K` scalars; `y` `M` writable ones, not overlapping `a` or `x`.
    #[inline(always)]
    unsafe fn row_dots<const M: usize, const K: usize>(
        y: *mut T,
        a: &SMatrix<T, K, M>,
        x: View<T>,
        accumulate: bool,
    ) {
        // SAFETY: the caller's contract.
        unsafe { row_dots::<T, M, K>(y, a, x, accumulate) }
    }
}

/// A read-only matrix seen through strides, element `(i, j)` at `ptr + i·rs + j·cs`: how the
/// kernels see an operand, transposed or not, without copying it. Made by this module only.
#[derive(Clone, Copy, Debug)]
pub struct View<T> {
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

    /// The address of element `(i, j)` (or the view of the sub-matrix starting there).
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

    /// The same view of the same memory as scalars of type `U` (for a kernel written for
    /// `f32` called from generic code once `T` is known to be `f32`).
    #[inline(always)]
    fn cast<U>(self) -> View<U> {
        View {
            ptr: self.ptr.cast(),
            rs: self.rs,
            cs: self.cs,
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

// SAFETY: a view only reads, and the functions of this module that share one between threads
// (`split_product`) only read through it while the owner's borrow lasts.
unsafe impl<T> Send for View<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for View<T> {}

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
    unsafe { product::<T, M, K, N>(c, Operand::Matrix(a), view(b), accumulate) }
}

/// Column-major products `A·B` at least this deep (`K`) that the GEMM computes are computed
/// as two half-depth products added ([`matmul_depth_halves`]), when the caller gives the
/// scratch for one: a dense layer's forward product on 512 inputs or more (it declares the
/// scratch, `Layer::SCRATCH`). `network!` applies the same rule to plan that scratch.
pub const DEPTH_HALVES_MIN_DEPTH: usize = 512;

/// Whether [`matmul_depth_halves`] cuts an `M × K × N` product of `scalar_bytes`-byte
/// scalars in two halves of its depth (and uses `M · N` scalars of its scratch): a GEMM at
/// least [`DEPTH_HALVES_MIN_DEPTH`] deep. A constant of the sizes alone, so that every
/// number of threads computes the same sums.
pub const fn depth_halves(m: usize, k: usize, n: usize, scalar_bytes: usize) -> bool {
    k >= DEPTH_HALVES_MIN_DEPTH
        && matches!(algorithm(m, k, n, false, scalar_bytes), Algorithm::Gemm)
}

/// `C = A·B`, or `C += A·B` when `accumulate`, for a product as deep as a dense layer's on a
/// large input: where [`depth_halves`] says so, as `(C + A₀·B₀) + A₁·B₁`, with `A₀` the first
/// `⌊K/2⌋` columns of `A` and `B₀` as many rows of `B`, the second product computed from zero
/// in `scratch` (`M · N` scalars) and then added; otherwise [`matmul`].
///
/// On two threads of a pool, each half runs on its own thread, and each thread reads only
/// its half of the columns of `A`: when `A` is a weight matrix that the optimizer then updates
/// in halves of its columns ([`crate::parallel`], by tensors), each thread finds next step
/// the columns it wrote, where cutting `C`'s rows (as the other products split) would have
/// each thread read half of every column, the other thread's writes. The same sums on any
/// number of threads (one thread computes the halves in turn).
///
/// # Panics
/// If `scratch` has fewer than `M · N` scalars when the product is cut.
#[inline]
pub fn matmul_depth_halves<T: Real, const M: usize, const K: usize, const N: usize>(
    c: &mut SMatrix<T, M, N>,
    a: &SMatrix<T, M, K>,
    b: &SMatrix<T, K, N>,
    accumulate: bool,
    scratch: &mut [T],
) {
    if !depth_halves(M, K, N, size_of::<T>()) {
        return matmul(c, a, b, accumulate);
    }
    assert!(
        scratch.len() >= M * N,
        "matmul_depth_halves: scratch of {} scalars for a {M} × {N} product",
        scratch.len()
    );
    let half = K / 2;
    let (a, b) = (view(a), view(b));
    let parts = [
        (parallel::SharedPtr(c.as_mut_ptr()), 0, half, accumulate),
        (
            parallel::SharedPtr(scratch.as_mut_ptr()),
            half,
            K - half,
            false,
        ),
    ];
    // Both halves at once on a pool (each on its own thread), else in turn.
    parallel::for_parts_indexed(2, 1, M * K * N, 2, &|_, first, count| {
        for &(out, depth, steps, accumulate) in &parts[first..first + count] {
            // SAFETY: columns `depth..depth + steps` of A and rows of B are inside the
            // `M × K` and `K × N` matrices; `out` is `C` or the scratch, `M × N` scalars
            // (asserted) that overlap neither operand, each written by one part.
            unsafe {
                T::Kernels::gemm(
                    M,
                    N,
                    steps,
                    a.offset(0, depth),
                    b.offset(depth, 0),
                    out.get(),
                    M,
                    accumulate,
                )
            };
        }
    });
    // The second half added (each element alone: split as any element-wise pass).
    parallel::elementwise([c.as_mut_slice()], [&scratch[..M * N]], |[c], [s]| {
        for (c, &s) in c.iter_mut().zip(s) {
            *c += s;
        }
    });
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
    unsafe { product::<T, M, K, N>(c, Operand::Matrix(a), view(b).t(), accumulate) }
}

/// `C = Aᵀ·B`, or `C += Aᵀ·B` when `accumulate`.
#[inline]
pub fn matmul_atb<T: Real, const M: usize, const K: usize, const N: usize>(
    c: &mut SMatrix<T, M, N>,
    a: &SMatrix<T, K, M>,
    b: &SMatrix<T, K, N>,
    accumulate: bool,
) {
    // SAFETY: as in `matmul`; the transposed operand addresses the M × K matrix Aᵀ.
    unsafe { product::<T, M, K, N>(c, Operand::Transposed(a), view(b), accumulate) }
}

/// The left operand `A` (`M × K`) of a product: a matrix, or the transpose of one.
#[derive(Clone, Copy)]
enum Operand<'a, T: Real, const M: usize, const K: usize> {
    Matrix(&'a SMatrix<T, M, K>),
    Transposed(&'a SMatrix<T, K, M>),
}

/// Runs the algorithm [`algorithm`] picks for these sizes (a constant per instance: the
/// other arms compile away), with `T`'s kernel set.
///
/// # Safety
/// `b` addresses every element of a `K × N` matrix; `c` does not overlap `a` or `b`.
#[inline(always)]
unsafe fn product<T: Real, const M: usize, const K: usize, const N: usize>(
    c: &mut SMatrix<T, M, N>,
    a: Operand<'_, T, M, K>,
    b: View<T>,
    accumulate: bool,
) {
    let (a_view, transposed) = match a {
        Operand::Matrix(a) => (view(a), false),
        Operand::Transposed(a) => (view(a).t(), true),
    };
    let (y, ldc) = (c.as_mut_ptr(), M);
    // SAFETY (every arm): the caller's contract; each arm's own conditions (layouts, sizes)
    // are those `algorithm` checked.
    unsafe {
        match (algorithm(M, K, N, transposed, size_of::<T>()), a) {
            (Algorithm::MatrixVectorInline, Operand::Matrix(a)) => {
                gemv_inline::<T, M, K>(y, a, b, accumulate)
            }
            (Algorithm::MatrixVector, _) => T::Kernels::gemv(M, K, a_view, b, y, accumulate),
            (Algorithm::RowDots, Operand::Transposed(a)) => {
                T::Kernels::row_dots::<M, K>(y, a, b, accumulate)
            }
            (Algorithm::Direct, Operand::Matrix(a)) => {
                if M == 1 && M * K * N >= DIRECT_SIMD_MIN_WORK && b.rs == 1 && b.cs == K {
                    // `Cᵀ = Bᵀ·aᵀ`: B's N contiguous columns, each dotted with a's row (one
                    // row: contiguous), into C's one contiguous row.
                    // SAFETY: `b` addresses a K × N matrix with column stride K: the layout of
                    // an `SMatrix<T, K, N>` (nalgebra's storage is the `[[T; K]; N]` array).
                    let b = &*b.ptr.cast::<SMatrix<T, K, N>>();
                    T::Kernels::row_dots::<N, K>(y, b, a_view, accumulate)
                } else if M * K * N >= DIRECT_SIMD_MIN_WORK {
                    // Each column of `C` alone (its own accumulators, the depth in order), so
                    // any split of the columns gives the same bits.
                    let c = parallel::SharedPtr(y);
                    parallel::for_parts_of_product(N, DIRECT_COLUMNS, M * K * N, |first, len| {
                        // Columns `first..first + len` of `C`, inside `0..N`; the parts'
                        // columns are disjoint.
                        T::Kernels::direct::<M, K, N>(c.get(), a, b, accumulate, first..first + len)
                    });
                } else {
                    direct::<T, M, K, N, false>(y, a, b, accumulate, 0..N)
                }
            }
            (Algorithm::TransposedDirect, Operand::Transposed(a)) => {
                transposed_direct::<T, M, K, N>(c, a, b, accumulate)
            }
            (Algorithm::Dots, _) => split_product(
                M,
                N,
                K,
                a_view,
                b,
                y,
                ldc,
                parallel::COLUMN_GRANULE,
                |m, n, a, b, c| T::Kernels::dots(m, n, K, a, b, c, ldc, accumulate),
            ),
            (Algorithm::Gemm, _) => split_product(
                M,
                N,
                K,
                a_view,
                b,
                y,
                ldc,
                parallel::GEMM_COLUMN_GRANULE,
                |m, n, a, b, c| T::Kernels::gemm(m, n, K, a, b, c, ldc, accumulate),
            ),
            _ => unreachable!("`algorithm` pairs each inlined algorithm with its layout"),
        }
    }
}

/// Runs `kernel(rows, columns, A from the part's first row, B from its first column, C at
/// the part's first element)` on parts of an `m × n` product: whole, or across the threads of
/// the rayon pool it is called in when it is large enough (see [`crate::parallel`]), cut
/// along `C`'s columns when it has at least as many columns as rows (each part then writes
/// one contiguous block of `C`; parts start at multiples of `column_granule`), else along its
/// rows.
///
/// # Safety
/// `kernel` is safe to call on any block of rows and columns of the `m × n × k` product
/// whose operands `a`, `b` and result `c` (leading dimension `ldc`) the caller's contract
/// covers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn split_product<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: View<T>,
    b: View<T>,
    c: *mut T,
    ldc: usize,
    column_granule: usize,
    kernel: impl Fn(usize, usize, View<T>, View<T>, *mut T) + Sync,
) {
    let c = parallel::SharedPtr(c);
    let by_columns = n >= m;
    let (extent, granule) = if by_columns {
        (n, column_granule)
    } else {
        (m, parallel::ROW_GRANULE)
    };
    parallel::for_parts_of_product(extent, granule, m * n * k, |first, len| {
        // SAFETY: `first + len` is at most `n` (columns) or `m` (rows): the part's block is
        // inside A, B and C, and parts write disjoint blocks of C.
        unsafe {
            if by_columns {
                kernel(m, len, a, b.offset(0, first), c.get().add(first * ldc))
            } else {
                kernel(len, n, a.offset(first, 0), b, c.get().add(first))
            }
        }
    });
}

/// `y (+)= A·x` for a small column-major `A` (`M ≤` [`DIRECT_MAX_ROWS`]):
/// `y = Σ_p x_p·A[:, p]` in `M` accumulators.
///
/// # Safety
/// `x` addresses `K` scalars; `y` `M` writable ones, not overlapping `a` or `x`.
// Inlined in release builds; a frame of its own in debug builds, where every local of a
// function is reserved whichever branch runs (its accumulators are `M`-sized).
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
unsafe fn gemv_inline<T: Real, const M: usize, const K: usize>(
    y: *mut T,
    a: &SMatrix<T, M, K>,
    x: View<T>,
    accumulate: bool,
) {
    let a = a.as_slice();
    let mut acc = [T::ZERO; M];
    if M < 4 {
        // Too few rows to vectorise over: one dot product per row.
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: p < K: inside x.
            *acc = dot::<T, K>(|p| a[i + p * M], |p| unsafe { x.at(p, 0) });
        }
    } else {
        for p in 0..K {
            // SAFETY: p < K: inside x.
            let xp = unsafe { x.at(p, 0) };
            for (acc, &a) in acc.iter_mut().zip(&a[p * M..(p + 1) * M]) {
                *acc += a * xp;
            }
        }
    }
    for (i, &v) in acc.iter().enumerate() {
        // SAFETY: i < M: inside y.
        let y = unsafe { &mut *y.add(i) };
        *y = if accumulate { *y + v } else { v };
    }
}

/// `y (+)= Aᵀ·x` with `A` stored `K × M`: each `y_i` is the dot product of `A`'s column `i`
/// with `x`, both contiguous, in [`dot`]'s order. The definition of
/// [`KernelSet::row_dots`]'s results (the kernel sets' vector versions, in `row_dots.rs`, give
/// the same bits; left to the compiler, this loop is vectorised across the outputs `i`, with
/// gathers).
///
/// # Safety
/// `x` addresses `K` scalars; `y` `M` writable ones, not overlapping `a` or `x`.
#[inline(always)]
unsafe fn row_dots<T: Real, const M: usize, const K: usize>(
    y: *mut T,
    a: &SMatrix<T, K, M>,
    x: View<T>,
    accumulate: bool,
) {
    let a = a.as_slice();
    for i in 0..M {
        let column = &a[i * K..(i + 1) * K];
        // SAFETY: p < K: inside x.
        let v = dot::<T, K>(|p| column[p], |p| unsafe { x.at(p, 0) });
        // SAFETY: i < M: inside y.
        let y = unsafe { &mut *y.add(i) };
        *y = if accumulate { *y + v } else { v };
    }
}

/// `Σ xᵢ` in 8 interleaved partial sums (element `i` into sum `i mod 8`, in order from
/// zero), combined [`pairwise`]: one vector of independent chains, where one sum is a chain
/// of `len` dependent additions (the bias gradient of a convolution: a plane of 784 values
/// per channel). The order depends on the length only.
#[inline]
pub(crate) fn sum<T: Real>(xs: &[T]) -> T {
    sum_by(xs, |x| x)
}

/// `Σ f(xᵢ)`, in [`sum`]'s order (a normalisation's `Σ (xᵢ − μ)²`).
#[inline(always)]
pub(crate) fn sum_by<T: Real>(xs: &[T], f: impl Fn(T) -> T) -> T {
    let (chunks, rest) = xs.as_chunks::<8>();
    let mut sums = [T::ZERO; 8];
    for chunk in chunks {
        for (sum, &x) in sums.iter_mut().zip(chunk) {
            *sum += f(x);
        }
    }
    for (sum, &x) in sums.iter_mut().zip(rest) {
        *sum += f(x);
    }
    pairwise(sums)
}

/// The sum of `N` partial sums (`N` a power of two), neighbours first:
/// `((l₀ + l₁) + (l₂ + l₃)) + ((l₄ + l₅) + (l₆ + l₇))` for 8, and so on.
#[inline(always)]
pub(crate) fn pairwise<T: Real, const N: usize>(mut lanes: [T; N]) -> T {
    const { assert!(N.is_power_of_two()) };
    let mut n = N;
    while n > 1 {
        for i in 0..n / 2 {
            lanes[i] = lanes[2 * i] + lanes[2 * i + 1];
        }
        n /= 2;
    }
    lanes[0]
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

/// `C (+)= Aᵀ·B` for a small `A` (stored `K × M`, at most [`TRANSPOSED_COPY_MAX_BYTES`]):
/// `Aᵀ` copied once (amortised over the `N` columns), then the direct loops with contiguous
/// columns. A function of its own, so that its copy is in no other frame (debug builds
/// reserve every local of a function, whichever branch runs).
///
/// # Safety
/// `b` addresses a `K × N` matrix.
#[inline(never)]
unsafe fn transposed_direct<T: Real, const M: usize, const K: usize, const N: usize>(
    c: &mut SMatrix<T, M, N>,
    a: &SMatrix<T, K, M>,
    b: View<T>,
    accumulate: bool,
) {
    let at: SMatrix<T, M, K> = a.transpose();
    // SAFETY: the caller's contract; M ≤ DIRECT_MAX_ROWS (`algorithm`).
    unsafe {
        if M * K * N >= DIRECT_SIMD_MIN_WORK {
            T::Kernels::direct::<M, K, N>(c.as_mut_ptr(), &at, b, accumulate, 0..N)
        } else {
            direct::<T, M, K, N, false>(c.as_mut_ptr(), &at, b, accumulate, 0..N)
        }
    }
}

/// The direct loops for products with a column-major `A` of at most [`DIRECT_MAX_ROWS`] rows
/// (the definition of their results; the kernel sets' vector copies give the same bits): `C[:, j] += B[p, j]·A[:, p]`, four columns of `C` at a time in
/// `4·M` accumulators (contiguous columns, vectorised over the rows; for fewer than four
/// rows, from 1 Ki multiply-adds and with `B`'s columns contiguous, a dot product of `A`'s
/// row and `B`'s column per element in [`dot`]'s order; else over the columns, in place,
/// two or three rows in blocks of 64 columns when `B`'s rows are contiguous), on the columns
/// `columns` of `C` only: each column's result is the same whichever columns are computed
/// with it.
///
/// # Safety
/// `b` addresses a `K × N` matrix; `c` a column-major `M × N` one whose columns `columns`
/// (inside `0..N`) are writable and overlap neither operand.
// Inlined in release builds; a frame of its own in debug builds, where every local of a
// function is reserved whichever branch runs (its accumulators are `M`-sized).
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) unsafe fn direct<
    T: Real,
    const M: usize,
    const K: usize,
    const N: usize,
    const FMA: bool,
>(
    c: *mut T,
    a: &SMatrix<T, M, K>,
    b: View<T>,
    accumulate: bool,
    columns: core::ops::Range<usize>,
) {
    // `a·b + c`, fused when `FMA` (only where the CPU has FMA and `mul_add` is std's, not
    // libm's software `fma`).
    let mul_add = |a: T, b: T, c: T| if FMA { a.mul_add(b, c) } else { a * b + c };
    debug_assert!(columns.end <= N);
    // SAFETY: columns `columns` of the `M × N` column-major `C`: the caller's contract.
    let c = unsafe { core::slice::from_raw_parts_mut(c.add(columns.start * M), columns.len() * M) };
    let n = columns.len();
    let b = View {
        // SAFETY: column `columns.start ≤ N` of B (or one past its end, unread when empty).
        ptr: unsafe { b.offset(0, columns.start) }.ptr,
        ..b
    };
    let a = a.as_slice();
    if M < 4 && M * K * N >= DIRECT_SIMD_MIN_WORK && b.rs == 1 {
        // Too few rows to vectorise over, and B's columns contiguous: each element the dot
        // product of A's row with B's column, in `dot`'s order (as `row_dots`, which runs a
        // one-row A: the same bits). Not below the vector threshold (decided by the sizes
        // alone, so the same on every path): there the loop below takes fewer instructions
        // (a microcontroller's training step 0.7 % fewer).
        for j in 0..n {
            // SAFETY: column j < n of B (K contiguous scalars).
            let column = unsafe { core::slice::from_raw_parts(b.offset(0, j).ptr, K) };
            for i in 0..M {
                let v = dot::<T, K>(|p| a[i + p * M], |p| column[p]);
                let c = &mut c[i + j * M];
                *c = if accumulate { *c + v } else { v };
            }
        }
        return;
    }
    if !accumulate {
        c.fill(T::ZERO);
    }
    if (2..4).contains(&M) && b.cs == 1 {
        // Two or three rows, and B's rows contiguous (the `Bᵀ` of a weight gradient): C is
        // strided by M, so the loop below would read and write it at every step. Instead a
        // row of C at a time, in blocks of `W` columns accumulated over the whole depth. Each
        // element's chain over the depth in order, as the loop below: the same operations,
        // reordered. (One row keeps the loop below: its C is contiguous, and it measured
        // faster than blocks there.)
        const W: usize = 64;
        for j0 in (0..n).step_by(W) {
            let w = W.min(n - j0);
            for i in 0..M {
                let mut acc = [T::ZERO; W];
                for (l, acc) in acc.iter_mut().enumerate().take(w) {
                    *acc = c[i + (j0 + l) * M];
                }
                for p in 0..K {
                    let aip = a[i + p * M];
                    // SAFETY: row p, columns j0..j0 + w ≤ n of B: contiguous (b.cs == 1).
                    let row = unsafe { core::slice::from_raw_parts(b.offset(p, j0).ptr, w) };
                    // A whole block with a length the compiler knows, or the last one.
                    if let Ok(row) = <&[T; W]>::try_from(row) {
                        for (acc, &bpj) in acc.iter_mut().zip(row) {
                            *acc = mul_add(aip, bpj, *acc);
                        }
                    } else {
                        for (acc, &bpj) in acc.iter_mut().zip(row) {
                            *acc = mul_add(aip, bpj, *acc);
                        }
                    }
                }
                for (l, &v) in acc.iter().enumerate().take(w) {
                    c[i + (j0 + l) * M] = v;
                }
            }
        }
        return;
    }
    if M < 4 {
        // Too few rows to vectorise over: vectorise over the columns of each row instead
        // (contiguous in C when M = 1).
        for i in 0..M {
            for p in 0..K {
                let aip = a[i + p * M];
                for j in 0..n {
                    // SAFETY: (p, j) is inside B.
                    c[i + j * M] = mul_add(aip, unsafe { b.at(p, j) }, c[i + j * M]);
                }
            }
        }
        return;
    }
    // Four columns at a time: four independent chains of additions per row.
    let mut j = 0;
    while j + 4 <= n {
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
    while j < n {
        let column_of_c = &mut c[j * M..(j + 1) * M];
        for p in 0..K {
            // SAFETY: (p, j) is inside B.
            let bpj = unsafe { b.at(p, j) };
            for (c, &a) in column_of_c.iter_mut().zip(&a[p * M..(p + 1) * M]) {
                *c = mul_add(a, bpj, *c);
            }
        }
        j += 1;
    }
}

#[cfg(test)]
mod tests;
