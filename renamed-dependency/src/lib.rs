//! `typed-nn` renamed to `neural` in Cargo.toml (issue 12): `network!` and the derives find
//! the name there, with no attribute, and `#[nn(crate = path)]` names the crate through a
//! re-export.

use neural::prelude::*;

/// Found in Cargo.toml: the derives emit `::neural::Params` and so on.
#[derive(Clone, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Affine<T: Real, const N: usize> {
    /// `W`, `[N, N]`.
    pub weight: SMatrix<T, N, N>,
    /// `b`, `[N]`.
    pub bias: SMatrix<T, N, 1>,
}

/// A framework that re-exports the crate, as its users would see it.
pub mod framework {
    pub use neural as nn;
}

/// Named through the re-export, as a crate building on `nn` would do.
#[derive(Clone, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[nn(crate = crate::framework::nn)]
#[repr(C)]
pub struct Scale<T: Real, const N: usize> {
    /// `s`, `[N]`.
    pub scale: SMatrix<T, N, 1>,
}

neural::network! {
    /// Found in Cargo.toml: the generated code names `::neural`.
    pub struct Renamed {
        input: [3],
        hidden: Dense<4>, Tanh,
        out: Dense<2>,
    }
}

neural::network! {
    /// Named through the re-export with `#[nn(crate = path)]`.
    #[nn(crate = crate::framework::nn)]
    pub struct ThroughReexport {
        input: [2],
        out: Dense<1>, Sigmoid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_follow_the_renamed_crate() {
        assert_eq!(<Affine<f32, 3> as Params<f32>>::LEN, 3 * 3 + 3);
        assert_eq!(<Scale<f64, 4> as Params<f64>>::LEN, 4);
        let mut affine = Affine::<f64, 2>::ZERO;
        affine.bias[1] = 1.5;
        assert_eq!(affine.as_slice(), [0.0, 0.0, 0.0, 0.0, 0.0, 1.5]);
        assert_eq!(*Scale::<f32, 2>::new_boxed(), Scale::ZERO);
    }

    #[test]
    fn networks_follow_the_renamed_crate() {
        assert_eq!(Renamed::<f32>::PARAM_COUNT, (3 * 4 + 4) + (4 * 2 + 2));
        let y = Renamed::<f64>::ZERO.forward(&SMatrix::<f64, 3, 2>::repeat(1.0));
        assert_eq!(y, SMatrix::<f64, 2, 2>::zeros());
        let p = ThroughReexport::<f64>::ZERO.forward(&SMatrix::<f64, 2, 1>::zeros());
        assert_eq!(p[0], 0.5);
    }
}
