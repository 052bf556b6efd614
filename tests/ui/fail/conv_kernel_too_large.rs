nn::network! {
    struct Net {
        input: [1, 4, 4],
        conv: Conv2d<2, 5>, Relu,
    }
}

fn main() {}
