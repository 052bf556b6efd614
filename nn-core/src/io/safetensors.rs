//! Weights in the [safetensors](https://huggingface.co/docs/safetensors) format (feature
//! `safetensors`, needs `alloc`), with PyTorch's names and layouts.
//!
//! A PyTorch module whose submodules have the network's layer names loads directly:
//!
//! ```python
//! class Net(torch.nn.Module):            # network! { pub struct Net { input: [3],
//!     def __init__(self):                #     fc1: Dense<5>, Tanh, fc2: Dense<2> } }
//!         super().__init__()
//!         self.fc1 = torch.nn.Linear(3, 5)
//!         self.fc2 = torch.nn.Linear(5, 2)
//! safetensors.torch.save_file(net.state_dict(), "net.safetensors")
//! ```
//!
//! ```ignore
//! let mut net = Net::<f32>::new_boxed();
//! nn::io::safetensors::load(&mut *net, &std::fs::read("net.safetensors")?)?;
//! ```
//!
//! An `nn.Sequential` names its tensors by position, activations counted: `0.weight`,
//! `0.bias`, `2.weight`… Map the layers to those names with [`Names::Layers`]:
//!
//! ```ignore
//! let options = Options { names: Names::Layers(&[("fc1", "0"), ("fc2", "2")]), ..Options::default() };
//! nn::io::safetensors::load_with(&mut *net, &bytes, &options)?;
//! ```
//!
//! Loading is strict by default, as PyTorch's `load_state_dict(strict=True)`: every tensor
//! of the network (its parameters and its saved state: batch normalization's
//! `running_mean`, `running_var` and `num_batches_tracked`) must be in the file with the
//! network's dtype and shape, and the file must hold no other tensor. With `strict: false`
//! the file may hold other tensors and may lack state tensors (the network's state is then
//! left as it is), as PyTorch's `strict=False`; a parameter must still be there. Nothing is
//! written unless everything checks out.
//!
//! Saving writes what PyTorch's `state_dict()` holds for the same module: a file `save`
//! writes loads in PyTorch with `load_state_dict(load_file(..), strict=True)`.
//! [`save_gradients`] writes gradients under the parameters' names, to compare with
//! PyTorch's `p.grad`.

use super::{
    Dtype, LoadError, Place, SaveError, Shape, Text, ValueRange, count_value, is_count,
    read_tensor, try_visit_saved, write_tensor,
};
use crate::{NamedTensor, Network, Params, Real, StateValue};
use alloc::borrow::ToOwned;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use safetensors::tensor::{Metadata, TensorView};
use safetensors::{Dtype as FileDtype, SafeTensorError, SafeTensors};

