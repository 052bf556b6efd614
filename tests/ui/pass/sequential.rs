use nn::prelude::*;

nn::network! {
    /// Learns XOR.
    pub struct Xor {
        input: [2],
        hidden: Dense<8>, Tanh,
        out: Dense<1>, Sigmoid,
    }
}

fn main() {
    assert_eq!(Xor::<f32>::PARAM_COUNT, (2 * 8 + 8) + (8 + 1));
    let mut net = Xor::<f64>::ZERO;
    net.out.bias[0] = 2.0;
    let x = SMatrix::<f64, 2, 3>::from_column_slice(&[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
    let y: SMatrix<f64, 1, 3> = net.forward(&x);
    let expected = 1.0 / (1.0 + (-2.0f64).exp());
    assert!(y.iter().all(|&v| (v - expected).abs() < 1e-12));

    // The generated training passes and the `Network` trait.
    let mut tape = XorTape::<f64, 3>::ZERO;
    let y_train = *net.forward_train(&x, &mut tape);
    assert_eq!(y_train, y);
    let mut grads = XorGrads::<f64>::ZERO;
    let dx = *net.backward(&mut tape, &SMatrix::<f64, 1, 3>::repeat(1.0), &mut grads);
    assert_eq!(dx, SMatrix::<f64, 2, 3>::zeros());
    assert!(grads.out.bias[0] > 0.0);
    assert_eq!(<Xor<f64> as Network<f64>>::forward(&net, &x), y);
}
