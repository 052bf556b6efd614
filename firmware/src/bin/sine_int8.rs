//! The sine network in int8, in flash: built at compile time from `firmware/weights/sine.q8`
//! (post-training quantization of `sine.nnw`, TensorFlow Lite's scheme) by the `const fn`
//! reader of `nn::quant::file`, which fails the *build* if the file does not fit the network.
//! Integers only in the network (`i8` weights and activations, `i32` accumulators); `f32` only
//! to quantize the input and dequantize the output. Prints the predictions of sin(x) for a few
//! x, the largest error, and the instructions of one inference.
//!
//! The int8 weights are written on the host by
//! `NN_WRITE_FIRMWARE_WEIGHTS=1 cargo test --test int8_sine -- --ignored` (tests/int8_sine.rs).
#![no_std]
#![no_main]

use core::hint::black_box;
use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use nn::quant::file::Reader;
use nn::quant::{Chain, LayerQ8};
use nn_firmware::{
    CORE, InstructionClock, SineQ8, TWO_PI, exit, report_footprint, report_instructions, sin,
    stack_used_by,
};

/// The int8 network, in flash.
static NET: SineQ8 = {
    let mut file = Reader::new(include_bytes!("../../weights/sine.q8"));
    let fc1 = file.dense::<1, 16>("fc1");
    let fc2 = file.dense::<16, 16>("fc2");
    let out = file.dense::<16, 1>("out");
    file.finish();
    Chain {
        first: Chain {
            first: fc1,
            second: fc2,
        },
        second: out,
    }
};

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
        black_box(net.forward_f32(&[black_box(1.0)]));
    });
    hprintln!(
        "sine-int8: {} B of int8 network, built at compile time, in flash",
        size_of::<SineQ8>()
    );
    let mut worst = 0.0f32;
    for i in 0..=8 {
        let x = TWO_PI * i as f32 / 8.0;
        let y = NET.forward_f32(&[x])[0];
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

    // One inference as microflow's `predict` counts it (the input quantized, the int8 pass,
    // the output dequantized), on inputs spread over [0, 2π), less the loop that computes
    // the inputs; then the int8 pass alone.
    let per_inference = clock.mean_instructions(
        MEASURED,
        &mut |i| {
            black_box(net.forward_f32(&[point(i, MEASURED)]));
        },
        &mut |i| {
            black_box(point(i, MEASURED));
        },
    );
    report_instructions("sine-int8", "inference", per_inference);
    let per_pass = clock.mean_instructions(
        MEASURED,
        &mut |i| {
            black_box(LayerQ8::forward(net, &[(i % 256) as u8 as i8]));
        },
        &mut |i| {
            black_box((i % 256) as u8 as i8);
        },
    );
    report_instructions("sine-int8", "int8 pass (no f32 input or output)", per_pass);
    hprintln!("stack: sine-int8 ({}): {} B for one inference", CORE, stack);
    report_footprint("sine-int8");
    // The host measures 0.066 on 1000 points (tests/int8_sine.rs).
    let ok = worst < 0.1;
    hprintln!(
        "{}",
        if ok {
            "sine-int8: OK"
        } else {
            "sine-int8: FAILED (error too large)"
        }
    );
    exit(ok)
}
