//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod stack;

use nn::prelude::*;

/// Fills every parameter with a deterministic pseudo-random value in `[-scale, scale]`.
pub fn randomize<T: Real, P: Params<T>>(params: &mut P, seed: u64, scale: f64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for value in params.as_mut_slice() {
        *value = T::of(uniform(&mut state) * scale);
    }
}

/// A matrix of deterministic pseudo-random values in `[-scale, scale]`.
pub fn random_matrix<const R: usize, const C: usize>(seed: u64, scale: f64) -> SMatrix<f64, R, C> {
    let mut state = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    SMatrix::from_fn(|_, _| uniform(&mut state) * scale)
}

/// xorshift64*, mapped to [-1, 1).
fn uniform(state: &mut u64) -> f64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
    bits as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Largest absolute difference between two slices.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

nn::network! {
    /// The module of tests/fixtures/make_fixture.py (`TorchMlp`): every weight non-square.
    pub struct TorchMlp {
        input: [3],
        fc1: Dense<5>, Tanh,
        fc2: Dense<4>, Relu,
        fc3: Dense<2>,
    }
}

/// A tensor of a safetensors file: its shape, and its values (row-major) as `f64`s
/// (`F32`, `F64` or `I64`).
pub fn safetensors_tensor(file: &[u8], name: &str) -> (Vec<usize>, Vec<f64>) {
    let file = safetensors::SafeTensors::deserialize(file).unwrap();
    let view = file.tensor(name).unwrap();
    let bytes = |n: usize| view.data().chunks_exact(n);
    let values = match view.dtype() {
        safetensors::Dtype::F32 => bytes(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        safetensors::Dtype::F64 => bytes(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        safetensors::Dtype::I64 => bytes(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        other => panic!("{other:?}"),
    };
    (view.shape().to_vec(), values)
}
