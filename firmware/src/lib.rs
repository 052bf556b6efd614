//! What the firmware binaries share: the networks (the TensorFlow Lite Micro "hello world"
//! model, 1 → 16 → 16 → 1, approximating sin on [0, 2π]; the digits CNN and its test images),
//! the panic handler, the exit through semihosting, the measures of the footprint (flash,
//! static RAM, the stack's peak) and the count of instructions ([`instructions`]).
//!
//! `#![no_std]`, no allocator: nothing here or in `nn` can allocate (the `alloc` crate is not
//! linked at all).
#![no_std]

use cortex_m_semihosting::{debug, hprintln};

pub mod instructions;
pub use instructions::{InstructionClock, Instructions};

nn::network! {
    /// The TensorFlow Lite Micro "hello world" network: sin(x) for x in [0, 2π]. With
    /// `#[nn(int8)]`, also `SineQ8`, the same network in int8 (TensorFlow Lite's scheme,
    /// `nn::quant`: `i8` weights per output channel, `i8` activations, `i32` accumulators),
    /// which `sine-int8` builds from `weights/sine.q8`.
    #[nn(int8)]
    pub struct Sine {
        input: [1],
        fc1: Dense<16>, Relu,
        fc2: Dense<16>, Relu,
        out: Dense<1>,
    }
}

nn::network! {
    /// The digits CNN of examples/digits_cnn.rs (8×8 handwritten digits, 10 classes), as
    /// tests/int8_digits_cnn.rs defines it: with `#[nn(int8)]`, also `DigitsCnnQ8`, its int8
    /// form, which `digits-int8` builds from `weights/digits_cnn.q8` and runs in a
    /// `DigitsCnnQ8Workspace`. (Only the int8 network is used here; the `f32` one is the
    /// definition it comes from.)
    #[nn(int8)]
    pub struct DigitsCnn {
        input: [1, 8, 8],
        conv1: Conv2d<16, 3, padding = 1>, Relu,
        pool1: MaxPool2d<2>,
        conv2: Conv2d<32, 3, padding = 1>, Relu,
        pool2: MaxPool2d<2>,
        Flatten,
        fc: Dense<64>, Relu,
        drop: Dropout<0.25>,
        logits: Dense<10>,
    }
}

/// Test images for `digits-int8`, with their expected int8 logits (generated on the host).
#[rustfmt::skip]
pub mod digits_images;

/// 2π, the end of the input range.
pub const TWO_PI: f32 = core::f32::consts::TAU;

/// sin, from libm through nalgebra (no `std` here).
pub fn sin(x: f32) -> f32 {
    nn::nalgebra::ComplexField::sin(x)
}

/// Ends the program: QEMU exits with status 0 on success, 1 on failure.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Not reached under QEMU; on a board without a debugger, stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// The deepest the stack has been since reset, in bytes: the RAM between the statics and
/// the top of the stack is painted with [`cortex_m_rt::STACK_PAINT_VALUE`] at reset
/// (cortex-m-rt's `paint-stack` feature); the lowest word no longer painted is the peak.
pub fn stack_peak() -> usize {
    unsafe extern "C" {
        static _stack_end: u32;
        static _stack_start: u32;
    }
    let bottom = &raw const _stack_end as usize;
    let top = &raw const _stack_start as usize;
    let mut p = bottom;
    // SAFETY: every word in [bottom, top) is RAM of this program (the unused stack, painted
    // at reset, and the used part); reading it volatile has no side effect.
    while p < top
        && unsafe { core::ptr::read_volatile(p as *const u32) } == cortex_m_rt::STACK_PAINT_VALUE
    {
        p += 4;
    }
    top - p
}

/// The stack `body` uses, in bytes, measured as [`stack_peak`] measures the whole program's:
/// the free stack below the current frame is painted, `body` runs, and the lowest word no
/// longer painted is its deepest. Counts the call of `body` itself (a few words).
///
/// It paints over what the program used so far: call it before anything that goes deeper
/// than `body` (printing), or [`stack_peak`] no longer sees that.
#[inline(never)]
pub fn stack_used_by(body: &mut dyn FnMut()) -> usize {
    unsafe extern "C" {
        static _stack_end: u32;
    }
    let bottom = &raw const _stack_end as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = bottom;
    while p < sp {
        // SAFETY: [bottom, sp) is the free part of the stack, below every live frame; nothing
        // but an exception handler (which would overwrite it anyway) uses it now.
        unsafe { core::ptr::write_volatile(p as *mut u32, cortex_m_rt::STACK_PAINT_VALUE) };
        p += 4;
    }
    body();
    let mut p = bottom;
    // SAFETY: as in `stack_peak`: reading RAM of the stack has no side effect.
    while p < sp
        && unsafe { core::ptr::read_volatile(p as *const u32) } == cortex_m_rt::STACK_PAINT_VALUE
    {
        p += 4;
    }
    sp - p
}

/// Bytes of the statics in RAM (`.data` and `.bss`), from the linker's symbols.
pub fn static_ram() -> usize {
    unsafe extern "C" {
        static __sdata: u32;
        static __ebss: u32;
    }
    (&raw const __ebss as usize) - (&raw const __sdata as usize)
}

/// Bytes of flash in use: the vector table, code and read-only data, and the initial values
/// of `.data` (flash starts at address 0 on this board; see `memory.x`).
pub fn flash_used() -> usize {
    unsafe extern "C" {
        static __sidata: u32;
        static __sdata: u32;
        static __edata: u32;
    }
    let data = (&raw const __edata as usize) - (&raw const __sdata as usize);
    (&raw const __sidata as usize) + data
}

/// The core this build is for: `cortex-m4` (QEMU's `mps2-an386`) or `cortex-m0` (its
/// `microbit`).
pub const CORE: &str = if cfg!(board = "microbit") {
    "cortex-m0"
} else {
    "cortex-m4"
};

/// Prints `footprint: <program> (<core>): flash …, static RAM …, stack peak …` (in bytes),
/// the line CI shows.
pub fn report_footprint(program: &str) {
    hprintln!(
        "footprint: {} ({}): flash {} B, static RAM {} B, stack peak {} B",
        program,
        CORE,
        flash_used(),
        static_ram(),
        stack_peak()
    );
}

/// Prints `instructions: <program> (<core>): <n> per <what>`, the line CI shows.
pub fn report_instructions(program: &str, per: &str, instructions: Instructions) {
    hprintln!(
        "instructions: {} ({}): {} per {} (mean {}; QEMU -icount shift=0)",
        program,
        CORE,
        instructions.rounded(),
        per,
        instructions
    );
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("panic: {}", info);
    exit(false)
}
