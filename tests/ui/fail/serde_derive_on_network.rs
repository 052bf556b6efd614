// serde's derives cannot serialize a network's layers: the message says what does.
nn::network! {
    #[derive(Clone, serde::Serialize)]
    pub struct Net {
        input: [2],
        out: Dense<1>,
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
