//! Weights in the program, checked at compile time: a network built from a [flat](super::flat)
//! weight file by a `const fn`, so that it can be a `static` in flash.
//!
//! ```ignore
//! // In flash (`.rodata`), built while compiling: no loader in the program, no RAM copy.
//! static NET: Sine<f32> = nn::include_flat!("../weights/sine.nnw");
//! let y = NET.forward(&x);
//! ```
//!
//! [`include_flat!`](crate::include_flat) reads the file with `include_bytes!` and evaluates
//! [`load`] on it in a `const` block. `load` makes every check the run-time loader
//! [`flat::load`](super::flat::load) makes, in the same order, and fails with the same message,
//! so a truncated or corrupt file, a tensor of another name, kind or shape, a missing or extra
//! tensor, or the wrong dtype is a *compile* error that names the tensor:
//!
//! ```text
//! error[E0080]: evaluation panicked: tensor `fc2.weight` has shape [8, 16] in the file, but [16, 16] in the network
//! ```
//!
//! The check and the decoding run in the compiler; the program holds the finished network and
//! none of the parser, its messages or the file's header.
//!
//! The network's tensors come from [`ConstTensors`], which `network!` implements: the same
//! lists, in the same order, as [`Network::visit_tensors`](crate::Network::visit_tensors) and
//! [`Network::visit_state_tensors`](crate::Network::visit_state_tensors), but as constants,
//! since a `const fn` can call no trait method. Like the run-time loader, this loads the
//! trainable parameters *and* the saved state (batch normalization's `running_mean`,
//! `running_var` and `num_batches_tracked`), which the file must hold: the network built here
//! equals, bit for bit, the one `flat::load` loads from the same file. As a `const fn` cannot
//! call [`Layer::set_state_value`](crate::Layer::set_state_value), it writes each state
//! tensor's bytes where the layer's [`Layer::STATE_OFFSETS`](crate::Layer::STATE_OFFSETS) says
//! the tensor is; a network with a layer of your own that saves state tensors but keeps the
//! default `STATE_OFFSETS` (no places) loads at run time, but is refused here, after the
//! file's checks:
//!
//! ```text
//! error[E0080]: evaluation panicked: state tensor `scale.running_mean` has no place in its layer's state: give the layer `Layer::STATE_OFFSETS` to build the network at compile time, or load it at run time with `flat::load`
//! ```
//!
//! The compiler interprets this code, slowly: a file of a few kilobytes costs nothing, but the
//! 940 KB of a 784 → 256 → 128 → 10 network took 18 s of CPU time to build (and built the same
//! network, bit for bit, as the run-time loader). `include_flat!` allows rustc's
//! `long_running_const_eval` lint, which would otherwise stop such a build: the parser's loops
//! all run over the file's bytes, so a long evaluation is no endless loop.

// The error holds its message inline (a `const fn` cannot allocate) and is built at compile
// time: its size costs nothing where it is meant to be used.
#![allow(clippy::result_large_err)]

use super::Dtype;
use super::flat::{HEADER_LEN, KIND_COUNT, KIND_PARAMETER, KIND_STATE, MAGIC, VERSION};
use crate::{Params, Real, Role, StateOffsets, TensorInfo};
use core::fmt;

/// One layer's tensors, for [`ConstTensors::LAYERS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerTensors {
    /// The layer's field name: `fc1`.
    pub layer: &'static str,
    /// Its tensors, in [`Params::as_slice`] order (the layer's
    /// [`Layer::TENSORS`](crate::Layer::TENSORS)).
    pub tensors: &'static [TensorInfo],
}

/// One layer's saved state, for [`ConstTensors::STATE`]: its state tensors and where they are
/// in the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerState {
    /// The layer's field name: `bn`.
    pub layer: &'static str,
    /// Its state tensors, in order (the layer's
    /// [`Layer::STATE_TENSORS`](crate::Layer::STATE_TENSORS)).
    pub tensors: &'static [TensorInfo],
    /// Byte offset of the layer's [`State`](crate::Layer::State) in the network:
    /// `offset_of!(Net<T>, state.bn)`.
    pub at: usize,
    /// Bytes of the layer's `State`.
    pub size: usize,
    /// Byte offset of each tensor in the layer's `State` (the layer's
    /// [`Layer::STATE_OFFSETS`](crate::Layer::STATE_OFFSETS)); empty if the layer places none.
    pub offsets: &'static [usize],
}

