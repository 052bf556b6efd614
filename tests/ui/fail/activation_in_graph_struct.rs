nn::network! {
    struct Net {
        fc1: Dense<8>,
        Relu,
        out: Dense<1>,
    }
    forward(x: [4]) -> y {
        let y = out(fc1(x));
    }
}

fn main() {}
