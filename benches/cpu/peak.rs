//! The core's measured `f32` peak, for the roofline column of BENCHMARKS.md: independent
//! fused multiply-adds on 16 AVX-512 registers (16 lanes each), timed like the workloads.

use crate::workloads::{Run, Settings, Workload, entry, measure};

/// `iterations` rounds of 16 independent 16-lane FMAs: `iterations·16·16·2` flops.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_rounds(iterations: u64, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(seed); 16];
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    for _ in 0..iterations {
        for v in &mut acc {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let mut sum = _mm512_setzero_ps();
    for v in acc {
        sum = _mm512_add_ps(sum, v);
    }
    _mm512_reduce_add_ps(sum)
}

/// Rounds per call of the peak probes: about a millisecond of work, so that waking a pool's
/// threads (tens of microseconds) is not counted as the machine's lack of throughput.
const PEAK_ITERATIONS: u64 = 500_000;

/// The measured peak of one core in GFLOP/s, or `None` without AVX-512: the rounds on the
/// calling thread, timed in CPU time like the one-core workloads.
pub fn peak_gflops(settings: &Settings) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let mut contestants: Vec<(String, Box<dyn Run>)> = vec![(
            "peak".into(),
            // SAFETY: AVX-512F was detected.
            Box::new(|| unsafe { fma_rounds(PEAK_ITERATIONS, std::hint::black_box(1.0)) }),
        )];
        let ns = measure(
            &mut contestants,
            settings.runs,
            settings.blocks,
            settings.block,
            false,
        )[0];
        return Some(flops(PEAK_ITERATIONS) / ns);
    }
    None
}

/// The peak of two threads at once and of one thread alone, both in wall time, in GFLOP/s
/// (`None` without AVX-512): one thread runs the rounds on the calling thread, two threads
/// run them at once on a rayon pool. Their ratio is the most that the P workloads' products
/// can gain on the cores the process may use (a virtual machine's two cores may share one
/// physical core's multiply-add units with other tenants).
pub fn two_thread_peak(settings: &Settings) -> Option<(f64, f64)> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut contestants: Vec<(String, Box<dyn Run + '_>)> = vec![
            ("one thread".into(), Box::new(|| rounds(PEAK_ITERATIONS))),
            (
                "two threads".into(),
                Box::new(|| {
                    pool.broadcast(|_| rounds(PEAK_ITERATIONS))
                        .into_iter()
                        .sum::<f32>()
                }),
            ),
        ];
        let ns = measure(
            &mut contestants,
            settings.runs,
            settings.blocks,
            settings.block,
            true,
        );
        return Some((
            2.0 * flops(PEAK_ITERATIONS) / ns[1],
            flops(PEAK_ITERATIONS) / ns[0],
        ));
    }
    None
}

/// Floating-point operations of [`fma_rounds`]`(iterations, _)`.
fn flops(iterations: u64) -> f64 {
    (iterations * 16 * 16 * 2) as f64
}

/// `iterations` rounds of 256 independent multiply-adds, in AVX-512 where the CPU has it.
fn rounds(iterations: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected.
        return unsafe { fma_rounds(iterations, std::hint::black_box(1.0)) };
    }
    let mut acc = [std::hint::black_box(1.0f32); 256];
    for _ in 0..iterations {
        for v in &mut acc {
            *v = v.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

/// P0: the ceiling of the P workloads, measured alongside them: the same multiply-adds
/// (twice [`fma_rounds`]) on one thread, and on a pool of two threads at once (one each).
/// Its ratio is what two threads can gain at most for work bound by multiply-adds, at that
/// moment, on the cores the process may use (a virtual machine's two cores may share one
/// physical core with other tenants: the ratio then moves between 1 and 2 within minutes).
pub fn p0() -> Workload {
    const ITERATIONS: u64 = PEAK_ITERATIONS;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    Workload {
        name: "P0 multiply-add ceiling (threads)",
        goal_ns: f64::INFINITY,
        steps: 1,
        steps_per_call: 1,
        contestants: vec![
            entry("FMA rounds, 1 thread", || {
                rounds(ITERATIONS) + rounds(std::hint::black_box(ITERATIONS))
            }),
            entry("FMA rounds, 2 threads", move || {
                pool.broadcast(|_| rounds(ITERATIONS)).into_iter().sum()
            }),
        ],
    }
}

/// Scalars of [`p0x`]'s buffer: 256 KiB of `f32` (W3's input over a batch of 64 is 196 KiB,
/// its first hidden layer 64 KiB).
const CROSS_LEN: usize = 64 * 1024;

/// A buffer and a thread that writes it on request, for [`p0x`].
struct Writer {
    buffer: *mut f32,
    /// 0: idle; 1: write the buffer; 2: written; 3: exit.
    flag: std::sync::atomic::AtomicU32,
}

// SAFETY: the buffer is written by one side at a time, handed over through `flag`
// (Release stores, Acquire loads).
unsafe impl Send for Writer {}
// SAFETY: as above.
unsafe impl Sync for Writer {}

/// Owns the writer thread; stops it when dropped (the workload is over).
struct WriterThread {
    writer: std::sync::Arc<Writer>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.writer.flag.store(3, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        // SAFETY: the writer thread has exited; the buffer was leaked from a boxed slice of
        // `CROSS_LEN` scalars.
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.writer.buffer,
                CROSS_LEN,
            ))
        });
    }
}