impl LayerState {
    /// Layer `layer`'s state tensors `tensors`, placed in its `State` (`S`) by `offsets`, that
    /// state at byte `at` of the network: what `network!` generates for each stateful layer.
    pub const fn new<S>(
        layer: &'static str,
        tensors: &'static [TensorInfo],
        at: usize,
        offsets: StateOffsets<S>,
    ) -> LayerState {
        LayerState {
            layer,
            tensors,
            at,
            size: offsets.size(),
            offsets: offsets.offsets(),
        }
    }
}

/// A network's tensors as constants, layer by layer: its parameters in parameter-slice order,
/// what [`Network::visit_tensors`](crate::Network::visit_tensors) visits, and its saved state,
/// what [`Network::visit_state_tensors`](crate::Network::visit_state_tensors) visits, usable
/// in a `const fn`. Every network `network!` generates implements it.
///
/// # Safety
///
/// [`load`] writes a file's bytes into the state that [`STATE`](ConstTensors::STATE) places:
/// for every entry whose `offsets` is not empty, the bytes `at .. at + size` of `Self` must hold a value of
/// which every bit pattern is valid (a layer's `State` whose
/// [`StateOffsets::new`](crate::StateOffsets::new) says so). `load` checks that each tensor
/// ends within those bytes and those within `Self`.
pub unsafe trait ConstTensors {
    /// Every layer with parameters, in declaration order.
    const LAYERS: &'static [LayerTensors];

    /// Every layer with state, in declaration order; the default (a network without state)
    /// is none.
    const STATE: &'static [LayerState] = &[];
}

/// Builds a network from `$path`, a weight file in the flat format, at compile time: a
/// `const` expression, so `static NET: Net<f32> = nn::include_flat!("net.nnw");` puts the
/// network in flash. The path is relative to the file that invokes the macro, as for
/// `include_bytes!`.
///
/// A file that does not fit the network is a compile error naming the tensor at fault (see
/// [`load`] for the checks).
#[macro_export]
macro_rules! include_flat {
    ($path:expr $(,)?) => {{
        // The parser always ends (its loops run over the file's bytes), so a big file that
        // takes long is no sign of an endless loop.
        #[allow(long_running_const_eval)]
        let net = const {
            match $crate::io::flat_const::load(::core::include_bytes!($path)) {
                ::core::result::Result::Ok(net) => net,
                ::core::result::Result::Err(error) => ::core::panic!("{}", error.message()),
            }
        };
        net
    }};
}

/// The network `N` with the weights in `bytes` (the flat format, as
/// [`flat::save`](super::flat::save) writes it: the parameters, then the saved state), after
/// the checks of [`flat::load`](super::flat::load); the error's message is that loader's.
/// Then, for a network that `flat::load` would load, one more check: every state tensor must
/// have a place ([`Layer::STATE_OFFSETS`](crate::Layer::STATE_OFFSETS)).
///
/// A `const fn`, for `const` and `static` items (through [`include_flat!`](crate::include_flat)).
/// At run time it works too, but builds the network by value, on the stack: there, load into
/// existing storage with [`flat::load`](super::flat::load).
pub const fn load<T: Real, N: Params<T> + ConstTensors>(bytes: &[u8]) -> Result<N, ConstLoadError> {
    let size = size_of::<T>();
    let values = match check(bytes, Dtype::of::<T>(), N::LAYERS, N::STATE, N::LEN) {
        Ok(values) => values,
        Err(error) => return Err(error),
    };
    if size_of::<N>() < N::LEN * size {
        return Err(ConstLoadError::new(
            "the network is smaller than its parameter count says",
        ));
    }
    if let Err(error) = check_places(N::STATE, size, size_of::<N>()) {
        return Err(error);
    }
    let mut net = N::ZERO;
    let base = (&raw mut net).cast::<u8>();
    // The values are the parameters' in table order, then the state's: `check` matched them.
    let mut at = 0;
    let mut offset = 0;
    let mut l = 0;
    while l < N::LAYERS.len() {
        let tensors = N::LAYERS[l].tensors;
        let mut t = 0;
        while t < tensors.len() {
            // SAFETY: by `Params`' contract `N` starts with `N::LEN` contiguous `T`s (checked
            // to fit just above), which the tensors cover (checked by `check`); every byte
            // pattern of the `f32` or `f64` that `T` is, is a valid value.
            unsafe {
                place(
                    base.add(offset * size),
                    tensors[t].shape,
                    size,
                    values,
                    &mut at,
                )
            };
            offset += tensors[t].len();
            t += 1;
        }
        l += 1;
    }
    let mut l = 0;
    while l < N::STATE.len() {
        let state = N::STATE[l];
        let mut t = 0;
        while t < state.tensors.len() {
            let count = matches!(state.tensors[t].role, Role::Count);
            // A count is one `u64`, whatever its shape says, as `flat::load` reads it.
            let (shape, size): (&[usize], usize) = if count {
                (&[], 8)
            } else {
                (state.tensors[t].shape, size)
            };
            // SAFETY: the tensor ends within the layer's state, and the state within `N`
            // (`check_places`), where every bit pattern is valid (`ConstTensors`' contract).
            unsafe {
                place(
                    base.add(state.at + state.offsets[t]),
                    shape,
                    size,
                    values,
                    &mut at,
                )
            };
            t += 1;
        }
        l += 1;
    }
    Ok(net)
}

