//! The same program around no network, to tell the network's share of the footprint: prints
//! a sine value through the same formatting code and exits.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use nn_firmware::{exit, report_footprint, sin};

#[entry]
fn main() -> ! {
    let x = core::hint::black_box(1.0f32);
    hprintln!("baseline: sin({}) = {}", x, sin(x));
    report_footprint("baseline");
    exit(true)
}
