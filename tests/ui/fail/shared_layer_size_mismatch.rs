nn::network! {
    struct Net {
        shared: Dense<2>,
    }
    forward(a: [4], b: [8]) -> (y, z) {
        let y = shared(a);
        let z = shared(b);
    }
}

fn main() {}
