nn::network! {
    struct Net {
        input: [3, 2, 2],
        pool: MaxPool2d<3>,
    }
}

fn main() {}
