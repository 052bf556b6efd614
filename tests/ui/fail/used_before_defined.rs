nn::network! {
    struct Net {
        fc1: Dense<8>,
        out: Dense<1>,
    }
    forward(x: [4]) -> y {
        let h = fc1(x);
        let y = out(g);
        let g = relu(h);
    }
}

fn main() {}
