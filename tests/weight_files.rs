//! Weight files: the flat format, safetensors (against files written by PyTorch) and serde.
//! Layouts checked against values worked out independently, every error case, the network
//! unchanged on every error, and no panic on thousands of mutated inputs.

mod common;

use common::{TorchMlp, randomize};
use nn::io::safetensors::{Names, Options};
use nn::io::{Dtype, LoadError, flat};
use nn::prelude::*;
use nn::{NamedTensor, io};

nn::network! {
    /// The convolutional module of tests/fixtures/make_fixture.py: weight [3, 2, 3, 2].
    pub struct TorchCnn {
        input: [2, 6, 5],
        conv: Conv2d<3, (3, 2), padding = 1>, Relu,
        Flatten,
        fc: Dense<4>,
    }
}

nn::network! {
    /// The 1-d convolutional module of tests/fixtures/make_fixture.py: weight [3, 2, 3].
    pub struct TorchConv1d {
        input: [2, 7],
        conv: Conv1d<3, 3, stride = 2>, Tanh,
        Flatten,
        fc: Dense<2>,
    }
}

nn::network! {
    /// Same names as `TorchMlp`, other sizes.
    pub struct Wider {
        input: [3],
        fc1: Dense<6>, Tanh,
        fc2: Dense<4>, Relu,
        fc3: Dense<2>,
    }
}

nn::network! {
    /// Same shapes as `TorchMlp`, another name for the second layer.
    pub struct Renamed {
        input: [3],
        fc1: Dense<5>, Tanh,
        hidden: Dense<4>, Relu,
        fc3: Dense<2>,
    }
}

nn::network! {
    /// The first two layers of `TorchMlp`.
    pub struct Shorter {
        input: [3],
        fc1: Dense<5>, Tanh,
        fc2: Dense<4>,
    }
}

nn::network! {
    /// One layer, [2, 3]: small enough to write its files by hand.
    pub struct Tiny {
        input: [3],
        fc: Dense<2>,
    }
}

const TORCH_MLP: &[u8] = include_bytes!("fixtures/torch_mlp.safetensors");
const TORCH_SEQUENTIAL: &[u8] = include_bytes!("fixtures/torch_sequential.safetensors");
const TORCH_IO: &[u8] = include_bytes!("fixtures/torch_mlp_io.safetensors");

const SEQUENTIAL: Names<'static> = Names::Layers(&[("fc1", "0"), ("fc2", "2"), ("fc3", "4")]);

/// A tensor of the reference file, as `f64`s in row-major order.
fn reference(name: &str) -> (Vec<usize>, Vec<f64>) {
    common::safetensors_tensor(TORCH_IO, name)
}

/// The reference batch `[4, 3]` (row-major, one sample per row) as our `[3, 4]` columns.
fn reference_input<T: Real>(name: &str) -> SMatrix<T, 3, 4> {
    let (shape, x) = reference(name);
    assert_eq!(shape, [4, 3]);
    SMatrix::from_fn(|feature, sample| T::of(x[sample * 3 + feature]))
}

fn max_error_against<T: Real>(y: &SMatrix<T, 2, 4>, name: &str) -> f64 {
    let (shape, expected) = reference(name);
    assert_eq!(shape, [4, 2]);
    let mut worst = 0.0f64;
    for sample in 0..4 {
        for out in 0..2 {
            let e = (y[(out, sample)].to_f64() - expected[sample * 2 + out]).abs();
            worst = worst.max(e);
        }
    }
    worst
}

#[test]
fn a_pytorch_state_dict_loads_and_gives_pytorchs_outputs() {
    let mut net = TorchMlp::<f32>::new_boxed();
    io::safetensors::load(&mut *net, TORCH_MLP).unwrap();
    // The first row of fc1.weight as make_fixture.py printed it: PyTorch's row 0 is our
    // row 0 (the slice holds the column-major transpose of PyTorch's bytes).
    let row0 = [0.501_285_55f32, -0.137_983_17, -0.370_303_84];
    for (c, &w) in row0.iter().enumerate() {
        assert_eq!(net.fc1.weight[(0, c)], w, "fc1.weight[0, {c}]");
    }
    let y = net.forward(&reference_input::<f32>("input"));
    let error = max_error_against(&y, "output");
    assert!(error < 1e-6, "f32: max error {error}");

    // The same float32 weights in an f64 network, against PyTorch in float64.
    let mut net64 = TorchMlp::<f64>::new_boxed();
    let convert = Options {
        convert_dtype: true,
        ..Options::default()
    };
    io::safetensors::load_with(&mut *net64, TORCH_MLP, &convert).unwrap();
    let y64 = net64.forward(&reference_input::<f64>("input_f64"));
    let error = max_error_against(&y64, "output_f64");
    assert!(error < 1e-12, "f64: max error {error}");
}

