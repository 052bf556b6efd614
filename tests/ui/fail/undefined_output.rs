nn::network! {
    struct Net {
        fc1: Dense<1>,
    }
    forward(x: [4]) -> out {
        let y = fc1(x);
    }
}

fn main() {}
