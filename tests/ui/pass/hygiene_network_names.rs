// Networks named like the generated code's generic parameters: `B` (the batch size) and `T`
// (the scalar type). Their generated types and passes must work as for any other name.
use nn::prelude::*;

nn::network! {
    /// A network named like the batch size.
    pub struct B {
        input: [2],
        hidden: Dense<3>, Tanh,
        out: Dense<1>,
    }
}

nn::network! {
    /// A network named like the scalar type, with a layer of the user's that names `T`.
    pub struct T {
        fc: Dense<3>,
        own: nn::layers::Dense<T, 3, 2> -> [2],
    }
    forward(x: [2]) -> y {
        let y = own(relu(fc(x)));
    }
}

fn main() {
    let mut net = B::<f64>::ZERO;
    net.out.bias.fill(0.5);
    let mut tape = BTape::<f64, 4>::ZERO;
    let mut grads = BGrads::<f64>::ZERO;
    let y = *net.forward_train(&SMatrix::<f64, 2, 4>::zeros(), &mut tape);
    assert_eq!(y, SMatrix::<f64, 1, 4>::from_element(0.5));
    let _ = net.backward(&mut tape, &y, &mut grads);
    assert_eq!(grads.out.bias[0], 2.0);
    assert_eq!(B::<f32>::PARAM_COUNT, (2 * 3 + 3) + (3 + 1));

    let mut t = T::<f64>::ZERO;
    t.own.bias.fill(1.5);
    let y = t.forward(&SMatrix::<f64, 2, 1>::zeros());
    assert_eq!(y, SMatrix::<f64, 2, 1>::from_element(1.5));
    assert_eq!(T::<f32>::PARAM_COUNT, (2 * 3 + 3) + (3 * 2 + 2));
    let _ = TGrads::<f32>::ZERO;
    let _ = TTape::<f32, 1>::ZERO;
}
