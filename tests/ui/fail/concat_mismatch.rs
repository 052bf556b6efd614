nn::network! {
    struct Net {}
    forward(a: [2, 3], b: [2, 4]) -> y {
        let y = concat(a, b);
    }
}

fn main() {}
