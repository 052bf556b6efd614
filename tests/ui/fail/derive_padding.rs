// A `#[derive(Params)]` struct larger than its parameters: `align(16)` pads 3 `f32`s to 16
// bytes, which the parameter slice must not cover. Caught where `LEN` is evaluated (here in
// a constant; `as_slice` or a network using the layer evaluate it too).
use nn::prelude::*;

#[derive(Params, ConstZero, Zeroable)]
#[repr(C, align(16))]
pub struct Padded<T: Real> {
    pub weight: SMatrix<T, 3, 1>,
}

const _: () = assert!(<Padded<f32> as Params<f32>>::LEN == 3);

fn main() {}
