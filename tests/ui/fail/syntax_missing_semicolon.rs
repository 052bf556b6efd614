// A statement of a `forward` block without its `;`: the error is on that statement, not on
// the next line.
nn::network! {
    pub struct Net {
        fc1: Dense<8>,
        fc2: Dense<1>,
    }
    forward(x: [4]) -> y {
        let h = relu(fc1(x))
        let y = fc2(h);
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
