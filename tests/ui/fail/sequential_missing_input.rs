nn::network! {
    struct Net {
        hidden: Dense<8>, Tanh,
        out: Dense<1>, Sigmoid,
    }
}

fn main() {}