/// Writes the tensor of PyTorch shape `shape` whose row-major little-endian elements of `size`
/// bytes are at `values[*at..]`, to `to` as the column-major matrix the network stores
/// (`storage_index`), each element in the target's byte order; advances `*at` past them.
///
/// # Safety
///
/// The tensor's bytes from `to` are within one value in which any bit pattern is valid.
const unsafe fn place(to: *mut u8, shape: &[usize], size: usize, values: &[u8], at: &mut usize) {
    let (rows, columns) = matrix_view(shape);
    let mut r = 0;
    while r < rows {
        let mut c = 0;
        while c < columns {
            let element = (r + c * rows) * size;
            let mut b = 0;
            while b < size {
                // The file is little-endian; values are stored in the target's order.
                let from = if cfg!(target_endian = "little") {
                    *at + b
                } else {
                    *at + size - 1 - b
                };
                // SAFETY: within the tensor's bytes, by the caller's promise.
                unsafe { to.add(element + b).write(values[from]) };
                b += 1;
            }
            *at += size;
            c += 1;
        }
        r += 1;
    }
}

/// Checks that each state tensor of `state` (of values of `size` bytes, a count of 8) ends
/// within its layer's state, and that state within the network of `network_size` bytes, so
/// that [`load`] writes only there; and that every state tensor has a place.
const fn check_places(
    state: &[LayerState],
    size: usize,
    network_size: usize,
) -> Result<(), ConstLoadError> {
    let mut l = 0;
    while l < state.len() {
        let LayerState {
            layer,
            tensors,
            at,
            size: state_size,
            offsets,
        } = state[l];
        if offsets.len() > tensors.len() {
            let mut m = Message::new();
            m.push("layer `");
            m.push(layer);
            m.push("`'s `Layer::STATE_OFFSETS` places more tensors than its `Layer::STATE_TENSORS` lists");
            return Err(ConstLoadError { message: m });
        }
        if at > network_size || state_size > network_size - at {
            let mut m = Message::new();
            m.push("the state of layer `");
            m.push(layer);
            m.push("` is not within the network");
            return Err(ConstLoadError { message: m });
        }
        let mut t = 0;
        while t < tensors.len() {
            let tensor = &tensors[t];
            if t >= offsets.len() {
                let mut m = Message::new();
                m.push("state tensor `");
                m.push_tensor(layer, tensor);
                m.push(
                    "` has no place in its layer's state: give the layer `Layer::STATE_OFFSETS` \
                     to build the network at compile time, or load it at run time with \
                     `flat::load`",
                );
                return Err(ConstLoadError { message: m });
            }
            // Checked: a wrapped product would let a huge tensor pass.
            let bytes = if matches!(tensor.role, Role::Count) {
                Some(8)
            } else {
                checked_bytes(tensor.shape, size)
            };
            let fits = match bytes {
                Some(bytes) => offsets[t] <= state_size && bytes <= state_size - offsets[t],
                None => false,
            };
            if !fits {
                let mut m = Message::new();
                m.push("state tensor `");
                m.push_tensor(layer, tensor);
                m.push("` does not fit in its layer's state at the offset `Layer::STATE_OFFSETS` gives");
                return Err(ConstLoadError { message: m });
            }
            t += 1;
        }
        l += 1;
    }
    Ok(())
}

/// Bytes of a tensor of `shape` with elements of `size` bytes, if they fit a `usize`.
const fn checked_bytes(shape: &[usize], size: usize) -> Option<usize> {
    let mut bytes = size;
    let mut i = 0;
    while i < shape.len() {
        bytes = match bytes.checked_mul(shape[i]) {
            Some(bytes) => bytes,
            None => return None,
        };
        i += 1;
    }
    Some(bytes)
}

/// A tensor of PyTorch shape `[d0, d1, …]` as the `d0 × (d1·…)` matrix the network stores
/// column-major (see [`storage_index`](super::storage_index)): `(rows, columns)`.
const fn matrix_view(shape: &[usize]) -> (usize, usize) {
    if shape.is_empty() {
        return (1, 1);
    }
    let mut columns = 1;
    let mut i = 1;
    while i < shape.len() {
        columns *= shape[i];
        i += 1;
    }
    (shape[0], columns)
}

