// A sequential network of activations only: it has no layers.
nn::network! {
    pub struct OnlyActivations {
        input: [3],
        Relu,
        Sigmoid,
    }
}

fn main() {}
