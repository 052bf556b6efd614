// Sizes written as constants and const blocks: in layer arguments, in the input of a
// sequential network and of a `forward` block, and in a declared output shape. The macro
// cannot evaluate them: it writes them into the generated types (`SMatrix<T, { 2 * H }, ..>`),
// computes a convolution's output size as an expression, and leaves each rule it cannot
// decide to a const assertion, which holds here.
use nn::prelude::*;

const H: usize = 6;
const CHANNELS: usize = 3;

mod sizes {
    pub const OUT: usize = 2;
}

nn::network! {
    pub struct Mlp {
        input: [H],
        hidden: Dense<{ 2 * H }>, Relu,
        norm: LayerNorm,
        out: Dense<{ 2 * H }, sizes::OUT>,
    }
}

nn::network! {
    pub struct Conv {
        conv: Conv1d<CHANNELS, 3, padding = same>,
        strided: Conv1d<4, 3, stride = 2>,
        pool: MaxPool1d<2>,
        head: Dense<1>,
    }
    forward(x: [2, H]) -> (y: [1], same: [CHANNELS, H]) {
        let same = conv(x);
        let y = head(flatten(pool(strided(same))));
    }
}

nn::network! {
    pub struct Sum {
        a: Dense<H>,
        b: Dense<6>,
    }
    forward(x: [H], z: [4]) -> y {
        let y = a(x) + b(z);
    }
}

fn main() {
    assert_eq!(Mlp::<f32>::PARAM_COUNT, (6 * 12 + 12) + 2 * 12 + (12 * 2 + 2));
    let mut mlp = Mlp::<f64>::ZERO;
    mlp.out.bias.fill(0.5);
    let y: SMatrix<f64, 2, 3> = mlp.forward(&SMatrix::<f64, 6, 3>::zeros());
    assert_eq!(y, SMatrix::<f64, 2, 3>::from_element(0.5));

    // (6 - 3)/2 + 1 = 2 positions after the strided convolution, 1 after pooling.
    let conv = Conv::<f32>::ZERO;
    let (y, same) = conv.forward(&SMatrix::<f32, 12, 1>::zeros());
    assert_eq!((y.nrows(), same.nrows()), (1, 18));
    assert!(Conv::<f32>::summary().to_string().contains("conv"));

    let sum = Sum::<f32>::ZERO;
    let y = sum.forward(&SMatrix::<f32, 6, 1>::zeros(), &SMatrix::<f32, 4, 1>::zeros());
    assert_eq!(y.nrows(), 6);
}
