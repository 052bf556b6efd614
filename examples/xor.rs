//! Learns XOR with a 2 → 8 → 1 network and plain full-batch gradient descent, written out
//! here step by step: forward, loss, backward, update.
//!
//! Run: `cargo run --release --example xor`

use nn::prelude::*;

nn::network! {
    /// Learns XOR.
    pub struct Xor {
        input: [2],
        hidden: Dense<8>, Tanh,
        out: Dense<1>, Sigmoid,
    }
}

/// Uniform initialisation in `±√(6/(fan_in + fan_out))` (Glorot), from a xorshift generator.
fn init(net: &mut Xor<f64>, seed: u64) {
    let mut state = seed;
    let mut uniform = |limit: f64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * limit
    };
    for w in net.hidden.weight.iter_mut() {
        *w = uniform((6.0f64 / (2.0 + 8.0)).sqrt());
    }
    for w in net.out.weight.iter_mut() {
        *w = uniform((6.0f64 / (8.0 + 1.0)).sqrt());
    }
}

fn main() {
    // The four cases, one per column.
    let x = SMatrix::<f64, 2, 4>::from_column_slice(&[0., 0., 0., 1., 1., 0., 1., 1.]);
    let target = SMatrix::<f64, 1, 4>::from_column_slice(&[0., 1., 1., 0.]);

    let mut net = Xor::<f64>::ZERO;
    init(&mut net, 0x5EED);
    let mut tape = XorTape::<f64, 4>::ZERO;
    let mut grads = XorGrads::<f64>::ZERO;
    let learning_rate = 2.0;

    println!("{}\n", Xor::<f64>::summary());
    let mut mse = f64::INFINITY;
    let mut epoch = 0;
    while mse >= 1e-3 && epoch < 20_000 {
        // Forward, recording what backward needs.
        let y = net.forward_train(&x, &mut tape);
        // Loss L = 1/4 Σ ½(y − t)², so ∂L/∂y = (y − t)/4.
        let error = y - target;
        mse = error.norm_squared() / 4.0;
        let d_y = error / 4.0;
        // Backward: gradients accumulate, so start from zero.
        grads.set_zero();
        net.backward(&mut tape, &d_y, &mut grads);
        // Gradient descent: θ ← θ − α·∂L/∂θ, over all parameters as one slice.
        for (theta, g) in net.as_mut_slice().iter_mut().zip(grads.as_slice()) {
            *theta -= learning_rate * g;
        }
        if epoch % 500 == 0 {
            println!("epoch {epoch:>5}  mse {mse:.6}");
        }
        epoch += 1;
    }
    println!("epoch {epoch:>5}  mse {mse:.6}  (stopped)\n");

    let y = net.forward(&x);
    for j in 0..4 {
        println!(
            "{} xor {} = {:.4}  (target {})",
            x[(0, j)],
            x[(1, j)],
            y[j],
            target[j]
        );
    }
    assert!(mse < 0.01, "XOR did not train: mse {mse}");
}
