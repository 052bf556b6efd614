nn::network! {
    struct Net {
        fc1: Dense<8>,
    }
    forward(x: [2, 3, 4]) -> y {
        let y = fc1(x);
    }
}

fn main() {}
