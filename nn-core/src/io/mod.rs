//! Weight files: saving and loading a network's parameters.
//!
//! Three formats, each generic over any [`Network`] (the loaders find every tensor through
//! [`Network::visit_tensors`] and write through
//! [`Params::as_mut_slice`](crate::Params::as_mut_slice)):
//!
//! - [`flat`]: a small little-endian format with a header (magic, version, dtype, parameter
//!   count, a table of tensor names and shapes, a CRC-32 checksum). Needs neither `std` nor an
//!   allocator: a firmware loads its weights from `include_bytes!` data in flash.
//! - `safetensors` (feature `safetensors`, needs `alloc`): the Hugging Face format that
//!   PyTorch, JAX and others write. A PyTorch `state_dict` saved with
//!   `safetensors.torch.save_file` loads directly.
//! - `serde` (feature `serde`): `Serialize` / `Deserialize` of the weights, for any serde
//!   format (JSON, postcard, bincode…).
//!
//! # Names and layouts
//!
//! Every format uses PyTorch's names and layouts: the tensor of layer `fc1` named `weight`
//! is `fc1.weight`, of shape `[out, in]`, stored row-major (C order); `fc1.bias` is `[out]`.
//! The network itself stores each matrix column-major (nalgebra's order), so its parameter
//! slice holds the *transpose* of PyTorch's bytes for a 2-D weight: the loaders and savers
//! convert element by element. In general a tensor of PyTorch shape `[d0, d1, …, dk]` is
//! held as the column-major `d0 × (d1·…·dk)` matrix (a convolution's `[CO, CI, KH, KW]`
//! weight as `CO × CI·KH·KW`), see [`storage_index`].
//!
//! # Loading never half-loads
//!
//! Every loader checks everything it reads (names, shapes, dtype, sizes, checksum) before it
//! writes the first parameter. On an error it returns a [`LoadError`] naming the tensor at
//! fault, and the network is unchanged. No input makes a loader panic (they are fuzzed).
//!
//! # What is saved
//!
//! Every tensor PyTorch's `state_dict()` holds for the same module, under the same name:
//!
//! - the trainable parameters (the [`Params`](crate::Params) slice, listed by
//!   [`Network::visit_tensors`]): `fc1.weight`, `fc1.bias`, `conv.weight`…;
//! - the state PyTorch keeps as buffers (listed by [`Network::visit_state_tensors`]): batch
//!   normalization's `bn1.running_mean` and `bn1.running_var` (of role
//!   [`Role::State`], the network's scalar type) and
//!   `bn1.num_batches_tracked` (of role [`Role::Count`], an integer:
//!   `int64` in PyTorch and safetensors).
//!
//! Layers without parameters (pooling, dropout, activations, flatten) have no tensor, as in
//! PyTorch. State that PyTorch does not save (dropout's generator) is not saved either.
//! Gradients are saved under the parameters' names by each format's `save_gradients` (or
//! `serde::Gradients`), to compare with PyTorch's `p.grad`.

pub mod flat;
pub mod flat_const;
#[cfg(feature = "safetensors")]
pub mod safetensors;
#[cfg(feature = "serde")]
pub mod serde;

use crate::{NamedTensor, Network, Real, Role, StateValue};
use core::fmt;

/// The element type of the tensors in a weight file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE 754 binary32, little-endian (`torch.float32`, safetensors `F32`).
    F32,
    /// IEEE 754 binary64, little-endian (`torch.float64`, safetensors `F64`).
    F64,
}

