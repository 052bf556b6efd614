//! Inference only: loads the trained weights (the flat format, compiled into flash with
//! `include_bytes!`) into a network in `static` storage, checked by `nn::io::flat::load`,
//! and prints its predictions of sin(x) for a few x.
//!
//! The weights are `firmware/weights/sine.nnw`, written on the host by
//! `NN_WRITE_FIRMWARE_WEIGHTS=1 cargo test --test embedded -- --ignored` (tests/embedded.rs).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use nn::SMatrix;
use nn_firmware::{Sine, TWO_PI, exit, report_footprint, sin};

/// Weights in flash.
static WEIGHTS: &[u8] = include_bytes!("../../weights/sine.nnw");

#[entry]
fn main() -> ! {
    // In .bss: zeroed at reset, never built on the stack.
    static mut NET: Sine<f32> = Sine::ZERO;
    let net: &'static mut Sine<f32> = NET;

    if let Err(e) = nn::io::flat::load(net, WEIGHTS) {
        hprintln!("sine-infer: cannot load the weights: {}", e);
        exit(false);
    }
    hprintln!(
        "sine-infer: {} parameters ({} B) loaded from {} B of flash",
        Sine::<f32>::PARAM_COUNT,
        Sine::<f32>::PARAM_BYTES,
        WEIGHTS.len()
    );
    let mut worst = 0.0f32;
    for i in 0..=8 {
        let x = TWO_PI * i as f32 / 8.0;
        let y = net.forward(&SMatrix::<f32, 1, 1>::new(x))[0];
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