/// Why a flat weight file does not fit a network: the message of the run-time loader's
/// [`LoadError`](super::LoadError), built in a `const fn`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConstLoadError {
    message: Message,
}

impl ConstLoadError {
    const fn new(message: &str) -> ConstLoadError {
        let mut m = Message::new();
        m.push(message);
        ConstLoadError { message: m }
    }

    /// What is wrong, naming the tensor at fault where there is one.
    pub const fn message(&self) -> &str {
        self.message.as_str()
    }
}

impl fmt::Display for ConstLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl fmt::Debug for ConstLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.message(), f)
    }
}

impl core::error::Error for ConstLoadError {}

/// A message built in a `const fn` (where `format!` is not available): up to
/// [`Message::CAPACITY`] bytes, cut at a character boundary with a trailing `…`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Message {
    bytes: [u8; Message::CAPACITY],
    len: usize,
    /// Cut: nothing more is appended.
    full: bool,
}

impl Message {
    const CAPACITY: usize = 320;
    const ELLIPSIS: &str = "…";

    const fn new() -> Message {
        Message {
            bytes: [0; Message::CAPACITY],
            len: 0,
            full: false,
        }
    }

    const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(s) => s,
            // Not reached: only whole characters are ever pushed.
            Err(_) => "",
        }
    }

    /// Appends `s`, or as much of it as fits (whole characters) and `…`.
    const fn push(&mut self, s: &str) {
        if self.full {
            return;
        }
        // Room is always kept for the ellipsis.
        let room = Message::CAPACITY - Message::ELLIPSIS.len() - self.len;
        let cut = s.len() > room;
        let take = if cut { char_floor(s, room) } else { s.len() };
        self.push_bytes(s.as_bytes(), take);
        if cut {
            self.push_bytes(Message::ELLIPSIS.as_bytes(), Message::ELLIPSIS.len());
            self.full = true;
        }
    }

    /// Appends the first `take` bytes of `bytes` (whole characters, for which there is room).
    const fn push_bytes(&mut self, bytes: &[u8], take: usize) {
        let mut i = 0;
        while i < take {
            self.bytes[self.len + i] = bytes[i];
            i += 1;
        }
        self.len += take;
    }

    /// Appends `n` in decimal, as `{n}` formats it.
    const fn push_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push_ascii(digits.split_at(i).1);
    }

    /// Appends `n` as `{n:#010x}` formats it: `0x` and eight lowercase hex digits.
    const fn push_hex_u32(&mut self, n: u32) {
        let mut digits = *b"0x00000000";
        let mut i = 0;
        while i < 8 {
            let nibble = ((n >> (28 - 4 * i)) & 0xF) as u8;
            digits[2 + i] = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
            i += 1;
        }
        self.push_ascii(&digits);
    }

    const fn push_ascii(&mut self, ascii: &[u8]) {
        if let Ok(s) = core::str::from_utf8(ascii) {
            self.push(s);
        }
    }

    /// Appends a name read from the file as [`Text::lossy`](super::Text::lossy) keeps it:
    /// invalid UTF-8 as `�`, at most [`Text::CAPACITY`](super::Text::CAPACITY) bytes, then `…`.
    const fn push_lossy(&mut self, mut bytes: &[u8]) {
        let mut kept = Kept {
            room: super::Text::CAPACITY,
            cut: false,
        };
        while !bytes.is_empty() && !kept.cut {
            match core::str::from_utf8(bytes) {
                Ok(valid) => {
                    kept.push(self, valid);
                    bytes = &[];
                }
                Err(error) => {
                    let valid = error.valid_up_to();
                    let (head, rest) = bytes.split_at(valid);
                    if let Ok(head) = core::str::from_utf8(head) {
                        kept.push(self, head);
                    }
                    kept.push(self, "\u{FFFD}");
                    let invalid = match error.error_len() {
                        Some(n) => n,
                        None => rest.len(),
                    };
                    bytes = rest.split_at(invalid).1;
                }
            }
        }
        if kept.cut {
            self.push(Message::ELLIPSIS);
        }
    }

    /// Appends `layer.tensor`, as [`NamedTensor`](crate::NamedTensor) displays it.
    const fn push_tensor(&mut self, layer: &str, tensor: &TensorInfo) {
        self.push(layer);
        self.push(".");
        self.push(tensor.name);
    }

    /// Appends a shape of the network as `[16, 1]`.
    const fn push_dims(&mut self, dims: &[usize]) {
        self.push("[");
        let mut i = 0;
        while i < dims.len() {
            if i > 0 {
                self.push(", ");
            }
            self.push_u64(dims[i] as u64);
            i += 1;
        }
        self.push("]");
    }

    /// Appends a shape of the file (`rank` little-endian `u32`s at `dims`) as
    /// [`Shape`](super::Shape) displays it: at most [`Shape::MAX_DIMS`](super::Shape::MAX_DIMS)
    /// dimensions, then the rank.
    const fn push_file_dims(&mut self, dims: &[u8], rank: usize) {
        self.push("[");
        let mut i = 0;
        while i < rank && i < super::Shape::MAX_DIMS {
            if i > 0 {
                self.push(", ");
            }
            self.push_u64(u32_at(dims, 4 * i) as u64);
            i += 1;
        }
        if rank > super::Shape::MAX_DIMS {
            self.push(", … (");
            self.push_u64(rank as u64);
            self.push(" dimensions)");
        }
        self.push("]");
    }
}

