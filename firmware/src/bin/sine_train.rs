//! Inference and training on the microcontroller: the network, its tape, its gradients and
//! Adam's state all in `static` storage (no allocator), trained from Glorot/He initialisation
//! on batches of 16 points of sin(x), printing the loss as it falls, then its predictions.
//! Exits with status 0 only if the loss fell to a tenth of where it started. Prints the
//! instructions of one training step (`train_step` on a batch: forward, loss, backward, Adam).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use nn::loss::Mse;
use nn::optim::{Adam, AdamConfig};
use nn::prelude::*;
use nn::train::{StepOptions, train_step};
use nn_firmware::{
    InstructionClock, Instructions, Sine, SineGrads, SineTape, TWO_PI, exit, report_footprint,
    report_instructions, sin, stack_peak,
};
use rand_core::{Rng, SeedableRng};

/// Samples per batch.
const B: usize = 16;
/// Training steps.
const STEPS: usize = 3000;

/// Mean squared error (½ form) of the network on 64 evenly spaced points, one at a time (a
/// batched forward pass keeps its intermediate values on the stack: 9 KB for 16 samples).
fn validation_loss(net: &Sine<f32>) -> f32 {
    let mut total = 0.0;
    for j in 0..64 {
        let x = TWO_PI * (j as f32 + 0.5) / 64.0;
        let d = net.forward(&SMatrix::<f32, 1, 1>::new(x))[0] - sin(x);
        total += 0.5 * d * d;
    }
    total / 64.0
}

#[entry]
fn main() -> ! {
    // All in .bss, zeroed at reset: nothing is built on the stack but Adam's configuration.
    static mut NET: Sine<f32> = Sine::ZERO;
    static mut TAPE: SineTape<f32, B> = SineTape::ZERO;
    static mut GRADS: SineGrads<f32> = SineGrads::ZERO;
    static mut ADAM: Option<Adam<f32, SineGrads<f32>>> = None;
    let (net, tape, grads): (&mut Sine<f32>, _, _) = (NET, TAPE, GRADS);
    // `Adam` has no `const` constructor: built by value (2.6 KB here) and moved in.
    let adam = ADAM.insert(Adam::with_config(AdamConfig {
        lr: 0.01,
        ..AdamConfig::default()
    }));

    let setup_stack = stack_peak();
    let clock = InstructionClock::start();
    let mut rng = rand_pcg::Pcg32::seed_from_u64(7);
    net.init(&mut rng);
    let first = validation_loss(net);
    hprintln!(
        "sine-train: {} parameters; network {} B, gradients {} B, tape {} B, Adam {} B",
        Sine::<f32>::PARAM_COUNT,
        Sine::<f32>::BYTES,
        Sine::<f32>::GRAD_BYTES,
        Sine::<f32>::tape_bytes::<B>(),
        core::mem::size_of::<Adam<f32, SineGrads<f32>>>()
    );
    hprintln!("step     0  validation loss {:.5}", first);

    let options = StepOptions::default();
    let mut x = SMatrix::<f32, 1, B>::zeros();
    let mut targets = [0.0f32; B];
    let mut step_ticks = 0;
    for step in 1..=STEPS {
        for j in 0..B {
            // A uniform draw from [0, 2π).
            let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            x[j] = TWO_PI * u;
            targets[j] = sin(x[j]);
        }
        let before = clock.ticks();
        let result = train_step(net, tape, grads, &x, &targets, &Mse, adam, &options);
        step_ticks += clock.ticks() - before;
        if let Err(e) = result {
            hprintln!("sine-train: step {} failed: {}", step, e);
            exit(false);
        }
        if step % 500 == 0 {
            hprintln!(
                "step {:5}  validation loss {:.5}",
                step,
                validation_loss(net)
            );
        }
    }
    let last = validation_loss(net);
    for i in 0..=4 {
        let x = TWO_PI * i as f32 / 4.0;
        let y = net.forward(&SMatrix::<f32, 1, 1>::new(x))[0];
        hprintln!(
            "  x = {:.3}  net(x) = {:+.4}  sin(x) = {:+.4}",
            x,
            y,
            sin(x)
        );
    }
    hprintln!(
        "stack peak during set-up (building Adam by value): {} B",
        setup_stack
    );
    let overhead = clock.region_overhead(STEPS as u32);
    let per_step = Instructions::from_ticks(step_ticks - overhead, STEPS as u32);
    report_instructions("sine-train", "training step", per_step);
    report_footprint("sine-train");
    let ok = last < first / 10.0;
    hprintln!(
        "sine-train: loss {:.5} -> {:.5}: {}",
        first,
        last,
        if ok {
            "fell, OK"
        } else {
            "did not fall enough, FAILED"
        }
    );
    exit(ok)
}