impl Dtype {
    /// The dtype of the scalar type `T`.
    pub const fn of<T: Real>() -> Dtype {
        if size_of::<T>() == 4 {
            Dtype::F32
        } else {
            Dtype::F64
        }
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    /// The name safetensors uses: `F32`, `F64`.
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A short text read from a file (a tensor name, a dtype, a parser's message), kept inline
/// so that errors need no allocator; longer texts are cut at a character boundary and shown
/// with a trailing `…`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Text {
    bytes: [u8; Text::CAPACITY],
    len: u8,
    cut: bool,
}

impl Text {
    /// Bytes kept.
    pub const CAPACITY: usize = 80;

    /// Keeps `s`, or its first [`Text::CAPACITY`] bytes (at a character boundary).
    pub fn new(s: &str) -> Text {
        let mut text = Text {
            bytes: [0; Text::CAPACITY],
            len: 0,
            cut: false,
        };
        let _ = fmt::Write::write_str(&mut text, s);
        text
    }

    /// Text from bytes that should be UTF-8: invalid sequences become `�`.
    pub fn lossy(bytes: &[u8]) -> Text {
        let mut text = Text::new("");
        for chunk in bytes.utf8_chunks() {
            let _ = fmt::Write::write_str(&mut text, chunk.valid());
            if !chunk.invalid().is_empty() {
                let _ = fmt::Write::write_str(&mut text, "\u{FFFD}");
            }
        }
        text
    }

    /// Formats `args` (a `format_args!`) into a text, cut as [`Text::new`] cuts.
    pub fn format(args: fmt::Arguments<'_>) -> Text {
        let mut text = Text::new("");
        let _ = fmt::Write::write_fmt(&mut text, args);
        text
    }

    /// The kept text.
    pub fn as_str(&self) -> &str {
        // `write_str` only ever appends whole characters.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// Whether the original text was longer than what is kept.
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Ok(());
        }
        let room = Text::CAPACITY - self.len as usize;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        let start = self.len as usize;
        self.bytes[start..start + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take as u8;
        if take < s.len() {
            self.cut = true;
        }
        Ok(())
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// A tensor shape read from a file, kept inline (up to [`Shape::MAX_DIMS`] dimensions are
/// shown; the rank is always exact).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: [u64; Shape::MAX_DIMS],
    rank: usize,
}

impl Shape {
    /// Dimensions kept.
    pub const MAX_DIMS: usize = 8;

    /// An empty shape (rank 0), to which [`Shape::push`] adds dimensions.
    pub const fn new() -> Shape {
        Shape {
            dims: [0; Shape::MAX_DIMS],
            rank: 0,
        }
    }

    /// A shape from its dimensions.
    pub fn from_dims<I: IntoIterator<Item = u64>>(dims: I) -> Shape {
        let mut shape = Shape::new();
        for d in dims {
            shape.push(d);
        }
        shape
    }

    /// Appends a dimension (counted in the rank even beyond [`Shape::MAX_DIMS`]).
    pub fn push(&mut self, dim: u64) {
        if self.rank < Shape::MAX_DIMS {
            self.dims[self.rank] = dim;
        }
        self.rank = self.rank.saturating_add(1);
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The kept dimensions (all of them when the rank is at most [`Shape::MAX_DIMS`]).
    pub fn dims(&self) -> &[u64] {
        &self.dims[..self.rank.min(Shape::MAX_DIMS)]
    }

    /// Whether this is exactly `expected`.
    pub fn matches(&self, expected: &[usize]) -> bool {
        self.rank == expected.len()
            && self
                .dims()
                .iter()
                .zip(expected)
                .all(|(&d, &e)| d == e as u64)
    }
}

impl Default for Shape {
    fn default() -> Self {
        Shape::new()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        if self.rank > Shape::MAX_DIMS {
            write!(f, ", … ({} dimensions)", self.rank)?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A shape as the network declares it, for messages: `[16, 1]`.
struct Dims<'a>(&'a [usize]);

impl fmt::Display for Dims<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// What the values of a tensor may be, for [`LoadError::OutOfRange`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRange {
    /// An `f32` (finite numbers up to about 3.4·10³⁸ in magnitude, or ±∞, NaN).
    F32,
    /// An `f64`.
    F64,
    /// A count: an integer from 0 to 2⁶³ − 1 (PyTorch's `int64`).
    Count,
}

impl ValueRange {
    /// The range of the scalar type `T`.
    pub const fn of<T: Real>() -> ValueRange {
        match Dtype::of::<T>() {
            Dtype::F32 => ValueRange::F32,
            Dtype::F64 => ValueRange::F64,
        }
    }
}

impl fmt::Display for ValueRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueRange::F32 => "f32",
            ValueRange::F64 => "f64",
            ValueRange::Count => "a count (an integer from 0 to 2⁶³ − 1)",
        })
    }
}

/// Why weights could not be loaded. The network is unchanged in every case.
///
/// `Display` names the tensor at fault where there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// The data does not start with the format's magic bytes: not a weight file of this
    /// format.
    BadMagic,
    /// The format version is not one this build reads.
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The data ends before the end that its header announces.
    Truncated {
        /// Bytes the header announces (or the least any valid file has).
        needed: u64,
        /// Bytes there are.
        available: u64,
    },
    /// The data goes on after the end that its header announces.
    TrailingBytes {
        /// Bytes the header announces.
        expected: u64,
        /// Bytes there are.
        found: u64,
    },
    /// The file's elements are not of the network's scalar type.
    Dtype {
        /// The tensor, when the format gives each tensor a dtype.
        tensor: Option<NamedTensor>,
        /// The network's dtype.
        expected: Dtype,
        /// What the file says (`F16`, `I64`, `unknown code 7`…).
        found: Text,
    },
    /// The file holds a different number of values than the network saves (its
    /// [`Network::PARAM_COUNT`] parameters and its state tensors' values; in the flat format,
    /// value slots, where a count takes 8 bytes).
    ParameterCount {
        /// The network's.
        expected: usize,
        /// The file's.
        found: u64,
    },
    /// The file holds a different number of tensors than the network.
    TensorCount {
        /// The network's.
        expected: usize,
        /// The file's.
        found: u64,
    },
    /// A tensor of the network is not in the file.
    Missing {
        /// The network's tensor.
        tensor: NamedTensor,
        /// The name it was looked up under (differs from the tensor's own name when the
        /// loader renames).
        file_name: Text,
    },
    /// Where the network has a tensor, the file (which lists tensors in order) has one of
    /// another name.
    NameMismatch {
        /// The network's tensor at that position.
        tensor: NamedTensor,
        /// The file's name at that position.
        found: Text,
    },
    /// The file has a tensor the network does not have (strict loading).
    Unexpected {
        /// Its name in the file.
        name: Text,
    },
    /// The file has the same tensor twice.
    Duplicate {
        /// Its name.
        name: Text,
    },
    /// A tensor has another shape in the file than in the network.
    Shape {
        /// The network's tensor (its `info.shape` is the shape expected).
        tensor: NamedTensor,
        /// The file's shape.
        found: Shape,
    },
    /// A tensor has another number of values in the file than its shape needs.
    ValueCount {
        /// The network's tensor.
        tensor: NamedTensor,
        /// Values the shape needs.
        expected: usize,
        /// Values in the file (a lower bound when there were too many: counting stopped).
        found: usize,
    },
    /// A value does not fit the tensor: a number beyond the range of the network's scalar
    /// type (`1e50` for an `f32` network), a negative or fractional count.
    OutOfRange {
        /// The network's tensor.
        tensor: NamedTensor,
        /// The value, as the file gives it.
        value: Text,
        /// What the tensor holds.
        expected: ValueRange,
    },
    /// The data is corrupt: its checksum is not the one stored.
    Checksum {
        /// Stored in the file.
        stored: u32,
        /// Computed from the data.
        computed: u32,
    },
    /// The file's structure is invalid (a header that is not valid JSON, offsets out of
    /// range, a reserved byte that is not zero…).
    Malformed {
        /// What is wrong.
        reason: &'static str,
        /// Details from the file or its parser, if any.
        detail: Text,
    },
}

