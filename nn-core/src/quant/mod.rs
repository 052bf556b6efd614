//! int8 inference (TensorFlow Lite's integer scheme): post-training quantization of a trained
//! `f32` network into `i8` weights and activations with `i32` accumulators, and the exact
//! integer arithmetic of TFLite's reference kernels. See `docs/int8-design.md`.
//!
//! - [`fixed_point`]: gemmlowp's `SaturatingRoundingDoublingHighMul`, `RoundingDivideByPOT`,
//!   TFLite's `QuantizeMultiplier` ([`Multiplier::new`]) and `MultiplyByQuantizedMultiplier`
//!   ([`Multiplier::apply`]).
//! - [`QuantParams`] and [`Range`]: affine per-tensor activations from calibration ranges.
//! - [`DenseQ8`]: a fully connected layer with per-channel symmetric `i8` weights, a folded
//!   `i32` bias, requantization and an optional fused ReLU; built from a float
//!   [`Dense`](crate::layers::Dense) by [`DenseQ8::quantize`].
//! - [`Chain`] and [`LayerQ8`]: a sequential int8 network whose shapes are checked at compile
//!   time by the trait bounds (`Chain<A, B, MID>` needs `A: LayerQ8<IN, MID>` and
//!   `B: LayerQ8<MID, OUT>`).
//! - [`file`](mod@file): a flat int8 weight file, written on the host and read by a `const fn`, so that an
//!   int8 network is a `static` in flash.
//!
//! - [`qat`](mod@qat): quantization-aware training, [`FakeQuant`] (activations, per tensor,
//!   moving-average ranges, straight-through gradient), [`QatDense`] and [`QatConv2d`]
//!   (weights, symmetric per channel), whose trained weights and observed ranges `quantize`
//!   then takes.
//!
//! - [`Conv2dQ8`]: a 2-d convolution in int8 (the same arithmetic over im2col columns, the
//!   padding reading the input's zero point), built by [`Conv2dQ8::quantize`]; and
//!   [`MaxPool2dQ8`], max pooling of the `i8` values (exact, scales unchanged).
//! - [`prefix`] and [`prefix_mut`]: the views the generated `NetQ8::forward_in` takes of its
//!   workspace's two buffers (each layer writes into the one its input is not in).
//!
//! Nothing here allocates (the file writer, with `alloc`, aside).

mod chain;
mod conv;
mod dense;
pub mod file;
pub mod fixed_point;
mod params;
pub mod qat;
mod qat_conv;
mod workspace;

pub use chain::{Chain, LayerQ8};
pub use conv::{Conv2dQ8, Int8Form, MaxPool2dQ8};
pub use dense::{DenseQ8, QuantError};
pub use fixed_point::Multiplier;
pub use params::{QuantParams, Range};
pub use qat::{FakeQuant, FakeQuantState, QatDense};
pub use qat_conv::QatConv2d;
pub use workspace::{prefix, prefix_mut};
