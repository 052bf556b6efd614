nn::network! {
    struct Net {
        attn: MultiHeadAttention<3>,
    }
    forward(x: [10, 16]) -> y {
        let y = attn(x);
    }
}

fn main() {}
