// The typed step: the network and its gradients, by type.
use nn::optim::{Adam, Optimizer, Sgd};
use nn::prelude::*;

nn::network! {
    struct Net { input: [2], out: Dense<1> }
}

fn main() {
    let mut net = Net::<f64>::ZERO;
    let mut grads = NetGrads::<f64>::ZERO;
    grads.out.bias.fill(1.0);
    let mut sgd = Sgd::<f64, NetGrads<f64>>::new(0.5);
    sgd.update(&mut net, &grads);
    assert_eq!(net.out.bias[0], -0.5);
    let mut adam = Adam::<f64, NetGrads<f64>>::new(0.1);
    adam.update(&mut net, &grads);
    assert!((net.out.bias[0] + 0.6).abs() < 1e-9);
}
