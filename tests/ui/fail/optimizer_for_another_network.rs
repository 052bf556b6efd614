// An optimizer's state has the shape of one network's gradients: stepping another network
// with it is a compile error (it used to panic at run time, "params length differs").
use nn::optim::{Adam, Optimizer};
use nn::prelude::*;

nn::network! {
    struct P { input: [2], out: Dense<1> }
}

nn::network! {
    struct Q { input: [4], out: Dense<3> }
}

fn main() {
    let mut p = P::<f32>::ZERO;
    let grads = PGrads::<f32>::ZERO;
    let mut adam = Adam::<f32, QGrads<f32>>::new(0.01);
    adam.update(&mut p, &grads);
}
