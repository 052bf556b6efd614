nn::network! {
    struct Net {
        fc1: Dense<1>,
    }
    forward(x: [4]) -> y: [2] {
        let y = sigmoid(fc1(x));
    }
}

fn main() {}
