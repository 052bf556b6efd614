#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use nn_core::*;
pub use nn_macros::network;

/// Everything a program using `network!` needs in scope: the traits of generated networks,
/// of losses and of optimizers.
pub mod prelude {
    pub use nn_core::{
        Activation, ConstZero, Layer, Loss, Network, Optimizer, Params, Real, SMatrix, Values,
        Zeroable,
    };
    pub use nn_macros::network;
}
