nn::network! {
    struct Layers {
        fc: Dense<8>,
        fc: Dense<8>,
        out: Dense<1>,
    }
    forward(x: [4]) -> y {
        let h = fc(x);
        let y = out(h);
    }
}

nn::network! {
    struct Lets {
        fc1: Dense<8>,
        out: Dense<1>,
    }
    forward(x: [4]) -> y {
        let h = fc1(x);
        let h = relu(h);
        let y = out(h);
    }
}

fn main() {}
