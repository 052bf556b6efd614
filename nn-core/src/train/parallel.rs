//! Data-parallel gradients: one batch split into fixed chunks of `CHUNK` samples, each chunk's
//! forward and backward pass on a thread of rayon's pool, the chunks' gradients summed in a
//! fixed order.
//!
//! The result depends on `CHUNK` but not on the number of threads nor on their scheduling:
//! every chunk is computed by the same sequential code whichever thread runs it, and every
//! gradient component is accumulated in chunk order (chunk 0's backward pass adds into the
//! caller's gradient, then chunk 1's gradient is added, and so on). So it is bit-for-bit
//! reproducible for a fixed chunk size, with 1, 2 or 64 threads. It equals the
//! single-threaded gradient of the whole batch up to rounding (the sums are associated
//! differently).

use crate::memory::TapeIo;
use crate::parallel::{SharedPtr, for_each_task, for_ranges};
use crate::{Loss, Network, Params, Real, SMatrix, Zeroable};
use std::boxed::Box;
use std::vec::Vec;

/// What each chunk needs: a tape, the chunk's inputs and its `∂L/∂y`, and, for every chunk
/// but the first (which runs on the caller's network and adds into the caller's gradient), a
/// gradient and, for a network with layer state ([`Network::HAS_STATE`]), a copy of the
/// network (its parameters refreshed on every call; without state, every chunk runs on the
/// caller's network, shared); all on the heap, made once.
pub struct ParallelWorkspace<
    T: Real,
    N: Network<T>,
    const IN: usize,
    const OUT: usize,
    const CHUNK: usize,
> {
    workers: Vec<Worker<T, N, IN, OUT, CHUNK>>,
}

struct Worker<T: Real, N: Network<T>, const IN: usize, const OUT: usize, const CHUNK: usize> {
    /// `None` for chunk 0.
    grads: Option<Box<N::Grads>>,
    /// `None` for chunk 0, and for every chunk of a network without state.
    copy: Option<Box<N>>,
    tape: Box<N::Tape<CHUNK>>,
    x: Box<SMatrix<T, IN, CHUNK>>,
    loss: T,
}

