//! Helpers shared by the layers' tests.

use nalgebra::SMatrix;

/// One step of SplitMix64.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in `[-1, 1)`.
pub fn uniform(state: &mut u64) -> f64 {
    (splitmix(state) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// A matrix of deterministic pseudo-random values in `[-scale, scale)`.
pub fn random_matrix<const R: usize, const C: usize>(seed: u64, scale: f64) -> SMatrix<f64, R, C> {
    let mut state = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
    SMatrix::from_fn(|_, _| uniform(&mut state) * scale)
}

/// Largest absolute difference between two slices of equal length.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// SplitMix64 as a [`rand_core::Rng`], for `init` and `init_state`.
pub struct Rng(pub u64);

impl rand_core::TryRng for Rng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((splitmix(&mut self.0) >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(splitmix(&mut self.0))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bytes = splitmix(&mut self.0).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}
