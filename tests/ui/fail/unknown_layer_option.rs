nn::network! {
    struct Net {
        input: [1, 8, 8],
        conv: Conv2d<4, 3, strid = 2>,
    }
}

fn main() {}
