nn::network! {
    struct Net {
        input: [4],
        hidden: Dense<3, 8>, Relu,
        out: Dense<1>,
    }
}

fn main() {}
