nn::network! {
    struct Net {
        emb: Embedding<100, 16>,
    }
    forward(tokens: [10, 4]) -> y {
        let y = emb(tokens);
    }
}

fn main() {}
