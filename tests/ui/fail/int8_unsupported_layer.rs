// `#[nn(int8)]` on a network with a layer that has no int8 form: the error names the layer.
nn::network! {
    #[nn(int8)]
    pub struct Normed {
        input: [8],
        fc1: Dense<16>, Relu,
        norm: LayerNorm,
        out: Dense<1>,
    }
}

fn main() {}
