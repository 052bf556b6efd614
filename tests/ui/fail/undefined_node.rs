nn::network! {
    struct Net {
        fc1: Dense<8>,
        fc2: Dense<1>,
    }
    forward(input: [4]) -> y {
        let hidden = relu(fc1(inptu));
        let y = fc2(hidden);
    }
}

fn main() {}
