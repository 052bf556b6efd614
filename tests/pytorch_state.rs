//! Nothing lost between nn and PyTorch: every built-in layer's tensors are the keys of
//! PyTorch's `state_dict()`, batch normalization's running statistics go both ways in every
//! format, a network nobody initialised computes what a new PyTorch module computes,
//! gradients export under PyTorch's names, and JSON keeps every value exactly.
//!
//! The fixtures are made by real PyTorch, `tests/fixtures/make_fixture.py`.

mod common;

use common::{TorchMlp, TorchMlpGrads, TorchMlpTape, randomize};
use nn::io::flat;
use nn::io::safetensors::{Names, Options};
use nn::optim::{Sgd, SgdConfig};
use nn::prelude::*;
use nn::train::{StepOptions, train_step};
use nn::{Role, StateValue, io};
use std::collections::BTreeMap;

nn::network! {
    /// One of every built-in layer, with the sizes of `EveryLayer` in make_fixture.py.
    pub struct EveryLayer {
        dense: Dense<5>,
        conv1d: Conv1d<3, 3>,
        conv1d_nobias: Conv1d<3, 3, bias = false>,
        conv2d: Conv2d<3, (3, 2), padding = 1>,
        maxpool1d: MaxPool1d<2>,
        maxpool2d: MaxPool2d<2>,
        avgpool1d: AvgPool1d<2>,
        avgpool2d: AvgPool2d<2>,
        gap: GlobalAvgPool,
        bn1d: BatchNorm1d,
        bn2d: BatchNorm2d,
        group_norm: GroupNorm<3>,
        dropout: Dropout<0.5>,
        embedding: Embedding<10, 6>,
        attention: MultiHeadAttention<2>,
        self_attention: SelfAttention,
        learned_positions: LearnedPositions,
        layer_norm: LayerNorm,
        rnn: Rnn<4>,
        gru: Gru<4>,
        lstm: Lstm<4>,
        position_wise: Dense<3>,
        positions: SinusoidalPositions,
    }
    forward(v: [3], seq1: [2, 8], img: [2, 6, 6], tokens: [4]) -> y {
        let a = dropout(dense(v));
        let b = maxpool1d(conv1d(seq1));
        let c = bn1d(flatten(avgpool1d(conv1d_nobias(seq1))));
        let e = maxpool2d(bn2d(conv2d(img)));
        let f = gap(avgpool2d(group_norm(e)));
        let s = positions(embedding(tokens));
        let h = layer_norm(s + attention(s) + self_attention(learned_positions(s)));
        let y = concat(a, flatten(b), c, f, flatten(rnn(h)), flatten(gru(h)), flatten(lstm(h)), flatten(position_wise(h)));
    }
}

nn::network! {
    /// `TorchBnCnn` of make_fixture.py: convolution, batch norm, max pooling, dropout.
    pub struct TorchBnCnn {
        input: [2, 8, 8],
        conv: Conv2d<4, 3, padding = 1>,
        bn: BatchNorm2d, Relu,
        pool: MaxPool2d<2>,
        drop: Dropout<0.25>,
        Flatten,
        fc: Dense<6>,
        bn_fc: BatchNorm1d, Tanh,
        out: Dense<3>,
    }
}

nn::network! {
    /// A bare `nn.Conv1d(2, 3, 3, stride=2)`.
    pub struct BareConv {
        input: [2, 7],
        conv: Conv1d<3, 3, stride = 2>,
    }
}

const LAYER_KEYS: &str = include_str!("fixtures/torch_layer_keys.json");
const TORCH_BN_CNN: &[u8] = include_bytes!("fixtures/torch_bn_cnn.safetensors");
const TORCH_BN_CNN_IO: &[u8] = include_bytes!("fixtures/torch_bn_cnn_io.safetensors");
const NN_BN_CNN: &[u8] = include_bytes!("fixtures/nn_bn_cnn.safetensors");
const NN_BN_CNN_IO: &[u8] = include_bytes!("fixtures/nn_bn_cnn_io.safetensors");
const TORCH_MLP: &[u8] = include_bytes!("fixtures/torch_mlp.safetensors");
const TORCH_MLP_IO: &[u8] = include_bytes!("fixtures/torch_mlp_io.safetensors");
const TORCH_MLP_GRADS: &[u8] = include_bytes!("fixtures/torch_mlp_grads.safetensors");
const TORCH_CONV1D: &[u8] = include_bytes!("fixtures/torch_conv1d.safetensors");
const TORCH_CONV1D_BARE: &[u8] = include_bytes!("fixtures/torch_conv1d_bare.safetensors");