impl LoadError {
    /// A [`LoadError::Malformed`] with no detail.
    pub(crate) fn malformed(reason: &'static str) -> LoadError {
        LoadError::Malformed {
            reason,
            detail: Text::new(""),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::BadMagic => {
                f.write_str("not a weight file of this format (wrong magic bytes)")
            }
            LoadError::UnsupportedVersion { found, supported } => write!(
                f,
                "format version {found} is not supported (this build reads versions up to {supported})"
            ),
            LoadError::Truncated { needed, available } => write!(
                f,
                "truncated data: {available} bytes, but the header announces {needed}"
            ),
            LoadError::TrailingBytes { expected, found } => write!(
                f,
                "{found} bytes, but the header announces {expected}: the data goes on after its end"
            ),
            LoadError::Dtype {
                tensor: Some(tensor),
                expected,
                found,
            } => write!(
                f,
                "tensor `{tensor}` has dtype {found} in the file, but the network computes in {expected}"
            ),
            LoadError::Dtype {
                tensor: None,
                expected,
                found,
            } => write!(
                f,
                "the file holds {found} values, but the network computes in {expected}"
            ),
            LoadError::ParameterCount { expected, found } => write!(
                f,
                "the file holds {found} values, but the network saves {expected}"
            ),
            LoadError::TensorCount { expected, found } => write!(
                f,
                "the file holds {found} tensors, but the network has {expected}"
            ),
            LoadError::Missing { tensor, file_name } => {
                if file_name.as_str() == Text::format(format_args!("{tensor}")).as_str() {
                    write!(f, "tensor `{tensor}` is missing from the file")
                } else {
                    write!(
                        f,
                        "tensor `{tensor}` is missing from the file (looked up as `{file_name}`)"
                    )
                }
            }
            LoadError::NameMismatch { tensor, found } => write!(
                f,
                "the file has a tensor `{found}` where the network has `{tensor}`"
            ),
            LoadError::Unexpected { name } => write!(
                f,
                "the file has a tensor `{name}` that the network does not have"
            ),
            LoadError::Duplicate { name } => write!(f, "the file has tensor `{name}` twice"),
            LoadError::Shape { tensor, found } => write!(
                f,
                "tensor `{tensor}` has shape {found} in the file, but {} in the network",
                Dims(tensor.info.shape)
            ),
            LoadError::ValueCount {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "tensor `{tensor}` has {found} values in the file, but its shape {} needs {expected}",
                Dims(tensor.info.shape)
            ),
            LoadError::OutOfRange {
                tensor,
                value,
                expected,
            } => write!(
                f,
                "tensor `{tensor}` has the value {value} in the file, out of range for {expected}"
            ),
            LoadError::Checksum { stored, computed } => write!(
                f,
                "corrupt data: checksum {computed:#010x} does not match the stored {stored:#010x}"
            ),
            LoadError::Malformed { reason, detail } => {
                if detail.as_str().is_empty() {
                    write!(f, "malformed file: {reason}")
                } else {
                    write!(f, "malformed file: {reason}: {detail}")
                }
            }
        }
    }
}

