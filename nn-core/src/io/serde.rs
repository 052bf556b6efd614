//! serde `Serialize` / `Deserialize` of a network's weights (feature `serde`), for any serde
//! format: JSON, postcard, bincode, MessagePack…
//!
//! The weights are a map from each tensor's PyTorch name to its shape and its values,
//! row-major (PyTorch's and NumPy's order), as the network's scalar type: the parameters,
//! then the saved state (batch normalization's `running_mean`, `running_var`, and
//! `num_batches_tracked` as an integer):
//!
//! ```json
//! {"fc1.weight": {"shape": [5, 3], "data": [0.1, -0.2, ...]}, "fc1.bias": {"shape": [5], "data": [...]},
//!  "bn.num_batches_tracked": {"shape": [], "data": [12]}}
//! ```
//!
//! ```ignore
//! let json = serde_json::to_string(&nn::io::serde::Weights::new(&net))?;
//! let net: Box<Net<f32>> = nn::io::serde::deserialize_boxed(&mut serde_json::Deserializer::from_str(&json))?;
//! ```
//!
//! or, in a struct of your own, `#[serde(with = "nn::io::serde::boxed")] net: Box<Net<f32>>`
//! (built in place on the heap), or `#[serde(with = "nn::io::serde")] net: Net<f32>` for a
//! small network (built by value, on the stack).
//!
//! # Every value round-trips exactly
//!
//! A finite value is written as a number: the shortest decimal that reads back as the same
//! `f32` or `f64` (for JSON, enable serde_json's `float_roundtrip` feature, without which
//! serde_json may read the last digit of an `f64` one unit off). Text formats read every
//! number as an `f64`, and rounding that to `f32` lands on a neighbour for two `f32`s
//! (`±7.038531e-26`; every finite `f32` was checked): those are written as the `f64` of the
//! same value, which reads back exactly. In a
//! human-readable format (JSON, which has no NaN or infinity) a value that is not finite is
//! written as a string: `"inf"`, `"-inf"`, `"NaN"` (the canonical quiet NaN), or
//! `"NaN:0x7fc00001"` (any other NaN, its bits in hex), and read back bit for bit. Binary
//! formats (postcard, bincode) hold the bits themselves.
//!
//! A number beyond the network's scalar type (`1e50` into an `f32` network) is a
//! [`LoadError::OutOfRange`] naming the tensor, never an infinity.
//!
//! Deserializing checks every name (no unknown, duplicate or missing tensor), every shape
//! and every tensor's number of values, and reports a [`LoadError`] (through the format's
//! error type) naming the tensor. [`deserialize`] builds the network by value (on the
//! stack: for a big network use [`deserialize_boxed`]); [`deserialize_into`] loads into an
//! existing network and leaves it unchanged on error.

use super::{
    Dtype, LoadError, Place, Shape, Text, ValueRange, count_value, from_f32, is_count, is_named,
    real_value, set_real_value, storage_index, to_f32, try_visit_saved,
};
use crate::{NamedTensor, Network, Params, Real, StateValue};
use ::serde::Serialize;
use ::serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use ::serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, Serializer};
use core::fmt;
use core::marker::PhantomData;

/// A network's weights, to serialize: `serde_json::to_string(&Weights::new(&net))`.
pub struct Weights<'a, T, N> {
    net: &'a N,
    _scalar: PhantomData<T>,
}

impl<'a, T: Real, N: Network<T>> Weights<'a, T, N> {
    /// The weights of `net`.
    pub fn new(net: &'a N) -> Self {
        Weights {
            net,
            _scalar: PhantomData,
        }
    }
}

impl<T: Real, N: Network<T>> Serialize for Weights<'_, T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(self.net, serializer)
    }
}

/// Gradients of a network's parameters, to serialize under the parameters' names
/// (`fc1.weight`: compare with PyTorch's `module.fc1.weight.grad`):
/// `serde_json::to_string(&Gradients::new(&net, &grads))`.
pub struct Gradients<'a, T: Real, N: Network<T>> {
    net: &'a N,
    grads: &'a N::Grads,
    _scalar: PhantomData<T>,
}

impl<'a, T: Real, N: Network<T>> Gradients<'a, T, N> {
    /// `grads`, the gradients of `net`'s parameters.
    pub fn new(net: &'a N, grads: &'a N::Grads) -> Self {
        Gradients {
            net,
            grads,
            _scalar: PhantomData,
        }
    }
}

