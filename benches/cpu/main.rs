//! CPU benchmark of the workloads W1–W6 (see BENCHMARKS.md): nn against the same networks
//! written by hand over nalgebra fixed-size matrices (with nalgebra's products, and with
//! matrixmultiply's), every contestant first checked to compute the same losses.
//!
//! `cargo bench --bench cpu` (one core: `taskset -c 0 cargo bench --bench cpu`). Without
//! `--bench` (as `cargo test --all-targets` runs it) it only checks the contestants agree
//! and times one short block each.

mod workloads;

use nn::Loss;
use std::time::Duration;
use workloads::*;

type Contestants<'a> = Vec<(String, Box<dyn Run + 'a>)>;

fn entry<'a>(name: &str, run: impl Run + 'a) -> (String, Box<dyn Run + 'a>) {
    (name.to_string(), Box::new(run))
}

struct Settings {
    runs: usize,
    blocks: usize,
    block: Duration,
}

/// Verifies, times and prints one workload; the first contestant is nn's, the ratio
/// column is against the one named `baseline`.
fn workload(name: &str, goal_ns: f64, settings: &Settings, mut contestants: Contestants, steps: usize) {
    // `NN_BENCH_ONLY=W3` (a prefix of the workload's name) runs one workload.
    if let Ok(only) = std::env::var("NN_BENCH_ONLY") {
        if !name.starts_with(&only) {
            return;
        }
    }
    verify(name, &mut contestants, steps, 2e-4);
    // `NN_BENCH_WHO=bare` (a part of the contestants' names) times only those.
    if let Ok(who) = std::env::var("NN_BENCH_WHO") {
        contestants.retain(|(n, _)| n.contains(&who));
    }
    let times = measure(&mut contestants, settings.runs, settings.blocks, settings.block);
    let baseline = contestants
        .iter()
        .position(|(n, _)| n.starts_with("nalgebra by hand"))
        .unwrap_or(0);
    for ((who, _), &t) in contestants.iter().zip(&times) {
        let goal = if who.starts_with("nn") {
            format!("{} (goal {})", if t <= goal_ns { "met" } else { "missed" }, pretty(goal_ns))
        } else {
            String::new()
        };
        println!(
            "| {name} | {who} | {} | {:.2}× | {goal} |",
            pretty(t),
            times[baseline] / t
        );
    }
}

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

    // W1: train step, 2 → 16 → 16 → 1 tanh, MSE, batch 1, SGD.
    let d = w1_data();
    let mut a = NnTrain::<Tiny<f32>, f32, 2, 1, 1>::new(&d, values(&d));
    let mut b = NnTrain::<Tiny<f32>, f32, 2, 1, 1>::new(&d, values(&d));
    let mut c = NnTrain::<TinyFast<f32>, f32, 2, 1, 1>::new(&d, values(&d));
    let mut e = NnTrain::<TinyFast<f32>, f32, 2, 1, 1>::new(&d, values(&d));
    let mut h = HandTiny::<NALGEBRA>::new(&d);
    workload(
        "W1 train",
        150.0,
        &settings,
        vec![
            entry("nn train_step", move || a.train_step(&MSE)),
            entry("nn bare step", move || b.raw_step(&MSE)),
            entry("nn train_step, TanhFast", move || c.train_step(&MSE)),
            entry("nn bare step, TanhFast", move || e.raw_step(&MSE)),
            entry("nalgebra by hand", move || h.step()),
        ],
        3,
    );

    // W4: inference, the same network, one sample.
    let mut net = boxed::<Tiny<f32>>();
    load(&mut *net, &d);
    let mut fast = boxed::<TinyFast<f32>>();
    load(&mut *fast, &d);
    let x = nn::SMatrix::<f32, 2, 1>::from_column_slice(&d.x);
    let mut h = HandTiny::<NALGEBRA>::new(&d);
    workload(
        "W4 infer",
        60.0,
        &settings,
        vec![
            entry("nn forward", move || checksum(net.forward(std::hint::black_box(&x)).as_slice())),
            entry("nn forward, TanhFast", move || checksum(fast.forward(std::hint::black_box(&x)).as_slice())),
            entry("nalgebra by hand", move || h.infer()),
        ],
        1,
    );

    // W2: train step, 64 → 32 → 16 → 10 ReLU, softmax-CE, batch 32.
    let d = w2_data();
    let mut a = NnTrain::<Small<f32>, usize, 64, 10, 32>::new(&d, classes(&d));
    let mut b = NnTrain::<Small<f32>, usize, 64, 10, 32>::new(&d, classes(&d));
    let mut c = NnTrain::<Small<f32>, usize, 64, 10, 32>::new(&d, classes(&d));
    let mut h = HandSmall::<NALGEBRA>::new(&d);
    let mut m = HandSmall::<MATRIXMULTIPLY>::new(&d);
    workload(
        "W2 train",
        8_000.0,
        &settings,
        vec![
            entry("nn train_step", move || a.train_step(&CE)),
            entry("nn bare step", move || b.raw_step(&CE)),
            entry("nn bare step, no ∂input", move || {
                let y = c.net.forward_train(&*c.x, &mut *c.tape);
                let loss = CE.loss_and_grad(&y, &c.targets, &mut *c.dy);
                nn::Params::set_zero(&mut *c.grads);
                small_backward_no_dx(&c.net, &c.tape, &c.dy, &mut c.grads);
                nn::Optimizer::step(&mut *c.opt, nn::Params::as_mut_slice(&mut *c.net), nn::Params::as_slice(&*c.grads));
                loss
            }),
            entry("nalgebra by hand", move || h.step()),
            entry("nalgebra by hand + matrixmultiply", move || m.step()),
        ],
        3,
    );

    // W3: train step, 784 → 256 → 128 → 10 ReLU, softmax-CE, batch 64.
    let d = w3_data(64);
    let mut a = NnTrain::<Mnist<f32>, usize, 784, 10, 64>::new(&d, classes(&d));
    let mut b = NnTrain::<Mnist<f32>, usize, 784, 10, 64>::new(&d, classes(&d));
    let mut c = NnTrain::<Mnist<f32>, usize, 784, 10, 64>::new(&d, classes(&d));
    let mut h = HandMnist::<64, NALGEBRA>::new(&d);
    let mut m = HandMnist::<64, MATRIXMULTIPLY>::new(&d);
    workload(
        "W3 train",
        450_000.0,
        &settings,
        vec![
            entry("nn train_step", move || a.train_step(&CE)),
            entry("nn bare step", move || b.raw_step(&CE)),
            entry("nn bare step, no ∂input", move || {
                let y = c.net.forward_train(&*c.x, &mut *c.tape);
                let loss = CE.loss_and_grad(&y, &c.targets, &mut *c.dy);
                nn::Params::set_zero(&mut *c.grads);
                mnist_backward_no_dx(&c.net, &c.tape, &c.dy, &mut c.grads);
                nn::Optimizer::step(&mut *c.opt, nn::Params::as_mut_slice(&mut *c.net), nn::Params::as_slice(&*c.grads));
                loss
            }),
            entry("nalgebra by hand", move || h.step()),
            entry("nalgebra by hand + matrixmultiply", move || m.step()),
        ],
        3,
    );

    // W5: inference, W3's network, one sample.
    let d = w3_data(1);
    let mut net = boxed::<Mnist<f32>>();
    load(&mut *net, &d);
    let x = nn::SMatrix::<f32, 784, 1>::from_column_slice(&d.x);
    let mut h = HandMnist::<1, NALGEBRA>::new(&d);
    workload(
        "W5 infer",
        10_000.0,
        &settings,
        vec![
            entry("nn forward", move || checksum(net.forward(std::hint::black_box(&x)).as_slice())),
            entry("nalgebra by hand", move || h.infer()),
        ],
        1,
    );

    // W6: inference, W3's network, batch 64.
    let d = w3_data(64);
    let mut net = boxed::<Mnist<f32>>();
    load(&mut *net, &d);
    let mut x = boxed::<nn::SMatrix<f32, 784, 64>>();
    x.as_mut_slice().copy_from_slice(&d.x);
    let mut h = HandMnist::<64, NALGEBRA>::new(&d);
    let mut m = HandMnist::<64, MATRIXMULTIPLY>::new(&d);
    workload(
        "W6 infer",
        220_000.0,
        &settings,
        vec![
            entry("nn forward", move || checksum(net.forward(std::hint::black_box(&*x)).as_slice())),
            entry("nalgebra by hand", move || h.infer()),
            entry("nalgebra by hand + matrixmultiply", move || m.infer()),
        ],
        1,
    );
}
