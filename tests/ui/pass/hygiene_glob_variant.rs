// Names in the user's scope that the generated code could capture: a glob-imported enum
// variant `B` (the batch size's name), a constant `B`, and a type `T` (the scalar's name).
// Every network below must compile and run as if they were not there.
use nn::prelude::*;

#[allow(dead_code)]
#[derive(Debug)]
enum Grade {
    A,
    B,
    C,
}
use Grade::*;

#[allow(dead_code)]
struct T;

mod constants {
    #[allow(dead_code)]
    pub const B: usize = 7;
}
#[allow(unused_imports)]
use constants::*;

nn::network! {
    struct Sequential {
        input: [3],
        hidden: Dense<4>, Relu,
        norm: LayerNorm,
        out: Dense<2>,
    }
}

nn::network! {
    struct Graph {
        fc: Dense<4>,
        gru: Gru<3, last = true>,
    }
    forward(x: [2, 3], h0: [3]) -> (y, z) {
        let y = gru(x, h0);
        let z = fc(y);
    }
}

fn main() {
    let _ = (A, C);
    let mut net = Sequential::<f64>::ZERO;
    net.out.bias.fill(1.0);
    let x = SMatrix::<f64, 3, 2>::zeros();
    let mut tape = SequentialTape::<f64, 2>::ZERO;
    let mut grads = SequentialGrads::<f64>::ZERO;
    let y = *net.forward_train(&x, &mut tape);
    assert_eq!(y, SMatrix::<f64, 2, 2>::from_element(1.0));
    let _ = net.backward(&mut tape, &y, &mut grads);
    // A node the macro named (its hygiene does not hide it as a field).
    assert_eq!(tape.hidden_relu.nrows(), 4);
    assert_eq!(grads.out.bias, SMatrix::<f64, 2, 1>::from_element(2.0));

    let graph = Graph::<f32>::ZERO;
    let (y, z) = graph.forward(&SMatrix::<f32, 6, 1>::zeros(), &SMatrix::<f32, 3, 1>::zeros());
    assert_eq!((y.nrows(), z.nrows()), (3, 4));
}