impl<T: Real, N: Network<T>> Serialize for Gradients<'_, T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_values(self.net, self.grads.as_slice(), false, serializer)
    }
}

/// Serializes `net`'s weights (the function `#[serde(with = "nn::io::serde")]` calls).
pub fn serialize<T: Real, N: Network<T>, S: Serializer>(
    net: &N,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serialize_values(net, net.as_slice(), true, serializer)
}

/// The map of `net`'s tensors (with its state or not), the parameters read from `values`.
fn serialize_values<T: Real, N: Network<T>, S: Serializer>(
    net: &N,
    values: &[T],
    with_state: bool,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let count = if with_state {
        super::tensor_count::<T, N>()
    } else {
        let mut count = 0;
        N::visit_tensors(&mut |_| count += 1);
        count
    };
    let mut map = serializer.serialize_map(Some(count))?;
    try_visit_saved::<T, N, _>(|_, tensor, place| {
        if !with_state && place != Place::Parameter {
            return Ok(());
        }
        map.serialize_entry(
            &Name(&tensor),
            &TensorRef {
                net,
                values,
                tensor,
                place,
            },
        )
    })?;
    map.end()
}

/// Deserializes weights into a new network (the function `#[serde(with = "nn::io::serde")]`
/// calls). The network is built by value, on the stack: fine for small networks; for big
/// ones use [`deserialize_boxed`] (or `#[serde(with = "nn::io::serde::boxed")]`).
pub fn deserialize<'de, T: Real, N: Network<T>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<N, D::Error> {
    let mut net = N::ZERO;
    Fill::<T, N>::new(&mut net).deserialize(deserializer)?;
    Ok(net)
}

/// Deserializes weights into a new network on the heap, zeroed and filled in place: never
/// built on the stack, whatever its size.
#[cfg(feature = "alloc")]
pub fn deserialize_boxed<'de, T: Real, N: Network<T>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<alloc::boxed::Box<N>, D::Error> {
    let mut net = N::new_boxed();
    Fill::<T, N>::new(&mut net).deserialize(deserializer)?;
    Ok(net)
}

/// Deserializes weights into `net` (its parameters and saved state; state that is not saved,
/// such as dropout's generator, is left as it is). The values are staged in a copy on the
/// heap (made in place, [`clone_boxed`](crate::clone_boxed)) and copied back only when
/// everything checked out: on an error `net` is unchanged.
#[cfg(feature = "alloc")]
pub fn deserialize_into<'de, T: Real, N: Network<T>, D: Deserializer<'de>>(
    deserializer: D,
    net: &mut N,
) -> Result<(), D::Error> {
    let mut staged = crate::clone_boxed(net);
    Fill::<T, N>::new(&mut staged).deserialize(deserializer)?;
    crate::copy_into(&*staged, net);
    Ok(())
}

/// `#[serde(with = "nn::io::serde::boxed")]` for a field `Box<Net<T>>`: the network is
/// deserialized in place on the heap ([`deserialize_boxed`]), never on the stack.
#[cfg(feature = "alloc")]
pub mod boxed {
    use crate::{Network, Real};
    use ::serde::{Deserializer, Serializer};
    use alloc::boxed::Box;

    /// Serializes the boxed network's weights.
    #[allow(clippy::borrowed_box)] // the signature `#[serde(with)]` calls for a `Box` field
    pub fn serialize<T: Real, N: Network<T>, S: Serializer>(
        net: &Box<N>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        super::serialize(&**net, serializer)
    }

    /// Deserializes weights into a new boxed network, built in place.
    pub fn deserialize<'de, T: Real, N: Network<T>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Box<N>, D::Error> {
        super::deserialize_boxed(deserializer)
    }
}

/// A tensor's name as a map key, `fc1.weight`, written without allocating.
struct Name<'a>(&'a NamedTensor);

impl Serialize for Name<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// A tensor: `{shape, data}`.
struct TensorRef<'a, T, N> {
    net: &'a N,
    values: &'a [T],
    tensor: NamedTensor,
    place: Place,
}

impl<T: Real, N: Network<T>> Serialize for TensorRef<'_, T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Tensor", 2)?;
        s.serialize_field("shape", self.tensor.info.shape)?;
        s.serialize_field("data", &RowMajor(self))?;
        s.end()
    }
}

