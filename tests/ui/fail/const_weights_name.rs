// Weights compiled into the program from a file written for a network whose first layer is named `hidden`, not `fc1`: a compile error.
nn::network! {
    pub struct Tiny {
        input: [2],
        fc1: Dense<3>, Relu,
        out: Dense<1>,
    }
}

static NET: Tiny<f32> = nn::include_flat!("const_weights_name.nnw");

fn main() {
    let _ = NET.forward(&nn::SMatrix::<f32, 2, 1>::zeros());
}
