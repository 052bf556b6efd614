nn::network! {
    struct Net {
        input: [2],
        hidden: Dense<8>, Tanhh,
        out: Dense<1>, Sigmoid,
    }
}

fn main() {}
