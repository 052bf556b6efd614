nn::network! {
    struct Net {
        fc1: Dense<4>,
    }
    forward(x: [4]) -> a {
        let a = fc1(a);
    }
}

fn main() {}
