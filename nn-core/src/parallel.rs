//! Several cores for one training step: the step's large products, and its passes over all
//! parameters, shared among the threads of the rayon pool the step runs in.
//!
//! ```ignore
//! let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
//! pool.install(|| trainer.fit(&mut net, &data, &mut optimizer))?;
//! ```
//!
//! Work that runs on a thread of a rayon pool with more than one thread (inside
//! `ThreadPool::install`, `rayon::join`, a parallel iterator), and is large enough, is cut
//! into as many contiguous parts as the pool has threads, each computed by the same code on
//! its own part (`rayon::join`, so idle threads steal the parts; inside a [`region`], as
//! `train_step` runs, handed to the pool's threads that wait for them):
//!
//! - **Matrix products** ([`kernels`](crate::kernels)) of at least [`PARALLEL_MIN_WORK`]
//!   multiply-adds ([`REGION_MIN_WORK`] inside a region): the columns of `C` (when it has at
//!   least as many columns as rows: a weight gradient `∂Y·Xᵀ`, each part a contiguous block)
//!   or its rows (a forward product `W·X`: each thread reads its rows of the weights, so two
//!   cores bring two L2 caches to them), in parts starting at multiples of [`COLUMN_GRANULE`]
//!   ([`GEMM_COLUMN_GRANULE`] for the GEMM) or [`ROW_GRANULE`]; the direct loops of small
//!   products (an output layer's, inside a region) by runs of columns. A dense layer's
//!   forward product on 512 inputs or more is cut in two halves of its depth instead, one
//!   per thread ([`kernels::matmul_depth_halves`](crate::kernels::matmul_depth_halves)).
//! - **Passes over every parameter** of at least [`ELEMENTWISE_MIN_LEN`] scalars: the
//!   optimizers' updates (by tensors, [`by_tensors`]: each thread the same share of every
//!   tensor, a weight's half of its columns, the columns whose gradient it wrote and whose
//!   half of the forward product it computed), the zeroing of the gradient, and the
//!   gradient's norm ([`global_norm`](crate::optim::global_norm)).
//! - **Element-wise activations** (forward and backward) and the copy of the network's input
//!   into the tape (`forward_train`; `train_step` makes none), over at least
//!   [`ELEMENTWISE_MIN_LEN`] scalars ([`REGION_MIN_LEN`] inside a region).
//! - **Convolutions and max pooling**, as large as the products or passes above: the forward
//!   convolution, its input gradient and max pooling's passes by runs of samples (`f32` on
//!   AVX-512), the weight gradient by taps or by blocks of the rows of `∂Wᵀ` (each block
//!   lowering only its own rows), the bias gradient by channels.
//!
//! Called anywhere else (the main thread, a thread of one's own, a pool of one thread, a
//! `no_std` build) the work runs whole on the calling thread.
//!
//! **Results do not depend on the number of threads**, bit for bit: the parts of a product
//! start at multiples of every kernel's tiles and no kernel's summation order for an element
//! depends on which elements it computes alongside; the element-wise passes compute each
//! element alone, the per-sample passes each sample alone; the norm's sum has the same tree (fixed blocks, added pairwise) on one
//! thread as on many. (`kernels::tests::split_products_equal_whole_ones_bit_for_bit`,
//! `tests/parallel.rs`.)
//!
//! **One region per step.** A rayon thread that finds no work for some µs falls asleep, and
//! waking it for each split costs several µs, more than the serial stretches between a
//! step's splits (measured on W3's step: with `rayon::join` per split, the second thread
//! computed about a third of the parts, the first the rest).
//! [`train_step`](crate::train::train_step) runs in a [`region`]: the pool's other threads
//! are handed one job per step, in which they spin, waiting for their parts; part `k` of
//! every split goes to the pool's thread of index `k`, step after step, so that each thread
//! finds its part of the weights and gradients in its own cache.
//!
//! Small work stays on one thread: handing a part to another thread and waiting for it costs
//! a few µs (outside a region). A network of small layers gains more from splitting the batch
//! ([`parallel_gradients`](crate::train::parallel_gradients)).

/// Products with fewer multiply-adds (`M·K·N`) than this run on the calling thread: about
/// 20 µs of work on one core of the benchmark machine, against a few µs for handing half of
/// it to another thread and waiting for it.
pub const PARALLEL_MIN_WORK: usize = 512 * 1024;

/// Inside a [`region`], products of at least this many multiply-adds split too (about 1 µs
/// of work on one core): a split there costs a store and a few hundred ns, and what runs
/// whole is time the region's other threads spend waiting.
pub const REGION_MIN_WORK: usize = 64 * 1024;

/// The parts of a product split by rows start at multiples of this many rows: a multiple of
/// every kernel's row tile (the GEMM's `MR` is at most 32, the dot-product kernel takes 4), so
/// that a split never changes which rows share a tile.
pub const ROW_GRANULE: usize = 32;

/// The parts of a product split by columns start at multiples of this many columns: a
/// multiple of the dot-product kernel's column blocks (16). The GEMM's parts take
/// [`GEMM_COLUMN_GRANULE`].
pub const COLUMN_GRANULE: usize = 64;

/// The parts of a GEMM split by columns start at multiples of this many columns: the
/// AVX-512 and portable kernels' `NR` (8 and 4; AVX2's 6 then starts a narrower panel, whose
/// columns have the bits they have in a whole tile). The GEMM sums each element's depth in
/// blocks set by the depth alone, so a column's bits do not depend on where its part starts;
/// the fine granule evens out the parts (W3's `∂W₁`, 784 columns: 392 and 392 rather than
/// 384 and 400, whose longer part the shorter one waited 6 µs for on two threads).
pub const GEMM_COLUMN_GRANULE: usize = 8;

/// Element-wise passes over fewer scalars than this run on the calling thread (about 10 µs
/// of memory traffic for `f32`).
pub const ELEMENTWISE_MIN_LEN: usize = 64 * 1024;

