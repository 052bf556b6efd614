nn::network! {
    struct Net {
        input: [1, 8, 8],
        conv: Conv2d<4, 3, in_channels = 3>, Relu,
    }
}

fn main() {}
