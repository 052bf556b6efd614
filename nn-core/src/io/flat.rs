//! A flat little-endian weight format that needs neither `std` nor an allocator.
//!
//! Meant for weights compiled into a firmware with `include_bytes!` (they stay in flash; the
//! loader copies them into the network), and for any place where a dependency-free,
//! checksummed, self-describing file is wanted.
//!
//! ```ignore
//! static WEIGHTS: &[u8] = include_bytes!("../weights/sine.nnw");
//! static mut NET: Sine<f32> = Sine::ZERO;
//! nn::io::flat::load(net, WEIGHTS)?;   // checks everything, then writes
//! ```
//!
//! # Layout (version 1)
//!
//! All integers little-endian.
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic [`MAGIC`], `NNWEIGHT` |
//! | 8..10 | version, `u16` ([`VERSION`] = 1) |
//! | 10 | dtype, `u8`: 1 = `f32`, 2 = `f64` |
//! | 11 | reserved, `0` |
//! | 12..16 | number of tensors, `u32` |
//! | 16..24 | number of value slots (of the dtype's size), `u64` |
//! | 24..28 | length of the tensor table in bytes, `u32`, a multiple of 8 |
//! | 28..32 | CRC-32 (the ISO-HDLC one of zlib, PNG and Python's `zlib.crc32`) of bytes 0..28 followed by every byte from 32 to the end |
//! | 32.. | the tensor table: for each tensor, in order, `u8` kind ([`KIND_PARAMETER`], [`KIND_STATE`], [`KIND_COUNT`]), `u8` rank, `u16` name length, the UTF-8 name (`fc1.weight`), `rank` × `u32` dimensions (PyTorch's shape); then zeros up to a multiple of 8 bytes |
//! | then | the values: every tensor in table order, row-major (C order, as PyTorch and NumPy hold them), each element little-endian in a slot of the dtype's size; a count (rank 0) is a little-endian `u64` in 8 bytes (two slots of an `f32` file, one of an `f64` file) |
//!
//! The tensors are the network's parameters ([`Network::visit_tensors`]), then its saved state
//! ([`Network::visit_state_tensors`]: batch normalization's `running_mean`, `running_var` of
//! kind [`KIND_STATE`] and `num_batches_tracked` of kind [`KIND_COUNT`]), exactly the tensors
//! of PyTorch's `state_dict()` for the same module.
//!
//! The file is exactly that long. A file can be written by hand from NumPy: concatenate
//! `tensor.astype('<f4').tobytes()` for each tensor after the header and table.
//!
//! The loader checks, in this order: magic, version, that the length is the one the header
//! announces ([`LoadError::Truncated`] / [`LoadError::TrailingBytes`]), the checksum, the
//! reserved byte, the dtype, then each table entry against the network's tensors (name,
//! kind, shape), the tensor count and the parameter count. Only then does it write, so
//! the network is unchanged by a failed load.

use super::{
    Dtype, LoadError, Place, SaveError, Shape, Text, count_value, is_count, is_named, read_tensor,
    try_visit_saved, write_tensor,
};
use crate::{NamedTensor, Network, Params, Real};

/// The first eight bytes of a flat weight file.
pub const MAGIC: [u8; 8] = *b"NNWEIGHT";

/// The format version this build writes and the newest it reads.
pub const VERSION: u16 = 1;

/// Bytes of the fixed header, before the tensor table.
pub const HEADER_LEN: usize = 32;

/// Table entry kind of a trainable parameter.
pub const KIND_PARAMETER: u8 = 0;

/// Table entry kind of non-trainable real state (batch normalization's running statistics,
/// [`Role::State`](crate::Role::State)).
pub const KIND_STATE: u8 = 1;

/// Table entry kind of an integer count (batch normalization's `num_batches_tracked`,
/// [`Role::Count`](crate::Role::Count)): rank 0, a `u64` in 8 bytes of the values.
pub const KIND_COUNT: u8 = 2;

