nn::network! {
    struct Net {
        input: [4],
        fc: Conv<3>, Relu,
        out: Dens<1>,
    }
}

fn main() {}