/// How the network's tensors are named in the file.
#[derive(Clone, Copy, Default)]
pub enum Names<'a> {
    /// As [`Network::visit_tensors`] names them: `fc1.weight` (a PyTorch module whose
    /// submodules have the layers' names).
    #[default]
    Same,
    /// Each name with a prefix: `Prefix("model.")` gives `model.fc1.weight` (a network that
    /// is a submodule of a bigger PyTorch module).
    Prefix(&'a str),
    /// Each name without a prefix: `StripPrefix("conv.")` gives `weight` for `conv.weight`,
    /// the names of a bare PyTorch layer (`torch.nn.Conv1d(..).state_dict()`). A name that
    /// does not start with the prefix is kept.
    StripPrefix(&'a str),
    /// Some layers renamed, `(layer, name in the file)`: `Layers(&[("fc1", "0"),
    /// ("fc2", "2")])` gives `0.weight`, `2.bias`… as in an `nn.Sequential`. Layers not
    /// listed keep their names.
    Layers(&'a [(&'a str, &'a str)]),
    /// Any mapping from the network's tensor to the name in the file.
    Custom(&'a dyn Fn(&NamedTensor) -> String),
}

impl Names<'_> {
    /// The name of `tensor` in the file.
    pub fn file_name(&self, tensor: &NamedTensor) -> String {
        match self {
            Names::Same => format!("{tensor}"),
            Names::Prefix(prefix) => format!("{prefix}{tensor}"),
            Names::StripPrefix(prefix) => {
                let name = format!("{tensor}");
                match name.strip_prefix(prefix) {
                    Some(rest) => rest.to_owned(),
                    None => name,
                }
            }
            Names::Layers(map) => {
                let layer = map
                    .iter()
                    .find(|(ours, _)| *ours == tensor.layer)
                    .map_or(tensor.layer, |(_, theirs)| *theirs);
                format!("{layer}.{}", tensor.info.name)
            }
            Names::Custom(f) => f(tensor),
        }
    }
}

impl core::fmt::Debug for Names<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Names::Same => f.write_str("Same"),
            Names::Prefix(p) => f.debug_tuple("Prefix").field(p).finish(),
            Names::StripPrefix(p) => f.debug_tuple("StripPrefix").field(p).finish(),
            Names::Layers(map) => f.debug_tuple("Layers").field(map).finish(),
            Names::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Options of [`load_with`] and [`save_with`].
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// How tensors are named in the file (default [`Names::Same`]).
    pub names: Names<'a>,
    /// Refuse a file that holds tensors the network does not have, or lacks one of its state
    /// tensors (default `true`, as PyTorch's `load_state_dict(strict=True)`). A missing
    /// parameter is refused either way. Loading only.
    pub strict: bool,
    /// Accept `F32` data into an `f64` network and `F64` data into an `f32` one (rounded to
    /// nearest) instead of refusing it (default `false`). Loading only.
    pub convert_dtype: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            names: Names::Same,
            strict: true,
            convert_dtype: false,
        }
    }
}

/// Loads `N`'s weights from safetensors `bytes` with the default [`Options`]: PyTorch's
/// names, strict, no dtype conversion. On an error `net` is unchanged.
pub fn load<T: Real, N: Network<T>>(net: &mut N, bytes: &[u8]) -> Result<(), LoadError> {
    load_with(net, bytes, &Options::default())
}

/// Loads `N`'s weights from safetensors `bytes`; see [`Options`]. Every tensor is checked
/// (present, dtype, shape; and with `strict`, no other tensor in the file) before any is
/// written: on an error `net` is unchanged.
pub fn load_with<T: Real, N: Network<T>>(
    net: &mut N,
    bytes: &[u8],
    options: &Options<'_>,
) -> Result<(), LoadError> {
    let file = parse(bytes)?;
    let plan = check::<T, N>(&file, options)?;
    for (tensor, place, view) in &plan {
        if is_count(tensor) {
            if let Place::State(index) = place {
                let n = read_count(view).unwrap_or(0);
                net.set_state_value(*index, 0, StateValue::Count(n));
            }
        } else {
            let dtype = dtype_of(view.dtype()).unwrap_or(Dtype::F32);
            write_tensor(net, tensor, *place, view.data(), dtype);
        }
    }
    Ok(())
}

/// The value of a scalar `I64` tensor, if it is a non-negative one.
fn read_count(view: &TensorView<'_>) -> Option<u64> {
    let bytes: [u8; 8] = view.data().try_into().ok()?;
    u64::try_from(i64::from_le_bytes(bytes)).ok()
}

/// Checks `bytes` as [`load_with`] does, without loading: `Ok` exactly when it would
/// succeed.
pub fn verify<T: Real, N: Network<T>>(
    bytes: &[u8],
    options: &Options<'_>,
) -> Result<(), LoadError> {
    let file = parse(bytes)?;
    check::<T, N>(&file, options).map(|_| ())
}

/// The names of the tensors in safetensors `bytes`, sorted, after checking the file's
/// structure (not its contents against a network).
pub fn tensor_names(bytes: &[u8]) -> Result<Vec<String>, LoadError> {
    let file = parse(bytes)?;
    let mut names: Vec<String> = file.names().into_iter().map(ToOwned::to_owned).collect();
    names.sort();
    Ok(names)
}

fn dtype_of(dtype: FileDtype) -> Option<Dtype> {
    match dtype {
        FileDtype::F32 => Some(Dtype::F32),
        FileDtype::F64 => Some(Dtype::F64),
        _ => None,
    }
}

