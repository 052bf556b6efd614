nn::network! {
    struct Net {
        input: [16],
        fc: Dense<8>,
        bn: BatchNorm2d,
    }
}

fn main() {}