/// What is left of [`Text::CAPACITY`](super::Text::CAPACITY) while a name is appended.
struct Kept {
    room: usize,
    cut: bool,
}

impl Kept {
    /// Appends `s` to `message`, as [`Text`](super::Text)'s `write_str` keeps it.
    const fn push(&mut self, message: &mut Message, s: &str) {
        if self.cut {
            return;
        }
        let take = if s.len() > self.room {
            self.cut = true;
            char_floor(s, self.room)
        } else {
            s.len()
        };
        message.push(s.split_at(take).0);
        self.room -= take;
    }
}

/// The largest `i <= max` at which `s` can be cut (a character boundary).
const fn char_floor(s: &str, max: usize) -> usize {
    let bytes = s.as_bytes();
    let mut i = max;
    // A byte 0b10xx_xxxx continues a character.
    while i > 0 && i < bytes.len() && bytes[i] & 0xC0 == 0x80 {
        i -= 1;
    }
    i
}

/// An error with one message part, for the checks below.
const fn error(message: &str) -> ConstLoadError {
    ConstLoadError::new(message)
}

/// `malformed file: {reason}`, as [`LoadError::Malformed`](super::LoadError::Malformed) says it.
const fn malformed(reason: &str) -> ConstLoadError {
    let mut m = Message::new();
    m.push("malformed file: ");
    m.push(reason);
    ConstLoadError { message: m }
}

const fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

const fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

const fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    let mut i = 0;
    while i < 8 {
        b[i] = bytes[at + i];
        i += 1;
    }
    u64::from_le_bytes(b)
}

/// The run-time [`Crc32`](super::flat::Crc32), 4 bits at a time, in a `const fn`: the
/// checksum of `bytes[..28]` followed by `bytes[32..]`.
const fn file_crc(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 16] = {
        let mut table = [0u32; 16];
        let mut i = 0;
        while i < 16 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 4 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut c = 0xFFFF_FFFFu32;
    let mut i = 0;
    while i < bytes.len() {
        if i == 28 {
            i = HEADER_LEN;
            continue;
        }
        c ^= bytes[i] as u32;
        c = TABLE[(c & 0xF) as usize] ^ (c >> 4);
        c = TABLE[(c & 0xF) as usize] ^ (c >> 4);
        i += 1;
    }
    c ^ 0xFFFF_FFFF
}

/// One entry of the tensor table: where its name and dimensions are in the table.
struct Entry {
    kind: u8,
    name_at: usize,
    name_len: usize,
    dims_at: usize,
    rank: usize,
}

/// Reads the table entry at `*pos` of `table`, advancing `pos`.
const fn entry(table: &[u8], pos: &mut usize) -> Result<Entry, ConstLoadError> {
    let ends_inside = "the tensor table ends inside an entry";
    if *pos + 4 > table.len() {
        return Err(malformed(ends_inside));
    }
    let (kind, rank, name_len) = (
        table[*pos],
        table[*pos + 1] as usize,
        u16_at(table, *pos + 2) as usize,
    );
    let name_at = *pos + 4;
    let dims_at = name_at + name_len;
    if dims_at + 4 * rank > table.len() {
        return Err(malformed(ends_inside));
    }
    *pos = dims_at + 4 * rank;
    Ok(Entry {
        kind,
        name_at,
        name_len,
        dims_at,
        rank,
    })
}