/// Value slots (of `dtype`'s size) a tensor takes: its values, or 8 bytes for a count.
fn slots(tensor: &NamedTensor, dtype: Dtype) -> usize {
    if is_count(tensor) {
        8 / dtype.size()
    } else {
        tensor.info.len()
    }
}

/// Value slots of `N`'s file (with its state, or only its parameters) of `dtype`.
fn slot_count<T: Real, N: Network<T>>(with_state: bool, dtype: Dtype) -> usize {
    let mut count = 0;
    let _ = try_visit_saved::<T, N, ()>(|_, t, place| {
        if with_state || place == Place::Parameter {
            count += slots(&t, dtype);
        }
        Ok(())
    });
    count
}

/// The table kind of a tensor.
fn kind_of(tensor: &NamedTensor, place: Place) -> u8 {
    match place {
        Place::Parameter => KIND_PARAMETER,
        Place::State(_) if is_count(tensor) => KIND_COUNT,
        Place::State(_) => KIND_STATE,
    }
}

const DTYPE_F32: u8 = 1;
const DTYPE_F64: u8 = 2;

const fn dtype_code(dtype: Dtype) -> u8 {
    match dtype {
        Dtype::F32 => DTYPE_F32,
        Dtype::F64 => DTYPE_F64,
    }
}

/// Bytes of the tensor table of `N`'s saved tensors (with its state, or only its
/// parameters), padding included.
fn table_len<T: Real, N: Network<T>>(with_state: bool) -> usize {
    let mut len = 0;
    let _ = try_visit_saved::<T, N, ()>(|_, t, place| {
        if with_state || place == Place::Parameter {
            len += entry_len(&t);
        }
        Ok(())
    });
    len.next_multiple_of(8)
}

/// Bytes of one table entry.
fn entry_len(t: &NamedTensor) -> usize {
    4 + name_len(t) + 4 * t.info.shape.len()
}

/// Bytes of `layer.name`.
fn name_len(t: &NamedTensor) -> usize {
    t.layer.len() + 1 + t.info.name.len()
}

/// Bytes of `N`'s weights (parameters and saved state) in the flat format with scalars of
/// `T`: the buffer size [`save`] needs.
pub fn encoded_len<T: Real, N: Network<T>>() -> usize {
    HEADER_LEN
        + table_len::<T, N>(true)
        + slot_count::<T, N>(true, Dtype::of::<T>()) * size_of::<T>()
}

/// Bytes of `N`'s gradients in the flat format: the buffer size [`save_gradients`] needs.
pub fn gradients_len<T: Real, N: Network<T>>() -> usize {
    HEADER_LEN
        + table_len::<T, N>(false)
        + slot_count::<T, N>(false, Dtype::of::<T>()) * size_of::<T>()
}

/// Writes `net`'s weights (parameters, then the saved state: batch normalization's running
/// statistics) into `out` in the flat format, with `T` as the dtype; returns the number of
/// bytes written ([`encoded_len`]).
///
/// Needs no allocator. Fails only if `out` is too small, or (not for any network the macro
/// generates) a name or dimension does not fit the format's integers.
pub fn save<T: Real, N: Network<T>>(net: &N, out: &mut [u8]) -> Result<usize, SaveError> {
    write_file(net, net.as_slice(), true, out)
}

/// Writes the gradients `grads` of `net`'s parameters into `out` in the flat format, under
/// the parameters' names (`fc1.weight`: the `p.grad` of PyTorch's parameter of that name);
/// returns the number of bytes written ([`gradients_len`]).
pub fn save_gradients<T: Real, N: Network<T>>(
    net: &N,
    grads: &N::Grads,
    out: &mut [u8],
) -> Result<usize, SaveError> {
    write_file(net, grads.as_slice(), false, out)
}