/// The network a chunk runs on: its own (the caller's for chunk 0, else its copy), or, for a
/// network without layer state, the caller's, shared by every chunk.
enum ChunkNet<'a, N> {
    Own(&'a mut N),
    Shared(&'a N),
}

impl<T: Real, N: Network<T>, const IN: usize, const OUT: usize, const CHUNK: usize>
    ParallelWorkspace<T, N, IN, OUT, CHUNK>
{
    /// Work space for batches of up to `max_batch` samples: `⌈max_batch / CHUNK⌉` chunks,
    /// each with a tape and all but the first with a gradient struct and, for a network with
    /// layer state, a copy of the network, zeroed on the heap (never on the stack).
    ///
    /// # Panics
    /// If `CHUNK` is 0.
    pub fn new(max_batch: usize) -> Self {
        assert!(CHUNK > 0, "parallel_gradients: CHUNK must be at least 1");
        let workers = (0..max_batch.div_ceil(CHUNK))
            .map(|c| Worker {
                grads: (c > 0).then(N::Grads::new_boxed),
                copy: (c > 0 && N::HAS_STATE).then(N::new_boxed),
                tape: <N::Tape<CHUNK> as Zeroable>::new_boxed(),
                x: SMatrix::new_boxed(),
                loss: T::ZERO,
            })
            .collect();
        ParallelWorkspace { workers }
    }

    /// The largest batch this work space takes.
    pub fn max_batch(&self) -> usize {
        self.workers.len() * CHUNK
    }
}

/// Adds the gradient of the mean loss over the batch `x` (the first `targets.len()` columns
/// are samples) to `grads`, computed in chunks of `CHUNK` samples on rayon's threads, and
/// returns the mean loss.
///
/// Chunk `c` holds samples `c·CHUNK ..`; each runs `forward_train`, the loss (scaled by its
/// share of the samples) and `backward`: chunk 0 adding into `grads`, the others into
/// gradients of their own in `workspace`, then added to `grads` in chunk order. A network
/// without layer state ([`Network::HAS_STATE`] false: no batch normalization, dropout or
/// layer of one's own) is shared by every chunk
/// ([`forward_train_shared`](Network::forward_train_shared)); one with state runs chunk 0 on
/// `net` itself and the others on copies in `workspace`, their parameters copied from `net`
/// on every call. So the result is
/// bit-reproducible for a fixed `CHUNK`, whatever the number of threads (run it inside a
/// `rayon::ThreadPool::install` to choose them), and equals the gradient of one
/// `forward_train`/`backward` over the whole batch up to rounding. A chunk's own products and
/// passes do not split across the threads (they are busy with the other chunks).
///
/// Layer state (batch normalization's running statistics, a dropout generator) is updated
/// by chunk 0 only, in `net`; the copies keep their own, so prefer this for networks
/// without state. Batch normalization normalises each chunk with its own statistics (as
/// PyTorch's `DataParallel` without `SyncBatchNorm`).
///
/// # Panics
/// If `targets` is empty or longer than `B`, or the batch needs more chunks than
/// `workspace` has, or the network uses batch statistics
/// ([`Network::BATCH_STATISTICS`](crate::Network::BATCH_STATISTICS)) and the last chunk is
/// partial (its zero padding would enter them).
pub fn parallel_gradients<
    T,
    N,
    L,
    Target,
    const IN: usize,
    const OUT: usize,
    const B: usize,
    const CHUNK: usize,
>(
    net: &mut N,
    workspace: &mut ParallelWorkspace<T, N, IN, OUT, CHUNK>,
    x: &SMatrix<T, IN, B>,
    targets: &[Target],
    loss: &L,
    grads: &mut N::Grads,
) -> T
where
    T: Real,
    N: Network<T, Input<CHUNK> = SMatrix<T, IN, CHUNK>, Output<CHUNK> = SMatrix<T, OUT, CHUNK>>
        + Send
        + Sync,
    N::Grads: Send + Sync,
    N::Tape<CHUNK>: Send + Sync,
    L: Loss<T, OUT, Target> + Sync,
    Target: Sync,
{
    let n = targets.len();
    assert!(
        (1..=B).contains(&n),
        "parallel_gradients: {n} targets for a batch of {B} samples"
    );
    assert!(
        !N::BATCH_STATISTICS || n.is_multiple_of(CHUNK),
        "parallel_gradients: {n} samples leave a partial chunk of {CHUNK}, whose padding would \
         enter the batch statistics"
    );
    let chunks = n.div_ceil(CHUNK);
    assert!(
        chunks <= workspace.workers.len(),
        "parallel_gradients: {n} samples need {chunks} chunks of {CHUNK}; the work space has {}",
        workspace.workers.len()
    );
    // One chunk: inputs, forward, loss scaled by the chunk's share, backward into `grads`.
    let run = |c: usize,
               net: ChunkNet<'_, N>,
               w: &mut Worker<T, N, IN, OUT, CHUNK>,
               grads: &mut N::Grads| {
        let start = c * CHUNK;
        let count = CHUNK.min(n - start);
        for j in 0..CHUNK {
            if j < count {
                w.x.column_mut(j).copy_from(&x.column(start + j));
            } else {
                w.x.column_mut(j).fill(T::ZERO);
            }
        }
        let net: &N = match net {
            ChunkNet::Own(net) => {
                net.forward_train(&*w.x, &mut *w.tape);
                net
            }
            ChunkNet::Shared(net) => {
                net.forward_train_shared(&*w.x, &mut *w.tape);
                net
            }
        };
        let (y, dy) = w.tape.output_and_d_output();
        let chunk_loss = loss.loss_and_grad(y, &targets[start..start + count], dy);
        // The chunk's loss and gradient are means over its `count` samples.
        let share = T::of(count as f64 / n as f64);
        *dy *= share;
        if c == 0 {
            // Added to the caller's gradient.
            net.backward_params(&mut *w.tape, grads);
        } else {
            // Written over the chunk's own (no zeroing pass).
            net.backward_params_overwrite(&mut *w.tape, grads);
        }
        w.loss = chunk_loss * share;
    };
    // One region: the pool's threads take the same chunks call after call (each finds its
    // chunk's tape in its own cache) and wait for them spinning, not asleep in rayon's queue.
    crate::parallel::region(|| {
        let workers = SharedPtr(workspace.workers.as_mut_ptr());
        // With layer state, the copies' parameters, each on the thread that runs its chunk.
        if N::HAS_STATE {
            let params = net.as_slice();
            for_each_task(chunks, &|c| {
                // SAFETY: `c < chunks ≤ workers.len()`, and each task has its own `c`, so no
                // worker is reached twice; `workspace` is borrowed for this whole call.
                let w = unsafe { &mut *workers.get().add(c) };
                if let Some(copy) = &mut w.copy {
                    copy.as_mut_slice().copy_from_slice(params);
                }
            });
        }
        // Chunk 0 adds into the caller's gradient, the others write their own. With layer
        // state chunk 0 runs on the caller's network and the others on their copies; without,
        // every chunk runs on the caller's network, shared.
        let caller = SharedPtr(&raw mut *net);
        let caller_grads = SharedPtr(&raw mut *grads);
        for_each_task(chunks, &|c| {
            // SAFETY: as above.
            let w = unsafe { &mut *workers.get().add(c) };
            let mut own_grads = (c > 0).then(|| w.grads.take().expect("a gradient for chunk c"));
            let mut own_copy = w.copy.take();
            // SAFETY: `net` and `grads` are borrowed mutably for this whole call and not
            // otherwise used until the tasks are done. Only task 0 reaches `grads`. With layer
            // state only task 0 reaches `net`; without, every task reads it and none writes
            // it (`forward_train_shared` and the backward passes take `&self`).
            let chunk_net = if !N::HAS_STATE {
                ChunkNet::Shared(unsafe { &*caller.get() })
            } else if c == 0 {
                ChunkNet::Own(unsafe { &mut *caller.get() })
            } else {
                ChunkNet::Own(own_copy.as_deref_mut().expect("a copy for chunk c"))
            };
            let chunk_grads = match &mut own_grads {
                Some(g) => &mut **g,
                None => unsafe { &mut *caller_grads.get() },
            };
            crate::parallel::serial(|| run(c, chunk_net, w, chunk_grads));
            w.grads = own_grads;
            w.copy = own_copy;
        });
        // Each component: the other chunks' values added to `grads` in chunk order.
        let rest = &workspace.workers[1..chunks];
        let len = grads.as_slice().len();
        let total = SharedPtr(grads.as_mut_slice().as_mut_ptr());
        for_ranges(len, &|start, count| {
            // SAFETY: the ranges are disjoint and inside `grads`, borrowed for this call.
            let out = unsafe { core::slice::from_raw_parts_mut(total.get().add(start), count) };
            for w in rest {
                if let Some(g) = &w.grads {
                    for (o, &g) in out.iter_mut().zip(&g.as_slice()[start..start + count]) {
                        *o += g;
                    }
                }
            }
        });
    });
    workspace.workers[..chunks]
        .iter()
        .fold(T::ZERO, |sum, w| sum + w.loss)
}
