nn::network! {
    struct Net {
        input: [0],
        hidden: Dense<0>, Relu,
        out: Dense<1>,
    }
}

fn main() {}
