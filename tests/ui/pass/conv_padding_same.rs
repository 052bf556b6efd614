// PyTorch's `padding='same'` (and `'valid'`): the padding that keeps the spatial sizes.
use nn::prelude::*;

nn::network! {
    struct Same {
        input: [1, 5, 6],
        conv: Conv2d<4, 3, padding = same>,
        wide: Conv2d<2, (3, 5), dilation = (1, 2), padding = same>,
        valid: Conv2d<2, 2, padding = valid>,
    }
}

nn::network! {
    struct Explicit {
        input: [1, 5, 6],
        conv: Conv2d<4, 3, padding = 1>,
        wide: Conv2d<2, (3, 5), dilation = (1, 2), padding = (1, 4)>,
        valid: Conv2d<2, 2>,
    }
}

nn::network! {
    struct Sequence {
        input: [2, 9],
        conv: Conv1d<3, 5, dilation = 2, padding = same>,
    }
}

fn main() {
    // The same layers as with the padding written out: the same sizes, parameters and values.
    assert_eq!(Same::<f32>::PARAM_COUNT, Explicit::<f32>::PARAM_COUNT);
    let mut same = Same::<f64>::ZERO;
    let mut explicit = Explicit::<f64>::ZERO;
    for (i, (a, b)) in same.as_mut_slice().iter_mut().zip(explicit.as_mut_slice()).enumerate() {
        (*a, *b) = ((i % 7) as f64 - 3.0, (i % 7) as f64 - 3.0);
    }
    let x = SMatrix::<f64, 30, 1>::from_fn(|i, _| i as f64 / 10.0);
    let y: SMatrix<f64, { 2 * 4 * 5 }, 1> = same.forward(&x);
    assert_eq!(y, explicit.forward(&x));
    let s: SMatrix<f64, { 3 * 9 }, 2> = Sequence::<f64>::ZERO.forward(&SMatrix::<f64, 18, 2>::zeros());
    assert!(s.iter().all(|&v| v == 0.0));
}