/// Writes the file of `net`'s tensors, the parameters' values read from `values`.
fn write_file<T: Real, N: Network<T>>(
    net: &N,
    values: &[T],
    with_state: bool,
    out: &mut [u8],
) -> Result<usize, SaveError> {
    let dtype = Dtype::of::<T>();
    let table_len = table_len::<T, N>(with_state);
    let saved = |place: Place| with_state || place == Place::Parameter;
    let mut count = 0usize;
    let mut value_count = 0usize;
    try_visit_saved::<T, N, _>(|_, t, place| {
        if !saved(place) {
            return Ok(());
        }
        let unrepresentable = |reason| SaveError::Unrepresentable { tensor: t, reason };
        if name_len(&t) > u16::MAX as usize {
            return Err(unrepresentable("its name is longer than 65535 bytes"));
        }
        if t.info.shape.len() > u8::MAX as usize {
            return Err(unrepresentable("it has more than 255 dimensions"));
        }
        if t.info.shape.iter().any(|&d| d > u32::MAX as usize) {
            return Err(unrepresentable("a dimension is above 2³² − 1"));
        }
        count += 1;
        value_count += slots(&t, dtype);
        Ok(())
    })?;
    let needed = HEADER_LEN + table_len + value_count * dtype.size();
    if out.len() < needed {
        return Err(SaveError::BufferTooSmall {
            needed,
            available: out.len(),
        });
    }
    if count > u32::MAX as usize || table_len > u32::MAX as usize {
        return Err(SaveError::Encoding(Text::new(
            "more tensors than the format's table can hold",
        )));
    }
    let out = &mut out[..needed];
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&VERSION.to_le_bytes());
    out[10] = dtype_code(dtype);
    out[11] = 0;
    out[12..16].copy_from_slice(&(count as u32).to_le_bytes());
    out[16..24].copy_from_slice(&(value_count as u64).to_le_bytes());
    out[24..28].copy_from_slice(&(table_len as u32).to_le_bytes());

    let (table, values_out) = out[HEADER_LEN..].split_at_mut(table_len);
    let mut pos = 0;
    let mut at = 0;
    let _ = try_visit_saved::<T, N, ()>(|_, t, place| {
        if !saved(place) {
            return Ok(());
        }
        let name = name_len(&t);
        table[pos] = kind_of(&t, place);
        table[pos + 1] = t.info.shape.len() as u8;
        table[pos + 2..pos + 4].copy_from_slice(&(name as u16).to_le_bytes());
        let name_at = pos + 4;
        table[name_at..name_at + t.layer.len()].copy_from_slice(t.layer.as_bytes());
        table[name_at + t.layer.len()] = b'.';
        table[name_at + t.layer.len() + 1..name_at + name].copy_from_slice(t.info.name.as_bytes());
        pos = name_at + name;
        for &d in t.info.shape {
            table[pos..pos + 4].copy_from_slice(&(d as u32).to_le_bytes());
            pos += 4;
        }
        let bytes = slots(&t, dtype) * dtype.size();
        let slot = &mut values_out[at..at + bytes];
        if is_count(&t) {
            slot.copy_from_slice(&count_value(net, place).to_le_bytes());
        } else {
            read_tensor(net, values, &t, place, slot, dtype);
        }
        at += bytes;
        Ok(())
    });
    table[pos..].fill(0);

    let crc = Crc32::new().update(&out[..28]).update(&out[HEADER_LEN..]);
    out[28..32].copy_from_slice(&crc.finish().to_le_bytes());
    Ok(needed)
}

/// `net`'s weights in the flat format, in a new vector.
#[cfg(feature = "alloc")]
pub fn to_vec<T: Real, N: Network<T>>(net: &N) -> Result<alloc::vec::Vec<u8>, SaveError> {
    let mut out = alloc::vec![0; encoded_len::<T, N>()];
    let written = save(net, &mut out)?;
    out.truncate(written);
    Ok(out)
}

