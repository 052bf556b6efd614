//! CPU benchmark (BENCHMARKS.md, "CPU performance"): the workloads W1–W7, nn against the
//! same networks written by hand over nalgebra fixed-size matrices (with nalgebra's products,
//! and with matrixmultiply's); LeNet-5 training (C1) and inference (C2, C3), a small CNN
//! with batch norm and average pooling training (C4), a GRU training step (G1) and a multi-head attention training step (A1); W3 and C1 on two threads (P3, P1), each after
//! the ceiling of two threads on this machine at that moment (P0);
//! the kernels against matrixmultiply (K); the gradient norm (N). Every contestant is first
//! checked to compute the same losses (or outputs).
//!
//! `taskset -c 0 cargo bench --bench cpu` (P3 without `taskset`); `NN_BENCH_ONLY=W3` runs the
//! workloads whose name starts so, `NN_BENCH_WHO=bare` the contestants whose name contains
//! it. Without `--bench` (as `cargo test --all-targets` runs it) it only checks that the
//! contestants agree and times one short block each. The peers are timed by `bench-peers/`:
//! dfdx and candle (`cargo run --release`, which includes the same workloads) and PyTorch
//! and JAX (`peers.py`, on the files `NN_BENCH_EXPORT=DIR` writes: see `export.rs`).

mod export;
mod peak;
mod workloads;

use std::time::Duration;
use workloads::*;

fn main() {
    if let Some(dir) = std::env::var_os("NN_BENCH_EXPORT") {
        export::export_all(std::path::Path::new(&dir));
        println!("exported to {}", dir.to_string_lossy());
        return;
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let settings = if bench {
        Settings {
            runs: 3,
            blocks: 7,
            block: Duration::from_millis(20),
        }
    } else {
        Settings {
            runs: 1,
            blocks: 1,
            block: Duration::from_micros(200),
        }
    };
    if let Some(gflops) = peak::peak_gflops(&settings) {
        println!("f32 peak of this core (AVX-512 FMA, measured): {gflops:.1} GFLOP/s");
        // Two threads of the same rounds against one, in wall time: the most that the P
        // workloads' products can gain here (a virtual machine's two cores may share one
        // physical core's multiply-add units).
        if let Some((two, one)) = peak::two_thread_peak(&settings) {
            println!(
                "f32 peak of two threads (wall time, on the cores this process may use): \
                 {two:.1} GFLOP/s, {:.2}× one thread's {one:.1}",
                two / one
            );
        }
    }
    println!("| workload | contestant | time | speed vs nalgebra by hand | |");
    println!("|---|---|---|---|---|");
    for workload in SUITE {
        run(workload(), &settings);
    }
}