/// Inside a [`region`], element-wise passes over at least this many scalars split too (as
/// [`REGION_MIN_WORK`] for products).
pub const REGION_MIN_LEN: usize = 8 * 1024;

/// The parts of a split element-wise pass start at multiples of this many scalars (a cache
/// line of `f64`s: no line is written by two threads).
const ELEMENT_GRANULE: usize = 64;

/// How many products were split (tests check that the split paths ran).
#[cfg(test)]
pub(crate) static SPLITS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// The number of threads of the rayon pool the caller runs on, or 1 outside a pool (or
/// without `std`).
#[inline]
pub fn pool_threads() -> usize {
    #[cfg(feature = "std")]
    if rayon::current_thread_index().is_some() && !serial::is_on() {
        return rayon::current_num_threads();
    }
    1
}

/// Runs `body` with no split on this thread: its products and passes run whole, as outside a
/// pool (`train::parallel_gradients` runs each chunk of the batch so, its threads being busy
/// with the other chunks).
#[cfg(feature = "std")]
pub(crate) fn serial<R>(body: impl FnOnce() -> R) -> R {
    serial::run(body)
}

#[cfg(feature = "std")]
mod serial {
    use core::cell::Cell;

    std::thread_local! {
        static ON: Cell<bool> = const { Cell::new(false) };
    }

    /// Whether the calling thread runs a [`super::serial`] body.
    #[inline]
    pub(super) fn is_on() -> bool {
        ON.with(Cell::get)
    }

    pub(super) fn run<R>(body: impl FnOnce() -> R) -> R {
        super::with_set(&ON, true, body)
    }
}

/// Runs `body` with the thread-local `cell` set to `value`, and restores what it held after,
/// even if `body` panics.
#[cfg(feature = "std")]
fn with_set<T: Copy + 'static, R>(
    cell: &'static std::thread::LocalKey<core::cell::Cell<T>>,
    value: T,
    body: impl FnOnce() -> R,
) -> R {
    struct Restore<T: Copy + 'static>(&'static std::thread::LocalKey<core::cell::Cell<T>>, T);
    impl<T: Copy + 'static> Drop for Restore<T> {
        fn drop(&mut self) {
            self.0.with(|cell| cell.set(self.1));
        }
    }
    let _restore = Restore(cell, cell.with(|cell| cell.replace(value)));
    body()
}

/// A pointer that may cross to the pool's threads. Its users say what may be read and
/// written through it; the parts write disjoint elements.
pub(crate) struct SharedPtr<T>(pub(crate) *mut T);

// Not derived: the derive would ask `T: Copy`.
impl<T> Clone for SharedPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SharedPtr<T> {}

