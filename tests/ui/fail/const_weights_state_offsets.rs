// Weights compiled into the program for a network with a layer of one's own that saves state
// (a running mean) without saying where it is (`Layer::STATE_OFFSETS`): the file is good and
// loads at run time, but the network cannot be built at compile time.
use nn::prelude::*;
use nn::{Role, StateValue, TensorInfo};

/// `y = s ⊙ x`, with a running mean of its input saved as `running_mean`.
#[derive(Clone, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Scale<T: Real, const N: usize> {
    pub s: SMatrix<T, N, 1>,
}

#[derive(Clone, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct RunningMean<T: Real, const N: usize> {
    pub mean: SMatrix<T, N, 1>,
}

impl<T: Real, const N: usize> Layer<T, N, N> for Scale<T, N> {
    const STATE_TENSORS: &'static [TensorInfo] = &[TensorInfo {
        name: "running_mean",
        shape: &[N],
        role: Role::State,
    }];

    type Cache<const B: usize> = ();
    type State = RunningMean<T, N>;

    fn forward<const B: usize>(
        &self,
        _: &Self::State,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        _: &mut [T],
    ) {
        for (j, mut column) in y.column_iter_mut().enumerate() {
            column.copy_from(&x.column(j).component_mul(&self.s));
        }
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        _: &(),
        dy: &SMatrix<T, N, B>,
        dx: Option<&mut SMatrix<T, N, B>>,
        grads: &mut Self,
        _: &mut [T],
    ) {
        for j in 0..B {
            grads.s += dy.column(j).component_mul(&x.column(j));
        }
        if let Some(dx) = dx {
            for j in 0..B {
                let mut dx_j = dx.column_mut(j);
                dx_j += dy.column(j).component_mul(&self.s);
            }
        }
    }

    fn state_value(state: &Self::State, _: usize, element: usize) -> StateValue<T> {
        StateValue::Real(state.mean[element])
    }

    fn set_state_value(state: &mut Self::State, _: usize, element: usize, value: StateValue<T>) {
        if let StateValue::Real(v) = value {
            state.mean[element] = v;
        }
    }
}

nn::network! {
    pub struct Scaled {
        fc1: Dense<3>,
        scale: Scale<T, 3> -> [3],
        out: Dense<1>,
    }
    forward(x: [2]) -> y {
        let y = out(scale(fc1(x)));
    }
}

static NET: Scaled<f32> = nn::include_flat!("const_weights_state_offsets.nnw");

fn main() {
    let _ = NET.forward(&nn::SMatrix::<f32, 2, 1>::zeros());
}