impl core::error::Error for LoadError {}

/// Why weights could not be saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A tensor cannot be described in the format (a name or dimension too large for it).
    Unrepresentable {
        /// The tensor.
        tensor: NamedTensor,
        /// What does not fit.
        reason: &'static str,
    },
    /// The format's encoder failed.
    Encoding(Text),
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::BufferTooSmall { needed, available } => write!(
                f,
                "the output buffer holds {available} bytes, but the weights need {needed}"
            ),
            SaveError::Unrepresentable { tensor, reason } => {
                write!(f, "tensor `{tensor}` cannot be saved: {reason}")
            }
            SaveError::Encoding(message) => write!(f, "encoding failed: {message}"),
        }
    }
}

impl core::error::Error for SaveError {}

/// Where the element at row-major (C order, PyTorch's) position `p` of a tensor of PyTorch
/// shape `dims` is held in the network's parameter slice, relative to the tensor's offset.
///
/// Every layer stores a tensor `[d0, d1, …, dk]` as the column-major `d0 × (d1·…·dk)` matrix
/// of PyTorch's `tensor.view(d0, -1)`: a dense weight `[out, in]` is nalgebra's column-major
/// `out × in` matrix, so element `(r, c)`, at `p = r·in + c` in PyTorch's bytes, is at
/// `r + c·out` here; a convolution's `[CO, CI, KH, KW]` is the `CO × (CI·KH·KW)` matrix whose
/// column `ci·KH·KW + kh·KW + kw` holds `W[:, ci, kh, kw]`; a vector is stored as it is.
/// `p` must be below the product of `dims`.
pub fn storage_index(dims: &[usize], p: usize) -> usize {
    let Some((&rows, _)) = dims.split_first() else {
        return p;
    };
    if rows == 0 {
        return 0;
    }
    let columns = dims[1..].iter().product::<usize>();
    let (r, c) = (p / columns.max(1), p % columns.max(1));
    r + c * rows
}

/// Where a saved tensor's values are: in the parameter slice, or the `index`-th state tensor
/// of [`Network::visit_state_tensors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    Parameter,
    State(usize),
}

/// Calls `visit` with every saved tensor of `N`, parameters then state, with its index in
/// that order and its place, stopping at the first error it returns.
pub(crate) fn try_visit_saved<T: Real, N: Network<T>, E>(
    mut visit: impl FnMut(usize, NamedTensor, Place) -> Result<(), E>,
) -> Result<(), E> {
    let mut result = Ok(());
    let mut index = 0;
    N::visit_tensors(&mut |tensor| {
        if result.is_ok() {
            result = visit(index, tensor, Place::Parameter);
        }
        index += 1;
    });
    let mut state = 0;
    N::visit_state_tensors(&mut |tensor| {
        if result.is_ok() {
            result = visit(index, tensor, Place::State(state));
        }
        index += 1;
        state += 1;
    });
    result
}

