// `#[derive(Params)]` on a struct without a scalar type parameter `T: Real`.
use nn::prelude::*;

#[derive(Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Fixed<const N: usize> {
    pub weight: SMatrix<f32, N, 1>,
}

fn main() {}
