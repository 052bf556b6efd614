use nn::prelude::*;

nn::network! {
    /// Learns XOR.
    pub struct Xor {
        input: [2],
        hidden: Dense<8>, Tanh,
        out: Dense<1>, Sigmoid,
    }
}

nn::network! {
    pub struct ResMlp {
        fc1: Dense<32>,
        fc2: Dense<32>,
        head: Dense<1>,
    }
    forward(x: [16]) -> y {
        let h = relu(fc1(x));
        let r = relu(fc2(h));
        let y = sigmoid(head(h + r));
    }
}

#[test]
fn smoke() {
    let net = Xor::<f64>::ZERO;
    let x = SMatrix::<f64, 2, 1>::new(1.0, 0.0);
    let y = net.forward(&x);
    assert_eq!(y[0], 0.5);
    println!("{}", Xor::<f32>::summary());
    println!("{}", ResMlp::<f32>::summary());
    let mut res = ResMlp::<f64>::ZERO;
    let report = nn::gradcheck::check_network(
        &mut res,
        &SMatrix::<f64, 16, 2>::from_fn(|i, j| i as f64 * 0.1 - j as f64),
    );
    println!("{report:?}");
}
