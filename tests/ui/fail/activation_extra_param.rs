nn::network! {
    struct Net {
        fc1: Dense<4>,
    }
    forward(x: [4]) -> y {
        let y = relu(fc1(x), 0.1);
    }
}

fn main() {}