/// A float32 tensor of tests/fixtures/torch_conv_io.safetensors, row-major.
fn conv_reference(name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = include_bytes!("fixtures/torch_conv_io.safetensors");
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let view = file.tensor(name).unwrap();
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (view.shape().to_vec(), values)
}

/// Runs `forward` on the reference batch `input` (3 samples, each flattened in PyTorch's
/// order, one per column) and returns the largest difference from `output`.
fn conv_error<const IN: usize, const OUT: usize>(
    forward: impl Fn(&SMatrix<f32, IN, 3>) -> SMatrix<f32, OUT, 3>,
    input: &str,
    output: &str,
) -> f32 {
    let (_, x) = conv_reference(input);
    let (shape, y) = conv_reference(output);
    assert_eq!(shape, [3, OUT]);
    let got = forward(&SMatrix::from_fn(|i, sample| x[sample * IN + i]));
    let mut worst = 0.0f32;
    for sample in 0..3 {
        for o in 0..OUT {
            worst = worst.max((got[(o, sample)] - y[sample * OUT + o]).abs());
        }
    }
    worst
}

#[test]
fn pytorch_convolution_weights_load_in_their_layout() {
    let mut cnn = TorchCnn::<f32>::new_boxed();
    io::safetensors::load(&mut *cnn, include_bytes!("fixtures/torch_cnn.safetensors")).unwrap();
    let error = conv_error::<60, 4>(|x| cnn.forward(x), "cnn_input", "cnn_output");
    assert!(error < 1e-6, "Conv2d: max error {error}");
    let mut conv1d = TorchConv1d::<f32>::ZERO;
    io::safetensors::load(
        &mut conv1d,
        include_bytes!("fixtures/torch_conv1d.safetensors"),
    )
    .unwrap();
    let error = conv_error::<14, 2>(|x| conv1d.forward(x), "conv1d_input", "conv1d_output");
    assert!(error < 1e-6, "Conv1d: max error {error}");
    // And back, byte for byte.
    assert_eq!(
        tensors(&io::safetensors::save(&*cnn).unwrap()),
        tensors(include_bytes!("fixtures/torch_cnn.safetensors"))
    );
    let mut back = TorchCnn::<f32>::new_boxed();
    flat::load(&mut *back, &flat::to_vec(&*cnn).unwrap()).unwrap();
    assert!(*back == *cnn);
}

#[test]
fn an_nn_sequential_state_dict_loads_with_renamed_layers() {
    let options = Options {
        names: SEQUENTIAL,
        ..Options::default()
    };
    let mut net = TorchMlp::<f32>::ZERO;
    io::safetensors::load_with(&mut net, TORCH_SEQUENTIAL, &options).unwrap();
    let mut module = TorchMlp::<f32>::ZERO;
    io::safetensors::load(&mut module, TORCH_MLP).unwrap();
    assert_eq!(net, module);
    let error = max_error_against(&net.forward(&reference_input::<f32>("input")), "output");
    assert!(error < 1e-6, "max error {error}");
    // Without the mapping, the first tensor is reported missing, by both names.
    let mut fresh = TorchMlp::<f32>::ZERO;
    let err = io::safetensors::load(&mut fresh, TORCH_SEQUENTIAL).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor `fc1.weight` is missing from the file"
    );
    let prefixed = Options {
        names: Names::Prefix("model."),
        ..Options::default()
    };
    let err = io::safetensors::load_with(&mut net, TORCH_MLP, &prefixed).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor `fc1.weight` is missing from the file (looked up as `model.fc1.weight`)"
    );
}

