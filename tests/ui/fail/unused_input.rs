nn::network! {
    struct Net {
        fc1: Dense<1>,
    }
    forward(a: [4], b: [3]) -> y {
        let y = fc1(a);
    }
}

fn main() {}