use common::safetensors_tensor as tensor;

/// Name → (dtype, shape) of every tensor of a safetensors file.
fn tensor_list(file: &[u8]) -> BTreeMap<String, (String, Vec<usize>)> {
    let file = safetensors::SafeTensors::deserialize(file).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| (name, (format!("{:?}", view.dtype()), view.shape().to_vec())))
        .collect()
}

/// Every tensor `N` saves, `(layer, name, shape, dtype)` in PyTorch's spelling of the dtype.
fn saved_tensors<T: Real, N: Network<T>>() -> Vec<(String, String, Vec<usize>, String)> {
    let real = match io::Dtype::of::<T>() {
        io::Dtype::F32 => "float32",
        io::Dtype::F64 => "float64",
    };
    let mut list = Vec::new();
    let mut push = |t: nn::NamedTensor| {
        let dtype = if t.info.role == Role::Count {
            "int64"
        } else {
            real
        };
        list.push((
            t.layer.to_string(),
            t.info.name.to_string(),
            t.info.shape.to_vec(),
            dtype.to_string(),
        ));
    };
    N::visit_tensors(&mut push);
    N::visit_state_tensors(&mut push);
    list
}

#[test]
fn every_layer_saves_pytorchs_state_dict_keys() {
    let torch: BTreeMap<String, Vec<(String, Vec<usize>, String)>> =
        serde_json::from_str(LAYER_KEYS).unwrap();
    let ours = saved_tensors::<f32, EveryLayer<f32>>();
    let mut layers = Vec::new();
    EveryLayer::<f32>::visit_tensors(&mut |t| layers.push(t.layer));
    for (layer, keys) in &torch {
        // Ours for this layer, in order: its parameters, then its state.
        let mine: Vec<(String, Vec<usize>, String)> = ours
            .iter()
            .filter(|(l, ..)| l == layer)
            .map(|(_, name, shape, dtype)| (name.clone(), shape.clone(), dtype.clone()))
            .collect();
        assert_eq!(&mine, keys, "layer `{layer}`");
    }
    // Every layer is compared, except the sinusoidal encoding (no PyTorch module), which has
    // no tensor.
    let compared: Vec<&str> = torch.keys().map(String::as_str).collect();
    assert_eq!(compared.len(), 22);
    assert!(
        ours.iter()
            .all(|(l, ..)| compared.contains(&l.as_str()) && l != "positions")
    );
    // The root of the old bug: no layer lists a `params` tensor of shape [0].
    assert!(ours.iter().all(|(_, name, shape, _)| name != "params"
        && shape.iter().product::<usize>() > 0
        || shape.is_empty()));
}

/// The reference batch `[4, 2, 8, 8]` as 4 columns.
fn bn_cnn_input<T: Real>(file: &[u8]) -> SMatrix<T, 128, 4> {
    let (shape, x) = tensor(file, "input");
    assert_eq!(shape, [4, 2, 8, 8]);
    SMatrix::from_fn(|i, j| T::of(x[j * 128 + i]))
}

fn max_error(y: &SMatrix<impl Real, 3, 4>, expected: &[f64]) -> f64 {
    let mut worst = 0.0f64;
    for j in 0..4 {
        for i in 0..3 {
            worst = worst.max((y[(i, j)].to_f64() - expected[j * 3 + i]).abs());
        }
    }
    worst
}

