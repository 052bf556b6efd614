nn::network! {
    struct Net {
        fc1: Dense<0>,
        out: Dense<1>,
    }
    forward(x: [4]) -> y {
        let y = out(relu(fc1(x)));
    }
}

fn main() {}