impl<T> SharedPtr<T> {
    /// The pointer (a method, so that closures capture the whole `SharedPtr`).
    #[inline(always)]
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

// SAFETY: only the splits of this module send it, and each part writes elements no other
// part touches while all of them may read the shared operands.
unsafe impl<T> Send for SharedPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SharedPtr<T> {}

/// Runs `part(first, len)` over `0..extent` (the rows or the columns of a product's result):
/// on the calling thread in one call, or, on a thread of a rayon pool with several threads
/// and for `work ≥` [`PARALLEL_MIN_WORK`], in one call per thread on parts starting at
/// multiples of `granule` ([`ROW_GRANULE`] or [`COLUMN_GRANULE`]).
#[inline]
pub(crate) fn for_parts_of_product<F: Fn(usize, usize) + Sync>(
    extent: usize,
    granule: usize,
    work: usize,
    part: F,
) {
    if work >= PARALLEL_MIN_WORK || (work >= REGION_MIN_WORK && in_region()) {
        let threads = pool_threads();
        if threads > 1 && extent > granule {
            #[cfg(test)]
            SPLITS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            for_parts(extent, granule, threads, &part);
            return;
        }
    }
    part(0, extent);
}

/// Runs `part(index, first, len)` over `0..extent` (the samples of a batch, the taps of a
/// convolution's weight gradient) whole, as `part(0, 0, extent)`, or, when a product of `work`
/// multiply-adds would split ([`for_parts_of_product`]), in at most `max_parts` parts (one per
/// thread) starting at multiples of `granule`, numbered by `index` from 0: each part can use
/// its own piece of scratch memory. The parts must not depend on one another.
#[inline]
pub(crate) fn for_parts_indexed(
    extent: usize,
    granule: usize,
    work: usize,
    max_parts: usize,
    part: &(dyn Fn(usize, usize, usize) + Sync),
) {
    #[cfg(feature = "std")]
    if work >= PARALLEL_MIN_WORK || (work >= REGION_MIN_WORK && in_region()) {
        let granules = extent.div_ceil(granule);
        let parts = pool_threads().min(max_parts).min(granules);
        if parts > 1 {
            #[cfg(test)]
            SPLITS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            for_each_task(parts, &|i| {
                let first = granules * i / parts * granule;
                let end = (granules * (i + 1) / parts * granule).min(extent);
                part(i, first, end - first);
            });
            return;
        }
    }
    let _ = (granule, work, max_parts);
    part(0, 0, extent);
}

/// Whether the calling thread leads a [`region`].
#[inline]
fn in_region() -> bool {
    #[cfg(feature = "std")]
    return team::led_here().is_some();
    #[cfg(not(feature = "std"))]
    false
}

/// `dst.copy_from_slice(src)`, split over a pool's threads like the element-wise passes (the
/// generated `forward_train` copies the network's input into the tape with it).
///
/// # Panics
/// If the slices' lengths differ.
#[inline]
pub fn copy<T: Copy + Send + Sync>(dst: &mut [T], src: &[T]) {
    elementwise([dst], [src], |[dst], [src]| dst.copy_from_slice(src));
}

/// Runs `task(k)` once for each `k` in `0..count`, in any order and possibly at the same time:
/// inside a [`region`] the caller leads, shared among the region's threads (task `k` on its
/// thread `k mod threads`, call after call, so that a task finds its data in the cache it
/// left it in); elsewhere on a pool of several threads, on rayon's threads; otherwise in turn.
#[cfg(feature = "std")]
pub(crate) fn for_each_task(count: usize, task: &(dyn Fn(usize) + Sync)) {
    if let Some(team) = team::led_here() {
        let parts = team.members().min(count);
        team.run(parts, &|k| (k..count).step_by(parts).for_each(task));
        return;
    }
    if pool_threads() > 1 {
        use rayon::prelude::*;
        (0..count).into_par_iter().for_each(task);
        return;
    }
    (0..count).for_each(task);
}

/// Runs `part(start, len)` over `0..len` as [`elementwise`] splits its passes: whole, or, in
/// a pool of several threads and for at least [`ELEMENTWISE_MIN_LEN`] scalars
/// ([`REGION_MIN_LEN`] inside a region), in one contiguous part per thread.
#[cfg(feature = "std")]
pub(crate) fn for_ranges(len: usize, part: &(dyn Fn(usize, usize) + Sync)) {
    if len >= ELEMENTWISE_MIN_LEN || (len >= REGION_MIN_LEN && in_region()) {
        let threads = pool_threads();
        if threads > 1 {
            for_parts(len, ELEMENT_GRANULE, threads, &|start, count| {
                part(start, count)
            });
            return;
        }
    }
    part(0, len);
}

/// Runs `part(first, count)` over the samples `0..samples` of a batch whose samples have
/// `scalars` scalars each: whole, or, split as an element-wise pass over all of them would be
/// ([`elementwise`]'s thresholds), in one contiguous run of samples per thread. For passes
/// that treat each sample alone (pooling), so that the result does not depend on the parts.
#[inline]
pub(crate) fn for_samples(samples: usize, scalars: usize, part: &(dyn Fn(usize, usize) + Sync)) {
    #[cfg(feature = "std")]
    {
        let len = samples.saturating_mul(scalars);
        if len >= ELEMENTWISE_MIN_LEN || (len >= REGION_MIN_LEN && in_region()) {
            let parts = pool_threads().min(samples);
            if parts > 1 {
                #[cfg(test)]
                SPLITS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                for_each_task(parts, &|i| {
                    let first = samples * i / parts;
                    part(first, samples * (i + 1) / parts - first);
                });
                return;
            }
        }
    }
    let _ = scalars;
    part(0, samples);
}

/// Runs `part(start, len)` over `0..len` in `threads` parts (fewer if there are fewer
/// granules) starting at multiples of `granule`: handed to the threads of the [`region`] the
/// caller leads, or halved recursively with `rayon::join`.
fn for_parts<F: Fn(usize, usize) + Sync>(len: usize, granule: usize, threads: usize, part: &F) {
    let granules = len.div_ceil(granule);
    #[cfg(feature = "std")]
    if let Some(team) = team::led_here() {
        let parts = team.members().min(granules);
        team.run(parts, &|i| {
            let first = granules * i / parts;
            let end = (granules * (i + 1) / parts * granule).min(len);
            part(first * granule, end - first * granule);
        });
        return;
    }
    split(0, granules, threads.min(granules), len, granule, part);
}

/// `parts` calls over granules `first..first + granules` (the last part ends at `len`).
fn split<F: Fn(usize, usize) + Sync>(
    first: usize,
    granules: usize,
    parts: usize,
    len: usize,
    granule: usize,
    part: &F,
) {
    if parts <= 1 {
        let start = first * granule;
        let end = ((first + granules) * granule).min(len);
        part(start, end - start);
        return;
    }
    let left_parts = parts / 2;
    let left = granules * left_parts / parts;
    join(
        || split(first, left, left_parts, len, granule, part),
        || {
            split(
                first + left,
                granules - left,
                parts - left_parts,
                len,
                granule,
                part,
            )
        },
    );
}

/// `rayon::join`, or the two calls in turn without `std`.
#[inline]
fn join(a: impl FnOnce() + Send, b: impl FnOnce() + Send) {
    #[cfg(feature = "std")]
    rayon::join(a, b);
    #[cfg(not(feature = "std"))]
    {
        a();
        b();
    }
}

/// Runs `body` on the slices (`mutable` and `read`, all of one length): whole, or, on a
/// thread of a rayon pool with several threads and for at least [`ELEMENTWISE_MIN_LEN`]
/// scalars, on matching sub-slices in one part per thread. `body` must treat every element
/// on its own (an element-wise pass), so that the result does not depend on the parts.
///
/// # Panics
/// If the slices' lengths differ and the pass is split (the parts are cut by the first
/// slice's length). Whole, `body` gets the slices as they are. Checking only there keeps the
/// check out of the no-`std` build, where nothing splits: on thumb at `opt-level = "s"` the
/// check of the lengths was a loop over the slices in every activation's pass.
#[inline]
pub(crate) fn elementwise<T: Send + Sync, const M: usize, const R: usize>(
    mutable: [&mut [T]; M],
    read: [&[T]; R],
    body: impl Fn([&mut [T]; M], [&[T]; R]) + Sync,
) {
    let len = match (mutable.first(), read.first()) {
        (Some(s), _) => s.len(),
        (None, Some(s)) => s.len(),
        (None, None) => return,
    };
    if len >= ELEMENTWISE_MIN_LEN || (len >= REGION_MIN_LEN && in_region()) {
        let threads = pool_threads();
        if threads > 1 {
            assert!(
                mutable.iter().all(|s| s.len() == len) && read.iter().all(|s| s.len() == len),
                "elementwise: slices of different lengths"
            );
            elementwise_in_parts(len, threads, mutable, read, &body);
            return;
        }
    }
    body(mutable, read);
}

/// [`elementwise`] on `threads` parts: contiguous, or, inside [`by_tensors`] for a slice of
/// the parameters' length, a share of each tensor.
#[inline(never)]
fn elementwise_in_parts<T: Send + Sync, const M: usize, const R: usize>(
    len: usize,
    threads: usize,
    mutable: [&mut [T]; M],
    read: [&[T]; R],
    body: &(impl Fn([&mut [T]; M], [&[T]; R]) + Sync),
) {
    let mutable = mutable.map(|s| SharedPtr(s.as_mut_ptr()));
    let read = read.map(|s| SharedPtr(s.as_ptr().cast_mut()));
    let run = |start: usize, count: usize| {
        // SAFETY: `start + count ≤ len`, so each sub-slice is inside its slice, borrowed
        // (mutably or not) for this whole call; the parts are disjoint, so no element is
        // reachable through two `&mut` sub-slices, and the read slices are only read.
        let (m, r) = unsafe {
            (
                mutable.map(|p| core::slice::from_raw_parts_mut(p.get().add(start), count)),
                read.map(|p| core::slice::from_raw_parts(p.get().add(start).cast_const(), count)),
            )
        };
        body(m, r);
    };
    #[cfg(feature = "std")]
    if let Some(visit) = tensors::of_length(len) {
        for_each_task(threads, &|k| tensors::share(visit, k, threads, &run));
        return;
    }
    for_parts(len, ELEMENT_GRANULE, threads, &run);
}

/// Runs `body` with the element-wise passes over `len` scalars (a network's parameters, or
/// its gradient, as `visit` lists their tensors) split tensor by tensor: each thread takes
/// the same share of every large tensor (its columns, for a matrix), rather than one
/// contiguous part of the whole. What an optimizer's update runs in (`Optimizer::update`):
/// a dense layer's weight gradient is split by columns and its forward product by halves of
/// its depth ([`kernels::matmul_depth_halves`](crate::kernels::matmul_depth_halves)), so
/// each thread then updates the columns of the weights it reads and whose gradient it
/// wrote, instead of lines the other thread has. Element-wise passes compute each element
/// alone: the same bits however they are split.
#[inline]
pub fn by_tensors<R>(
    len: usize,
    visit: fn(&mut dyn FnMut(crate::NamedTensor)),
    body: impl FnOnce() -> R,
) -> R {
    #[cfg(feature = "std")]
    return tensors::run(len, visit, body);
    #[cfg(not(feature = "std"))]
    {
        let _ = (len, visit);
        body()
    }
}

#[cfg(feature = "std")]
mod tensors {
    use super::ELEMENT_GRANULE;
    use crate::NamedTensor;
    use core::cell::Cell;

