use nn::prelude::*;

/// Element-wise scaling `y = s ⊙ x`, with one trainable scale per feature.
#[derive(Clone, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Scale<T: Real, const N: usize> {
    pub s: SMatrix<T, N, 1>,
}

impl<T: Real, const N: usize> Layer<T, N, N> for Scale<T, N> {
    type Cache<const B: usize> = (); // nothing to keep besides x
    type State = (); // no running statistics

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        _scratch: &mut [T],
    ) {
        for j in 0..B {
            for i in 0..N {
                y[(i, j)] = self.s[i] * x[(i, j)];
            }
        }
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        _cache: &(),
        dy: &SMatrix<T, N, B>,
        mut dx: Option<&mut SMatrix<T, N, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        for j in 0..B {
            for i in 0..N {
                grads.s[i] += dy[(i, j)] * x[(i, j)];
                if let Some(dx) = dx.as_deref_mut() {
                    dx[(i, j)] += dy[(i, j)] * self.s[i];
                }
            }
        }
    }
}

nn::network! {
    struct Net {
        fc1: Dense<4>,
        scale: Scale<T, 4> -> [4],
        out: Dense<1>,
    }
    forward(x: [3]) -> y {
        let y = out(tanh(scale(fc1(x))));
    }
}

fn main() {
    assert_eq!(Net::<f32>::PARAM_COUNT, (3 * 4 + 4) + 4 + (4 + 1));
    let mut net = Net::<f64>::ZERO;
    net.fc1.bias.fill(1.0);
    net.scale.s = SMatrix::<f64, 4, 1>::new(0.5, 1.0, -1.0, 2.0);
    net.out.weight.fill(1.0);
    let y = net.forward(&SMatrix::<f64, 3, 1>::zeros());
    let expected: f64 = [0.5f64, 1.0, -1.0, 2.0].iter().map(|s| s.tanh()).sum();
    assert!((y[0] - expected).abs() < 1e-12);

    net.fc1.weight.fill(0.3);
    let x = SMatrix::<f64, 3, 2>::from_fn(|i, j| i as f64 * 0.2 - j as f64 * 0.5);
    let report = nn::gradcheck::check_network(&mut net, &x);
    assert!(report.max_rel_error < 1e-6, "{report:?}");
}