/// A tensor's values in row-major order.
struct RowMajor<'a, 'b, T, N>(&'b TensorRef<'a, T, N>);

impl<T: Real, N: Network<T>> Serialize for RowMajor<'_, '_, T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let TensorRef {
            net,
            values,
            tensor,
            place,
        } = *self.0;
        let len = tensor.info.len();
        let mut seq = serializer.serialize_seq(Some(len))?;
        if is_count(&tensor) {
            seq.serialize_element(&count_value(net, place))?;
        } else {
            for p in 0..len {
                seq.serialize_element(&Scalar(real_value(net, values, &tensor, place, p)))?;
            }
        }
        seq.end()
    }
}

/// A scalar as `f32` or `f64`, whichever `T` is; in a human-readable format, a value that
/// is not finite as a string (see the module's docs).
struct Scalar<T>(T);

impl<T: Real> Serialize for Scalar<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        if serializer.is_human_readable() && !x.is_finite() {
            return serializer.collect_str(&NonFinite(x));
        }
        match Dtype::of::<T>() {
            Dtype::F32 if serializer.is_human_readable() && !survives_f64_reading(to_f32(x)) => {
                serializer.serialize_f64(x.to_f64())
            }
            Dtype::F32 => serializer.serialize_f32(to_f32(x)),
            Dtype::F64 => serializer.serialize_f64(x.to_f64()),
        }
    }
}

/// Whether the shortest decimal of `x` (what a text format writes for an `f32`), read as an
/// `f64` and rounded to `f32` (what a text format's reader does), is `x` again.
///
/// Not always: rounding twice can land on a neighbour (`7.038531e-26`, the `f32` of bits
/// `0x15ae43fd`, reads back as `0x15ae43fe`; tests/pytorch_state.rs). For those rare values
/// the writer gives the `f64` of the same value instead (`7.038530691851209e-26`), whose
/// shortest decimal reads back exactly as that `f64`, which rounds to `f32` exactly.
fn survives_f64_reading(x: f32) -> bool {
    let text = Text::format(format_args!("{x:e}"));
    text.as_str()
        .parse::<f64>()
        .is_ok_and(|v| (v as f32).to_bits() == x.to_bits())
}

/// The text of a value that is not finite: `inf`, `-inf`, `NaN`, or `NaN:0x…` (its bits).
struct NonFinite<T>(T);

impl<T: Real> fmt::Display for NonFinite<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if !x.to_f64().is_nan() {
            return f.write_str(if x > T::ZERO { "inf" } else { "-inf" });
        }
        match Dtype::of::<T>() {
            Dtype::F32 => match to_f32(x).to_bits() {
                CANONICAL_NAN_F32 => f.write_str("NaN"),
                bits => write!(f, "NaN:{bits:#010x}"),
            },
            Dtype::F64 => match x.to_f64().to_bits() {
                CANONICAL_NAN_F64 => f.write_str("NaN"),
                bits => write!(f, "NaN:{bits:#018x}"),
            },
        }
    }
}

/// The bits of the quiet NaN `f32::NAN` and `f64::NAN` are on the platforms Rust supports.
const CANONICAL_NAN_F32: u32 = 0x7fc0_0000;
const CANONICAL_NAN_F64: u64 = 0x7ff8_0000_0000_0000;

/// The value of a string written for a non-finite value (accepting also Python's and
/// JavaScript's spellings: `nan`, `Infinity`…), or `None`.
fn parse_non_finite<T: Real>(text: &str) -> Option<T> {
    let nan = || match Dtype::of::<T>() {
        Dtype::F32 => from_f32(f32::from_bits(CANONICAL_NAN_F32)),
        Dtype::F64 => T::of(f64::from_bits(CANONICAL_NAN_F64)),
    };
    match text {
        "inf" | "+inf" | "Infinity" | "+Infinity" | "INF" => return Some(T::of(f64::INFINITY)),
        "-inf" | "-Infinity" | "-INF" => return Some(T::of(f64::NEG_INFINITY)),
        "NaN" | "nan" | "NAN" => return Some(nan()),
        _ => {}
    }
    let hex = text.strip_prefix("NaN:0x")?;
    match (Dtype::of::<T>(), hex.len()) {
        (Dtype::F32, 8) => {
            let x = f32::from_bits(u32::from_str_radix(hex, 16).ok()?);
            x.is_nan().then(|| from_f32(x))
        }
        (Dtype::F64, 16) => {
            let x = f64::from_bits(u64::from_str_radix(hex, 16).ok()?);
            x.is_nan().then(|| T::of(x))
        }
        _ => None,
    }
}

