// A field that is not a parameter (a count) in a `#[derive(Params)]` struct, unmarked.
use nn::prelude::*;

#[derive(Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Counted<T: Real, const N: usize> {
    pub weight: SMatrix<T, N, 1>,
    pub calls: u64,
}

fn main() {}
