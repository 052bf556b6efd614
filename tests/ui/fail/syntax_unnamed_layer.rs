// A layer without a name: its name is its field (and its prefix in weight files).
nn::network! {
    pub struct Net {
        input: [16],
        Dense<32>,
        Relu,
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
