// A sequential network with its input and nothing after it.
nn::network! {
    pub struct OnlyInput {
        input: [3],
    }
}

fn main() {}
