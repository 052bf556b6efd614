//! serde `Serialize` / `Deserialize` of a network's weights (feature `serde`), for any serde
//! format: JSON, postcard, bincode, MessagePack…
//!
//! The weights are a map from each tensor's PyTorch name to its shape and its values,
//! row-major (PyTorch's and NumPy's order), as the network's scalar type:
//!
//! ```json
//! {"fc1.weight": {"shape": [5, 3], "data": [0.1, -0.2, ...]}, "fc1.bias": {"shape": [5], "data": [...]}}
//! ```
//!
//! ```ignore
//! let json = serde_json::to_string(&nn::io::serde::Weights::new(&net))?;
//! let net: Net<f32> = nn::io::serde::deserialize(&mut serde_json::Deserializer::from_str(&json))?;
//! ```
//!
//! or, in a struct of your own, `#[serde(with = "nn::io::serde")] net: Net<f32>`.
//!
//! Deserializing checks every name (no unknown, duplicate or missing tensor), every shape
//! and every tensor's number of values, and reports a [`LoadError`] (through the format's
//! error type) naming the tensor. [`deserialize`] builds the network by value (on the
//! stack: for a big network use [`deserialize_boxed`]); [`deserialize_into`] loads into an
//! existing network and leaves it unchanged on error.

use super::{Dtype, LoadError, Shape, Text, from_f32, is_named, storage_index, to_f32, try_visit};
use crate::{NamedTensor, Network, Real};
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

/// Serializes `net`'s weights (the function `#[serde(with = "nn::io::serde")]` calls).
pub fn serialize<T: Real, N: Network<T>, S: Serializer>(
    net: &N,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let params = net.as_slice();
    let mut map = serializer.serialize_map(Some(super::tensor_count::<T, N>()))?;
    try_visit::<T, N, _>(|_, tensor| {
        map.serialize_entry(
            &Name(&tensor),
            &TensorRef {
                tensor,
                values: &params[tensor.range()],
            },
        )
    })?;
    map.end()
}

/// Deserializes weights into a new network (the function `#[serde(with = "nn::io::serde")]`
/// calls). The network is built by value, on the stack: fine for small networks; for big
/// ones use [`deserialize_boxed`].
pub fn deserialize<'de, T: Real, N: Network<T>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<N, D::Error> {
    let mut net = N::ZERO;
    Fill::<T, N>::new(net.as_mut_slice()).deserialize(deserializer)?;
    Ok(net)
}

/// Deserializes weights into a new network on the heap, never built on the stack.
#[cfg(feature = "alloc")]
pub fn deserialize_boxed<'de, T: Real, N: Network<T>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<alloc::boxed::Box<N>, D::Error> {
    let mut net = N::new_boxed();
    Fill::<T, N>::new(net.as_mut_slice()).deserialize(deserializer)?;
    Ok(net)
}

/// Deserializes weights into `net`'s parameters (its state is left as it is). The values are
/// staged in a zeroed copy on the heap and copied only when everything checked out: on an
/// error `net` is unchanged.
#[cfg(feature = "alloc")]
pub fn deserialize_into<'de, T: Real, N: Network<T>, D: Deserializer<'de>>(
    deserializer: D,
    net: &mut N,
) -> Result<(), D::Error> {
    let staged = deserialize_boxed::<T, N, D>(deserializer)?;
    net.as_mut_slice().copy_from_slice(staged.as_slice());
    Ok(())
}

/// A tensor's name as a map key, `fc1.weight`, written without allocating.
struct Name<'a>(&'a NamedTensor);

impl Serialize for Name<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// A tensor: `{shape, data}`.
struct TensorRef<'a, T> {
    tensor: NamedTensor,
    values: &'a [T],
}

impl<T: Real> Serialize for TensorRef<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Tensor", 2)?;
        s.serialize_field("shape", self.tensor.info.shape)?;
        s.serialize_field(
            "data",
            &RowMajor {
                shape: self.tensor.info.shape,
                values: self.values,
            },
        )?;
        s.end()
    }
}

/// A tensor's values in row-major order.
struct RowMajor<'a, T> {
    shape: &'a [usize],
    values: &'a [T],
}

impl<T: Real> Serialize for RowMajor<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.values.len()))?;
        for p in 0..self.values.len() {
            seq.serialize_element(&Scalar(self.values[storage_index(self.shape, p)]))?;
        }
        seq.end()
    }
}

/// A scalar as `f32` or `f64`, whichever `T` is.
struct Scalar<T>(T);

