nn::network! {
    struct Difference {
        fc1: Dense<4>,
    }
    forward(x: [4], y: [4]) -> z {
        let z = fc1(x - y);
    }
}

nn::network! {
    struct MethodCall {
        fc1: Dense<4>,
    }
    forward(x: [4]) -> y {
        let y = fc1(x).relu();
    }
}

fn main() {}
