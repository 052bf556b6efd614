nn::network! {
    struct Net {
        fc1: Dense<4>,
        fc2: Dense<4>,
    }
    forward(x: [4]) -> b {
        let a = fc1(x + b);
        let b = fc2(a);
    }
}

fn main() {}