fn file_dtype(dtype: Dtype) -> FileDtype {
    match dtype {
        Dtype::F32 => FileDtype::F32,
        Dtype::F64 => FileDtype::F64,
    }
}

fn malformed(reason: &'static str, detail: impl core::fmt::Display) -> LoadError {
    LoadError::Malformed {
        reason,
        detail: Text::format(format_args!("{detail}")),
    }
}

/// Parses the file's structure: header length, header JSON, offsets, total length.
fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, LoadError> {
    let available = bytes.len() as u64;
    let Some(prefix) = bytes.first_chunk::<8>() else {
        return Err(LoadError::Truncated {
            needed: 8,
            available,
        });
    };
    let header_len = u64::from_le_bytes(*prefix);
    let header_end = header_len.saturating_add(8);
    if header_end > available {
        return Err(LoadError::Truncated {
            needed: header_end,
            available,
        });
    }
    // `header_end <= bytes.len()`, so it fits a usize.
    let header = &bytes[8..header_end as usize];
    let header =
        core::str::from_utf8(header).map_err(|e| malformed("the header is not UTF-8", e))?;
    // Parsed here once for the exact expected length (the crate only says that the length
    // is wrong) and to check the sum below without overflow.
    let metadata: Metadata = serde_json::from_str(header)
        .map_err(|e| malformed("the header is not a valid safetensors header", e))?;
    let expected = (metadata.data_len() as u64)
        .checked_add(header_end)
        .ok_or_else(|| malformed("the tensors' sizes overflow", ""))?;
    if expected > available {
        return Err(LoadError::Truncated {
            needed: expected,
            available,
        });
    }
    if expected < available {
        return Err(LoadError::TrailingBytes {
            expected,
            found: available,
        });
    }
    SafeTensors::deserialize(bytes).map_err(|e| match e {
        SafeTensorError::HeaderTooLarge => malformed("the header is too large", e),
        other => malformed("invalid safetensors data", other),
    })
}

/// A tensor of the network, where its values go, and its data in the file.
type Plan<'data> = Vec<(NamedTensor, Place, TensorView<'data>)>;

/// Checks every tensor; returns each of the network's tensors found in the file with its
/// data.
fn check<'data, T: Real, N: Network<T>>(
    file: &SafeTensors<'data>,
    options: &Options<'_>,
) -> Result<Plan<'data>, LoadError> {
    let expected = Dtype::of::<T>();
    let mut plan = Vec::new();
    let mut names = BTreeSet::new();
    try_visit_saved::<T, N, _>(|_, tensor, place| {
        let name = options.names.file_name(&tensor);
        let Ok(view) = file.tensor(&name) else {
            if !options.strict && place != Place::Parameter {
                // Non-strict: the network's state stays as it is, as in PyTorch.
                return Ok(());
            }
            return Err(LoadError::Missing {
                tensor,
                file_name: Text::new(&name),
            });
        };
        if is_count(&tensor) && view.dtype() != FileDtype::I64 {
            return Err(LoadError::Malformed {
                reason: "a count (num_batches_tracked) must be an I64 scalar, as PyTorch writes it",
                detail: Text::format(format_args!("{name}: {:?}", view.dtype())),
            });
        }
        let dtype_ok = match dtype_of(view.dtype()) {
            Some(d) => d == expected || options.convert_dtype,
            None => is_count(&tensor),
        };
        if !dtype_ok {
            return Err(LoadError::Dtype {
                tensor: Some(tensor),
                expected,
                found: Text::format(format_args!("{:?}", view.dtype())),
            });
        }
        let found = Shape::from_dims(view.shape().iter().map(|&d| d as u64));
        if !found.matches(tensor.info.shape) {
            return Err(LoadError::Shape { tensor, found });
        }
        if is_count(&tensor) && read_count(&view).is_none() {
            let bytes: [u8; 8] = view.data().try_into().unwrap_or([0; 8]);
            return Err(LoadError::OutOfRange {
                tensor,
                value: Text::format(format_args!("{}", i64::from_le_bytes(bytes))),
                expected: ValueRange::Count,
            });
        }
        if !names.insert(name) {
            // Two of the network's tensors map to one name in the file.
            return Err(LoadError::Duplicate {
                name: Text::new(&options.names.file_name(&tensor)),
            });
        }
        plan.push((tensor, place, view));
        Ok(())
    })?;
    if options.strict {
        let mut extra: Vec<&str> = file
            .names()
            .into_iter()
            .filter(|name| !names.contains(*name))
            .collect();
        extra.sort_unstable();
        if let Some(name) = extra.first() {
            return Err(LoadError::Unexpected {
                name: Text::new(name),
            });
        }
    }
    Ok(plan)
}