#[test]
fn a_pytorch_state_dict_with_batch_norm_loads_strictly_and_gives_pytorchs_outputs() {
    let mut net = TorchBnCnn::<f32>::new_boxed();
    io::safetensors::load(&mut *net, TORCH_BN_CNN).unwrap();
    assert_eq!(net.state.bn.num_batches_tracked, 5);
    assert_eq!(net.state.bn_fc.num_batches_tracked, 5);
    let (_, running_var) = tensor(TORCH_BN_CNN, "bn.running_var");
    let ours: Vec<f64> = net.state.bn.running_var.iter().map(|&v| v as f64).collect();
    assert_eq!(ours, running_var);
    assert!(running_var.iter().all(|&v| v != 1.0), "trained statistics");

    let x = bn_cnn_input::<f32>(TORCH_BN_CNN_IO);
    let (_, expected) = tensor(TORCH_BN_CNN_IO, "output");
    let error = max_error(&net.forward(&x), &expected);
    assert!(error < 1e-6, "f32: {error:e}");

    // In f64, from the same (f32) file: PyTorch's float64 outputs to 1e-12.
    let mut net64 = TorchBnCnn::<f64>::new_boxed();
    let convert = Options {
        convert_dtype: true,
        ..Options::default()
    };
    io::safetensors::load_with(&mut *net64, TORCH_BN_CNN, &convert).unwrap();
    let (_, expected) = tensor(TORCH_BN_CNN_IO, "output_f64");
    let error = max_error(
        &net64.forward(&bn_cnn_input::<f64>(TORCH_BN_CNN_IO)),
        &expected,
    );
    assert!(error < 1e-12, "f64: {error:e}");

    // Without the running statistics, strict loading refuses the file.
    let mut without = BTreeMap::new();
    let file = safetensors::SafeTensors::deserialize(TORCH_BN_CNN).unwrap();
    for (name, view) in file.tensors() {
        if !name.contains("running") && !name.contains("num_batches") {
            without.insert(name, view);
        }
    }
    let without = safetensors::serialize(&without, None).unwrap();
    let mut fresh = TorchBnCnn::<f32>::new_boxed();
    let error = io::safetensors::load(&mut *fresh, &without).unwrap_err();
    assert_eq!(
        error.to_string(),
        "tensor `bn.running_mean` is missing from the file"
    );
    assert!(*fresh == TorchBnCnn::ZERO);
    // Non-strict, the state is left as it is: here the initial state, so the outputs are
    // those of a new PyTorch module with these weights (mean 0, variance 1).
    let lenient = Options {
        strict: false,
        ..Options::default()
    };
    io::safetensors::load_with(&mut *fresh, &without, &lenient).unwrap();
    let mut initialised = nn::clone_boxed(&*fresh);
    initialised.state.bn.running_var.fill(1.0);
    initialised.state.bn_fc.running_var.fill(1.0);
    assert_eq!(fresh.forward(&x), initialised.forward(&x));
}

/// `TorchBnCnn` from PyTorch's file, then 3 training steps of nn (so its weights, running
/// statistics and `num_batches_tracked = 8` are nn's own).
fn trained_by_nn() -> Box<TorchBnCnn<f32>> {
    let mut net = TorchBnCnn::<f32>::new_boxed();
    io::safetensors::load(&mut *net, TORCH_BN_CNN).unwrap();
    net.state.drop.rng = 3; // the dropout generator's seed
    let mut tape = TorchBnCnnTape::<f32, 8>::new_boxed();
    let mut grads = TorchBnCnnGrads::new_boxed();
    let mut sgd = Sgd::<f32, TorchBnCnnGrads<f32>>::new_boxed(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..SgdConfig::default()
    });
    for step in 0..3 {
        let mut x = SMatrix::<f32, 128, 8>::new_boxed();
        randomize(&mut *x, 40 + step, 2.0);
        let targets: [usize; 8] = core::array::from_fn(|j| (j + step as usize) % 3);
        train_step(
            &mut *net,
            &mut *tape,
            &mut *grads,
            &*x,
            &targets[..],
            &nn::loss::SoftmaxCrossEntropy,
            &mut *sgd,
            &StepOptions::default(),
        )
        .unwrap();
    }
    assert_eq!(net.state.bn.num_batches_tracked, 8);
    net
}