/// Number of tensors `N` saves: its parameter tensors and its state tensors.
pub fn tensor_count<T: Real, N: Network<T>>() -> usize {
    let mut count = 0;
    N::visit_tensors(&mut |_| count += 1);
    N::visit_state_tensors(&mut |_| count += 1);
    count
}

/// Number of values `N` saves: [`Network::PARAM_COUNT`] and its state tensors' values.
pub fn value_count<T: Real, N: Network<T>>() -> usize {
    let mut count = N::PARAM_COUNT;
    N::visit_state_tensors(&mut |t| count += t.info.len());
    count
}

/// Value `p` (row-major) of a saved tensor of `net` of role other than [`Role::Count`], as
/// `T`: a parameter from `values` (the parameter slice, or a gradient struct's), or a state
/// value. (A count reads as its value converted to `T`.)
pub(crate) fn real_value<T: Real, N: Network<T>>(
    net: &N,
    values: &[T],
    tensor: &NamedTensor,
    place: Place,
    p: usize,
) -> T {
    match place {
        Place::Parameter => values[tensor.offset + storage_index(tensor.info.shape, p)],
        Place::State(index) => match net.state_value(index, p) {
            StateValue::Real(v) => v,
            StateValue::Count(n) => T::of(n as f64),
        },
    }
}

/// The value of a saved count tensor of `net` (0 for any other tensor).
pub(crate) fn count_value<T: Real, N: Network<T>>(net: &N, place: Place) -> u64 {
    match place {
        Place::State(index) => match net.state_value(index, 0) {
            StateValue::Count(n) => n,
            StateValue::Real(_) => 0,
        },
        Place::Parameter => 0,
    }
}

/// Writes value `p` (row-major) of a saved tensor of role other than [`Role::Count`].
pub(crate) fn set_real_value<T: Real, N: Network<T>>(
    net: &mut N,
    tensor: &NamedTensor,
    place: Place,
    p: usize,
    value: T,
) {
    match place {
        Place::Parameter => {
            net.as_mut_slice()[tensor.offset + storage_index(tensor.info.shape, p)] = value;
        }
        Place::State(index) => net.set_state_value(index, p, StateValue::Real(value)),
    }
}

/// Whether a saved tensor is an integer count (role [`Role::Count`]).
pub(crate) fn is_count(tensor: &NamedTensor) -> bool {
    tensor.info.role == Role::Count
}

/// Whether `name` is `layer.tensor` for `tensor` (compared piecewise, without allocating).
pub(crate) fn is_named(tensor: &NamedTensor, name: &[u8]) -> bool {
    let layer = tensor.layer.as_bytes();
    name.len() == layer.len() + 1 + tensor.info.name.len()
        && name.starts_with(layer)
        && name[layer.len()] == b'.'
        && name.ends_with(tensor.info.name.as_bytes())
}

/// `x` as `T`: bit for bit when `T` is `f32` (a NaN keeps its payload and its quiet bit,
/// which a detour through `f64` loses in some builds), widened exactly when `T` is `f64`.
#[inline]
pub(crate) fn from_f32<T: Real>(x: f32) -> T {
    if Dtype::of::<T>() == Dtype::F32 {
        // SAFETY: `Real` is sealed to `f32` and `f64`; a 4-byte `Real` is `f32`.
        unsafe { core::mem::transmute_copy::<f32, T>(&x) }
    } else {
        T::of(x as f64)
    }
}

/// `x` as an `f32`: bit for bit when `T` is `f32`, rounded to nearest when `T` is `f64`.
#[inline]
pub(crate) fn to_f32<T: Real>(x: T) -> f32 {
    if Dtype::of::<T>() == Dtype::F32 {
        // SAFETY: as in `from_f32`: `T` is `f32`.
        unsafe { core::mem::transmute_copy::<T, f32>(&x) }
    } else {
        x.to_f64() as f32
    }
}

/// Decodes a little-endian element of `dtype` (`bytes.len() == dtype.size()`) as `T`, bit for
/// bit when the types agree, rounding to nearest when narrowing.
#[inline]
pub(crate) fn decode<T: Real>(bytes: &[u8], dtype: Dtype) -> T {
    match dtype {
        Dtype::F32 => {
            let mut b = [0; 4];
            b.copy_from_slice(&bytes[..4]);
            from_f32(f32::from_le_bytes(b))
        }
        Dtype::F64 => {
            let mut b = [0; 8];
            b.copy_from_slice(&bytes[..8]);
            T::of(f64::from_le_bytes(b))
        }
    }
}