impl<T: Real> Serialize for Scalar<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match Dtype::of::<T>() {
            Dtype::F32 => serializer.serialize_f32(to_f32(self.0)),
            Dtype::F64 => serializer.serialize_f64(self.0.to_f64()),
        }
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

/// Fills a parameter slice from the serialized map (the values of tensors read before an
/// error stay written: callers discard the slice on error).
struct Fill<'a, T, N> {
    params: &'a mut [T],
    _net: PhantomData<N>,
}

impl<'a, T: Real, N: Network<T>> Fill<'a, T, N> {
    fn new(params: &'a mut [T]) -> Self {
        Fill {
            params,
            _net: PhantomData,
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
        while let Some((index, tensor)) = map.next_key_seed(Key::<T, N>(PhantomData))? {
            if !seen.mark(index) {
                return Err(de::Error::custom(LoadError::Duplicate {
                    name: Text::format(format_args!("{tensor}")),
                }));
            }
            map.next_value_seed(TensorSeed {
                tensor,
                values: &mut self.params[tensor.range()],
            })?;
        }
        try_visit::<T, N, _>(|i, tensor| {
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

/// A map key: the index and description of one of `N`'s tensors.
struct Key<T, N>(PhantomData<(T, N)>);

impl<'de, T: Real, N: Network<T>> DeserializeSeed<'de> for Key<T, N> {
    type Value = (usize, NamedTensor);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, T: Real, N: Network<T>> Visitor<'de> for Key<T, N> {
    type Value = (usize, NamedTensor);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tensor name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        self.visit_bytes(name.as_bytes())
    }

    fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<Self::Value, E> {
        let mut found = None;
        let mut index = 0;
        N::visit_tensors(&mut |tensor| {
            if found.is_none() && is_named(&tensor, name) {
                found = Some((index, tensor));
            }
            index += 1;
        });
        found.ok_or_else(|| {
            E::custom(LoadError::Unexpected {
                name: Text::lossy(name),
            })
        })
    }
}

/// One tensor's `{shape, data}`, written into its values.
struct TensorSeed<'a, T> {
    tensor: NamedTensor,
    values: &'a mut [T],
}

const FIELDS: &[&str] = &["shape", "data"];

impl<'de, T: Real> DeserializeSeed<'de> for TensorSeed<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("Tensor", FIELDS, self)
    }
}

impl<'de, T: Real> Visitor<'de> for TensorSeed<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor `{}` as {{shape, data}}", self.tensor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let tensor = self.tensor;
        let missing = || {
            de::Error::custom(LoadError::Malformed {
                reason: "a tensor needs a shape and data",
                detail: Text::format(format_args!("{tensor}")),
            })
        };
        seq.next_element_seed(ShapeSeed { tensor })?
            .ok_or_else(missing)?;
        seq.next_element_seed(DataSeed {
            tensor,
            values: self.values,
        })?
        .ok_or_else(missing)?;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let tensor = self.tensor;
        let (mut shape, mut data) = (false, false);
        let values = self.values;
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
                        tensor,
                        values: &mut *values,
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

/// A tensor's values, row-major, written into the network's (column-major) storage.
struct DataSeed<'a, T> {
    tensor: NamedTensor,
    values: &'a mut [T],
}

impl<'de, T: Real> DeserializeSeed<'de> for DataSeed<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Real> Visitor<'de> for DataSeed<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the values of `{}`, a list of numbers", self.tensor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = self.values.len();
        let shape = self.tensor.info.shape;
        let mut p = 0;
        while let Some(x) = seq.next_element_seed(ScalarSeed::<T>(PhantomData))? {
            if p == expected {
                return Err(de::Error::custom(LoadError::ValueCount {
                    tensor: self.tensor,
                    expected,
                    found: p + 1,
                }));
            }
            self.values[storage_index(shape, p)] = x;
            p += 1;
        }
        if p == expected {
            Ok(())
        } else {
            Err(de::Error::custom(LoadError::ValueCount {
                tensor: self.tensor,
                expected,
                found: p,
            }))
        }
    }
}

/// A scalar read as `T`'s own type (`f32` or `f64`; integers are accepted too).
struct ScalarSeed<T>(PhantomData<T>);

impl<'de, T: Real> DeserializeSeed<'de> for ScalarSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        match Dtype::of::<T>() {
            Dtype::F32 => deserializer.deserialize_f32(self),
            Dtype::F64 => deserializer.deserialize_f64(self),
        }
    }
}

impl<'de, T: Real> Visitor<'de> for ScalarSeed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<T, E> {
        Ok(from_f32(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Ok(T::of(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Ok(T::of(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::of(v as f64))
    }
}