/// `net`'s weights (parameters and saved state) as a safetensors file with PyTorch's names,
/// dtype `T` (and `I64` for `num_batches_tracked`).
pub fn save<T: Real, N: Network<T>>(net: &N) -> Result<Vec<u8>, SaveError> {
    save_with(net, &Options::default())
}

/// `net`'s weights as a safetensors file, named by `options.names` (the other options are
/// for loading), with dtype `T` and the metadata `{"format": "pt"}` that PyTorch tools look
/// for.
pub fn save_with<T: Real, N: Network<T>>(
    net: &N,
    options: &Options<'_>,
) -> Result<Vec<u8>, SaveError> {
    write_file(net, net.as_slice(), true, options)
}

/// The gradients `grads` of `net`'s parameters as a safetensors file, each under its
/// parameter's name (`fc1.weight`: compare with `module.fc1.weight.grad` in PyTorch), dtype
/// `T`.
pub fn save_gradients<T: Real, N: Network<T>>(
    net: &N,
    grads: &N::Grads,
    options: &Options<'_>,
) -> Result<Vec<u8>, SaveError> {
    write_file(net, grads.as_slice(), false, options)
}

/// The file of `net`'s tensors (with its state or not), the parameters read from `values`.
fn write_file<T: Real, N: Network<T>>(
    net: &N,
    values: &[T],
    with_state: bool,
    options: &Options<'_>,
) -> Result<Vec<u8>, SaveError> {
    let dtype = Dtype::of::<T>();
    let mut tensors: Vec<(String, NamedTensor, FileDtype, Vec<u8>)> = Vec::new();
    let mut names = BTreeSet::new();
    try_visit_saved::<T, N, _>(|_, tensor, place| {
        if !with_state && place != Place::Parameter {
            return Ok(());
        }
        let name = options.names.file_name(&tensor);
        if !names.insert(name.clone()) {
            return Err(SaveError::Unrepresentable {
                tensor,
                reason: "another tensor has the same name in the file",
            });
        }
        if is_count(&tensor) {
            let n =
                i64::try_from(count_value(net, place)).map_err(|_| SaveError::Unrepresentable {
                    tensor,
                    reason: "the count is above 2⁶³ − 1 (PyTorch's int64)",
                })?;
            tensors.push((name, tensor, FileDtype::I64, n.to_le_bytes().to_vec()));
        } else {
            let mut bytes = alloc::vec![0; tensor.info.len() * dtype.size()];
            read_tensor(net, values, &tensor, place, &mut bytes, dtype);
            tensors.push((name, tensor, file_dtype(dtype), bytes));
        }
        Ok(())
    })?;
    let mut views = Vec::with_capacity(tensors.len());
    for (name, tensor, dtype, bytes) in &tensors {
        let view = TensorView::new(*dtype, tensor.info.shape.to_vec(), bytes)
            .map_err(|e| SaveError::Encoding(Text::format(format_args!("{e}"))))?;
        views.push((name.as_str(), view));
    }
    // `collect` builds whichever map type the crate takes (std's or hashbrown's `HashMap`,
    // depending on whether something in the build enables its `std` feature).
    let metadata = [("format".to_owned(), "pt".to_owned())]
        .into_iter()
        .collect();
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| SaveError::Encoding(Text::format(format_args!("{e}"))))
}
