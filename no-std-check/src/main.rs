//! A `#![no_std]`, `#![no_main]` program for the host with no global allocator (the `alloc`
//! crate is not even linked) that uses what `network!` generates: forward, forward_train,
//! backward, a training step with Adam, and the flat weight format into a buffer on the
//! stack. It links against the C library only for its entry point and output (`write`),
//! prints the loss falling and exits with status 0, or 1 if something is wrong.
//!
//! `.ci/run` builds and runs it: `cargo run --release` in this folder.
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int};
use core::fmt::{self, Write};
use nn::loss::Mse;
use nn::optim::{Adam, AdamConfig};
use nn::prelude::*;
use nn::train::{StepOptions, train_step};

#[link(name = "c")]
unsafe extern "C" {
    fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
    fn abort() -> !;
}

/// Standard output through the C library.
struct Stdout;

impl Write for Stdout {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            // SAFETY: `rest` is a valid buffer of `rest.len()` bytes.
            let n = unsafe { write(1, rest.as_ptr(), rest.len()) };
            if n <= 0 {
                return Err(fmt::Error);
            }
            rest = &rest[n as usize..];
        }
        Ok(())
    }
}

macro_rules! say {
    ($($arg:tt)*) => {
        let _ = writeln!(Stdout, $($arg)*);
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    say!("no-std-check: panic: {}", info);
    // SAFETY: `abort` ends the process.
    unsafe { abort() }
}

/// The precompiled `core` refers to the unwinding personality routine even with
/// `panic = "abort"`, when nothing can unwind; with no `std` to provide it, an empty one
/// satisfies the linker (it is never called).
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

nn::network! {
    /// A graph network: fan-out, a sum and a product, two activations.
    pub struct Gated {
        fc1: Dense<8>,
        gate: Dense<8>,
        head: Dense<1>,
    }
    forward(x: [2]) -> y {
        let h = tanh(fc1(x));
        let y = head(h * sigmoid(gate(x)) + h);
    }
}

/// XOR's four points, one per column.
fn xor() -> (SMatrix<f32, 2, 4>, [f32; 4]) {
    let x = SMatrix::<f32, 2, 4>::from_column_slice(&[0., 0., 0., 1., 1., 0., 1., 1.]);
    (x, [0., 1., 1., 0.])
}

/// A fixed, deterministic start (no random generator needed).
fn start(net: &mut Gated<f32>) {
    for (i, p) in net.as_mut_slice().iter_mut().enumerate() {
        *p = ((i * 7919 % 97) as f32 / 97.0 - 0.5) * 1.5;
    }
}

fn run() -> Result<(), &'static str> {
    let (x, targets) = xor();
    let mut net = Gated::<f32>::ZERO;
    start(&mut net);

    // The passes by hand: forward (in a workspace of the planned size), forward_train,
    // backward into zeroed gradients.
    let mut workspace = GatedWorkspace::<f32, 4>::ZERO;
    let y = *net.forward_in(&x, &mut workspace);
    if y != net.forward(&x) {
        return Err("forward_in and forward differ");
    }
    let mut tape = GatedTape::<f32, 4>::ZERO;
    let mut grads = GatedGrads::<f32>::ZERO;
    let y_train = *net.forward_train(&x, &mut tape);
    if y != y_train {
        return Err("forward and forward_train differ");
    }
    let d_y = SMatrix::<f32, 1, 4>::from_fn(|_, j| (y[j] - targets[j]) / 4.0);
    let d_x = net.backward(&mut tape, &d_y, &mut grads);
    if grads.as_slice().iter().all(|g| *g == 0.0) || !d_x.iter().all(|v| v.is_finite()) {
        return Err("backward gave no gradient");
    }

    // Training steps with Adam.
    let mut adam = Adam::<f32, GatedGrads<f32>>::with_config(AdamConfig {
        lr: 0.05,
        ..AdamConfig::default()
    });
    let options = StepOptions::default();
    let mut first = None;
    let mut last = 0.0;
    for step in 0..=400 {
        let outcome = train_step(
            &mut net, &mut tape, &mut grads, &x, &targets, &Mse, &mut adam, &options,
        )
        .map_err(|_| "a training step failed")?;
        first.get_or_insert(outcome.loss);
        last = outcome.loss;
        if step % 100 == 0 {
            say!("step {:3}  loss {:.6}", step, outcome.loss);
        }
    }
    let first = first.unwrap_or(0.0);
    if !last.is_finite() || last >= first / 10.0 {
        return Err("the loss did not fall");
    }

    // Weights to the flat format and back, in a buffer on the stack.
    let mut buffer = [0u8; 512];
    let len = nn::io::flat::save(&net, &mut buffer).map_err(|_| "flat::save failed")?;
    let mut loaded = Gated::<f32>::ZERO;
    nn::io::flat::load(&mut loaded, &buffer[..len]).map_err(|_| "flat::load failed")?;
    if loaded != net {
        return Err("the flat round trip changed the weights");
    }
    buffer[len - 1] ^= 1;
    if nn::io::flat::load(&mut loaded, &buffer[..len]).is_ok() {
        return Err("a corrupt file loaded");
    }
    say!(
        "no-std-check: loss {:.6} -> {:.6}; {} parameters, {} B of weights in the flat format; OK",
        first,
        last,
        Gated::<f32>::PARAM_COUNT,
        len
    );
    Ok(())
}

/// The C entry point (`no_main`: the C runtime's start-up code calls it).
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    match run() {
        Ok(()) => 0,
        Err(message) => {
            say!("no-std-check: FAILED: {}", message);
            1
        }
    }
}