/// Whether `name` is `layer.tensor`.
const fn is_named(name: &[u8], layer: &str, tensor: &str) -> bool {
    let (layer, tensor) = (layer.as_bytes(), tensor.as_bytes());
    if name.len() != layer.len() + 1 + tensor.len() || name[layer.len()] != b'.' {
        return false;
    }
    let mut i = 0;
    while i < layer.len() {
        if name[i] != layer[i] {
            return false;
        }
        i += 1;
    }
    let mut i = 0;
    while i < tensor.len() {
        if name[layer.len() + 1 + i] != tensor[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether the file's dimensions (`rank` little-endian `u32`s at `dims`) are `expected`.
const fn same_shape(dims: &[u8], rank: usize, expected: &[usize]) -> bool {
    if rank != expected.len() {
        return false;
    }
    let mut i = 0;
    while i < rank {
        if u32_at(dims, 4 * i) as u64 != expected[i] as u64 {
            return false;
        }
        i += 1;
    }
    true
}

/// Checks everything [`flat::load`](super::flat::load) checks, in its order, with its messages;
/// returns the values (the bytes after the table).
const fn check<'a>(
    bytes: &'a [u8],
    expected_dtype: Dtype,
    layers: &[LayerTensors],
    state: &[LayerState],
    param_len: usize,
) -> Result<&'a [u8], ConstLoadError> {
    let mut i = 0;
    while i < bytes.len() && i < MAGIC.len() {
        if bytes[i] != MAGIC[i] {
            return Err(error(
                "not a weight file of this format (wrong magic bytes)",
            ));
        }
        i += 1;
    }
    if bytes.len() < HEADER_LEN {
        return Err(truncated(HEADER_LEN as u64, bytes.len() as u64));
    }
    let version = u16_at(bytes, 8);
    if version != VERSION {
        let mut m = Message::new();
        m.push("format version ");
        m.push_u64(version as u64);
        m.push(" is not supported (this build reads versions up to ");
        m.push_u64(VERSION as u64);
        m.push(")");
        return Err(ConstLoadError { message: m });
    }
    let dtype = match bytes[10] {
        1 => Dtype::F32,
        2 => Dtype::F64,
        code => {
            let mut m = Message::new();
            m.push("the file holds unknown dtype code ");
            m.push_u64(code as u64);
            m.push(" values, but the network computes in ");
            m.push(expected_dtype.name());
            return Err(ConstLoadError { message: m });
        }
    };
    let tensor_count = u32_at(bytes, 12) as u64;
    let param_count = u64_at(bytes, 16);
    let table_len = u32_at(bytes, 24) as u64;
    let stored = u32_at(bytes, 28);

    let total = match param_count.checked_mul(dtype.size() as u64) {
        Some(values) => values.checked_add(HEADER_LEN as u64 + table_len),
        None => None,
    };
    let Some(total) = total else {
        return Err(malformed("the announced sizes overflow"));
    };
    let available = bytes.len() as u64;
    if available < total {
        return Err(truncated(total, available));
    }
    if available > total {
        let mut m = Message::new();
        m.push_u64(available);
        m.push(" bytes, but the header announces ");
        m.push_u64(total);
        m.push(": the data goes on after its end");
        return Err(ConstLoadError { message: m });
    }
    let computed = file_crc(bytes);
    if computed != stored {
        let mut m = Message::new();
        m.push("corrupt data: checksum ");
        m.push_hex_u32(computed);
        m.push(" does not match the stored ");
        m.push_hex_u32(stored);
        return Err(ConstLoadError { message: m });
    }
    if bytes[11] != 0 {
        return Err(malformed("the reserved header byte is not zero"));
    }
    if !table_len.is_multiple_of(8) {
        return Err(malformed(
            "the tensor table's length is not a multiple of 8",
        ));
    }
    if !matches!(
        (dtype, expected_dtype),
        (Dtype::F32, Dtype::F32) | (Dtype::F64, Dtype::F64)
    ) {
        let mut m = Message::new();
        m.push("the file holds ");
        m.push(dtype.name());
        m.push(" values, but the network computes in ");
        m.push(expected_dtype.name());
        return Err(ConstLoadError { message: m });
    }

    // The table is within `bytes`: `total` covers it.
    let (table, values) = bytes.split_at(HEADER_LEN).1.split_at(table_len as usize);
    let mut table = Table {
        bytes: table,
        pos: 0,
        tensor_count,
        ours: 0,
    };
    // Scalars of the parameters, then value slots of the state (a count takes 8 bytes).
    let mut scalars = 0;
    let mut l = 0;
    while l < layers.len() {
        let LayerTensors { layer, tensors } = layers[l];
        let mut t = 0;
        while t < tensors.len() {
            if let Err(error) = table.check_next(layer, &tensors[t], KIND_PARAMETER) {
                return Err(error);
            }
            scalars += tensors[t].len();
            t += 1;
        }
        l += 1;
    }
    let mut slots = scalars;
    let mut l = 0;
    while l < state.len() {
        let LayerState { layer, tensors, .. } = state[l];
        let mut t = 0;
        while t < tensors.len() {
            let (kind, tensor_slots) = match tensors[t].role {
                Role::Count => (KIND_COUNT, 8 / dtype.size()),
                _ => (KIND_STATE, tensors[t].len()),
            };
            if let Err(error) = table.check_next(layer, &tensors[t], kind) {
                return Err(error);
            }
            slots += tensor_slots;
            t += 1;
        }
        l += 1;
    }
    if tensor_count > table.ours {
        let extra = match entry(table.bytes, &mut table.pos) {
            Ok(entry) => entry,
            Err(error) => return Err(error),
        };
        let name = table
            .bytes
            .split_at(extra.name_at)
            .1
            .split_at(extra.name_len)
            .0;
        let mut m = Message::new();
        m.push("the file has a tensor `");
        m.push_lossy(name);
        m.push("` that the network does not have");
        return Err(ConstLoadError { message: m });
    }
    let padding = table.bytes.split_at(table.pos).1;
    let mut nonzero = false;
    let mut i = 0;
    while i < padding.len() {
        nonzero |= padding[i] != 0;
        i += 1;
    }
    if padding.len() >= 8 || nonzero {
        return Err(malformed("the tensor table has bytes after its last entry"));
    }
    if param_count != slots as u64 {
        let mut m = Message::new();
        m.push("the file holds ");
        m.push_u64(param_count);
        m.push(" values, but the network saves ");
        m.push_u64(slots as u64);
        return Err(ConstLoadError { message: m });
    }
    // A network whose tensors do not cover its parameters (a custom layer's `TENSORS` that
    // disagree with its `Params::LEN`) would otherwise read past the values.
    if scalars != param_len {
        return Err(error(
            "the network's tensors do not add up to its parameter count",
        ));
    }
    Ok(values)
}

/// The tensor table as [`check`] walks it, entry by entry against the network's tensors.
struct Table<'a> {
    bytes: &'a [u8],
    /// Where the next entry starts.
    pos: usize,
    /// Entries the header announces.
    tensor_count: u64,
    /// The network's tensors checked so far.
    ours: u64,
}

