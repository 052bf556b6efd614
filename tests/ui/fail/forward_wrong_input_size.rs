use nn::prelude::*;

nn::network! {
    struct Net {
        input: [2],
        out: Dense<1>, Sigmoid,
    }
}

fn main() {
    let net = Net::<f32>::ZERO;
    let _y = net.forward(&SMatrix::<f32, 3, 1>::zeros());
}
