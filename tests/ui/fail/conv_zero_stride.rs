nn::network! {
    struct Net {
        input: [1, 8, 8],
        conv: Conv2d<2, 3, stride = 0>, Relu,
    }
}

fn main() {}
