//! Helpers shared by the integration tests.
#![allow(dead_code)]

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
