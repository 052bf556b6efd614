//! Inference only, the network in flash: built at compile time from the trained weights (the
//! flat format, `firmware/weights/sine.nnw`) by `nn::include_flat!`, which checks the file as
//! the run-time loader would and fails the *build* if it does not fit the network. The
//! program holds the finished network in `.rodata`: no loader, no copy in RAM, no error
//! strings. It prints the network's predictions of sin(x) for a few x, its largest error, and
//! the instructions of one inference.
//!
//! The weights are written on the host by
//! `NN_WRITE_FIRMWARE_WEIGHTS=1 cargo test --test embedded -- --ignored` (tests/embedded.rs).
#![no_std]
#![no_main]

use core::hint::black_box;
use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use nn::SMatrix;
use nn_firmware::{
    CORE, InstructionClock, Sine, TWO_PI, exit, report_footprint, report_instructions, sin,
    stack_used_by,
};

/// The trained network, in flash.
static NET: Sine<f32> = nn::include_flat!("../../weights/sine.nnw");

/// Inferences averaged over for the count of instructions.
const MEASURED: u32 = 1024;

/// The `i`-th of `n` evenly spaced points of [0, 2π).
fn point(i: u32, n: u32) -> f32 {
    TWO_PI * i as f32 / n as f32
}

#[entry]
fn main() -> ! {
    let clock = InstructionClock::start();
    let net = black_box(&NET);
    // First, before printing goes deeper (see `stack_used_by`).
    let stack = stack_used_by(&mut || {
        black_box(net.forward(&SMatrix::<f32, 1, 1>::new(black_box(1.0))));
    });
    hprintln!(
        "sine-infer: {} parameters ({} B), built at compile time, in flash",
        Sine::<f32>::PARAM_COUNT,
        Sine::<f32>::PARAM_BYTES,
    );
    let mut worst = 0.0f32;
    for i in 0..=8 {
        let x = TWO_PI * i as f32 / 8.0;
        let y = NET.forward(&SMatrix::<f32, 1, 1>::new(x))[0];
        let error = (y - sin(x)).abs();
        worst = worst.max(error);
        hprintln!(
            "  x = {:.3}  net(x) = {:+.4}  sin(x) = {:+.4}",
            x,
            y,
            sin(x)
        );
    }
    hprintln!("max |net(x) - sin(x)| = {:.4}", worst);

    // One inference, on inputs spread over [0, 2π) (soft float's instructions depend on the
    // values), less the loop that computes the inputs.
    let per_inference = clock.mean_instructions(
        MEASURED,
        &mut |i| {
            let x = SMatrix::<f32, 1, 1>::new(point(i, MEASURED));
            black_box(net.forward(&x));
        },
        &mut |i| {
            black_box(SMatrix::<f32, 1, 1>::new(point(i, MEASURED)));
        },
    );
    report_instructions("sine-infer", "inference", per_inference);
    hprintln!(
        "stack: sine-infer ({}): {} B for one inference",
        CORE,
        stack
    );
    report_footprint("sine-infer");
    let ok = worst < 0.1;
    hprintln!(
        "{}",
        if ok {
            "sine-infer: OK"
        } else {
            "sine-infer: FAILED (error too large)"
        }
    );
    exit(ok)
}