/// Loads weights in the flat format into `net`, after checking all of `bytes` (see the
/// [module docs](self) for the checks). On an error `net` is unchanged.
///
/// Needs no allocator; `bytes` may be anywhere (flash, a `static`, a file read into memory)
/// and need not be aligned.
pub fn load<T: Real, N: Network<T>>(net: &mut N, bytes: &[u8]) -> Result<(), LoadError> {
    let (dtype, values) = check::<T, N>(bytes)?;
    let mut at = 0;
    let _ = try_visit_saved::<T, N, ()>(|_, t, place| {
        let len = slots(&t, dtype) * dtype.size();
        let slot = &values[at..at + len];
        if is_count(&t) {
            if let Place::State(index) = place {
                net.set_state_value(index, 0, crate::StateValue::Count(u64_at(slot, 0)));
            }
        } else {
            write_tensor(net, &t, place, slot, dtype);
        }
        at += len;
        Ok(())
    });
    Ok(())
}

/// Checks `bytes` as [`load`] does, without loading: `Ok` exactly when `load` would
/// succeed.
pub fn verify<T: Real, N: Network<T>>(bytes: &[u8]) -> Result<(), LoadError> {
    check::<T, N>(bytes).map(|_| ())
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// One entry of the tensor table.
struct Entry<'a> {
    kind: u8,
    name: &'a [u8],
    shape: Shape,
}

/// Reads the table entry at `*pos` of `table`, advancing `pos`.
fn entry<'a>(table: &'a [u8], pos: &mut usize) -> Result<Entry<'a>, LoadError> {
    let ends_inside = || LoadError::malformed("the tensor table ends inside an entry");
    let head = table.get(*pos..*pos + 4).ok_or_else(ends_inside)?;
    let (kind, rank, name_len) = (head[0], head[1] as usize, u16_at(head, 2) as usize);
    let name_at = *pos + 4;
    let name = table
        .get(name_at..name_at + name_len)
        .ok_or_else(ends_inside)?;
    let dims_at = name_at + name_len;
    let dims = table
        .get(dims_at..dims_at + 4 * rank)
        .ok_or_else(ends_inside)?;
    let shape = Shape::from_dims(dims.chunks_exact(4).map(|d| u32_at(d, 0) as u64));
    *pos = dims_at + 4 * rank;
    Ok(Entry { kind, name, shape })
}

