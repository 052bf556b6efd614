nn::network! {
    struct Net {}
    forward(x: [3, 4]) -> y {
        let y = softmax(x);
    }
}

fn main() {}
