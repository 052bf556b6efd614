nn::network! {
    struct Net {
        fc1: Dense<32>,
        fc2: Dense<16>,
        head: Dense<1>,
    }
    forward(x: [8]) -> y {
        let h = relu(fc1(x));
        let r = relu(fc2(h));
        let y = head(h + r);
    }
}

fn main() {}
