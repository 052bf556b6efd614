nn::network! {
    struct Net {
        fc1: Dense<8>,
        fc2: Dense<1>,
    }
    forward(x: [4]) -> y {
        let h = fc1(x);
        let a = relu(h);
        let y = fc2(h);
    }
}

fn main() {}