#[test]
fn the_file_nn_writes_loads_in_pytorch_strictly() {
    let net = trained_by_nn();
    let bytes = io::safetensors::save(&*net).unwrap();
    // Exactly PyTorch's keys, dtypes (num_batches_tracked an I64 scalar) and shapes.
    assert_eq!(tensor_list(&bytes), tensor_list(TORCH_BN_CNN));
    let x = bn_cnn_input::<f32>(TORCH_BN_CNN_IO);
    let y = net.forward(&x);
    if std::env::var_os("NN_WRITE_FIXTURES").is_some() {
        // `make_fixture.py` then loads them into PyTorch with strict=True and compares.
        let mut io_tensors = Vec::new();
        let (_, input) = tensor(TORCH_BN_CNN_IO, "input");
        let input: Vec<u8> = input
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect();
        let output: Vec<u8> = (0..4)
            .flat_map(|j| (0..3).map(move |i| (j, i)))
            .flat_map(|(j, i)| y[(i, j)].to_le_bytes())
            .collect();
        io_tensors.push((
            "input",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4, 2, 8, 8], &input)
                .unwrap(),
        ));
        io_tensors.push((
            "output",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4, 3], &output)
                .unwrap(),
        ));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        std::fs::write(dir.join("nn_bn_cnn.safetensors"), &bytes).unwrap();
        std::fs::write(
            dir.join("nn_bn_cnn_io.safetensors"),
            safetensors::serialize(io_tensors, None).unwrap(),
        )
        .unwrap();
    }
    // The committed file, which PyTorch loaded with strict=True and whose eval outputs it
    // matched to 1e-6 (make_fixture.py's `check_nn_written`), is what nn writes.
    assert_eq!(tensor_list(NN_BN_CNN), tensor_list(&bytes));
    let mut committed = TorchBnCnn::<f32>::new_boxed();
    io::safetensors::load(&mut *committed, NN_BN_CNN).unwrap();
    assert_eq!(committed.state.bn.num_batches_tracked, 8);
    let scale = net.as_slice().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        common::max_diff(
            &committed
                .as_slice()
                .iter()
                .map(|&v| v as f64)
                .collect::<Vec<_>>(),
            &net.as_slice().iter().map(|&v| v as f64).collect::<Vec<_>>()
        ) <= 1e-5 * scale as f64
    );
    let (_, expected) = tensor(NN_BN_CNN_IO, "output");
    assert!(max_error(&y, &expected) < 1e-5);
    assert!(max_error(&committed.forward(&x), &expected) < 1e-6);
}

/// A `TorchBnCnn` whose parameters and running statistics are all different, with values
/// that test exactness: NaN with a payload, ±infinity, −0, a subnormal.
fn every_kind_of_value<T: Real>() -> Box<TorchBnCnn<T>> {
    let mut net = TorchBnCnn::<T>::new_boxed();
    randomize(&mut *net, 17, 2.0);
    randomize(&mut net.state.bn.running_mean, 18, 1.0);
    randomize(&mut net.state.bn.running_var, 19, 1.0);
    net.state
        .bn
        .running_var
        .apply(|v| *v = v.abs() + T::of(0.1));
    net.state.bn.num_batches_tracked = 123_456_789;
    net.state.bn_fc.running_mean[0] = T::of(f64::NAN);
    net.state.bn_fc.running_mean[1] = T::of(f64::INFINITY);
    net.state.bn_fc.running_mean[2] = T::of(-0.0);
    net.state.bn_fc.running_var[0] = T::of(f64::NEG_INFINITY);
    net.state.bn_fc.running_var[1] = T::of(1e-40);
    net.state.bn_fc.num_batches_tracked = u32::MAX as u64;
    net.state.drop.rng = 77; // not saved: PyTorch has no such state
    net
}

/// Bits of every saved value: parameters and state.
fn saved_bits<T: Real, N: Network<T>>(net: &N) -> Vec<u64> {
    let mut bits: Vec<u64> = net
        .as_slice()
        .iter()
        .map(|v| v.to_f64().to_bits())
        .collect();
    let mut index = 0;
    N::visit_state_tensors(&mut |t| {
        for p in 0..t.info.len() {
            bits.push(match net.state_value(index, p) {
                StateValue::Real(v) => v.to_f64().to_bits(),
                StateValue::Count(n) => n,
            });
        }
        index += 1;
    });
    bits
}

