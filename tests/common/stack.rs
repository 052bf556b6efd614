//! Measuring how much stack a piece of code uses, by painting: a thread's stack is filled with
//! a pattern below the current frame, the code runs, and the deepest byte no longer holding
//! the pattern tells how far down it went.

use std::hint::black_box;

/// Bytes painted below the measuring frame: more than any measured code may use.
const PAINTED: usize = 1 << 20;

const PATTERN: u8 = 0xA5;

/// Runs `f` in a fresh thread with a `2 MiB` stack and returns the bytes of stack it used
/// (rounded to the painting's resolution: exact to the byte, give or take the red zone).
/// Panics if `f` panics.
pub fn stack_used(f: impl FnOnce() + Send + 'static) -> usize {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let top = paint();
            f();
            top - deepest_touched(top)
        })
        .unwrap()
        .join()
        .unwrap()
}

/// Fills `PAINTED` bytes below its caller's frame with the pattern; returns the address just
/// above the painted area (the caller's stack pointer, near enough).
#[inline(never)]
fn paint() -> usize {
    let mut area = [0u8; PAINTED];
    for byte in area.iter_mut() {
        // Volatile, so the writes are not optimised away with the dead array.
        unsafe { std::ptr::write_volatile(byte, PATTERN) };
    }
    black_box(&area);
    area.as_ptr() as usize + PAINTED
}

/// The lowest address below `top` whose byte is no longer the pattern.
#[inline(never)]
fn deepest_touched(top: usize) -> usize {
    let bottom = top - PAINTED;
    // Scan upwards from the bottom of the painted area: the first byte that changed is the
    // deepest the code reached (runs of the pattern in the code's own data are short, and
    // rare enough at the deepest point not to matter at this resolution).
    (bottom..top)
        .find(|&address| unsafe { std::ptr::read_volatile(address as *const u8) } != PATTERN)
        .unwrap_or(top)
}
