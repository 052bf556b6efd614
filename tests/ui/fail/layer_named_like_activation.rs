// A layer named like an activation would hide it: `relu(x)` could only mean one of them.
nn::network! {
    struct Net {
        relu: Dense<16>,
        out: Dense<1>,
    }
    forward(x: [4]) -> y {
        let y = out(relu(x));
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