    /// Tensors from this many scalars are shared among the threads; smaller ones go whole to
    /// one thread each in turn.
    const SHARED_MIN_LEN: usize = 4096;

    type Visit = fn(&mut dyn FnMut(NamedTensor));

    std::thread_local! {
        /// The parameters' length and tensors while a [`super::by_tensors`] body runs.
        static TENSORS: Cell<Option<(usize, Visit)>> = const { Cell::new(None) };
    }

    pub(super) fn run<R>(len: usize, visit: Visit, body: impl FnOnce() -> R) -> R {
        // Only tensors that tile the parameters, in order (as `network!`'s do): a share of
        // each must cover every scalar once.
        let mut next = Some(0);
        visit(&mut |tensor| {
            next = next
                .filter(|&n| n == tensor.offset)
                .map(|n| n + tensor.range().len());
        });
        let hint = (next == Some(len)).then_some((len, visit));
        super::with_set(&TENSORS, hint, body)
    }

    /// The tensors of a [`super::by_tensors`] body whose parameters have `len` scalars.
    #[inline]
    pub(super) fn of_length(len: usize) -> Option<Visit> {
        TENSORS
            .with(Cell::get)
            .and_then(|(n, visit)| (n == len).then_some(visit))
    }

    /// `run(start, count)` on part `k` of `parts` of every tensor: `parts` equal shares of a
    /// large tensor (starting at multiples of [`ELEMENT_GRANULE`]), a small one whole for
    /// part `k` if it is the `i`-th small tensor with `i mod parts = k`.
    pub(super) fn share(visit: Visit, k: usize, parts: usize, run: &dyn Fn(usize, usize)) {
        let mut small = 0;
        visit(&mut |tensor| {
            let range = tensor.range();
            let len = range.len();
            if len < SHARED_MIN_LEN {
                if small % parts == k && len > 0 {
                    run(range.start, len);
                }
                small += 1;
                return;
            }
            let cut = |i: usize| (len * i / parts) / ELEMENT_GRANULE * ELEMENT_GRANULE;
            let (first, end) = (cut(k), if k + 1 == parts { len } else { cut(k + 1) });
            if end > first {
                run(range.start + first, end - first);
            }
        });
    }
}

/// `Σ term(block)` over the blocks `xs.chunks(block)`, added pairwise in a tree fixed by the
/// number of blocks (the two halves of each range of blocks computed in parallel on a
/// pool's threads, when `xs` has at least [`ELEMENTWISE_MIN_LEN`] scalars): the same bits on
/// any number of threads.
pub(crate) fn tree_sum<T: Sync>(
    xs: &[T],
    block: usize,
    term: &(impl Fn(&[T]) -> f64 + Sync),
) -> f64 {
    let blocks = xs.len().div_ceil(block);
    let parallel = xs.len() >= ELEMENTWISE_MIN_LEN && pool_threads() > 1;
    #[cfg(feature = "std")]
    if parallel && let Some(team) = team::led_here() {
        return team::tree_sum(team, xs, block, blocks, term);
    }
    sum_blocks(xs, block, 0, blocks, parallel, term)
}

/// Whether [`sum_blocks`] halves `count` blocks in parallel (when `parallel`).
#[cfg(feature = "std")]
#[inline]
fn splits_sum(count: usize, block: usize) -> bool {
    count >= 2 && count * block >= ELEMENTWISE_MIN_LEN
}

/// The sum of blocks `first..first + count` (see [`tree_sum`]).
fn sum_blocks<T: Sync>(
    xs: &[T],
    block: usize,
    first: usize,
    count: usize,
    parallel: bool,
    term: &(impl Fn(&[T]) -> f64 + Sync),
) -> f64 {
    match count {
        0 => 0.0,
        1 => term(&xs[first * block..((first + 1) * block).min(xs.len())]),
        _ => {
            let half = count / 2;
            let left = || sum_blocks(xs, block, first, half, parallel, term);
            let right = || sum_blocks(xs, block, first + half, count - half, parallel, term);
            #[cfg(feature = "std")]
            if parallel && splits_sum(count, block) {
                let (l, r) = rayon::join(left, right);
                return l + r;
            }
            let _ = parallel;
            left() + right()
        }
    }
}

/// Runs `body` with the other threads of the rayon pool it is called in waiting for the
/// parts of its splits (products, element-wise passes, the norm): for the length of `body`
/// they spin on a shared word instead of going back to rayon's queues, where a thread that
/// found no work for some µs falls asleep and takes several µs to wake for each split. One
/// region per training step: the pool's threads are handed work once per step (a
/// `rayon::in_place_scope`), and each split then costs a store and a few hundred ns. A
/// part is always offered to the same thread (part `k` of every split to the pool's thread
/// of index `k`, whichever thread calls), so that each thread keeps finding its rows of the
/// weights, and of their gradient, in its own cache, step after step.
///
/// Outside a pool of several threads (or without `std`), or inside another region, `body`
/// just runs. A part whose thread has not come (busy elsewhere) is computed by the caller,
/// after its own: the result is the same, only slower.
#[inline]
pub fn region<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(feature = "std")]
    if pool_threads() > 1 && team::led_here().is_none() {
        return team::region(body);
    }
    body()
}

