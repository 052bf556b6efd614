nn::network! {
    struct Net {
        fc1: Dense<8>,
        fc2: Dense<8>,
        head: Dense<1>,
    }
    forward(x: [4]) -> y {
        let y = head(relu(fc1(x)));
    }
}

fn main() {}