impl Table<'_> {
    /// Checks the next entry against the network's tensor `layer.tensor`, of table kind
    /// `kind`, as `flat::load` does: present, same name, same kind, same shape.
    const fn check_next(
        &mut self,
        layer: &str,
        tensor: &TensorInfo,
        kind: u8,
    ) -> Result<(), ConstLoadError> {
        if self.ours >= self.tensor_count {
            let mut m = Message::new();
            m.push("tensor `");
            m.push_tensor(layer, tensor);
            m.push("` is missing from the file");
            return Err(ConstLoadError { message: m });
        }
        self.ours += 1;
        let entry = match entry(self.bytes, &mut self.pos) {
            Ok(entry) => entry,
            Err(error) => return Err(error),
        };
        let name = self
            .bytes
            .split_at(entry.name_at)
            .1
            .split_at(entry.name_len)
            .0;
        if !is_named(name, layer, tensor.name) {
            let mut m = Message::new();
            m.push("the file has a tensor `");
            m.push_lossy(name);
            m.push("` where the network has `");
            m.push_tensor(layer, tensor);
            m.push("`");
            return Err(ConstLoadError { message: m });
        }
        if entry.kind != kind {
            // The name matched, so the detail is never empty.
            let mut m = Message::new();
            m.push("malformed file: ");
            m.push(match entry.kind {
                KIND_PARAMETER | KIND_STATE | KIND_COUNT => {
                    "a table entry's kind (parameter, state or count) is not the tensor's"
                }
                _ => "a table entry has an unknown kind",
            });
            m.push(": ");
            m.push_lossy(name);
            return Err(ConstLoadError { message: m });
        }
        let dims = self.bytes.split_at(entry.dims_at).1;
        if !same_shape(dims, entry.rank, tensor.shape) {
            let mut m = Message::new();
            m.push("tensor `");
            m.push_tensor(layer, tensor);
            m.push("` has shape ");
            m.push_file_dims(dims, entry.rank);
            m.push(" in the file, but ");
            m.push_dims(tensor.shape);
            m.push(" in the network");
            return Err(ConstLoadError { message: m });
        }
        Ok(())
    }
}

