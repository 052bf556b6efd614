nn::network! {
    struct Net {
        fc1: Dense<4>,
    }
    forward(x: [4]) -> y {
        let y = fc1;
    }
}

fn main() {}
