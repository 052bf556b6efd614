// A Rust keyword cannot name a layer: it would be a field of the generated struct.
nn::network! {
    pub struct Net {
        input: [16],
        type: Dense<16>,
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
