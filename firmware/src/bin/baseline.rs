//! The same program around no network, to tell the network's share of the footprint: starts
//! the instruction clock, prints a sine value through the same formatting code (`{:.3}`,
//! `{:+.4}`: the exact-precision float formatting the other programs use), measures the
//! instructions and the stack of libm's `sinf` as `sine-infer` measures its network's, and
//! exits.
#![no_std]
#![no_main]

use core::hint::black_box;
use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use nn_firmware::{
    CORE, InstructionClock, TWO_PI, exit, report_footprint, report_instructions, sin, stack_used_by,
};

/// Calls averaged over.
const MEASURED: u32 = 1024;

#[entry]
fn main() -> ! {
    let clock = InstructionClock::start();
    // First, before printing goes deeper (see `stack_used_by`).
    let stack = stack_used_by(&mut || {
        black_box(sin(black_box(1.0)));
    });
    let x = black_box(1.0f32);
    hprintln!("baseline: sin({:.3}) = {:+.4}", x, sin(x));
    let point = |i: u32| TWO_PI * i as f32 / MEASURED as f32;
    let per_call = clock.mean_instructions(
        MEASURED,
        &mut |i| {
            black_box(sin(point(i)));
        },
        &mut |i| {
            black_box(point(i));
        },
    );
    report_instructions("baseline", "call of libm's sinf", per_call);
    // The clock itself checked: a loop of exactly 2 × 10,000 instructions (`subs`, `bne`).
    let known = clock.mean_instructions(
        16,
        &mut |_| {
            // SAFETY: counts r0 down to zero; touches no memory and no stack.
            unsafe {
                core::arch::asm!(
                    "2:",
                    "subs r0, #1",
                    "bne 2b",
                    inout("r0") 10_000u32 => _,
                    options(nomem, nostack),
                );
            }
        },
        &mut |_| {},
    );
    let clock_ok = (20_000..=20_010).contains(&known.rounded());
    hprintln!(
        "clock check: a loop of 20000 instructions counted as {} ({})",
        known,
        if clock_ok { "OK" } else { "FAILED" }
    );
    hprintln!(
        "stack: baseline ({}): {} B for one call of libm's sinf",
        CORE,
        stack
    );
    report_footprint("baseline");
    exit(clock_ok)
}
