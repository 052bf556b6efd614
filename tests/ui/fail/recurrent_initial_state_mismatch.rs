nn::network! {
    struct Net {
        lstm: Lstm<8, last = true>,
    }
    forward(x: [5, 3], h0: [8], c0: [4]) -> y {
        let y = lstm(x, h0, c0);
    }
}

fn main() {}
