nn::network! {
    struct Net {
        input: [16],
        fc: Dense<8>,
        drop: Dropout<1.5>,
    }
}

fn main() {}
