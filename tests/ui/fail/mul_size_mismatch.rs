nn::network! {
    struct Net {
        gate: Dense<8>,
        value: Dense<4>,
        head: Dense<1>,
    }
    forward(x: [8]) -> y {
        let g = sigmoid(gate(x));
        let v = value(x);
        let y = head(g * v);
    }
}

fn main() {}
