nn::network! {
    struct Net {
        gru: Gru<8>,
        attn: SelfAttention,
    }
    forward(x: [10, 4], y: [10, 6]) -> z {
        let z = gru(x) + attn(y);
    }
}

fn main() {}
