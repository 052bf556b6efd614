// The input is a shape, written in brackets even for a vector.
nn::network! {
    pub struct Net {
        input: 8,
        fc: Dense<4>,
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
