// A dense layer on 512 inputs or more has scratch for the second half of its product's depth
// (`Layer::SCRATCH`, `kernels::matmul_depth_halves`). The macro plans it whether the size is a
// number, a named constant or a sequence's features (per call, as `PositionWise` runs the
// layer a position at a time), and the generated check that the layer and the plan agree
// holds.
use nn::prelude::*;

const WIDE: usize = 600;
const NARROW: usize = 100;

nn::network! {
    pub struct Deep {
        input: [WIDE],
        l1: Dense<8>, Relu,
        l2: Dense<2>,
    }
}

nn::network! {
    pub struct Shallow {
        input: [NARROW],
        l1: Dense<8>,
    }
}

nn::network! {
    pub struct Literal {
        input: [512],
        l1: Dense<4>,
    }
}

nn::network! {
    pub struct Sequence {
        l1: Dense<4>,
    }
    forward(x: [3, 520]) -> y {
        let y = l1(x);
    }
}

// Each network's passes are instantiated (the agreement check is a `const` block, evaluated
// for the passes a program uses).
fn main() {
    let mut net = Deep::<f32>::new_boxed();
    net.as_mut_slice().iter_mut().enumerate().for_each(|(i, p)| *p = (i % 7) as f32 * 0.01);
    let x = SMatrix::<f32, WIDE, 16>::from_fn(|i, j| (i + j) as f32 * 0.001);
    let mut workspace = DeepWorkspace::<f32, 16>::new_boxed();
    let y = net.forward_in(&x, &mut workspace);
    assert!(y.iter().all(|v| v.is_finite()));
    let mut tape = DeepTape::<f32, 16>::new_boxed();
    net.forward_train(&x, &mut tape);

    let shallow = Shallow::<f32>::new_boxed();
    let mut workspace = ShallowWorkspace::<f32, 16>::new_boxed();
    shallow.forward_in(&SMatrix::<f32, NARROW, 16>::zeros(), &mut workspace);

    let literal = Literal::<f32>::new_boxed();
    let mut workspace = LiteralWorkspace::<f32, 16>::new_boxed();
    literal.forward_in(&SMatrix::<f32, 512, 16>::zeros(), &mut workspace);

    let sequence = Sequence::<f32>::new_boxed();
    let mut workspace = SequenceWorkspace::<f32, 2>::new_boxed();
    sequence.forward_in(&SMatrix::<f32, { 3 * 520 }, 2>::zeros(), &mut workspace);
}
