use nn::prelude::*;

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

fn main() {
    assert_eq!(
        ResMlp::<f32>::PARAM_COUNT,
        (16 * 32 + 32) + (32 * 32 + 32) + (32 + 1)
    );
    let mut net = ResMlp::<f64>::ZERO;
    net.fc1.bias.fill(1.0);
    net.head.weight.fill(0.01);
    // h = 1 everywhere, r = 0, so y = sigmoid(32 · 0.01).
    let y = net.forward(&SMatrix::<f64, 16, 2>::zeros());
    let expected = 1.0 / (1.0 + (-0.32f64).exp());
    assert!(y.iter().all(|&v| (v - expected).abs() < 1e-12));
    let summary = ResMlp::<f32>::summary().to_string();
    assert!(summary.contains("fc1"), "{summary}");
}