fn state_round_trips<T: Real>() {
    let net = every_kind_of_value::<T>();
    let expected = saved_bits(&*net);
    let check = |back: &TorchBnCnn<T>, format: &str| {
        assert_eq!(saved_bits(back), expected, "{format}");
        assert_eq!(
            back.state.drop.rng, 0,
            "{format}: dropout's generator is not saved"
        );
    };
    let mut back = TorchBnCnn::<T>::new_boxed();
    flat::load(&mut *back, &flat::to_vec(&*net).unwrap()).unwrap();
    check(&back, "flat");
    let mut back = TorchBnCnn::<T>::new_boxed();
    io::safetensors::load(&mut *back, &io::safetensors::save(&*net).unwrap()).unwrap();
    check(&back, "safetensors");
    let json = serde_json::to_string(&io::serde::Weights::new(&*net)).unwrap();
    assert!(json.contains(r#""bn.num_batches_tracked":{"shape":[],"data":[123456789]}"#));
    let back: Box<TorchBnCnn<T>> =
        io::serde::deserialize_boxed(&mut serde_json::Deserializer::from_str(&json)).unwrap();
    check(&back, "json");
    let bytes = postcard::to_allocvec(&io::serde::Weights::new(&*net)).unwrap();
    let back: Box<TorchBnCnn<T>> =
        io::serde::deserialize_boxed(&mut postcard::Deserializer::from_bytes(&bytes)).unwrap();
    check(&back, "postcard");
}

#[test]
fn running_statistics_round_trip_exactly_in_every_format() {
    state_round_trips::<f32>();
    state_round_trips::<f64>();
}

#[test]
fn the_flat_format_lists_state_with_its_kind() {
    let net = every_kind_of_value::<f32>();
    let bytes = flat::to_vec(&*net).unwrap();
    assert_eq!(bytes.len(), flat::encoded_len::<f32, TorchBnCnn<f32>>());
    // Header: 16 tensors; the parameters, 4 + 4 and 6 + 6 running statistics and two counts
    // of two f32 slots (8 bytes) each.
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 16);
    let slots = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    assert_eq!(
        slots,
        TorchBnCnn::<f32>::PARAM_COUNT as u64 + 8 + 12 + 2 * 2
    );
    assert_eq!(
        io::value_count::<f32, TorchBnCnn<f32>>(),
        TorchBnCnn::<f32>::PARAM_COUNT + 8 + 12 + 2
    );
    // The last table entry is bn_fc.num_batches_tracked: kind 2, rank 0.
    let name = b"bn_fc.num_batches_tracked";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
    assert_eq!(
        &bytes[at - 4..at],
        &[flat::KIND_COUNT, 0, name.len() as u8, 0]
    );
    let name = b"bn.running_var";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
    assert_eq!(bytes[at - 4], flat::KIND_STATE);
    // Its value, the last 8 bytes: a little-endian u64, whatever the dtype.
    assert_eq!(&bytes[bytes.len() - 8..], &(u32::MAX as u64).to_le_bytes());
    // So any count round-trips, even in an f32 file.
    let mut big = nn::clone_boxed(&*net);
    big.state.bn_fc.num_batches_tracked = i64::MAX as u64;
    let mut back = TorchBnCnn::<f32>::new_boxed();
    flat::load(&mut *back, &flat::to_vec(&*big).unwrap()).unwrap();
    assert_eq!(back.state.bn_fc.num_batches_tracked, i64::MAX as u64);
}

#[test]
fn a_network_nobody_initialised_computes_what_a_new_pytorch_module_computes() {
    // `new_boxed()` leaves every running variance 0; it stands for PyTorch's initial state.
    let mut zero = TorchBnCnn::<f64>::new_boxed();
    randomize(&mut *zero, 3, 1.0);
    assert!(zero.state.bn.is_initial());
    let mut initialised = nn::clone_boxed(&*zero);
    initialised.state.bn.running_var.fill(1.0);
    initialised.state.bn_fc.running_var.fill(1.0);
    assert!(!initialised.state.bn.is_initial());
    let x = common::random_matrix::<128, 4>(5, 1.0);
    // Inference: the same outputs, and finite (a variance of 0 would divide by √eps).
    let y = zero.forward(&x);
    assert_eq!(y, initialised.forward(&x));
    // Saved as PyTorch's initial state: running_var 1.
    let bytes = io::safetensors::save(&*zero).unwrap();
    let (_, running_var) = tensor(&bytes, "bn.running_var");
    assert_eq!(running_var, [1.0; 4]);
    // Training from it updates from mean 0, variance 1, as PyTorch.
    let mut tape = TorchBnCnnTape::<f64, 4>::new_boxed();
    zero.forward_train(&x, &mut tape);
    initialised.forward_train(&x, &mut tape);
    assert_eq!(zero.state.bn, initialised.state.bn);
    assert_eq!(zero.state.bn.num_batches_tracked, 1);
}

#[test]
fn gradients_export_under_pytorchs_names() {
    let mut net = TorchMlp::<f64>::new_boxed();
    let convert = Options {
        convert_dtype: true,
        ..Options::default()
    };
    io::safetensors::load_with(&mut *net, TORCH_MLP, &convert).unwrap();
    let (_, x) = tensor(TORCH_MLP_IO, "input_f64");
    let x = SMatrix::<f64, 3, 4>::from_fn(|i, j| x[j * 3 + i]);
    let (_, c) = tensor(TORCH_MLP_GRADS, "loss_weights");
    // L = Σ y ⊙ c, so ∂L/∂y = c.
    let d_y = SMatrix::<f64, 2, 4>::from_fn(|i, j| c[j * 2 + i]);
    let mut tape = TorchMlpTape::<f64, 4>::new_boxed();
    let mut grads = TorchMlpGrads::<f64>::new_boxed();
    net.forward_train(&x, &mut tape);
    net.backward(&mut tape, &d_y, &mut grads);

    let bytes = io::safetensors::save_gradients(&*net, &*grads, &Options::default()).unwrap();
    let names: Vec<String> = tensor_list(&bytes).into_keys().collect();
    assert_eq!(
        names,
        [
            "fc1.bias",
            "fc1.weight",
            "fc2.bias",
            "fc2.weight",
            "fc3.bias",
            "fc3.weight"
        ]
    );
    for name in &names {
        let (shape, ours) = tensor(&bytes, name);
        let (torch_shape, theirs) = tensor(TORCH_MLP_GRADS, name);
        assert_eq!(shape, torch_shape, "{name}");
        let error = common::max_diff(&ours, &theirs);
        assert!(error < 1e-12, "{name}: {error:e}");
    }
    // The same in JSON and in the flat format.
    let json = serde_json::to_value(io::serde::Gradients::new(&*net, &*grads)).unwrap();
    let (_, fc1_weight) = tensor(TORCH_MLP_GRADS, "fc1.weight");
    let from_json: Vec<f64> = json["fc1.weight"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(common::max_diff(&from_json, &fc1_weight) < 1e-12);
    let mut buffer = vec![0; flat::gradients_len::<f64, TorchMlp<f64>>()];
    let len = flat::save_gradients(&*net, &*grads, &mut buffer).unwrap();
    assert_eq!(len, buffer.len());
    // A gradient file has the network's layout: it loads as a network.
    let mut as_net = TorchMlp::<f64>::new_boxed();
    flat::load(&mut *as_net, &buffer).unwrap();
    assert_eq!(as_net.as_slice(), grads.as_slice());
}

#[test]
fn a_bare_pytorch_layer_loads_with_its_prefix_stripped() {
    let bare = Options {
        names: Names::StripPrefix("conv."),
        ..Options::default()
    };
    let mut net = BareConv::<f32>::new_boxed();
    io::safetensors::load_with(&mut *net, TORCH_CONV1D_BARE, &bare).unwrap();
    let (_, weight) = tensor(TORCH_CONV1D, "conv.weight");
    let (_, from_bare) = tensor(TORCH_CONV1D_BARE, "weight");
    assert_eq!(weight, from_bare);
    // It holds the conv of the module file, which loads with the layer's own names.
    let mut from_module = BareConv::<f32>::new_boxed();
    let lenient = Options {
        strict: false,
        ..Options::default()
    };
    io::safetensors::load_with(&mut *from_module, TORCH_CONV1D, &lenient).unwrap();
    assert_eq!(net, from_module);
    // And saves as a bare layer.
    let bytes = io::safetensors::save_with(&*net, &bare).unwrap();
    assert_eq!(tensor_list(&bytes), tensor_list(TORCH_CONV1D_BARE));
}

nn::network! {
    /// One layer of 4 values, for JSON's edge cases.
    pub struct Four {
        input: [1],
        fc: Dense<2>,
    }
}

fn json_round_trip<T: Real>(values: [T; 4]) -> Four<T> {
    let mut net = Four::<T>::ZERO;
    net.as_mut_slice().copy_from_slice(&values);
    let json = serde_json::to_string(&io::serde::Weights::new(&net)).unwrap();
    io::serde::deserialize(&mut serde_json::Deserializer::from_str(&json)).unwrap()
}

#[test]
fn json_keeps_every_value_exactly_and_refuses_what_does_not_fit() {
    // Non-finite values are strings; NaN payloads survive.
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7FC1_2345),
        -f32::NAN,
        -0.0,
        f32::from_bits(1),
        f32::MAX,
        f32::MIN_POSITIVE,
        0.1,
        1.0 / 3.0,
        -16_777_217.0,
        // Its shortest decimal, 7.038531e-26, read as an f64 and rounded to f32, is the next
        // f32 up (found by checking every f32): written as an f64 instead.
        f32::from_bits(0x15AE_43FD),
        f32::from_bits(0x95AE_43FD),
        1.0,
        2.5,
    ];
    for chunk in specials.chunks(4) {
        let values: [f32; 4] = chunk.try_into().unwrap();
        let back = json_round_trip(values);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(back.as_slice()), bits(&values));
        let values64 = values.map(|v| v as f64);
        let back = json_round_trip(values64);
        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits64(back.as_slice()), bits64(&values64));
    }
    let mut net = Four::<f32>::ZERO;
    net.as_mut_slice().copy_from_slice(&[
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7FC1_2345),
    ]);
    let json = serde_json::to_string(&io::serde::Weights::new(&net)).unwrap();
    assert_eq!(
        json,
        r#"{"fc.weight":{"shape":[2,1],"data":["NaN","inf"]},"fc.bias":{"shape":[2],"data":["-inf","NaN:0x7fc12345"]}}"#
    );
    // Short decimals where they read back exactly, the f64 where they would not.
    net.as_mut_slice()
        .copy_from_slice(&[0.1, f32::from_bits(0x15AE_43FD), -2.5, 3e-45]);
    let json = serde_json::to_string(&io::serde::Weights::new(&net)).unwrap();
    assert_eq!(
        json,
        r#"{"fc.weight":{"shape":[2,1],"data":[0.1,7.038530691851209e-26]},"fc.bias":{"shape":[2],"data":[-2.5,3e-45]}}"#
    );
    // Every f32 bit pattern of a pseudo-random sample, and of f64.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5_000 {
        let values: [f32; 4] = core::array::from_fn(|_| f32::from_bits(next() as u32));
        let back = json_round_trip(values);
        for (a, b) in back.as_slice().iter().zip(&values) {
            assert_eq!(a.to_bits(), b.to_bits(), "{b:e}");
        }
        let values: [f64; 4] = core::array::from_fn(|_| f64::from_bits(next()));
        let back = json_round_trip(values);
        for (a, b) in back.as_slice().iter().zip(&values) {
            assert_eq!(a.to_bits(), b.to_bits(), "{b:e}");
        }
    }

    // 1e50 does not fit an f32: an error naming the tensor, not an infinity.
    let too_big =
        r#"{"fc.weight":{"shape":[2,1],"data":[1e50,0]},"fc.bias":{"shape":[2],"data":[0,0]}}"#;
    let error = io::serde::deserialize::<f32, Four<f32>, _>(
        &mut serde_json::Deserializer::from_str(too_big),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("tensor `fc.weight` has the value 1e50 in the file, out of range for f32"),
        "{error}"
    );
    // It fits an f64.
    let net = io::serde::deserialize::<f64, Four<f64>, _>(&mut serde_json::Deserializer::from_str(
        too_big,
    ))
    .unwrap();
    assert_eq!(net.fc.weight[0], 1e50);
    // `null` (what serde_json writes for NaN and ±infinity alike) is refused.
    let null = too_big.replace("1e50", "null");
    let error =
        io::serde::deserialize::<f64, Four<f64>, _>(&mut serde_json::Deserializer::from_str(&null))
            .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("malformed file: a value is null"),
        "{error}"
    );
    // A negative count.
    let net = every_kind_of_value::<f64>();
    let json = serde_json::to_string(&io::serde::Weights::new(&*net))
        .unwrap()
        .replace("[123456789]", "[-1]");
    let error = io::serde::deserialize_boxed::<f64, TorchBnCnn<f64>, _>(
        &mut serde_json::Deserializer::from_str(&json),
    )
    .unwrap_err();
    assert!(
        error.to_string().starts_with(
            "tensor `bn.num_batches_tracked` has the value -1 in the file, out of range for a \
             count (an integer from 0 to 2⁶³ − 1)"
        ),
        "{error}"
    );
}

