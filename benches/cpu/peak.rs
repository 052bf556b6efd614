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