/// Which of the network's tensors have been read: a bit per tensor, inline for up to 1024
/// tensors, on the heap beyond that (with `alloc`).
enum Seen {
    Inline([u64; 16]),
    #[cfg(feature = "alloc")]
    Heap(alloc::vec::Vec<bool>),
}

impl Seen {
    fn new(count: usize) -> Result<Seen, LoadError> {
        if count <= 1024 {
            return Ok(Seen::Inline([0; 16]));
        }
        #[cfg(feature = "alloc")]
        {
            Ok(Seen::Heap(alloc::vec![false; count]))
        }
        #[cfg(not(feature = "alloc"))]
        {
            Err(LoadError::malformed(
                "without an allocator, serde loads networks of at most 1024 tensors",
            ))
        }
    }

    /// Marks tensor `i`; false if it was already marked.
    fn mark(&mut self, i: usize) -> bool {
        match self {
            Seen::Inline(bits) => {
                let (word, bit) = (i / 64, 1u64 << (i % 64));
                let new = bits[word] & bit == 0;
                bits[word] |= bit;
                new
            }
            #[cfg(feature = "alloc")]
            Seen::Heap(flags) => !core::mem::replace(&mut flags[i], true),
        }
    }

    fn is_marked(&self, i: usize) -> bool {
        match self {
            Seen::Inline(bits) => bits[i / 64] & (1u64 << (i % 64)) != 0,
            #[cfg(feature = "alloc")]
            Seen::Heap(flags) => flags[i],
        }
    }
}

/// Fills a network from the serialized map (the values of tensors read before an error stay
/// written: callers discard the network on error).
struct Fill<'a, T, N> {
    net: &'a mut N,
    _scalar: PhantomData<T>,
}

impl<'a, T: Real, N: Network<T>> Fill<'a, T, N> {
    fn new(net: &'a mut N) -> Self {
        Fill {
            net,
            _scalar: PhantomData,
        }
    }
}

impl<'de, T: Real, N: Network<T>> DeserializeSeed<'de> for Fill<'_, T, N> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Real, N: Network<T>> Visitor<'de> for Fill<'_, T, N> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map from tensor names to {shape, data}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let count = super::tensor_count::<T, N>();
        let mut seen = Seen::new(count).map_err(de::Error::custom)?;
        while let Some((index, tensor, place)) = map.next_key_seed(Key::<T, N>(PhantomData))? {
            if !seen.mark(index) {
                return Err(de::Error::custom(LoadError::Duplicate {
                    name: Text::format(format_args!("{tensor}")),
                }));
            }
            map.next_value_seed(TensorSeed {
                target: Target {
                    net: &mut *self.net,
                    tensor,
                    place,
                    _scalar: PhantomData,
                },
            })?;
        }
        try_visit_saved::<T, N, _>(|i, tensor, _| {
            if seen.is_marked(i) {
                Ok(())
            } else {
                Err(LoadError::Missing {
                    tensor,
                    file_name: Text::format(format_args!("{tensor}")),
                })
            }
        })
        .map_err(de::Error::custom)
    }
}

/// Where one tensor's values go.
struct Target<'a, T, N> {
    net: &'a mut N,
    tensor: NamedTensor,
    place: Place,
    _scalar: PhantomData<T>,
}

impl<T: Real, N: Network<T>> Target<'_, T, N> {
    fn reborrow(&mut self) -> Target<'_, T, N> {
        Target {
            net: &mut *self.net,
            tensor: self.tensor,
            place: self.place,
            _scalar: PhantomData,
        }
    }
}

/// A map key: the index, description and place of one of `N`'s saved tensors.
struct Key<T, N>(PhantomData<(T, N)>);

