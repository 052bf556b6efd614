use nn::prelude::*;

nn::network! {
    struct Sequential {
        input: [4],
        hidden: Dense<4, 8>, Relu,
        out: Dense<8, 2>,
    }
}

nn::network! {
    struct Graph {
        fc1: Dense<4, 8>,
        fc2: Dense<8, 2>,
    }
    forward(x: [4]) -> y: [2] {
        let y = fc2(relu(fc1(x)));
    }
}

fn main() {
    assert_eq!(Sequential::<f32>::PARAM_COUNT, (4 * 8 + 8) + (8 * 2 + 2));
    assert_eq!(Graph::<f32>::PARAM_COUNT, Sequential::<f32>::PARAM_COUNT);
    let net = Sequential::<f32>::ZERO;
    let y: SMatrix<f32, 2, 1> = net.forward(&SMatrix::<f32, 4, 1>::zeros());
    assert_eq!(y, SMatrix::<f32, 2, 1>::zeros());
    let mut graph = Graph::<f32>::ZERO;
    graph.fc2.bias[1] = 3.0;
    let y: SMatrix<f32, 2, 1> = graph.forward(&SMatrix::<f32, 4, 1>::zeros());
    assert_eq!(y, SMatrix::<f32, 2, 1>::new(0.0, 3.0));
}