nn::network! {
    /// Small, with state: for the mutation test.
    pub struct SmallBn {
        input: [3],
        fc: Dense<2>,
        bn: BatchNorm1d,
    }
}

fn small_bn() -> SmallBn<f32> {
    let mut net = SmallBn::<f32>::ZERO;
    randomize(&mut net, 61, 1.0);
    net.state.bn.running_mean = SMatrix::from([[0.25, -0.5]]);
    net.state.bn.running_var = SMatrix::from([[1.5, 0.75]]);
    net.state.bn.num_batches_tracked = 42;
    net
}

/// Recomputes a flat file's checksum, so that an edit reaches the checks behind it.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() >= flat::HEADER_LEN {
        let crc = flat::Crc32::new()
            .update(&bytes[..28])
            .update(&bytes[flat::HEADER_LEN..])
            .finish();
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    }
}

#[test]
fn no_edit_of_a_file_with_state_makes_a_loader_panic_or_half_load() {
    type Load = dyn Fn(&mut SmallBn<f32>, &[u8]) -> Result<(), String>;
    let good = small_bn();
    let check = |bytes: &[u8], load: &Load| {
        let mut net = small_bn();
        match load(&mut net, bytes) {
            // What loaded saves and loads back bit for bit, state included.
            Ok(()) => {
                let mut back = SmallBn::<f32>::ZERO;
                flat::load(&mut back, &flat::to_vec(&net).unwrap()).unwrap();
                assert_eq!(saved_bits(&back), saved_bits(&net));
            }
            Err(e) => {
                assert_eq!(saved_bits(&net), saved_bits(&good), "changed by: {e}");
                assert!(!e.is_empty());
            }
        }
    };
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    let mut run = |file: Vec<u8>, load: &Load, reseal_flat: bool| {
        let mut edits: Vec<Vec<u8>> = (0..file.len()).map(|n| file[..n].to_vec()).collect();
        for bit in 0..file.len() * 8 {
            let mut b = file.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            edits.push(b);
        }
        for _ in 0..2_000 {
            let mut b = file.clone();
            for _ in 0..1 + next() % 4 {
                let i = next() % b.len();
                match next() % 3 {
                    0 => b[i] = next() as u8,
                    1 => b.insert(i, next() as u8),
                    _ => {
                        b.remove(i);
                    }
                }
                if b.is_empty() {
                    b.push(0);
                }
            }
            edits.push(b);
        }
        for mut b in edits {
            if reseal_flat {
                reseal(&mut b);
            }
            check(&b, load);
        }
    };
    let flat_load: &Load = &|n, b| flat::load(n, b).map_err(|e| e.to_string());
    run(flat::to_vec(&good).unwrap(), flat_load, false);
    run(flat::to_vec(&good).unwrap(), flat_load, true);
    let st_load: &Load = &|n, b| io::safetensors::load(n, b).map_err(|e| e.to_string());
    run(io::safetensors::save(&good).unwrap(), st_load, false);
    let json_load: &Load = &|n, b| {
        io::serde::deserialize_into(&mut serde_json::Deserializer::from_slice(b), n)
            .map_err(|e| e.to_string())
    };
    run(
        serde_json::to_vec(&io::serde::Weights::new(&good)).unwrap(),
        json_load,
        false,
    );
    let postcard_load: &Load = &|n, b| {
        io::serde::deserialize_into(&mut postcard::Deserializer::from_bytes(b), n)
            .map_err(|e| e.to_string())
    };
    run(
        postcard::to_allocvec(&io::serde::Weights::new(&good)).unwrap(),
        postcard_load,
        false,
    );
}
