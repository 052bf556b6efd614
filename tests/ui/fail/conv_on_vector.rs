nn::network! {
    struct Net {
        conv: Conv2d<4, 3>,
    }
    forward(x: [64]) -> y {
        let y = conv(x);
    }
}

fn main() {}