impl<'de, T: Real, N: Network<T>> DeserializeSeed<'de> for Key<T, N> {
    type Value = (usize, NamedTensor, Place);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, T: Real, N: Network<T>> Visitor<'de> for Key<T, N> {
    type Value = (usize, NamedTensor, Place);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tensor name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        self.visit_bytes(name.as_bytes())
    }

    fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<Self::Value, E> {
        let mut found = None;
        let _ = try_visit_saved::<T, N, ()>(|index, tensor, place| {
            if found.is_none() && is_named(&tensor, name) {
                found = Some((index, tensor, place));
            }
            Ok(())
        });
        found.ok_or_else(|| {
            E::custom(LoadError::Unexpected {
                name: Text::lossy(name),
            })
        })
    }
}

/// One tensor's `{shape, data}`, written into its place.
struct TensorSeed<'a, T, N> {
    target: Target<'a, T, N>,
}

const FIELDS: &[&str] = &["shape", "data"];

impl<'de, T: Real, N: Network<T>> DeserializeSeed<'de> for TensorSeed<'_, T, N> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("Tensor", FIELDS, self)
    }
}

impl<'de, T: Real, N: Network<T>> Visitor<'de> for TensorSeed<'_, T, N> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor `{}` as {{shape, data}}", self.target.tensor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let tensor = self.target.tensor;
        let missing = || {
            de::Error::custom(LoadError::Malformed {
                reason: "a tensor needs a shape and data",
                detail: Text::format(format_args!("{tensor}")),
            })
        };
        seq.next_element_seed(ShapeSeed { tensor })?
            .ok_or_else(missing)?;
        seq.next_element_seed(DataSeed {
            target: self.target,
        })?
        .ok_or_else(missing)?;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut target = self.target;
        let tensor = target.tensor;
        let (mut shape, mut data) = (false, false);
        while let Some(field) = map.next_key_seed(FieldSeed)? {
            let twice = || {
                de::Error::custom(LoadError::Malformed {
                    reason: "a tensor has a field twice",
                    detail: Text::format(format_args!("{tensor}")),
                })
            };
            match field {
                Field::Shape => {
                    if core::mem::replace(&mut shape, true) {
                        return Err(twice());
                    }
                    map.next_value_seed(ShapeSeed { tensor })?;
                }
                Field::Data => {
                    if core::mem::replace(&mut data, true) {
                        return Err(twice());
                    }
                    map.next_value_seed(DataSeed {
                        target: target.reborrow(),
                    })?;
                }
            }
        }
        if shape && data {
            Ok(())
        } else {
            Err(de::Error::custom(LoadError::Malformed {
                reason: "a tensor needs a shape and data",
                detail: Text::format(format_args!("{tensor}")),
            }))
        }
    }
}

enum Field {
    Shape,
    Data,
}

struct FieldSeed;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`shape` or `data`")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        match v {
            0 => Ok(Field::Shape),
            1 => Ok(Field::Data),
            _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        self.visit_bytes(v.as_bytes())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Field, E> {
        match v {
            b"shape" => Ok(Field::Shape),
            b"data" => Ok(Field::Data),
            _ => Err(E::unknown_field(Text::lossy(v).as_str(), FIELDS)),
        }
    }
}

/// A tensor's shape, checked against the network's.
struct ShapeSeed {
    tensor: NamedTensor,
}

impl<'de> DeserializeSeed<'de> for ShapeSeed {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the shape of `{}`, a list of sizes", self.tensor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut shape = Shape::new();
        while let Some(d) = seq.next_element::<u64>()? {
            shape.push(d);
        }
        if shape.matches(self.tensor.info.shape) {
            Ok(())
        } else {
            Err(de::Error::custom(LoadError::Shape {
                tensor: self.tensor,
                found: shape,
            }))
        }
    }
}

/// A tensor's values, row-major, written into the network (a parameter's column-major
/// storage, or its state).
struct DataSeed<'a, T, N> {
    target: Target<'a, T, N>,
}