/// Checks everything; returns the file's dtype and its values.
fn check<T: Real, N: Network<T>>(bytes: &[u8]) -> Result<(Dtype, &[u8]), LoadError> {
    let head = &bytes[..bytes.len().min(MAGIC.len())];
    if head != &MAGIC[..head.len()] {
        return Err(LoadError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(LoadError::Truncated {
            needed: HEADER_LEN as u64,
            available: bytes.len() as u64,
        });
    }
    let version = u16_at(bytes, 8);
    if version != VERSION {
        return Err(LoadError::UnsupportedVersion {
            found: version.into(),
            supported: VERSION.into(),
        });
    }
    let expected_dtype = Dtype::of::<T>();
    let dtype = match bytes[10] {
        DTYPE_F32 => Dtype::F32,
        DTYPE_F64 => Dtype::F64,
        code => {
            return Err(LoadError::Dtype {
                tensor: None,
                expected: expected_dtype,
                found: Text::format(format_args!("unknown dtype code {code}")),
            });
        }
    };
    let tensor_count = u32_at(bytes, 12) as u64;
    let param_count = u64_at(bytes, 16);
    let table_len = u32_at(bytes, 24) as u64;
    let stored = u32_at(bytes, 28);

    let total = param_count
        .checked_mul(dtype.size() as u64)
        .and_then(|values| values.checked_add(HEADER_LEN as u64 + table_len))
        .ok_or_else(|| LoadError::malformed("the announced sizes overflow"))?;
    let available = bytes.len() as u64;
    if available < total {
        return Err(LoadError::Truncated {
            needed: total,
            available,
        });
    }
    if available > total {
        return Err(LoadError::TrailingBytes {
            expected: total,
            found: available,
        });
    }
    let computed = Crc32::new()
        .update(&bytes[..28])
        .update(&bytes[HEADER_LEN..])
        .finish();
    if computed != stored {
        return Err(LoadError::Checksum { stored, computed });
    }
    if bytes[11] != 0 {
        return Err(LoadError::malformed("the reserved header byte is not zero"));
    }
    if !table_len.is_multiple_of(8) {
        return Err(LoadError::malformed(
            "the tensor table's length is not a multiple of 8",
        ));
    }
    if dtype != expected_dtype {
        return Err(LoadError::Dtype {
            tensor: None,
            expected: expected_dtype,
            found: Text::new(dtype.name()),
        });
    }

    // The table is within `bytes`: `total` covers it.
    let table_len = table_len as usize;
    let (table, values) = bytes[HEADER_LEN..].split_at(table_len);
    let mut pos = 0;
    let mut ours = 0u64;
    try_visit_saved::<T, N, _>(|i, tensor, place| {
        ours += 1;
        if i as u64 >= tensor_count {
            return Err(LoadError::Missing {
                tensor,
                file_name: Text::format(format_args!("{tensor}")),
            });
        }
        let entry = entry(table, &mut pos)?;
        if !is_named(&tensor, entry.name) {
            return Err(LoadError::NameMismatch {
                tensor,
                found: Text::lossy(entry.name),
            });
        }
        if entry.kind != kind_of(&tensor, place) {
            return Err(LoadError::Malformed {
                reason: match entry.kind {
                    KIND_PARAMETER | KIND_STATE | KIND_COUNT => {
                        "a table entry's kind (parameter, state or count) is not the tensor's"
                    }
                    _ => "a table entry has an unknown kind",
                },
                detail: Text::lossy(entry.name),
            });
        }
        if !entry.shape.matches(tensor.info.shape) {
            return Err(LoadError::Shape {
                tensor,
                found: entry.shape,
            });
        }
        Ok(())
    })?;
    if tensor_count > ours {
        let extra = entry(table, &mut pos)?;
        return Err(LoadError::Unexpected {
            name: Text::lossy(extra.name),
        });
    }
    let padding = &table[pos..];
    if padding.len() >= 8 || padding.iter().any(|&b| b != 0) {
        return Err(LoadError::malformed(
            "the tensor table has bytes after its last entry",
        ));
    }
    // Every name and shape matches, so the values are exactly the network's saved values;
    // a header that says otherwise is inconsistent with its own table.
    let expected = slot_count::<T, N>(true, dtype);
    if param_count != expected as u64 {
        return Err(LoadError::ParameterCount {
            expected,
            found: param_count,
        });
    }
    Ok((dtype, values))
}

/// CRC-32 (ISO-HDLC: reflected polynomial `0xEDB88320`, initial value and final XOR
/// `0xFFFFFFFF`), the checksum of zlib, PNG, gzip and Python's `zlib.crc32`, computed four
/// bits at a time from a 64-byte table.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Crc32 {
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

    /// A checksum of no bytes yet.
    pub const fn new() -> Crc32 {
        Crc32(0xFFFF_FFFF)
    }

    /// Adds `bytes` to the checksum.
    pub fn update(mut self, bytes: &[u8]) -> Crc32 {
        for &b in bytes {
            let mut c = self.0 ^ b as u32;
            c = Self::TABLE[(c & 0xF) as usize] ^ (c >> 4);
            c = Self::TABLE[(c & 0xF) as usize] ^ (c >> 4);
            self.0 = c;
        }
        self
    }

    /// The checksum of the bytes added.
    pub const fn finish(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Crc32;

    #[test]
    fn crc32_matches_zlib() {
        // zlib.crc32(b"123456789") == 0xCBF43926, the standard check value.
        assert_eq!(Crc32::new().update(b"123456789").finish(), 0xCBF4_3926);
        assert_eq!(Crc32::new().finish(), 0);
        assert_eq!(
            Crc32::new().update(b"1234").update(b"56789").finish(),
            0xCBF4_3926
        );
    }
}
