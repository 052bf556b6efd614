//! Runtime of the `nn` crate: the scalar type, the traits the `network!` macro generates
//! code against ([`Network`], [`Layer`], [`Activation`], [`Params`]), the built-in layers and
//! activations, and a finite-difference gradient checker.
//!
//! `#![no_std]`: nothing here allocates. The `alloc` feature adds boxed constructors.
//!
//! Conventions (PyTorch's): a dense layer's weight is `[out, in]`; a batch of `B` samples is
//! an `SMatrix<T, N, B>` with one sample per column (nalgebra is column-major).
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

// The derives name the runtime `::nn_core` here, as in a crate that depends on it.
extern crate self as nn_core;

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod activations;
mod boxed;
pub mod gradcheck;
pub mod init;
pub mod io;
pub mod kernels;
mod layer;
pub mod layers;
pub mod loss;
pub mod memory;
mod network;
pub mod ops;
pub mod optim;
pub mod parallel;
mod params;
pub mod quant;
mod real;
pub mod regularization;
mod summary;
#[cfg(test)]
mod test_util;
pub mod train;
mod values;

pub use activations::Activation;
#[cfg(feature = "alloc")]
pub use boxed::clone_boxed;
pub use boxed::copy_into;
pub use layer::{Layer, Role, StateOffsets, StateValue, Store, TensorInfo};
pub use loss::Loss;
pub use nalgebra;
pub use nalgebra::SMatrix;
#[doc(hidden)]
pub use network::{__avx2_passes, __avx512_passes};
pub use network::{NamedTensor, Network};
pub use optim::{Optimizer, Schedule};
// The derives, next to the traits of the same names (as serde does): `#[derive(Params)]`.
pub use nn_macros::{ConstZero, Params, Zeroable};
pub use params::{ConstZero, Params, Zeroable};
pub use rand_core;
/// The thread pools that [`parallel`] and [`train::parallel_gradients`] run on.
#[cfg(feature = "std")]
pub use rayon;
pub use real::Real;
pub use regularization::Regularization;
pub use summary::{MemoryPlan, Summary, SummaryRow};
pub use values::{Batch, Values};