/// `truncated data: …`, as [`LoadError::Truncated`](super::LoadError::Truncated) says it.
const fn truncated(needed: u64, available: u64) -> ConstLoadError {
    let mut m = Message::new();
    m.push("truncated data: ");
    m.push_u64(available);
    m.push(" bytes, but the header announces ");
    m.push_u64(needed);
    ConstLoadError { message: m }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn crc_matches_the_run_time_one() {
        // 28 header bytes, 4 skipped (the stored checksum), then the rest.
        let bytes: [u8; 45] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let expected = super::super::flat::Crc32::new()
            .update(&bytes[..28])
            .update(&bytes[32..])
            .finish();
        assert_eq!(file_crc(&bytes), expected);
    }

    #[test]
    fn messages_format_numbers_and_cut_long_text() {
        let mut m = Message::new();
        m.push_u64(0);
        m.push(" ");
        m.push_u64(u64::MAX);
        m.push(" ");
        m.push_hex_u32(0x00ab_cdef);
        assert_eq!(m.as_str(), "0 18446744073709551615 0x00abcdef");

        let mut m = Message::new();
        m.push_lossy(b"a\xffb");
        assert_eq!(m.as_str(), "a\u{FFFD}b");
        let long = "é".repeat(100);
        let mut m = Message::new();
        m.push_lossy(long.as_bytes());
        let text = super::super::Text::lossy(long.as_bytes());
        assert!(text.is_cut());
        assert_eq!(m.as_str(), format!("{}…", text.as_str()));

        // A message longer than the capacity ends in an ellipsis at a character boundary.
        let mut m = Message::new();
        for _ in 0..200 {
            m.push("é");
        }
        assert!(m.as_str().ends_with('…'));
        assert!(m.as_str().len() <= Message::CAPACITY);
    }

    #[test]
    fn state_is_written_only_where_it_fits() {
        const MEAN: TensorInfo = TensorInfo {
            name: "running_mean",
            shape: &[3],
            role: Role::State,
        };
        const COUNT: TensorInfo = TensorInfo {
            name: "num_batches_tracked",
            shape: &[],
            role: Role::Count,
        };
        const HUGE: TensorInfo = TensorInfo {
            name: "huge",
            shape: &[usize::MAX, 2],
            role: Role::State,
        };
        let layer = |tensors, at, size, offsets| LayerState {
            layer: "bn",
            tensors,
            at,
            size,
            offsets,
        };
        let message = |state: LayerState| {
            let result = check_places(&[state], 4, 64);
            result.map_err(|e| std::string::String::from(e.message()))
        };
        // Three f32 and a u64 in 24 bytes, at byte 40 of 64: fits exactly.
        assert_eq!(message(layer(&[MEAN, COUNT], 40, 24, &[0, 16])), Ok(()));
        assert_eq!(message(layer(&[], 0, 0, &[])), Ok(()));
        let too_far = "state tensor `bn.num_batches_tracked` does not fit in its layer's \
                       state at the offset `Layer::STATE_OFFSETS` gives";
        assert_eq!(
            message(layer(&[MEAN, COUNT], 40, 24, &[0, 17])).unwrap_err(),
            too_far
        );
        assert_eq!(
            message(layer(&[MEAN, COUNT], 40, 24, &[0, usize::MAX])).unwrap_err(),
            too_far
        );
        assert!(
            message(layer(&[HUGE], 0, 64, &[0]))
                .unwrap_err()
                .starts_with("state tensor `bn.huge` does not fit")
        );
        assert_eq!(
            message(layer(&[MEAN, COUNT], 48, 24, &[0, 16])).unwrap_err(),
            "the state of layer `bn` is not within the network"
        );
        assert_eq!(
            message(layer(&[MEAN], 0, 24, &[0, 16])).unwrap_err(),
            "layer `bn`'s `Layer::STATE_OFFSETS` places more tensors than its \
             `Layer::STATE_TENSORS` lists"
        );
        assert!(
            message(layer(&[MEAN, COUNT], 0, 24, &[0]))
                .unwrap_err()
                .starts_with("state tensor `bn.num_batches_tracked` has no place")
        );
    }

    #[test]
    fn matrix_view_is_pytorchs_view_d0_minus_1() {
        assert_eq!(matrix_view(&[16, 1]), (16, 1));
        assert_eq!(matrix_view(&[16]), (16, 1));
        assert_eq!(matrix_view(&[2, 3, 4, 5]), (2, 60));
        assert_eq!(matrix_view(&[]), (1, 1));
        // Every element lands where the run-time loader puts it.
        for dims in [&[2usize, 3][..], &[4], &[2, 2, 1, 3], &[3, 0]] {
            let (rows, columns) = matrix_view(dims);
            for r in 0..rows {
                for c in 0..columns {
                    let p = r * columns + c;
                    assert_eq!(r + c * rows, super::super::storage_index(dims, p));
                }
            }
        }
    }
}
