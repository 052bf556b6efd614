// Weights compiled into the program from a file cut 4 bytes short: a compile error.
nn::network! {
    pub struct Tiny {
        input: [2],
        fc1: Dense<3>, Relu,
        out: Dense<1>,
    }
}

static NET: Tiny<f32> = nn::include_flat!("const_weights_truncated.nnw");

fn main() {
    let _ = NET.forward(&nn::SMatrix::<f32, 2, 1>::zeros());
}
