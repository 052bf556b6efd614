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
//! its own part (`rayon::join`, so idle threads steal the parts):
//!
//! - **Matrix products** ([`kernels`](crate::kernels)) of at least [`PARALLEL_MIN_WORK`]
//!   multiply-adds: the columns of `C` (when it has at least as many columns as rows: a
//!   weight gradient `∂Y·Xᵀ`, each part a contiguous block) or its rows (a forward product
//!   `W·X`: each thread reads its rows of the weights, so two cores bring two L2 caches to
//!   them), in parts starting at multiples of [`COLUMN_GRANULE`] or [`ROW_GRANULE`].
//! - **Passes over every parameter** of at least [`ELEMENTWISE_MIN_LEN`] scalars: the
//!   optimizers' updates, the zeroing of the gradient in `train_step`, and the gradient's
//!   norm ([`global_norm`](crate::optim::global_norm)).
//!
//! Called anywhere else (the main thread, a thread of one's own, a pool of one thread, a
//! `no_std` build) the work runs whole on the calling thread.
//!
//! **Results do not depend on the number of threads**, bit for bit: the parts of a product
//! start at multiples of every kernel's tiles and no kernel's summation order for an element
//! depends on which elements it computes alongside; the element-wise passes compute each
//! element alone; the norm's sum has the same tree (fixed blocks, added pairwise) on one
//! thread as on many. (`kernels::tests::split_products_equal_whole_ones_bit_for_bit`,
//! `tests/parallel.rs`.)
//!
//! Small work stays on one thread: handing a part to another thread and waiting for it costs
//! a few µs. A network of small layers gains more from splitting the batch
//! ([`parallel_gradients`](crate::train::parallel_gradients)).

/// Products with fewer multiply-adds (`M·K·N`) than this run on the calling thread: about
/// 20 µs of work on one core of the benchmark machine, against a few µs for handing half of
/// it to another thread and waiting for it.
pub const PARALLEL_MIN_WORK: usize = 512 * 1024;

/// The parts of a product split by rows start at multiples of this many rows: a multiple of
/// every kernel's row tile (the GEMM's `MR` is at most 32, the dot-product kernel takes 4), so
/// that a split never changes which rows share a tile.
pub const ROW_GRANULE: usize = 32;

/// The parts of a product split by columns start at multiples of this many columns: a
/// multiple of every kernel's column blocks (the GEMM's `NC = 64`, the dot-product kernel's
/// 16).
pub const COLUMN_GRANULE: usize = 64;

/// Element-wise passes over fewer scalars than this run on the calling thread (about 10 µs
/// of memory traffic for `f32`).
pub const ELEMENTWISE_MIN_LEN: usize = 64 * 1024;

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
    if rayon::current_thread_index().is_some() {
        return rayon::current_num_threads();
    }
    1
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
    if work >= PARALLEL_MIN_WORK {
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

/// Runs `part(start, len)` over `0..len` in `threads` parts (fewer if there are fewer
/// granules) starting at multiples of `granule`, halved recursively with `rayon::join`.
fn for_parts<F: Fn(usize, usize) + Sync>(len: usize, granule: usize, threads: usize, part: &F) {
    let granules = len.div_ceil(granule);
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
/// If the slices' lengths differ.
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
    assert!(
        mutable.iter().all(|s| s.len() == len) && read.iter().all(|s| s.len() == len),
        "elementwise: slices of different lengths"
    );
    if len >= ELEMENTWISE_MIN_LEN {
        let threads = pool_threads();
        if threads > 1 {
            elementwise_in_parts(len, threads, mutable, read, &body);
            return;
        }
    }
    body(mutable, read);
}

/// [`elementwise`] on `threads` parts.
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
    for_parts(len, ELEMENT_GRANULE, threads, &|start, count| {
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
    });
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
    sum_blocks(xs, block, 0, blocks, parallel, term)
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
            if parallel && count * block >= ELEMENTWISE_MIN_LEN {
                let (l, r) = rayon::join(left, right);
                return l + r;
            }
            let _ = parallel;
            left() + right()
        }
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

    /// Every element is visited once, by parts on several threads when on a pool.
    #[test]
    fn elementwise_passes_visit_every_element_once() {
        for len in [
            0,
            1,
            1000,
            ELEMENTWISE_MIN_LEN - 1,
            ELEMENTWISE_MIN_LEN + 63,
            200_001,
        ] {
            let read: Vec<f64> = (0..len).map(|i| i as f64).collect();
            for threads in [1, 2, 3] {
                let (mut a, mut b) = (std::vec![0.0f64; len], std::vec![1.0f64; len]);
                let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
                pool(threads).install(|| {
                    elementwise([&mut a[..], &mut b[..]], [&read[..]], |[a, b], [r]| {
                        seen.lock()
                            .unwrap()
                            .insert(format!("{:?}", std::thread::current().id()));
                        for i in 0..a.len() {
                            a[i] += r[i] * 2.0;
                            b[i] += r[i];
                        }
                    })
                });
                assert!(a.iter().enumerate().all(|(i, &v)| v == 2.0 * i as f64));
                assert!(b.iter().enumerate().all(|(i, &v)| v == 1.0 + i as f64));
                let used = seen.lock().unwrap().len();
                if len >= ELEMENTWISE_MIN_LEN && threads > 1 {
                    assert!(used >= 1 && used <= threads);
                } else if len > 0 {
                    assert_eq!(used, 1, "len {len}, {threads} threads");
                }
            }
        }
    }

    /// The tree of a sum is fixed by the number of blocks: the same bits alone and on pools.
    #[test]
    fn tree_sums_are_the_same_on_any_number_of_threads() {
        let xs: Vec<f32> = (0..300_001)
            .map(|i: usize| ((i * 7919) % 1013) as f32 / 97.0 - 5.0)
            .collect();
        let term = |s: &[f32]| s.iter().map(|&x| x as f64 * 1.000_001).sum::<f64>();
        let alone = tree_sum(&xs, 4096, &term);
        for threads in [1, 2, 3, 4] {
            assert_eq!(
                pool(threads)
                    .install(|| tree_sum(&xs, 4096, &term))
                    .to_bits(),
                alone.to_bits()
            );
        }
        let exact: f64 = xs.iter().map(|&x| x as f64 * 1.000_001).sum();
        assert!((alone - exact).abs() <= 1e-9 * exact.abs().max(1.0));
        assert_eq!(tree_sum(&xs[..0], 4096, &term), 0.0);
    }
}
