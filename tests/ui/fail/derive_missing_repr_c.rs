// `#[derive(Params)]` without `#[repr(C)]`: Rust may reorder the fields, so they cannot be
// read as one slice.
use nn::prelude::*;

#[derive(Params, ConstZero, Zeroable)]
pub struct Affine<T: Real, const N: usize> {
    pub weight: SMatrix<T, N, N>,
    pub bias: SMatrix<T, N, 1>,
}

fn main() {
    let affine = Affine::<f32, 2>::ZERO;
    assert_eq!(affine.as_slice().len(), 6);
}