#[cfg(feature = "std")]
mod team {
    use core::cell::Cell;
    use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
    use std::thread_local;

    /// The most threads a region uses (the parts' claims are bits of one word).
    const MAX_MEMBERS: usize = 32;

    /// Spins of a waiting thread before it starts yielding its core at each further spin
    /// (some 100 µs: longer than the serial stretches between the splits of a step).
    const SPINS_BEFORE_YIELDING: u32 = 1 << 12;

    thread_local! {
        /// The team whose region this thread runs (is the caller of), if any.
        static LED: Cell<*const Team> = const { Cell::new(core::ptr::null()) };
    }

    /// The team of the region this thread leads.
    #[inline]
    pub(super) fn led_here() -> Option<&'static Team> {
        let team = LED.with(|t| t.get());
        // SAFETY: `LED` points to a live team while its region runs on this thread (it is
        // reset before the team is dropped); the `'static` does not leave this module's
        // callers, which use it within the region's body.
        (!team.is_null()).then(|| unsafe { &*team })
    }

    /// What a split asks of the team's threads: `run(k)` for parts `k` of `0..parts`.
    struct Task<'a> {
        run: &'a (dyn Fn(usize) + Sync),
    }

    /// The end of a split, for its caller: claims the parts that no thread has claimed (so
    /// that none starts after), then waits until those others claimed are done.
    struct Finish<'a> {
        team: &'a Team,
        parts: usize,
        /// The parts the caller claimed (a bit each).
        mine: Cell<u64>,
    }

    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            let all = (1u64 << self.parts) - 1;
            let claimed = self.team.state.fetch_or(all, Ordering::AcqRel) & all;
            let others = (claimed & !self.mine.get()).count_ones() as usize;
            let mut spins = 0;
            while self.team.done.load(Ordering::Acquire) < others {
                pause(&mut spins);
            }
        }
    }

    /// The state shared by a region's threads.
    pub(super) struct Team {
        /// The current split: its sequence number (bits 40..64), its number of parts (bits
        /// 32..40) and the parts claimed so far (a bit each, bits 0..32).
        state: AtomicU64,
        /// The current split's [`Task`] (on the caller's stack).
        task: AtomicPtr<()>,
        /// Parts of the current split finished by the other threads.
        done: AtomicUsize,
        /// Set when the region's body has returned (or unwound).
        exit: AtomicBool,
        /// Set while the caller runs a split (a split inside one of its parts runs on the
        /// caller alone: the team is busy with the outer one).
        splitting: AtomicBool,
        /// Threads in the region, the caller included.
        members: usize,
        /// The rayon index of the caller's thread.
        leader: usize,
    }

    #[inline]
    fn pack(seq: u64, parts: usize, claimed: u64) -> u64 {
        (seq << 40) | ((parts as u64) << 32) | claimed
    }

    /// Waits a little (a spin, or yielding the core after many).
    #[inline]
    fn pause(spins: &mut u32) {
        if *spins < SPINS_BEFORE_YIELDING {
            *spins += 1;
            core::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }

    impl Team {
        /// Threads in the region, the caller included.
        #[inline]
        pub(super) fn members(&self) -> usize {
            self.members
        }

        /// Claims part `k` of split `seq`; false if it is taken, or the split is over.
        #[inline]
        fn claim(&self, seq: u64, k: usize) -> bool {
            let bit = 1u64 << k;
            let mut s = self.state.load(Ordering::Acquire);
            loop {
                if s >> 40 != seq || s & bit != 0 {
                    return false;
                }
                match self.state.compare_exchange_weak(
                    s,
                    s | bit,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return true,
                    Err(now) => s = now,
                }
            }
        }

        /// `run(k)` for `k` in `0..parts` (`parts ≤ members`): part `k` on the pool's thread
        /// of index `k` (this one's here), or here, if its thread has not claimed it when
        /// this thread's part is done.
        pub(super) fn run(&self, parts: usize, run: &(dyn Fn(usize) + Sync)) {
            debug_assert!(parts <= self.members);
            // Only the caller's thread runs splits (`led_here`); a split nested in one of
            // its parts must not replace the split under way.
            if parts <= 1 || self.splitting.load(Ordering::Relaxed) {
                (0..parts).for_each(run);
                return;
            }
            /// Marks the caller's split as over, when it returns or unwinds.
            struct Splitting<'a>(&'a AtomicBool);
            impl Drop for Splitting<'_> {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::Relaxed);
                }
            }
            self.splitting.store(true, Ordering::Relaxed);
            let _splitting = Splitting(&self.splitting);
            let task = Task { run };
            let seq = ((self.state.load(Ordering::Relaxed) >> 40) + 1) & 0xff_ffff;
            self.task
                .store((&raw const task).cast_mut().cast(), Ordering::Relaxed);
            self.done.store(0, Ordering::Relaxed);
            // Publishes the task (Release), with the caller's part claimed.
            let mine = self.leader;
            let claimed = if mine < parts { 1 << mine } else { 0 };
            self.state
                .store(pack(seq, parts, claimed), Ordering::Release);
            // Waits for the parts other threads took before `task` goes, even on unwinding.
            let finish = Finish {
                team: self,
                parts,
                mine: Cell::new(claimed),
            };
            if mine < parts {
                run(mine);
            }
            for k in 0..parts {
                if k != mine && self.claim(seq, k) {
                    finish.mine.set(finish.mine.get() | 1 << k);
                    run(k);
                }
            }
        }

        /// The loop of the pool's thread of index `k`, on it: runs part `k` of each split
        /// until the region ends.
        fn serve(&self) {
            let Some(k) = rayon::current_thread_index() else {
                return;
            };
            if k == self.leader || k >= self.members {
                // The caller's own thread took this job back (nobody stole it: the region
                // is over, or the caller computes the parts of a thread that did not come),
                // or a thread that has no part.
                return;
            }
            // Splits are numbered from 1: a thread that comes late still claims its part of
            // the split under way.
            let mut seen = 0;
            let mut spins = 0;
            loop {
                let s = self.state.load(Ordering::Acquire);
                let seq = s >> 40;
                if seq != seen {
                    seen = seq;
                    spins = 0;
                    let parts = ((s >> 32) & 0xff) as usize;
                    if k < parts && self.claim(seq, k) {
                        // Counts the part as done even if it unwinds (the panic goes on to
                        // the region's scope), so that the caller does not wait forever.
                        struct Done<'a>(&'a AtomicUsize);
                        impl Drop for Done<'_> {
                            fn drop(&mut self) {
                                self.0.fetch_add(1, Ordering::Release);
                            }
                        }
                        let _done = Done(&self.done);
                        // SAFETY: the claim succeeded, so split `seq` is not over (the caller
                        // waits for this part) and `task` is its task, on the caller's stack.
                        let task = unsafe { &*self.task.load(Ordering::Relaxed).cast::<Task>() };
                        (task.run)(k);
                    }
                } else if self.exit.load(Ordering::Acquire) {
                    return;
                } else {
                    pause(&mut spins);
                }
            }
        }
    }

    /// [`super::region`] on a pool of several threads.
    pub(super) fn region<R>(body: impl FnOnce() -> R) -> R {
        let team = Team {
            state: AtomicU64::new(0),
            task: AtomicPtr::new(core::ptr::null_mut()),
            done: AtomicUsize::new(0),
            exit: AtomicBool::new(false),
            splitting: AtomicBool::new(false),
            members: super::pool_threads().min(MAX_MEMBERS),
            leader: rayon::current_thread_index().unwrap_or(0),
        };
        /// Ends the region when the body returns or unwinds.
        struct End<'a>(&'a Team);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                LED.with(|t| t.set(core::ptr::null()));
                self.0.exit.store(true, Ordering::Release);
            }
        }
        let team = &team;
        rayon::in_place_scope(|scope| {
            for _ in 1..team.members {
                scope.spawn(move |_| team.serve());
            }
            LED.with(|t| t.set(team));
            let _end = End(team);
            body()
        })
    }

    /// [`super::tree_sum`] with the subtrees down to the depth where there are as many as
    /// the team has threads summed on the team's threads, then added in the same tree.
    pub(super) fn tree_sum<T: Sync>(
        team: &Team,
        xs: &[T],
        block: usize,
        blocks: usize,
        term: &(impl Fn(&[T]) -> f64 + Sync),
    ) -> f64 {
        let depth = team.members.next_power_of_two().trailing_zeros() as usize;
        let mut nodes = [(0usize, 0usize); MAX_MEMBERS];
        let mut count = 0;
        plan(0, blocks, depth, block, &mut nodes, &mut count);
        let sums: [AtomicU64; MAX_MEMBERS] = core::array::from_fn(|_| AtomicU64::new(0));
        let nodes = &nodes[..count];
        // Part `k` sums subtrees `k`, `k + members`, … (more subtrees than threads when the
        // team's size is not a power of two).
        team.run(count.min(team.members), &|k| {
            let mut i = k;
            while i < nodes.len() {
                let (first, n) = nodes[i];
                let sum = super::sum_blocks(xs, block, first, n, false, term);
                sums[i].store(sum.to_bits(), Ordering::Relaxed);
                i += team.members;
            }
        });
        let mut next = 0;
        combine(blocks, depth, block, &sums, &mut next)
    }

    /// The subtrees of [`super::sum_blocks`]'s tree at `depth` (or the leaves above it that
    /// it does not halve), left to right.
    fn plan(
        first: usize,
        count: usize,
        depth: usize,
        block: usize,
        nodes: &mut [(usize, usize); MAX_MEMBERS],
        n: &mut usize,
    ) {
        if depth == 0 || !super::splits_sum(count, block) {
            nodes[*n] = (first, count);
            *n += 1;
            return;
        }
        let half = count / 2;
        plan(first, half, depth - 1, block, nodes, n);
        plan(first + half, count - half, depth - 1, block, nodes, n);
    }

    /// The tree above [`plan`]'s subtrees, on their sums (in the same order of additions as
    /// [`super::sum_blocks`]).
    fn combine(
        count: usize,
        depth: usize,
        block: usize,
        sums: &[AtomicU64; MAX_MEMBERS],
        next: &mut usize,
    ) -> f64 {
        if depth == 0 || !super::splits_sum(count, block) {
            let sum = f64::from_bits(sums[*next].load(Ordering::Relaxed));
            *next += 1;
            return sum;
        }
        let half = count / 2;
        let left = combine(half, depth - 1, block, sums, next);
        left + combine(count - half, depth - 1, block, sums, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::vec::Vec;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Inside `serial`, a pool's thread sees one thread (nothing splits), before and after it
    /// the pool's; a panic in the body does not leave it on.
    #[test]
    fn serial_turns_splitting_off_for_its_body_only() {
        pool(2).install(|| {
            assert_eq!(pool_threads(), 2);
            assert_eq!(serial(pool_threads), 1);
            assert_eq!(serial(|| serial(pool_threads) + pool_threads()), 2);
            assert_eq!(pool_threads(), 2);
            let panicked = std::panic::catch_unwind(|| serial(|| panic!("in the body")));
            assert!(panicked.is_err());
            assert_eq!(pool_threads(), 2);
        });
    }

    /// Every element is visited once, by parts on several threads when on a pool.
    #[test]
    fn elementwise_passes_visit_every_element_once() {
        for len in [
            0,
            1,
            1000,
            REGION_MIN_LEN - 1,
            REGION_MIN_LEN + 1,
            ELEMENTWISE_MIN_LEN - 1,
            ELEMENTWISE_MIN_LEN + 63,
            200_001,
        ] {
            let read: Vec<f64> = (0..len).map(|i| i as f64).collect();
            for (threads, in_region) in [(1, false), (2, false), (3, false), (2, true), (3, true)] {
                let (mut a, mut b) = (std::vec![0.0f64; len], std::vec![1.0f64; len]);
                let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
                let pass = || {
                    elementwise([&mut a[..], &mut b[..]], [&read[..]], |[a, b], [r]| {
                        seen.lock()
                            .unwrap()
                            .insert(format!("{:?}", std::thread::current().id()));
                        for i in 0..a.len() {
                            a[i] += r[i] * 2.0;
                            b[i] += r[i];
                        }
                    })
                };
                pool(threads).install(move || {
                    let mut pass = pass;
                    if in_region { region(pass) } else { pass() }
                });
                assert!(a.iter().enumerate().all(|(i, &v)| v == 2.0 * i as f64));
                assert!(b.iter().enumerate().all(|(i, &v)| v == 1.0 + i as f64));
                let used = seen.lock().unwrap().len();
                let min_len = if in_region {
                    REGION_MIN_LEN
                } else {
                    ELEMENTWISE_MIN_LEN
                };
                if len >= min_len && threads > 1 {
                    assert!(used >= 1 && used <= threads);
                } else if len > 0 {
                    assert_eq!(used, 1, "len {len}, {threads} threads");
                }
            }
        }
    }

    /// Inside `by_tensors`, an element-wise pass over the parameters' length visits every
    /// element once, each large tensor in one share per thread, small ones whole; tensors that do not tile the slice leave the pass split as without them.
    #[test]
    fn by_tensors_shares_each_tensor_among_the_threads() {
        use crate::layer::{Role, TensorInfo};
        const INFOS: [TensorInfo; 5] = [
            TensorInfo {
                name: "weight",
                shape: &[250, 400],
                role: Role::Weight,
            },
            TensorInfo {
                name: "bias",
                shape: &[256],
                role: Role::Bias,
            },
            TensorInfo {
                name: "weight",
                shape: &[128, 256],
                role: Role::Weight,
            },
            TensorInfo {
                name: "bias",
                shape: &[10],
                role: Role::Bias,
            },
            TensorInfo {
                name: "weight",
                shape: &[5000],
                role: Role::Weight,
            },
        ];
        // The tensors one after the other, `GAP` scalars apart (0: they tile the slice).
        fn tensors<const GAP: usize>(visit: &mut dyn FnMut(crate::NamedTensor)) {
            let mut offset = 0;
            for info in &INFOS {
                visit(crate::NamedTensor {
                    layer: "l",
                    info,
                    offset,
                });
                offset += info.len() + GAP;
            }
        }
        let len: usize = INFOS.iter().map(TensorInfo::len).sum();
        for (visit, shared) in [
            (tensors::<0> as fn(&mut dyn FnMut(_)), true),
            (tensors::<1>, false),
        ] {
            for (threads, in_region) in [(1, false), (2, false), (3, false), (2, true), (3, true)] {
                let read: Vec<f64> = (0..len).map(|i| i as f64).collect();
                let mut a = std::vec![0.0f64; len];
                let base = a.as_ptr() as usize;
                let runs = std::sync::Mutex::new(Vec::new());
                let pass = || {
                    by_tensors(len, visit, || {
                        elementwise([&mut a[..]], [&read[..]], |[a], [r]| {
                            let start = (a.as_ptr() as usize - base) / size_of::<f64>();
                            runs.lock().unwrap().push((start, a.len()));
                            for (a, r) in a.iter_mut().zip(r) {
                                *a += r * 2.0;
                            }
                        })
                    })
                };
                pool(threads).install(move || {
                    let mut pass = pass;
                    if in_region { region(pass) } else { pass() }
                });
                assert!(a.iter().enumerate().all(|(i, &v)| v == 2.0 * i as f64));
                let runs = runs.into_inner().unwrap();
                if threads == 1 {
                    assert_eq!(runs.len(), 1);
                } else if shared {
                    // The first tensor in `threads` shares (each a multiple of 64 scalars
                    // long but the last; which thread runs which is the region's business: a
                    // late thread's part runs on the caller).
                    let mut first: Vec<_> = runs.iter().filter(|r| r.0 < 100_000).collect();
                    first.sort();
                    assert_eq!(first.len(), threads, "{runs:?}");
                    assert!(
                        first
                            .iter()
                            .rev()
                            .skip(1)
                            .all(|r| r.1 % ELEMENT_GRANULE == 0)
                    );
                    // The small tensors whole.
                    assert!(runs.iter().any(|r| r.0 == 100_000 && r.1 == 256));
                    assert!(runs.iter().any(|r| r.0 == 100_256 + 32_768 && r.1 == 10));
                } else {
                    // Contiguous parts, as without `by_tensors`.
                    assert_eq!(runs.len(), threads.min(len.div_ceil(ELEMENT_GRANULE)));
                }
            }
        }
    }

    /// `copy` copies every element, whole or in parts (in a region, above `REGION_MIN_LEN`).
    #[test]
    fn copy_copies_every_element() {
        for len in [0, 5, REGION_MIN_LEN + 65, ELEMENTWISE_MIN_LEN + 1] {
            let src: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 3.0).collect();
            for threads in [1, 2, 3] {
                let mut dst = std::vec![f32::NAN; len];
                pool(threads).install(|| region(|| copy(&mut dst, &src)));
                assert_eq!(dst, src, "len {len}, {threads} threads");
            }
        }
    }

    /// `for_each_task` runs each task once and `for_ranges` covers its range once, in a
    /// region, in a pool outside one, and on one thread, with more or fewer tasks than threads.
    #[test]
    fn tasks_and_ranges_run_once() {
        use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        let check = |in_region: bool| {
            for count in 0..10 {
                let runs: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
                let task = |k: usize| {
                    runs[k].fetch_add(1, Relaxed);
                };
                let len = 1000 * count + 17;
                let hits: Vec<AtomicUsize> = (0..len).map(|_| AtomicUsize::new(0)).collect();
                let range = |start: usize, n: usize| {
                    hits[start..start + n].iter().for_each(|h| {
                        h.fetch_add(1, Relaxed);
                    });
                };
                if in_region {
                    region(|| {
                        for_each_task(count, &task);
                        for_ranges(len, &range);
                    });
                } else {
                    for_each_task(count, &task);
                    for_ranges(len, &range);
                }
                assert!(runs.iter().all(|r| r.load(Relaxed) == 1), "{count} tasks");
                assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "{len} scalars");
            }
        };
        check(false);
        for threads in [1, 2, 3] {
            pool(threads).install(|| {
                check(false);
                check(true);
            });
        }
    }

    /// In a region, every part of every split runs once, on at most as many threads as the
    /// pool has; a region inside a region, or a region whose other threads are busy, still
    /// runs everything.
    #[test]
    fn regions_run_every_part_once() {
        use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        for threads in [2, 3, 4] {
            let pool = pool(threads);
            let total = AtomicUsize::new(0);
            let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
            pool.install(|| {
                region(|| {
                    for split in 0..200 {
                        let len = 64 * (threads + split % 3) - split % 2;
                        for_parts(len, 64, threads, &|_, count| {
                            total.fetch_add(count, Relaxed);
                            seen.lock()
                                .unwrap()
                                .insert(format!("{:?}", std::thread::current().id()));
                        });
                    }
                    // A region inside: runs as part of this one.
                    region(|| {
                        for_parts(640, 64, threads, &|_, count| {
                            total.fetch_add(count, Relaxed);
                        })
                    });
                    // A split inside a part of a split: whole, on the part's thread.
                    for_parts(64 * threads, 64, threads, &|_, _| {
                        for_parts(128 * threads, 64, threads, &|_, count| {
                            total.fetch_add(count, Relaxed);
                        });
                    });
                })
            });
            let expected: usize = (0..200)
                .map(|s| 64 * (threads + s % 3) - s % 2)
                .sum::<usize>()
                + 640
                + threads * 128 * threads;
            assert_eq!(total.into_inner(), expected);
            assert!(seen.lock().unwrap().len() <= threads);
        }
        // The pool's other thread busy for the whole region: the caller computes every part.
        let pool = pool(2);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let total = AtomicUsize::new(0);
        pool.in_place_scope(|s| {
            s.spawn(move |_| {
                let _ = rx.recv();
            });
            // Let the other thread take the blocking job (or not: either way the region ends).
            std::thread::sleep(std::time::Duration::from_millis(20));
            pool.install(|| {
                region(|| {
                    for _ in 0..10 {
                        for_parts(6400, 64, 2, &|_, count| {
                            total.fetch_add(count, Relaxed);
                        });
                    }
                })
            });
            tx.send(()).unwrap();
        });
        assert_eq!(total.into_inner(), 64_000);
    }

    /// The tree of a sum is fixed by the number of blocks: the same bits alone and on pools.
    #[test]
    fn tree_sums_are_the_same_on_any_number_of_threads() {
        let xs: Vec<f32> = (0..300_001)
            .map(|i: usize| ((i * 7919) % 1013) as f32 / 97.0 - 5.0)
            .collect();
        let term = |s: &[f32]| s.iter().map(|&x| x as f64 * 1.000_001).sum::<f64>();
        let alone = tree_sum(&xs, 4096, &term);
        for threads in [1, 2, 3, 4, 5] {
            let pool = pool(threads);
            assert_eq!(
                pool.install(|| tree_sum(&xs, 4096, &term)).to_bits(),
                alone.to_bits()
            );
            // Inside a region (subtrees summed on its threads), on blocks that are not all
            // halved in parallel.
            for len in [xs.len(), 70_000, 3 * 4096 * 16 + 5] {
                let alone = tree_sum(&xs[..len], 4096, &term);
                assert_eq!(
                    pool.install(|| region(|| tree_sum(&xs[..len], 4096, &term)))
                        .to_bits(),
                    alone.to_bits(),
                    "{threads} threads, {len}"
                );
            }
        }
        let exact: f64 = xs.iter().map(|&x| x as f64 * 1.000_001).sum();
        assert!((alone - exact).abs() <= 1e-9 * exact.abs().max(1.0));
        assert_eq!(tree_sum(&xs[..0], 4096, &term), 0.0);
    }
}
