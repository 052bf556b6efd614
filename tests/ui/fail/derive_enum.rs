// `#[derive(Params)]` on an enum: parameters are a struct's fields.
use nn::prelude::*;

#[derive(Params)]
pub enum Either<T: Real> {
    Small(SMatrix<T, 2, 1>),
    Large(SMatrix<T, 8, 1>),
}

fn main() {}
