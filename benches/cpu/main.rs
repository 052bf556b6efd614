//! CPU benchmark (BENCHMARKS.md, "CPU performance"): the workloads W1–W6, nn against the
//! same networks written by hand over nalgebra fixed-size matrices (with nalgebra's products,
//! and with matrixmultiply's); a LeNet (C1) and a GRU (G1) training step; W3 on two threads
//! (P3); the kernels against matrixmultiply (K); the gradient norm (N). Every contestant is
//! first checked to compute the same losses (or outputs).
//!
//! `taskset -c 0 cargo bench --bench cpu` (P3 without `taskset`); `NN_BENCH_ONLY=W3` runs the
//! workloads whose name starts so, `NN_BENCH_WHO=bare` the contestants whose name contains
//! it. Without `--bench` (as `cargo test --all-targets` runs it) it only checks that the
//! contestants agree and times one short block each. The peers (dfdx, candle) are timed by
//! `bench-peers/`, which includes the same workloads.

mod workloads;

use std::time::Duration;
use workloads::*;

fn main() {
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
    println!("| workload | contestant | time | speed vs nalgebra by hand | |");
    println!("|---|---|---|---|---|");
    for workload in SUITE {
        run(workload(), &settings);
    }
}