/// Encodes `x` as a little-endian element of `dtype` into `out` (`out.len() == dtype.size()`),
/// bit for bit when the types agree.
#[inline]
pub(crate) fn encode<T: Real>(x: T, dtype: Dtype, out: &mut [u8]) {
    match dtype {
        Dtype::F32 => out[..4].copy_from_slice(&to_f32(x).to_le_bytes()),
        Dtype::F64 => out[..8].copy_from_slice(&x.to_f64().to_le_bytes()),
    }
}

/// Writes a real tensor (a parameter or a state tensor of role [`Role::State`]) held as
/// little-endian row-major `bytes` of `dtype` into `net`. `bytes` must hold exactly the
/// tensor.
pub(crate) fn write_tensor<T: Real, N: Network<T>>(
    net: &mut N,
    tensor: &NamedTensor,
    place: Place,
    bytes: &[u8],
    dtype: Dtype,
) {
    let size = dtype.size();
    if place == Place::Parameter {
        // The common case, without a dispatch per element.
        let dest = &mut net.as_mut_slice()[tensor.range()];
        for (p, element) in bytes.chunks_exact(size).enumerate() {
            dest[storage_index(tensor.info.shape, p)] = decode(element, dtype);
        }
        return;
    }
    for (p, element) in bytes.chunks_exact(size).enumerate() {
        set_real_value(net, tensor, place, p, decode(element, dtype));
    }
}

/// Writes a real tensor of `net` (a parameter read from `values`, the parameter slice or a
/// gradient struct's, or a state tensor) as little-endian row-major bytes of `dtype` into
/// `out` (exactly the tensor's size).
pub(crate) fn read_tensor<T: Real, N: Network<T>>(
    net: &N,
    values: &[T],
    tensor: &NamedTensor,
    place: Place,
    out: &mut [u8],
    dtype: Dtype,
) {
    let size = dtype.size();
    for (p, element) in out.chunks_exact_mut(size).enumerate() {
        encode(real_value(net, values, tensor, place, p), dtype, element);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_index_is_column_major_for_matrices() {
        // [2, 3] row-major: (0,0) (0,1) (0,2) (1,0) (1,1) (1,2); column-major offsets r + 2c.
        let got: [usize; 6] = core::array::from_fn(|p| storage_index(&[2, 3], p));
        assert_eq!(got, [0, 2, 4, 1, 3, 5]);
        let vector: [usize; 4] = core::array::from_fn(|p| storage_index(&[4], p));
        assert_eq!(vector, [0, 1, 2, 3]);
        // A convolution's [CO = 2, CI = 2, KH = 1, KW = 3]: the 2 × 6 matrix of view(2, -1),
        // column-major: (o, i, h, w) -> o + 2·(i·3 + h·3 + w).
        let conv: [usize; 12] = core::array::from_fn(|p| storage_index(&[2, 2, 1, 3], p));
        let expected: [usize; 12] = core::array::from_fn(|p| {
            let (o, i, w) = (p / 6, (p / 3) % 2, p % 3);
            o + 2 * (i * 3 + w)
        });
        assert_eq!(conv, expected);
        assert_eq!(storage_index(&[], 0), 0);
    }

    #[test]
    fn text_keeps_short_and_cuts_long_at_a_boundary() {
        assert_eq!(Text::new("fc1.weight").as_str(), "fc1.weight");
        let long = "é".repeat(100);
        let text = Text::new(&long);
        assert!(text.is_cut());
        assert_eq!(text.as_str().len(), Text::CAPACITY);
        assert!(text.as_str().chars().all(|c| c == 'é'));
        assert_eq!(Text::lossy(b"a\xffb").as_str(), "a\u{FFFD}b");
    }

    #[test]
    fn shape_displays_and_matches() {
        let shape = Shape::from_dims([3, 5]);
        assert!(shape.matches(&[3, 5]));
        assert!(!shape.matches(&[5, 3]));
        assert!(!shape.matches(&[3, 5, 1]));
        let mut big = Shape::new();
        for _ in 0..10 {
            big.push(1);
        }
        assert_eq!(big.rank(), 10);
        assert!(!big.matches(&[1; 8]));
        let shown = Text::format(format_args!("{}", Shape::from_dims([3, 5])));
        assert_eq!(shown.as_str(), "[3, 5]");
    }
}