/// The bytes of every tensor of a safetensors file, by name.
fn tensors(bytes: &[u8]) -> Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> {
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut all: Vec<_> = file
        .iter()
        .map(|(name, view)| {
            (
                name.to_string(),
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn export_writes_pytorchs_names_layouts_and_bytes() {
    let mut net = TorchMlp::<f32>::ZERO;
    io::safetensors::load(&mut net, TORCH_MLP).unwrap();
    let saved = io::safetensors::save(&net).unwrap();
    assert_eq!(
        tensors(&saved),
        tensors(TORCH_MLP),
        "same tensors, byte for byte"
    );
    let metadata = safetensors::SafeTensors::read_metadata(&saved).unwrap().1;
    assert_eq!(
        metadata.metadata().as_ref().and_then(|m| m.get("format")),
        Some(&"pt".to_string())
    );
    let options = Options {
        names: SEQUENTIAL,
        ..Options::default()
    };
    let sequential = io::safetensors::save_with(&net, &options).unwrap();
    assert_eq!(tensors(&sequential), tensors(TORCH_SEQUENTIAL));
    // And the flat format holds the same row-major values after its header and table.
    let flat = flat::to_vec(&net).unwrap();
    let values = &flat[flat.len() - TorchMlp::<f32>::PARAM_BYTES..];
    let file = safetensors::SafeTensors::deserialize(TORCH_MLP).unwrap();
    let mut expected = Vec::new();
    for name in [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "fc3.weight",
        "fc3.bias",
    ] {
        expected.extend_from_slice(file.tensor(name).unwrap().data());
    }
    assert_eq!(values, &expected[..]);
}

/// A safetensors file written by hand: header JSON, then the data.
fn handmade_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut header = header.as_bytes().to_vec();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn a_non_square_weight_is_transposed_right_both_ways() {
    // PyTorch's fc.weight = [[1, 2, 3], [4, 5, 6]] (row-major bytes 1..6), bias [7, 8].
    let file = handmade_safetensors(
        r#"{"fc.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"fc.bias":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}}"#,
        &f32_bytes(&[1., 2., 3., 4., 5., 6., 7., 8.]),
    );
    let mut net = Tiny::<f32>::ZERO;
    io::safetensors::load(&mut net, &file).unwrap();
    // nalgebra's `new` takes its arguments row by row.
    assert_eq!(
        net.fc.weight,
        nn::nalgebra::Matrix2x3::new(1., 2., 3., 4., 5., 6.)
    );
    // Column-major storage: the slice is the transpose of PyTorch's bytes.
    assert_eq!(net.as_slice(), &[1., 4., 2., 5., 3., 6., 7., 8.]);
    // y = W·x + b for x = [1, 0, -1]: [1 - 3 + 7, 4 - 6 + 8].
    let y = net.forward(&SMatrix::<f32, 3, 1>::new(1., 0., -1.));
    assert_eq!(y.as_slice(), &[5., 6.]);
    // Back to PyTorch's bytes, in each format.
    assert_eq!(
        tensors(&io::safetensors::save(&net).unwrap()),
        tensors(&file)
    );
    let flat = flat::to_vec(&net).unwrap();
    assert_eq!(
        &flat[flat.len() - 32..],
        &f32_bytes(&[1., 2., 3., 4., 5., 6., 7., 8.])[..]
    );
    let json = serde_json::to_string(&io::serde::Weights::new(&net)).unwrap();
    assert_eq!(
        json,
        r#"{"fc.weight":{"shape":[2,3],"data":[1.0,2.0,3.0,4.0,5.0,6.0]},"fc.bias":{"shape":[2],"data":[7.0,8.0]}}"#
    );
}

#[test]
fn the_flat_format_is_as_documented() {
    let mut net = Tiny::<f32>::ZERO;
    net.as_mut_slice()
        .copy_from_slice(&[1., 4., 2., 5., 3., 6., 7., 8.]);
    let bytes = flat::to_vec(&net).unwrap();
    assert_eq!(bytes.len(), flat::encoded_len::<f32, Tiny<f32>>());
    let mut expected = b"NNWEIGHT".to_vec();
    expected.extend_from_slice(&1u16.to_le_bytes()); // version
    expected.extend_from_slice(&[1, 0]); // f32, reserved
    expected.extend_from_slice(&2u32.to_le_bytes()); // tensors
    expected.extend_from_slice(&8u64.to_le_bytes()); // parameters
    // Table: 4 + 9 + 8 (fc.weight [2, 3]) + 4 + 7 + 4 (fc.bias [2]) = 36, padded to 40.
    expected.extend_from_slice(&40u32.to_le_bytes());
    expected.extend_from_slice(&[0; 4]); // checksum, below
    expected.extend_from_slice(&[0, 2, 9, 0]);
    expected.extend_from_slice(b"fc.weight");
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(&3u32.to_le_bytes());
    expected.extend_from_slice(&[0, 1, 7, 0]);
    expected.extend_from_slice(b"fc.bias");
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(&[0; 4]); // padding
    expected.extend_from_slice(&f32_bytes(&[1., 2., 3., 4., 5., 6., 7., 8.]));
    let crc = flat::Crc32::new()
        .update(&expected[..28])
        .update(&expected[32..])
        .finish();
    expected[28..32].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(bytes, expected);

    let mut loaded = Tiny::<f32>::ZERO;
    flat::load(&mut loaded, &bytes).unwrap();
    assert_eq!(loaded, net);
    // Without an allocator: save into a buffer.
    let mut buffer = [0u8; 128];
    let written = flat::save(&net, &mut buffer).unwrap();
    assert_eq!(&buffer[..written], &bytes[..]);
    assert_eq!(
        flat::save(&net, &mut buffer[..50]).unwrap_err(),
        io::SaveError::BufferTooSmall {
            needed: 104,
            available: 50
        }
    );
}

#[test]
fn every_format_round_trips_exactly_in_f32_and_f64() {
    fn check<T: Real>(seed: u64)
    where
        TorchMlp<T>: Network<T>,
    {
        let mut net = TorchMlp::<T>::ZERO;
        randomize(&mut net, seed, 3.0);
        let mut back = TorchMlp::<T>::ZERO;
        flat::load(&mut back, &flat::to_vec(&net).unwrap()).unwrap();
        assert_eq!(back, net, "flat");
        let mut back = TorchMlp::<T>::ZERO;
        io::safetensors::load(&mut back, &io::safetensors::save(&net).unwrap()).unwrap();
        assert_eq!(back, net, "safetensors");
        let json = serde_json::to_string(&io::serde::Weights::new(&net)).unwrap();
        let back: TorchMlp<T> =
            io::serde::deserialize(&mut serde_json::Deserializer::from_str(&json)).unwrap();
        assert_eq!(back, net, "serde_json");
        let bytes = postcard::to_allocvec(&io::serde::Weights::new(&net)).unwrap();
        let back: TorchMlp<T> =
            io::serde::deserialize(&mut postcard::Deserializer::from_bytes(&bytes)).unwrap();
        assert_eq!(back, net, "postcard");
        let back = io::serde::deserialize_boxed::<T, TorchMlp<T>, _>(
            &mut postcard::Deserializer::from_bytes(&bytes),
        )
        .unwrap();
        assert_eq!(*back, net, "postcard, boxed");
    }
    for seed in 1..20 {
        check::<f32>(seed);
        check::<f64>(seed);
    }
}

#[test]
fn every_bit_pattern_round_trips_exactly() {
    // Signalling and quiet NaNs with payloads, infinities, −0, subnormals: bit for bit, in
    // debug builds too (where a detour through f64 would quiet a signalling NaN).
    let specials = [
        f32::from_bits(0x7FA0_0001), // signalling NaN
        f32::from_bits(0xFFA0_0000), // negative signalling NaN
        f32::from_bits(0x7FC1_2345), // quiet NaN with a payload
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        f32::from_bits(1), // the smallest subnormal
        f32::MIN_POSITIVE,
        f32::MAX,
    ];
    let mut net = TorchMlp::<f32>::ZERO;
    for (i, p) in net.as_mut_slice().iter_mut().enumerate() {
        *p = specials[i % specials.len()];
    }
    let bits = |n: &TorchMlp<f32>| n.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let mut back = TorchMlp::<f32>::ZERO;
    flat::load(&mut back, &flat::to_vec(&net).unwrap()).unwrap();
    assert_eq!(bits(&back), bits(&net), "flat");
    let mut back = TorchMlp::<f32>::ZERO;
    io::safetensors::load(&mut back, &io::safetensors::save(&net).unwrap()).unwrap();
    assert_eq!(bits(&back), bits(&net), "safetensors");
    let bytes = postcard::to_allocvec(&io::serde::Weights::new(&net)).unwrap();
    let back: TorchMlp<f32> =
        io::serde::deserialize(&mut postcard::Deserializer::from_bytes(&bytes)).unwrap();
    assert_eq!(bits(&back), bits(&net), "postcard");
}

/// A struct of the user's own with a network field.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Checkpoint {
    epoch: u32,
    #[serde(with = "nn::io::serde")]
    net: Tiny<f64>,
}

#[test]
fn serde_with_puts_a_network_in_a_struct_of_your_own() {
    let mut net = Tiny::<f64>::ZERO;
    randomize(&mut net, 5, 1.0);
    let checkpoint = Checkpoint { epoch: 7, net };
    let json = serde_json::to_string(&checkpoint).unwrap();
    assert!(json.starts_with(r#"{"epoch":7,"net":{"fc.weight":{"shape":[2,3],"data":["#));
    let back: Checkpoint = serde_json::from_str(&json).unwrap();
    assert_eq!(back, checkpoint);
}

// ---------------------------------------------------------------------------------------
// Errors: each one, by value, and the network unchanged.

/// A network with non-zero parameters, to see that a failed load leaves it as it was.
fn victim<T: Real>() -> TorchMlp<T> {
    let mut net = TorchMlp::<T>::ZERO;
    randomize(&mut net, 99, 1.0);
    net
}

fn flat_error(bytes: &[u8]) -> LoadError {
    let mut net = victim::<f32>();
    let err = flat::load(&mut net, bytes).unwrap_err();
    assert_eq!(net, victim::<f32>(), "unchanged after {err}");
    assert_eq!(flat::verify::<f32, TorchMlp<f32>>(bytes), Err(err));
    err
}

/// Rewrites the checksum after an edit of the header or table.
fn reseal(bytes: &mut [u8]) {
    let crc = flat::Crc32::new()
        .update(&bytes[..28])
        .update(&bytes[32..])
        .finish();
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
}

fn flat_of<T: Real, N: Network<T>>() -> Vec<u8> {
    let mut net = N::ZERO;
    randomize(&mut net, 3, 1.0);
    flat::to_vec(&net).unwrap()
}

fn tensor_named(name: &str) -> NamedTensor {
    let mut found = None;
    TorchMlp::<f32>::visit_tensors(&mut |t| {
        if t.to_string() == name {
            found = Some(t);
        }
    });
    found.unwrap()
}

#[test]
fn flat_errors_are_values_and_leave_the_network_unchanged() {
    let good = flat_of::<f32, TorchMlp<f32>>();
    let len = good.len() as u64;

    let mut bytes = good.clone();
    bytes[0] = b'X';
    assert_eq!(flat_error(&bytes), LoadError::BadMagic);
    assert_eq!(
        flat_error(b""),
        LoadError::Truncated {
            needed: 32,
            available: 0
        }
    );
    assert_eq!(
        flat_error(b"NNW"),
        LoadError::Truncated {
            needed: 32,
            available: 3
        }
    );
    assert_eq!(flat_error(b"PK\x03\x04"), LoadError::BadMagic);

    let mut bytes = good.clone();
    bytes[8] = 2;
    assert_eq!(
        flat_error(&bytes),
        LoadError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );

    assert_eq!(
        flat_error(&good[..good.len() - 1]),
        LoadError::Truncated {
            needed: len,
            available: len - 1
        }
    );
    assert_eq!(
        flat_error(&good[..40]),
        LoadError::Truncated {
            needed: len,
            available: 40
        }
    );
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(
        flat_error(&longer),
        LoadError::TrailingBytes {
            expected: len,
            found: len + 1
        }
    );

    let mut bytes = good.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    let LoadError::Checksum { stored, computed } = flat_error(&bytes) else {
        panic!("expected a checksum error")
    };
    assert_ne!(stored, computed);

    // An f64 file into an f32 network, and an unknown dtype code.
    let err = flat_error(&flat_of::<f64, TorchMlp<f64>>());
    assert_eq!(
        err.to_string(),
        "the file holds F64 values, but the network computes in F32"
    );
    assert!(matches!(
        err,
        LoadError::Dtype {
            tensor: None,
            expected: Dtype::F32,
            ..
        }
    ));
    let mut bytes = good.clone();
    bytes[10] = 7;
    assert_eq!(
        flat_error(&bytes).to_string(),
        "the file holds unknown dtype code 7 values, but the network computes in F32"
    );

    let mut bytes = good.clone();
    bytes[11] = 1;
    reseal(&mut bytes);
    assert!(matches!(flat_error(&bytes), LoadError::Malformed { .. }));

    // A file of another network: other sizes, another name, fewer or more tensors.
    let err = flat_error(&flat_of::<f32, Wider<f32>>());
    assert_eq!(
        err.to_string(),
        "tensor `fc1.weight` has shape [6, 3] in the file, but [5, 3] in the network"
    );
    let err = flat_error(&flat_of::<f32, Renamed<f32>>());
    assert_eq!(
        err,
        LoadError::NameMismatch {
            tensor: tensor_named("fc2.weight"),
            found: io::Text::new("hidden.weight"),
        }
    );
    assert_eq!(
        err.to_string(),
        "the file has a tensor `hidden.weight` where the network has `fc2.weight`"
    );
    let err = flat_error(&flat_of::<f32, Shorter<f32>>());
    assert_eq!(
        err.to_string(),
        "tensor `fc3.weight` is missing from the file"
    );
    let mut shorter = Shorter::<f32>::ZERO;
    let err = flat::load(&mut shorter, &good).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the file has a tensor `fc3.weight` that the network does not have"
    );
    assert_eq!(shorter, Shorter::ZERO);

    // A header whose parameter count disagrees with its own table.
    let mut bytes = good.clone();
    bytes[16..24].copy_from_slice(&(TorchMlp::<f32>::PARAM_COUNT as u64 + 1).to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    reseal(&mut bytes);
    assert_eq!(
        flat_error(&bytes),
        LoadError::ParameterCount {
            expected: TorchMlp::<f32>::PARAM_COUNT,
            found: TorchMlp::<f32>::PARAM_COUNT as u64 + 1
        }
    );

    // A state tensor (kind 1) where the network has a parameter, and an unknown kind.
    let mut bytes = good.clone();
    bytes[32] = flat::KIND_STATE;
    reseal(&mut bytes);
    assert_eq!(
        flat_error(&bytes).to_string(),
        "malformed file: a table entry's kind (parameter, state or count) is not the tensor's: \
         fc1.weight"
    );
    bytes[32] = 9;
    reseal(&mut bytes);
    assert_eq!(
        flat_error(&bytes).to_string(),
        "malformed file: a table entry has an unknown kind: fc1.weight"
    );
}

fn safetensors_error(bytes: &[u8], options: &Options<'_>) -> LoadError {
    let mut net = victim::<f32>();
    let err = io::safetensors::load_with(&mut net, bytes, options).unwrap_err();
    assert_eq!(net, victim::<f32>(), "unchanged after {err}");
    assert_eq!(
        io::safetensors::verify::<f32, TorchMlp<f32>>(bytes, options),
        Err(err)
    );
    err
}

#[test]
fn safetensors_errors_are_values_and_leave_the_network_unchanged() {
    let strict = Options::default();
    let len = TORCH_MLP.len() as u64;
    assert_eq!(
        safetensors_error(&TORCH_MLP[..len as usize - 3], &strict),
        LoadError::Truncated {
            needed: len,
            available: len - 3
        }
    );
    assert_eq!(
        safetensors_error(&TORCH_MLP[..20], &strict),
        LoadError::Truncated {
            needed: 8 + u64::from_le_bytes(TORCH_MLP[..8].try_into().unwrap()),
            available: 20
        }
    );
    assert_eq!(
        safetensors_error(&TORCH_MLP[..5], &strict),
        LoadError::Truncated {
            needed: 8,
            available: 5
        }
    );
    let mut longer = TORCH_MLP.to_vec();
    longer.push(0);
    assert_eq!(
        safetensors_error(&longer, &strict),
        LoadError::TrailingBytes {
            expected: len,
            found: len + 1
        }
    );
    let garbage = handmade_safetensors("{not json", &[]);
    let err = safetensors_error(&garbage, &strict);
    assert!(
        err.to_string()
            .starts_with("malformed file: the header is not a valid safetensors header: "),
        "{err}"
    );
    let bad_offsets = handmade_safetensors(
        r#"{"fc.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#,
        &[0; 20],
    );
    assert!(matches!(
        safetensors_error(&bad_offsets, &strict),
        LoadError::Malformed { .. }
    ));

    // A file of a wider network, and of fewer tensors.
    let mut wider = Wider::<f32>::ZERO;
    randomize(&mut wider, 1, 1.0);
    let err = safetensors_error(&io::safetensors::save(&wider).unwrap(), &strict);
    assert_eq!(
        err.to_string(),
        "tensor `fc1.weight` has shape [6, 3] in the file, but [5, 3] in the network"
    );
    let mut shorter = Shorter::<f32>::ZERO;
    randomize(&mut shorter, 1, 1.0);
    let err = safetensors_error(&io::safetensors::save(&shorter).unwrap(), &strict);
    assert_eq!(
        err,
        LoadError::Missing {
            tensor: tensor_named("fc3.weight"),
            file_name: io::Text::new("fc3.weight")
        }
    );

    // An extra tensor: refused when strict, ignored otherwise.
    let extra = {
        let mut all: Vec<(String, safetensors::tensor::TensorView<'_>)> = Vec::new();
        let file = safetensors::SafeTensors::deserialize(TORCH_MLP).unwrap();
        for (name, view) in file.iter() {
            all.push((name.to_string(), view));
        }
        let bn = f32_bytes(&[0.0; 4]);
        all.push((
            "bn1.running_mean".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &bn).unwrap(),
        ));
        safetensors::serialize(all, None).unwrap()
    };
    assert_eq!(
        safetensors_error(&extra, &strict).to_string(),
        "the file has a tensor `bn1.running_mean` that the network does not have"
    );
    let lenient = Options {
        strict: false,
        ..Options::default()
    };
    let mut net = TorchMlp::<f32>::ZERO;
    io::safetensors::load_with(&mut net, &extra, &lenient).unwrap();

    // Dtypes: F32 into f64 without conversion; F16 never.
    let mut net64 = TorchMlp::<f64>::ZERO;
    let err = io::safetensors::load(&mut net64, TORCH_MLP).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor `fc1.weight` has dtype F32 in the file, but the network computes in F64"
    );
    assert_eq!(net64, TorchMlp::ZERO);
    let half = handmade_safetensors(
        r#"{"fc.weight":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"fc.bias":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#,
        &[0; 20],
    );
    let mut tiny = Tiny::<f32>::ZERO;
    let err = io::safetensors::load_with(
        &mut tiny,
        &half,
        &Options {
            convert_dtype: true,
            ..Options::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor `fc.weight` has dtype F16 in the file, but the network computes in F32"
    );

    // Two layers mapped to one name.
    let clash = Options {
        names: Names::Layers(&[("fc2", "fc1")]),
        ..Options::default()
    };
    let err = safetensors_error(TORCH_MLP, &clash);
    assert!(
        matches!(err, LoadError::Shape { .. } | LoadError::Duplicate { .. }),
        "{err}"
    );
    let clash = Options {
        names: Names::Custom(&|t| format!("x.{}", t.info.name)),
        ..Options::default()
    };
    let err = io::safetensors::save_with(&TorchMlp::<f32>::ZERO, &clash).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor `fc2.weight` cannot be saved: another tensor has the same name in the file"
    );
}

fn serde_error(json: &str) -> String {
    let mut net = victim::<f32>();
    let err = io::serde::deserialize_into::<f32, TorchMlp<f32>, _>(
        &mut serde_json::Deserializer::from_str(json),
        &mut net,
    )
    .unwrap_err();
    assert_eq!(net, victim::<f32>(), "unchanged after {err}");
    err.to_string()
}

#[test]
fn serde_errors_name_the_tensor_and_leave_the_network_unchanged() {
    let net = victim::<f32>();
    let good = serde_json::to_string(&io::serde::Weights::new(&net)).unwrap();
    let mut loaded = TorchMlp::<f32>::ZERO;
    io::serde::deserialize_into::<f32, TorchMlp<f32>, _>(
        &mut serde_json::Deserializer::from_str(&good),
        &mut loaded,
    )
    .unwrap();
    assert_eq!(loaded, net);

    let value: serde_json::Value = serde_json::from_str(&good).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut v = value.clone();
        f(v.as_object_mut().unwrap());
        serde_json::to_string(&v).unwrap()
    };
    assert!(
        serde_error(&edit(&|m| {
            m.remove("fc2.bias");
        }))
        .starts_with("tensor `fc2.bias` is missing from the file"),
    );
    assert!(
        serde_error(&edit(&|m| {
            m.insert(
                "bn1.running_mean".into(),
                serde_json::json!({"shape": [1], "data": [0]}),
            );
        }))
        .starts_with("the file has a tensor `bn1.running_mean` that the network does not have"),
    );
    assert!(
        serde_error(&edit(&|m| {
            m["fc1.weight"]["shape"] = serde_json::json!([3, 5]);
        }))
        .starts_with("tensor `fc1.weight` has shape [3, 5] in the file, but [5, 3] in the network"),
    );
    assert!(
        serde_error(&edit(&|m| {
            m["fc3.bias"]["data"] = serde_json::json!([1.0]);
        }))
        .starts_with("tensor `fc3.bias` has 1 values in the file, but its shape [2] needs 2"),
    );
    assert!(
        serde_error(&edit(&|m| {
            m["fc3.bias"]["data"] = serde_json::json!([1.0, 2.0, 3.0]);
        }))
        .starts_with("tensor `fc3.bias` has 3 values in the file, but its shape [2] needs 2"),
    );
    assert!(
        serde_error(&edit(&|m| {
            m["fc3.bias"]["data"] = serde_json::json!(["a", "b"]);
        }))
        .starts_with(
            "malformed file: a value is a string other than \"inf\", \"-inf\", \"NaN\" or \
             \"NaN:0x…\": fc3.bias: \"a\""
        ),
    );
    assert!(
        serde_error(&edit(&|m| {
            m["fc3.bias"].as_object_mut().unwrap().remove("shape");
        }))
        .starts_with("malformed file: a tensor needs a shape and data: fc3.bias"),
    );
    // A duplicate key (JSON text can hold one; a map value cannot).
    let duplicate = good.replacen('{', r#"{"fc3.bias":{"shape":[2],"data":[0,0]},"#, 1);
    assert!(serde_error(&duplicate).starts_with("the file has tensor `fc3.bias` twice"));
    assert!(serde_error("[]").contains("expected a map"));
    assert!(serde_error("").contains("EOF"));
}

// ---------------------------------------------------------------------------------------
// No panic on any input: deterministic mutations of valid files (cargo fuzz runs the same
// checks on random inputs: fuzz/).

/// xorshift64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A loader under test, its error as text.
type Loader<'a> = &'a dyn Fn(&mut TorchMlp<f32>, &[u8]) -> Result<(), String>;

/// Loads `bytes` with `load`; the network must be unchanged on error, and what loaded must
/// save and load back bit for bit. Returns whether it loaded.
fn survives(bytes: &[u8], load: Loader<'_>) -> bool {
    let mut net = victim::<f32>();
    match load(&mut net, bytes) {
        Ok(()) => {
            let mut back = TorchMlp::<f32>::ZERO;
            flat::load(&mut back, &flat::to_vec(&net).unwrap()).unwrap();
            let bits =
                |n: &TorchMlp<f32>| n.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back), bits(&net));
            true
        }
        Err(e) => {
            assert_eq!(net, victim::<f32>(), "changed by a failed load: {e}");
            assert!(!e.is_empty());
            false
        }
    }
}

/// Every truncation, every single-bit flip, and `random` random edits of `good`; returns
/// how many inputs loaded.
fn mutate(good: &[u8], random: usize, load: Loader<'_>) -> (usize, usize) {
    let (mut tried, mut loaded) = (0, 0);
    let mut count = |bytes: &[u8]| {
        if bytes == good {
            return; // an edit that changed nothing
        }
        tried += 1;
        loaded += survives(bytes, load) as usize;
    };
    for len in 0..good.len() {
        count(&good[..len]);
    }
    for bit in 0..good.len() * 8 {
        let mut bytes = good.to_vec();
        bytes[bit / 8] ^= 1 << (bit % 8);
        count(&bytes);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..random {
        let mut bytes = good.to_vec();
        for _ in 0..1 + rng.below(8) {
            match rng.below(5) {
                0 => {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
                1 => {
                    let at = rng.below(bytes.len());
                    bytes.insert(at, rng.next() as u8);
                }
                2 if bytes.len() > 1 => {
                    let at = rng.below(bytes.len());
                    bytes.remove(at);
                }
                3 => {
                    // A header-sized integer set to an extreme.
                    let at = rng.below(bytes.len().saturating_sub(8).max(1));
                    let value = [0, u64::MAX, u32::MAX as u64, 1 << 40][rng.below(4)];
                    let end = (at + 8).min(bytes.len());
                    let n = end - at;
                    bytes[at..end].copy_from_slice(&value.to_le_bytes()[..n]);
                }
                _ => {
                    let len = rng.below(bytes.len() + 1);
                    bytes.truncate(len);
                    if bytes.is_empty() {
                        bytes.push(0);
                    }
                }
            }
        }
        count(&bytes);
    }
    (tried, loaded)
}

#[test]
fn no_input_makes_a_loader_panic() {
    let net = victim::<f32>();

    let flat = flat::to_vec(&net).unwrap();
    let (tried, loaded) = mutate(&flat, 20_000, &|net, b| {
        flat::load(net, b).map_err(|e| e.to_string())
    });
    // The CRC-32 catches every single-bit error and every truncation: nothing mutated loads.
    assert_eq!(loaded, 0, "of {tried} mutated flat files");

    // The same with the checksum recomputed after each mutation, so that they reach the
    // checks behind it (table entries, counts); some now load (edited values).
    mutate(&flat, 20_000, &|net, b| {
        let mut b = b.to_vec();
        if b.len() >= flat::HEADER_LEN {
            reseal(&mut b);
        }
        flat::load(net, &b).map_err(|e| e.to_string())
    });

    let st = io::safetensors::save(&net).unwrap();
    let (tried, loaded) = mutate(&st, 20_000, &|net, b| {
        io::safetensors::load(net, b).map_err(|e| e.to_string())
    });
    // safetensors has no checksum: flips in the values load (as other values).
    assert!(loaded < tried / 2, "{loaded} of {tried}");

    let json = serde_json::to_vec(&io::serde::Weights::new(&net)).unwrap();
    mutate(&json, 20_000, &|net, b| {
        io::serde::deserialize_into::<f32, TorchMlp<f32>, _>(
            &mut serde_json::Deserializer::from_slice(b),
            net,
        )
        .map_err(|e| e.to_string())
    });

    let post = postcard::to_allocvec(&io::serde::Weights::new(&net)).unwrap();
    mutate(&post, 20_000, &|net, b| {
        io::serde::deserialize_into::<f32, TorchMlp<f32>, _>(
            &mut postcard::Deserializer::from_bytes(b),
            net,
        )
        .map_err(|e| e.to_string())
    });
}
