nn::network! {
    struct Net {
        input: [1, 8, 8],
        conv: Conv2d<4, 3>, Relu,
        Flatten,
        out: Dense<100, 10>,
    }
}

fn main() {}