/// Writes `CROSS_LEN` ones from `buffer`.
///
/// # Safety
/// `buffer` addresses `CROSS_LEN` writable scalars that nothing else accesses meanwhile.
unsafe fn fill(buffer: *mut f32) {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(buffer, CROSS_LEN) }.fill(1.0);
}

/// The sum of `CROSS_LEN` scalars from `buffer`, in 32 independent sums.
///
/// # Safety
/// `buffer` addresses `CROSS_LEN` scalars that nothing writes meanwhile.
unsafe fn sum(buffer: *const f32) -> f32 {
    // SAFETY: the caller's contract.
    let values = unsafe { std::slice::from_raw_parts(buffer, CROSS_LEN) };
    let mut acc = [0f32; 32];
    for chunk in values.chunks_exact(32) {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum()
}

/// P0x: what crossing cores costs at that moment: 256 KiB written and then read by one
/// thread, against written by another thread and read by this one (each call the write, the
/// hand-over and the read). The two-thread steps move their activations between the cores
/// at every split; on the 2026-12-05 machine the vCPUs' placement changed every few seconds,
/// which P0 (arithmetic only) does not see (BENCHMARKS.md, "Batches of a few samples; where
/// W3's two-thread step loses its time").
pub fn p0x() -> Workload {
    use std::sync::atomic::Ordering;
    let buffer = Box::into_raw(vec![0f32; CROSS_LEN].into_boxed_slice()).cast::<f32>();
    let writer = std::sync::Arc::new(Writer {
        buffer,
        flag: std::sync::atomic::AtomicU32::new(0),
    });
    let other = writer.clone();
    let handle = std::thread::spawn(move || {
        let mut spins = 0u32;
        loop {
            match other.flag.load(Ordering::Acquire) {
                1 => {
                    // SAFETY: the reader waits for flag 2 before it touches the buffer.
                    unsafe { fill(other.buffer) };
                    other.flag.store(2, Ordering::Release);
                    spins = 0;
                }
                3 => return,
                _ if spins < 1 << 16 => {
                    spins += 1;
                    std::hint::spin_loop();
                }
                _ => std::thread::yield_now(),
            }
        }
    });
    let thread = WriterThread {
        writer,
        handle: Some(handle),
    };
    let here = thread.writer.buffer as usize;
    Workload {
        name: "P0x cross-core reads",
        goal_ns: f64::INFINITY,
        steps: 1,
        steps_per_call: 1,
        contestants: vec![
            entry("256 KiB written and read by one thread", move || {
                let buffer = here as *mut f32;
                // SAFETY: the writer thread only writes when asked (by the other contestant,
                // never at the same time as this one).
                unsafe {
                    fill(buffer);
                    sum(buffer)
                }
            }),
            entry(
                "256 KiB written by another thread, read by this one",
                move || {
                    let writer = &thread.writer;
                    writer.flag.store(1, Ordering::Release);
                    while writer.flag.load(Ordering::Acquire) != 2 {
                        std::hint::spin_loop();
                    }
                    // SAFETY: the writer thread has finished writing (flag 2) and waits for the
                    // next request.
                    unsafe { sum(writer.buffer) }
                },
            ),
        ],
    }
}
