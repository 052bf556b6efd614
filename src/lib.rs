#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

// With the traits `Params`, `ConstZero` and `Zeroable` come their derives (nn_core
// re-exports them from nn_macros).
pub use nn_core::*;
pub use nn_macros::network;

/// Everything a program using `network!` needs in scope: the traits of generated networks
/// (with those of their workspace and tape, `Outputs` and `TapeIo`), of losses and of
/// optimizers, and the derives for a layer of your own
/// (`#[derive(Params, ConstZero, Zeroable)]`: each name is both the trait and its derive).
pub mod prelude {
    pub use nn_core::memory::{Outputs, TapeIo};
    pub use nn_core::{
        Activation, Batch, ConstZero, Layer, Loss, Network, Optimizer, Params, Real, SMatrix,
        Values, Zeroable,
    };
    pub use nn_macros::network;
}
