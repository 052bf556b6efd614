// Nodes and layers named like the generated passes' own parameters and locals (`tape`,
// `grads`, `input`, `d_output`, `visit`, `info`): the generated code's names are hygienic
// (`Span::mixed_site()`), so they neither collide with nor capture the user's.
use nn::prelude::*;

nn::network! {
    struct Net {
        fc: Dense<4>,
        own: nn::layers::Dense<T, 4, 4> -> [4],
        grads: Dense<2>,
    }
    forward(tape: [3], input: [4]) -> (d_output, visit) {
        let info = fc(tape);
        let d_output = grads(own(info) + input);
        let visit = relu(info);
    }
}

fn main() {
    use rand_core::SeedableRng;
    let mut net = Net::<f64>::ZERO;
    net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(1));
    net.grads.bias.fill(0.0);
    let (x, other) = (SMatrix::<f64, 3, 2>::zeros(), SMatrix::<f64, 4, 2>::zeros());
    let mut tape = NetTape::<f64, 2>::ZERO;
    let mut grads = NetGrads::<f64>::ZERO;
    let (y, v) = net.forward_train(&x, &other, &mut tape);
    let (y, v) = (*y, *v);
    assert_eq!((y, v), net.forward(&x, &other));
    let (d_x, d_other) = net.backward(&mut tape, &y, &v, &mut grads);
    assert_eq!((d_x.nrows(), d_other.nrows()), (3, 4));
    assert_eq!(tape.info.nrows(), 4);
    let mut count = 0;
    Net::<f32>::visit_tensors(&mut |_| count += 1);
    assert_eq!(count, 6);
}
