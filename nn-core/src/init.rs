//! Parameter initialisation: Glorot (Xavier) and He (Kaiming), uniform and normal, from any
//! [`rand_core::Rng`], reproducible from a seed and `no_std`.
//!
//! Fans follow PyTorch's `_calculate_fan_in_and_fan_out`: for a weight of shape
//! `[out, in, k...]`, `fan_in = in·Πk` and `fan_out = out·Πk`.

use crate::Real;
use nalgebra::ComplexField;
use rand_core::Rng;

/// An initialisation scheme for weights. Biases start at zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// `U(−a, a)`, `a = √(6/(fan_in + fan_out))`: PyTorch's `xavier_uniform_` (gain 1).
    /// The default before `tanh`, `sigmoid`, softmax and linear outputs.
    GlorotUniform,
    /// `N(0, σ²)`, `σ = √(2/(fan_in + fan_out))`: `xavier_normal_`.
    GlorotNormal,
    /// `U(−a, a)`, `a = √(6/fan_in)`: `kaiming_uniform_(nonlinearity="relu")`. The default
    /// before ReLU and its relatives (leaky ReLU, ELU, GELU, SiLU).
    HeUniform,
    /// `N(0, σ²)`, `σ = √(2/fan_in)`: `kaiming_normal_(nonlinearity="relu")`.
    HeNormal,
    /// `U(−a, a)`, `a = 1/√fan_in`: what PyTorch's `nn.Linear` does by default
    /// (`kaiming_uniform_(a=√5)`).
    LecunUniform,
    /// All zeros.
    Zeros,
}

/// `(fan_in, fan_out)` of a weight of PyTorch shape `[out, in, k...]` (a vector: `[n]`
/// gives `(n, n)`).
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, input, kernel @ ..] => {
            let receptive: usize = kernel.iter().product();
            (input * receptive, out * receptive)
        }
    }
}

/// Fills `values`, a weight of PyTorch shape `shape`, by `scheme`.
pub fn fill<T: Real, R: Rng + ?Sized>(
    values: &mut [T],
    scheme: Init,
    shape: &[usize],
    rng: &mut R,
) {
    let (fan_in, fan_out) = fans(shape);
    let (fan_in, fan_out) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
    match scheme {
        Init::GlorotUniform => fill_uniform(values, (6.0 / (fan_in + fan_out)).sqrt(), rng),
        Init::GlorotNormal => fill_normal(values, (2.0 / (fan_in + fan_out)).sqrt(), rng),
        Init::HeUniform => fill_uniform(values, (6.0 / fan_in).sqrt(), rng),
        Init::HeNormal => fill_normal(values, (2.0 / fan_in).sqrt(), rng),
        Init::LecunUniform => fill_uniform(values, 1.0 / fan_in.sqrt(), rng),
        Init::Zeros => values.fill(T::ZERO),
    }
}

/// A uniform sample in `[0, 1)` with 53 random bits.
pub fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn fill_uniform<T: Real, R: Rng + ?Sized>(values: &mut [T], bound: f64, rng: &mut R) {
    for value in values {
        *value = T::of((2.0 * unit(rng) - 1.0) * bound);
    }
}

/// Standard normal samples by the Box–Muller transform, two per pair of uniforms.
fn fill_normal<T: Real, R: Rng + ?Sized>(values: &mut [T], std_dev: f64, rng: &mut R) {
    for pair in values.chunks_mut(2) {
        // 1 − u is in (0, 1], so the logarithm is finite.
        let radius = ComplexField::sqrt(-2.0 * ComplexField::ln(1.0 - unit(rng)));
        let angle = core::f64::consts::TAU * unit(rng);
        let (sin, cos) = ComplexField::sin_cos(angle);
        pair[0] = T::of(radius * cos * std_dev);
        if let Some(second) = pair.get_mut(1) {
            *second = T::of(radius * sin * std_dev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Rng;

    fn moments(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        (mean, var)
    }

    #[test]
    fn fans_follow_pytorch() {
        assert_eq!(fans(&[32, 16]), (16, 32));
        assert_eq!(fans(&[8, 3, 5, 5]), (75, 200));
        assert_eq!(fans(&[7]), (7, 7));
    }

    #[test]
    fn uniform_schemes_stay_in_bounds_with_the_right_variance() {
        let mut values = [0.0f64; 20_000];
        let mut rng = Rng(1);
        fill(&mut values, Init::HeUniform, &[100, 50], &mut rng);
        let bound = (6.0f64 / 50.0).sqrt();
        assert!(values.iter().all(|v| v.abs() <= bound));
        let (mean, var) = moments(&values);
        // U(−a, a) has variance a²/3 = 2/fan_in.
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var / (2.0 / 50.0) - 1.0).abs() < 0.03, "{var}");
        fill(&mut values, Init::GlorotUniform, &[100, 50], &mut rng);
        let (_, var) = moments(&values);
        assert!((var / (2.0 / 150.0) - 1.0).abs() < 0.03, "{var}");
    }

    #[test]
    fn normal_schemes_have_the_right_variance() {
        let mut values = [0.0f64; 20_001];
        let mut rng = Rng(2);
        fill(&mut values, Init::HeNormal, &[64, 32], &mut rng);
        let (mean, var) = moments(&values);
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var / (2.0 / 32.0) - 1.0).abs() < 0.03, "{var}");
        fill(&mut values, Init::GlorotNormal, &[64, 32], &mut rng);
        let (_, var) = moments(&values);
        assert!((var / (2.0 / 96.0) - 1.0).abs() < 0.03, "{var}");
    }

    #[test]
    fn reproducible_from_a_seed() {
        let (mut a, mut b) = ([0.0f32; 64], [0.0f32; 64]);
        fill(&mut a, Init::GlorotNormal, &[8, 8], &mut Rng(7));
        fill(&mut b, Init::GlorotNormal, &[8, 8], &mut Rng(7));
        assert_eq!(a, b);
        fill(&mut b, Init::GlorotNormal, &[8, 8], &mut Rng(8));
        assert_ne!(a, b);
    }
}
