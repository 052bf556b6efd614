//! The graph form: a residual MLP whose hidden node fans out, and a network with two inputs
//! and two outputs, each trained a little with gradient descent on a synthetic task.
//!
//! Run: `cargo run --release --example graph`

use nn::prelude::*;

nn::network! {
    /// `h` feeds both `fc2` and the residual sum.
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

nn::network! {
    /// Two inputs are encoded, joined, and read out by two heads: a value and class scores.
    pub struct TwoHeads {
        enc_a: Dense<8>,
        enc_b: Dense<8>,
        value: Dense<1>,
        classes: Dense<3>,
    }
    forward(a: [4], b: [3]) -> (v: [1], p: [3]) {
        let h = tanh(concat(enc_a(a), enc_b(b)));
        let v = value(h);
        let p = softmax(classes(h));
    }
}

/// Small deterministic pseudo-random numbers in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn fill<P: Params<f64>>(&mut self, params: &mut P, scale: f64) {
        for p in params.as_mut_slice() {
            *p = scale * self.next();
        }
    }
}

fn descend<N: Network<f64>>(net: &mut N, grads: &N::Grads, learning_rate: f64) {
    for (theta, g) in net.as_mut_slice().iter_mut().zip(grads.as_slice()) {
        *theta -= learning_rate * g;
    }
}

fn main() {
    let mut rng = Rng(42);

    // ResMlp: is the sum of the 16 inputs positive? (Binary cross-entropy on a sigmoid.)
    println!("{}\n", ResMlp::<f64>::summary());
    let mut net = ResMlp::<f64>::ZERO;
    rng.fill(&mut net, 0.25);
    let mut tape = ResMlpTape::<f64, 32>::ZERO;
    let mut grads = ResMlpGrads::ZERO;
    for step in 0..=300 {
        let x = SMatrix::<f64, 16, 32>::from_fn(|_, _| rng.next());
        let t = SMatrix::<f64, 1, 32>::from_fn(|_, j| f64::from(x.column(j).sum() > 0.0));
        let y = net.forward_train(&x, &mut tape);
        // BCE after a sigmoid: ∂L/∂y = (y − t) / (y(1 − y)) / B.
        let mut loss = 0.0;
        let mut correct = 0;
        let d_y = SMatrix::<f64, 1, 32>::from_fn(|_, j| {
            let (y, t) = (y[j], t[j]);
            loss -= (t * y.ln() + (1.0 - t) * (1.0 - y).ln()) / 32.0;
            correct += usize::from((y > 0.5) == (t > 0.5));
            (y - t) / (y * (1.0 - y)) / 32.0
        });
        grads.set_zero();
        net.backward(&mut tape, &d_y, &mut grads);
        descend(&mut net, &grads, 0.5);
        if step % 50 == 0 {
            println!("step {step:>3}  loss {loss:.4}  batch accuracy {correct}/32");
        }
    }

    // TwoHeads: v = a·b-ish regression target, p = which of three sums is largest.
    println!("\n{}\n", TwoHeads::<f64>::summary());
    let mut net = TwoHeads::<f64>::ZERO;
    rng.fill(&mut net, 0.3);
    let mut tape = TwoHeadsTape::<f64, 16>::ZERO;
    let mut grads = TwoHeadsGrads::ZERO;
    for step in 0..=600 {
        let a = SMatrix::<f64, 4, 16>::from_fn(|_, _| rng.next());
        let b = SMatrix::<f64, 3, 16>::from_fn(|_, _| rng.next());
        let (v, p) = net.forward_train(&a, &b, &mut tape);
        let mut mse = 0.0;
        let mut nll = 0.0;
        let d_v = SMatrix::<f64, 1, 16>::from_fn(|_, j| {
            let target = a.column(j).sum() * 0.5 - b[(0, j)];
            mse += (v[j] - target).powi(2) / 16.0;
            (v[j] - target) / 16.0
        });
        let d_p = SMatrix::<f64, 3, 16>::from_fn(|i, j| {
            let class = (0..3)
                .max_by(|&k, &l| b[(k, j)].total_cmp(&b[(l, j)]))
                .unwrap();
            if i == class {
                nll -= p[(i, j)].ln() / 16.0;
                -1.0 / p[(i, j)] / 16.0
            } else {
                0.0
            }
        });
        grads.set_zero();
        net.backward(&mut tape, &d_v, &d_p, &mut grads);
        descend(&mut net, &grads, 0.2);
        if step % 100 == 0 {
            println!("step {step:>3}  value mse {mse:.4}  class nll {nll:.4}");
        }
    }
}
