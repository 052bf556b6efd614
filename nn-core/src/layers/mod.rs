//! Built-in layers, one file each: parameters, forward, backward and tests side by side.
//!
//! | layer | PyTorch |
//! |---|---|
//! | [`Dense`] | `nn.Linear` |
//! | [`Conv2d`], [`Conv1d`] | `nn.Conv2d`, `nn.Conv1d` (zero padding, stride, dilation) |
//! | [`MaxPool2d`], [`MaxPool1d`] | `nn.MaxPool2d`, `nn.MaxPool1d` (no padding) |
//! | [`AvgPool2d`], [`AvgPool1d`] | `nn.AvgPool2d`, `nn.AvgPool1d` (no padding) |
//! | [`GlobalAvgPool`] | `nn.AdaptiveAvgPool2d(1)` + `flatten` |
//! | [`BatchNorm`] | `nn.BatchNorm1d`, `nn.BatchNorm2d` |
//! | [`Dropout`] | `nn.Dropout` |
//! | [`Rnn`], [`Gru`], [`Lstm`] | `nn.RNN`, `nn.GRU`, `nn.LSTM` (one layer, `batch_first`) |
//! | [`LayerNorm`] | `nn.LayerNorm` over the last dimension |
//! | [`GroupNorm`] | `nn.GroupNorm` |
//! | [`MultiHeadAttention`] | `nn.MultiheadAttention` as self-attention (`batch_first`) |
//! | [`Embedding`] | `nn.Embedding` |
//! | [`SinusoidalPositions`], [`LearnedPositions`] | added positional encodings |
//! | [`PositionWise`] | a layer at every position, as `nn.Linear` on `(N, S, D)` |
//!
//! Samples are stored flat in PyTorch's contiguous order: `[C, L]` at `c·L + l`, `[C, H, W]`
//! at `c·H·W + h·W + w`, a sequence `[S, D]` at `t·D + d`; a batch holds one sample per
//! column. Convolution and pooling
//! geometries are zero-sized types ([`geometry`]) whose constants the layers read at compile
//! time.

mod attention;
mod avg_pool;
mod batch_norm;
mod conv;
mod dense;
mod dropout;
mod embedding;
pub mod geometry;
mod group_norm;
mod gru;
mod layer_norm;
mod lstm;
mod max_pool;
mod position_wise;
mod positions;
mod recurrent;
mod rnn;

pub use attention::{AttentionCache, MultiHeadAttention};
pub use avg_pool::{AvgPool1d, AvgPool2d, GlobalAvgPool};
pub use batch_norm::{
    BatchNorm, BatchNormCache, BatchNormState, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS,
};
#[cfg(test)]
pub(crate) use conv::for_each_tap;
pub use conv::{Conv1d, Conv2d};
pub(crate) use conv::{
    backward_batch as conv_backward_batch, check_sizes as check_conv_sizes,
    forward_batch as conv_forward_batch, tile as conv_tile,
};
pub use dense::Dense;
pub use dropout::{Dropout, DropoutState};
pub use embedding::Embedding;
pub(crate) use geometry::check_pool_sizes;
pub use geometry::{
    ConvGeometry1d, ConvGeometry2d, Geometry1d, Geometry2d, PoolGeometry1d, PoolGeometry1dOf,
    PoolGeometry2d, PoolGeometry2dOf,
};
pub use group_norm::{GroupNorm, GroupNormCache};
pub use gru::{Gru, GruCache, GruState};
pub use layer_norm::{LayerNorm, LayerNormCache};
pub use lstm::{Lstm, LstmCache, LstmState};
pub use max_pool::{MaxPool1d, MaxPool2d, MaxPoolCache};
pub use position_wise::PositionWise;
pub use positions::{LEARNED_POSITIONS_INIT_STD, LearnedPositions, SinusoidalPositions};
pub use rnn::{Rnn, RnnState};
