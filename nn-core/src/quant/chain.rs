//! A sequential int8 network: layers chained, their shapes checked by the compiler.

use super::{DenseQ8, QuantError, QuantParams};

/// A layer of an int8 network from `IN` to `OUT` values: [`DenseQ8`], or a [`Chain`] of them.
pub trait LayerQ8<const IN: usize, const OUT: usize> {
    /// The quantized output for the quantized input `x`.
    fn forward(&self, x: &[i8; IN]) -> [i8; OUT];

    /// The scale and zero point of the input.
    fn input_params(&self) -> QuantParams;

    /// The scale and zero point of the output.
    fn output_params(&self) -> QuantParams;

    /// `x` quantized with [`input_params`](Self::input_params).
    fn quantize_input(&self, x: &[f32; IN]) -> [i8; IN] {
        let params = self.input_params();
        core::array::from_fn(|i| params.quantize(x[i]))
    }

    /// `y` dequantized with [`output_params`](Self::output_params).
    fn dequantize_output(&self, y: &[i8; OUT]) -> [f32; OUT] {
        let params = self.output_params();
        core::array::from_fn(|i| params.dequantize(y[i]))
    }

    /// The network on real numbers: the input quantized, the int8 pass, the output
    /// dequantized.
    fn forward_f32(&self, x: &[f32; IN]) -> [f32; OUT] {
        self.dequantize_output(&self.forward(&self.quantize_input(x)))
    }
}

impl<const IN: usize, const OUT: usize> LayerQ8<IN, OUT> for DenseQ8<IN, OUT> {
    #[inline]
    fn forward(&self, x: &[i8; IN]) -> [i8; OUT] {
        DenseQ8::forward(self, x)
    }

    fn input_params(&self) -> QuantParams {
        self.input
    }

    fn output_params(&self) -> QuantParams {
        self.output
    }
}

/// `second` after `first`, through a node of `MID` values: an int8 network such as
/// `Chain<Chain<DenseQ8<1, 16>, DenseQ8<16, 16>, 16>, DenseQ8<16, 1>, 16>` (the sine model).
/// The compiler checks the shapes (`first` must map to `MID` values, `second` from them), and
/// [`new`](Self::new) that both quantize the node between them alike. The fields are public
/// so that a `const` can build one (the [`file`](crate::quant::file) reader checks the scales there).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Chain<A, B, const MID: usize> {
    /// The first layer.
    pub first: A,
    /// The layer after it.
    pub second: B,
}

impl<A, B, const MID: usize> Chain<A, B, MID> {
    /// `second` after `first`; an error if `first`'s output and `second`'s input have different
    /// scales or zero points.
    pub fn new<const IN: usize, const OUT: usize>(first: A, second: B) -> Result<Self, QuantError>
    where
        A: LayerQ8<IN, MID>,
        B: LayerQ8<MID, OUT>,
    {
        if first.output_params() != second.input_params() {
            return Err(QuantError::ParamsMismatch);
        }
        Ok(Chain { first, second })
    }
}

impl<const IN: usize, const MID: usize, const OUT: usize, A, B> LayerQ8<IN, OUT>
    for Chain<A, B, MID>
where
    A: LayerQ8<IN, MID>,
    B: LayerQ8<MID, OUT>,
{
    #[inline]
    fn forward(&self, x: &[i8; IN]) -> [i8; OUT] {
        self.second.forward(&self.first.forward(x))
    }

    fn input_params(&self) -> QuantParams {
        self.first.input_params()
    }

    fn output_params(&self) -> QuantParams {
        self.second.output_params()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::Range;
    use super::*;
    use crate::layers::Dense;
    use nalgebra::SMatrix;

    /// A 2 → 3 → 1 network (ReLU after the first layer) and its nodes' parameters: the
    /// input on [−1, 1], the hidden node on [0, 2], the output on [−4, 4].
    pub(in crate::quant) fn example() -> (Dense<f32, 2, 3>, Dense<f32, 3, 1>, [QuantParams; 3]) {
        let fc1 = Dense::<f32, 2, 3> {
            weight: SMatrix::from_row_slice(&[0.5, -0.25, 1.0, 0.75, -1.0, 0.1]),
            bias: SMatrix::from_row_slice(&[0.1, 0.0, -0.2]),
        };
        let fc2 = Dense::<f32, 3, 1> {
            weight: SMatrix::from_row_slice(&[1.0, -2.0, 0.5]),
            bias: SMatrix::from_row_slice(&[0.3]),
        };
        let params = [
            Range::new(-1.0, 1.0),
            Range::new(0.0, 2.0),
            Range::new(-4.0, 4.0),
        ]
        .map(QuantParams::from_range);
        (fc1, fc2, params)
    }

    #[test]
    fn chain_is_the_layers_in_turn_and_checks_the_scales() {
        let (fc1, fc2, [p0, p1, p2]) = example();
        let a = DenseQ8::quantize(&fc1, p0, p1, true).unwrap();
        let b = DenseQ8::quantize(&fc2, p1, p2, false).unwrap();
        let chain: Chain<_, _, 3> = Chain::new(a, b).unwrap();
        let x = [37, -100];
        assert_eq!(LayerQ8::forward(&chain, &x), b.forward(&a.forward(&x)));
        assert_eq!(chain.input_params(), p0);
        assert_eq!(chain.output_params(), p2);
        let y = chain.forward_f32(&[0.5, -0.5]);
        // h = relu(W1·x + b1) = relu([0.475, 0.125, −0.75]) = [0.475, 0.125, 0];
        // W2·h + b2 = 0.475 − 0.25 + 0 + 0.3 = 0.525.
        assert!((y[0] - 0.525).abs() < 0.05, "{y:?}");
        let other = DenseQ8::quantize(&fc2, p0, p2, false).unwrap();
        assert_eq!(
            Chain::<_, _, 3>::new(a, other),
            Err(QuantError::ParamsMismatch)
        );
    }
}
