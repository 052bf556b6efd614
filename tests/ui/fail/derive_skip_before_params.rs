// A `#[nn(skip)]` field before a parameter: the parameters must come first.
use nn::prelude::*;

#[derive(Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Counted<T: Real, const N: usize> {
    #[nn(skip)]
    pub calls: u64,
    pub weight: SMatrix<T, N, 1>,
}

fn main() {}