impl<'de, T: Real, N: Network<T>> DeserializeSeed<'de> for DataSeed<'_, T, N> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Real, N: Network<T>> Visitor<'de> for DataSeed<'_, T, N> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the values of `{}`, a list of numbers",
            self.target.tensor
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Target {
            net, tensor, place, ..
        } = self.target;
        let expected = tensor.info.len();
        let too_many = |found| {
            de::Error::custom(LoadError::ValueCount {
                tensor,
                expected,
                found,
            })
        };
        let mut p = 0;
        if is_count(&tensor) {
            while let Some(n) = seq.next_element_seed(CountSeed { tensor })? {
                if p == expected {
                    return Err(too_many(p + 1));
                }
                if let Place::State(index) = place {
                    net.set_state_value(index, 0, StateValue::Count(n));
                }
                p += 1;
            }
        } else if place == Place::Parameter {
            // The common case: straight into the parameter slice.
            let values = &mut net.as_mut_slice()[tensor.range()];
            while let Some(x) = seq.next_element_seed(ScalarSeed::<T> {
                tensor,
                _scalar: PhantomData,
            })? {
                if p == expected {
                    return Err(too_many(p + 1));
                }
                values[storage_index(tensor.info.shape, p)] = x;
                p += 1;
            }
        } else {
            while let Some(x) = seq.next_element_seed(ScalarSeed::<T> {
                tensor,
                _scalar: PhantomData,
            })? {
                if p == expected {
                    return Err(too_many(p + 1));
                }
                set_real_value(net, &tensor, place, p, x);
                p += 1;
            }
        }
        if p == expected {
            Ok(())
        } else {
            Err(de::Error::custom(LoadError::ValueCount {
                tensor,
                expected,
                found: p,
            }))
        }
    }
}

/// A scalar read as `T`: a number of `T`'s range, or (in a human-readable format) one of the
/// strings written for values that are not finite.
struct ScalarSeed<T> {
    tensor: NamedTensor,
    _scalar: PhantomData<T>,
}

/// [`LoadError::OutOfRange`] as the format's error.
fn out_of_range<E: de::Error>(
    tensor: NamedTensor,
    value: impl fmt::Display,
    expected: ValueRange,
) -> E {
    E::custom(LoadError::OutOfRange {
        tensor,
        value: Text::format(format_args!("{value}")),
        expected,
    })
}

impl<'de, T: Real> DeserializeSeed<'de> for ScalarSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        if deserializer.is_human_readable() {
            // A number or a string (for a value that is not finite).
            return deserializer.deserialize_any(self);
        }
        match Dtype::of::<T>() {
            Dtype::F32 => deserializer.deserialize_f32(self),
            Dtype::F64 => deserializer.deserialize_f64(self),
        }
    }
}

impl<'de, T: Real> Visitor<'de> for ScalarSeed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a number (or \"inf\", \"-inf\", \"NaN\") for tensor `{}`",
            self.tensor
        )
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<T, E> {
        // Exact in both types.
        Ok(from_f32(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        match Dtype::of::<T>() {
            Dtype::F64 => Ok(T::of(v)),
            Dtype::F32 => {
                let x = v as f32;
                if x.is_infinite() && v.is_finite() {
                    let value = format_args!("{v:e}");
                    return Err(out_of_range(self.tensor, value, ValueRange::F32));
                }
                Ok(from_f32(x))
            }
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_f64(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        parse_non_finite(v).ok_or_else(|| {
            E::custom(LoadError::Malformed {
                reason: "a value is a string other than \"inf\", \"-inf\", \"NaN\" or \"NaN:0x…\"",
                detail: Text::format(format_args!("{}: {v:?}", self.tensor)),
            })
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        // serde_json writes `null` for NaN and ±infinity, which cannot be told apart.
        Err(E::custom(LoadError::Malformed {
            reason: "a value is null (older files wrote NaN and infinities so: which one is lost)",
            detail: Text::format(format_args!("{}", self.tensor)),
        }))
    }
}

/// An integer count (`num_batches_tracked`): a non-negative integer, or a float with an
/// integer value.
struct CountSeed {
    tensor: NamedTensor,
}

impl<'de> DeserializeSeed<'de> for CountSeed {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_u64(self)
    }
}

impl<'de> Visitor<'de> for CountSeed {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a non-negative integer for `{}`", self.tensor)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        // PyTorch's int64: what every format can save again.
        if v <= i64::MAX as u64 {
            Ok(v)
        } else {
            Err(out_of_range(self.tensor, v, ValueRange::Count))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| out_of_range(self.tensor, v, ValueRange::Count))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // Below 2⁶³, the largest `int64` value an `f64` holds.
        if (0.0..9_223_372_036_854_775_808.0).contains(&v) && (v as u64) as f64 == v {
            Ok(v as u64)
        } else {
            Err(out_of_range(self.tensor, v, ValueRange::Count))
        }
    }
}
