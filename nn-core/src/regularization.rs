//! Weight penalties `R(W)` added to the loss: `L(W) = 1/n Σ l(yᵢ, f_W(xᵢ)) + R(W)`.
//!
//! - L2: `R = λ₂·Σ w²`, `∂R/∂w = 2λ₂·w` (the lecture's `λ‖W‖²`; PyTorch's `weight_decay = wd`
//!   in SGD adds `wd·w` to the gradient, which is this with `λ₂ = wd/2`).
//! - L1: `R = λ₁·Σ |w|`, `∂R/∂w = λ₁·sign(w)` (0 at 0).
//!
//! Applied to the tensors whose [`Role`] is `Weight`, and not to biases unless
//! [`Regularization::biases`] is set. For AdamW's decoupled weight decay, use the
//! optimizer's own setting instead.

use crate::{Network, Params, Real, Role};

/// L1 and L2 penalties on a network's weights.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Regularization {
    /// `λ₁` of `λ₁·Σ|w|`.
    pub l1: f64,
    /// `λ₂` of `λ₂·Σw²`.
    pub l2: f64,
    /// Also penalise biases (default: no, as is usual).
    pub biases: bool,
}

impl Regularization {
    /// No penalty.
    pub const NONE: Self = Regularization {
        l1: 0.0,
        l2: 0.0,
        biases: false,
    };

    /// `λ·Σw²` on weights.
    pub const fn l2(lambda: f64) -> Self {
        Regularization {
            l2: lambda,
            ..Self::NONE
        }
    }

    /// `λ·Σ|w|` on weights.
    pub const fn l1(lambda: f64) -> Self {
        Regularization {
            l1: lambda,
            ..Self::NONE
        }
    }

    /// True when it adds nothing.
    pub fn is_none(&self) -> bool {
        self.l1 == 0.0 && self.l2 == 0.0
    }

    fn applies_to(&self, role: Role) -> bool {
        match role {
            Role::Weight => true,
            Role::Bias => self.biases,
            Role::State | Role::Count => false,
        }
    }

    /// `R(W)` for `net`.
    pub fn penalty<T: Real, N: Network<T>>(&self, net: &N) -> T {
        let mut total = T::ZERO;
        if self.is_none() {
            return total;
        }
        let (l1, l2) = (T::of(self.l1), T::of(self.l2));
        let params = net.as_slice();
        N::visit_tensors(&mut |tensor| {
            if self.applies_to(tensor.info.role) {
                for &w in &params[tensor.range()] {
                    total += l1 * w.abs() + l2 * w * w;
                }
            }
        });
        total
    }

    /// Adds `∂R/∂W` to `grads` and returns `R(W)`.
    pub fn apply<T: Real, N: Network<T>>(&self, net: &N, grads: &mut N::Grads) -> T {
        let mut total = T::ZERO;
        if self.is_none() {
            return total;
        }
        let (l1, l2) = (T::of(self.l1), T::of(self.l2));
        let two_l2 = l2 + l2;
        let params = net.as_slice();
        let grads = grads.as_mut_slice();
        N::visit_tensors(&mut |tensor| {
            if self.applies_to(tensor.info.role) {
                let range = tensor.range();
                for (&w, g) in params[range.clone()].iter().zip(&mut grads[range]) {
                    total += l1 * w.abs() + l2 * w * w;
                    let sign = if w > T::ZERO {
                        T::ONE
                    } else if w < T::ZERO {
                        -T::ONE
                    } else {
                        T::ZERO
                    };
                    *g += l1 * sign + two_l2 * w;
                }
            }
        });
        total
    }
}
