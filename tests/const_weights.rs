//! Weights built at compile time (`nn::include_flat!`, `nn::io::flat_const`): the constant
//! tensor table agrees with `visit_tensors`; a network built in a `const` equals the one the
//! run-time loader loads, bit for bit, in f32 and f64; and on every file, valid or mutated,
//! the const parser accepts exactly what `flat::load` accepts, with the same message.
//!
//! The compile errors themselves are trybuild cases: `tests/ui/fail/const_weights_*.rs`, each
//! with its bad weight file beside it. Regenerate those files and
//! `tests/fixtures/const_conv_f64.nnw` with
//! `NN_WRITE_CONST_FIXTURES=1 cargo test --test const_weights -- --ignored`.

mod common;

use common::randomize;
use nn::io::flat_const::{self, ConstTensors};
use nn::io::{LoadError, flat};
use nn::prelude::*;

nn::network! {
    /// The network of the trybuild cases `tests/ui/fail/const_weights_*.rs`.
    pub struct Tiny {
        input: [2],
        fc1: Dense<3>, Relu,
        out: Dense<1>,
    }
}

nn::network! {
    /// `Tiny` with a wider first layer: its file has the wrong shapes for `Tiny`.
    pub struct TinyWider {
        input: [2],
        fc1: Dense<4>, Relu,
        out: Dense<1>,
    }
}

nn::network! {
    /// `Tiny` with its first layer named `hidden`: its file has the wrong names for `Tiny`.
    pub struct TinyRenamed {
        input: [2],
        hidden: Dense<3>, Relu,
        out: Dense<1>,
    }
}

nn::network! {
    /// Convolutions (rank-4 and rank-3 weights, one without bias), batch norm (whose state is
    /// not in the file) and a dense head: every storage layout the flat format converts.
    pub struct ConvNet {
        input: [2, 6, 5],
        conv: Conv2d<3, (3, 2), padding = 1>, Relu,
        bn: BatchNorm2d,
        conv2: Conv2d<2, 2, bias = false>, Tanh,
        Flatten,
        fc: Dense<4>,
    }
}

nn::network! {
    /// A graph of sequence layers, for the tensor table only.
    pub struct Encoder {
        embed: Embedding<4, 8>,
        positions: LearnedPositions,
        attention: MultiHeadAttention<2>,
        norm: LayerNorm,
        gru: Gru<6, last = true>,
        readout: Dense<2>,
    }
    forward(tokens: [5]) -> logits {
        let x = positions(embed(tokens));
        let a = norm(x + attention(x));
        let logits = readout(gru(a));
    }
}

/// Built while compiling, from a file written by the run-time saver
/// (`write_const_fixtures`): an f64 network with every tensor layout.
static CONV_F64: ConvNet<f64> = nn::include_flat!("fixtures/const_conv_f64.nnw");

const CONV_F64_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/const_conv_f64.nnw"
);

/// `(layer.tensor, shape, offset)` of every tensor, as `visit_tensors` lists them.
fn visited<T: Real, N: Network<T>>() -> Vec<(String, Vec<usize>, usize)> {
    let mut all = Vec::new();
    N::visit_tensors(&mut |t| all.push((t.to_string(), t.info.shape.to_vec(), t.offset)));
    all
}

/// The same from the constant table, offsets summed as the const loader sums them.
fn from_table<N: ConstTensors>() -> Vec<(String, Vec<usize>, usize)> {
    let mut all = Vec::new();
    let mut offset = 0;
    for layer in N::LAYERS {
        for t in layer.tensors {
            all.push((
                format!("{}.{}", layer.layer, t.name),
                t.shape.to_vec(),
                offset,
            ));
            offset += t.len();
        }
    }
    all
}

#[test]
fn the_constant_tensor_table_is_visit_tensors() {
    fn check<N: Network<f32> + ConstTensors>() {
        let table = from_table::<N>();
        assert_eq!(table, visited::<f32, N>());
        let scalars: usize = N::LAYERS
            .iter()
            .flat_map(|l| l.tensors)
            .map(|t| t.len())
            .sum();
        assert_eq!(scalars, N::PARAM_COUNT);
    }
    check::<Tiny<f32>>();
    check::<ConvNet<f32>>();
    check::<Encoder<f32>>();
    assert_eq!(
        from_table::<ConvNet<f32>>()
            .iter()
            .map(|(name, ..)| name.as_str())
            .collect::<Vec<_>>(),
        [
            "conv.weight",
            "conv.bias",
            "bn.weight",
            "bn.bias",
            "conv2.weight",
            "fc.weight",
            "fc.bias"
        ]
    );
}

fn bits<T: Real, N: Network<T>>(net: &N) -> Vec<u64> {
    net.as_slice()
        .iter()
        .map(|v| v.to_f64().to_bits())
        .collect()
}

#[test]
fn a_const_built_f64_network_equals_the_loaded_one_bit_for_bit() {
    let bytes = std::fs::read(CONV_F64_PATH).unwrap();
    let mut loaded = ConvNet::<f64>::ZERO;
    flat::load(&mut loaded, &bytes).unwrap();
    assert_eq!(bits(&CONV_F64), bits(&loaded));
    assert_eq!(CONV_F64, loaded);
    // Not all zero, and the state (not in the file) as `ZERO` leaves it.
    assert!(CONV_F64.as_slice().iter().all(|&v| v != 0.0));
    assert_eq!(CONV_F64.state, ConvNet::<f64>::ZERO.state);
    // And it computes what the loaded one computes.
    let x = SMatrix::<f64, 60, 1>::from_fn(|i, _| (i as f64 * 0.37).sin());
    assert_eq!(CONV_F64.forward(&x), loaded.forward(&x));
}

/// The const parser, run here at run time, against `flat::load` on the same bytes: both
/// accept, with the same parameters bit for bit, or both refuse, with the same message.
fn agree<N: Network<f32> + ConstTensors>(bytes: &[u8]) -> bool {
    let mut loaded = N::ZERO;
    let by_loader = flat::load(&mut loaded, bytes);
    let by_const = flat_const::load::<f32, N>(bytes);
    match (by_loader, by_const) {
        (Ok(()), Ok(built)) => {
            assert_eq!(bits(&built), bits(&loaded));
            true
        }
        (Err(e), Err(c)) => {
            assert_eq!(c.message(), e.to_string(), "on {bytes:02x?}");
            assert_eq!(c.to_string(), e.to_string());
            false
        }
        (l, c) => panic!(
            "the loader says {l:?}, the const parser {:?}, on {bytes:02x?}",
            c.err()
        ),
    }
}

/// Rewrites the checksum after an edit of the header or table.
fn reseal(bytes: &mut [u8]) {
    let crc = flat::Crc32::new()
        .update(&bytes[..28])
        .update(&bytes[32..])
        .finish();
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
}

fn flat_of<T: Real, N: Network<T>>(seed: u64) -> Vec<u8> {
    let mut net = N::ZERO;
    randomize(&mut net, seed, 1.0);
    flat::to_vec(&net).unwrap()
}

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

#[test]
fn the_const_parser_accepts_and_refuses_what_the_loader_does() {
    let good = flat_of::<f32, Tiny<f32>>(5);
    assert!(agree::<Tiny<f32>>(&good));
    assert!(agree::<ConvNet<f32>>(&flat_of::<f32, ConvNet<f32>>(6)));

    // Whole files of other networks and dtypes.
    for bytes in [
        flat_of::<f32, TinyWider<f32>>(1),
        flat_of::<f32, TinyRenamed<f32>>(1),
        flat_of::<f64, Tiny<f64>>(1),
        flat_of::<f32, ConvNet<f32>>(1),
        Vec::new(),
        b"NNW".to_vec(),
        b"PK\x03\x04".to_vec(),
    ] {
        assert!(!agree::<Tiny<f32>>(&bytes));
    }
    // A state tensor's kind, a reserved byte, a parameter count off by one, a table padded
    // with a non-zero byte: edits behind the checksum.
    type Edit<'a> = &'a dyn Fn(&mut Vec<u8>);
    let edits: [Edit<'_>; 4] = [
        &|b| b[32] = flat::KIND_STATE,
        &|b| b[11] = 1,
        &|b| {
            let count = Tiny::<f32>::PARAM_COUNT as u64 + 1;
            b[16..24].copy_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&[0; 4]);
        },
        &|b| {
            let table_end =
                flat::HEADER_LEN + u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
            b[table_end - 1] = 1;
        },
    ];
    for edit in edits {
        let mut bytes = good.clone();
        edit(&mut bytes);
        reseal(&mut bytes);
        assert!(!agree::<Tiny<f32>>(&bytes));
    }

    // Every truncation, every bit flip, then random edits, each also with its checksum
    // recomputed so that the edit reaches the checks behind it.
    let (mut tried, mut loaded) = (0, 0);
    let mut count = |bytes: &[u8]| {
        tried += 2;
        loaded += agree::<Tiny<f32>>(bytes) as usize;
        let mut resealed = bytes.to_vec();
        if resealed.len() >= flat::HEADER_LEN {
            reseal(&mut resealed);
        }
        loaded += agree::<Tiny<f32>>(&resealed) as usize;
    };
    for len in 0..good.len() {
        count(&good[..len]);
    }
    for bit in 0..good.len() * 8 {
        let mut bytes = good.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        count(&bytes);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..5000 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(3) {
                0 => {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
                1 => {
                    let at = rng.below(bytes.len());
                    bytes.insert(at, rng.next() as u8);
                }
                _ if bytes.len() > 1 => {
                    let at = rng.below(bytes.len());
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        count(&bytes);
    }
    // Flips in the values load once resealed: both parsers saw them as values.
    assert!(loaded > 0 && loaded < tried / 2, "{loaded} of {tried}");
}

#[test]
fn a_long_or_invalid_name_is_cut_as_the_loader_cuts_it() {
    let mut bytes = flat_of::<f32, TinyRenamed<f32>>(2);
    // `hidden.weight` → `hidden\xff…`: an invalid byte, shown as `�`.
    bytes[32 + 4 + 6] = 0xFF;
    reseal(&mut bytes);
    assert!(!agree::<Tiny<f32>>(&bytes));
    let message = flat_const::load::<f32, Tiny<f32>>(&bytes).unwrap_err();
    assert_eq!(
        message.message(),
        "the file has a tensor `hidden\u{FFFD}weight` where the network has `fc1.weight`"
    );
}

/// The bad weight files of `tests/ui/fail/const_weights_*.rs` fail as their names say, with
/// the message that the `.stderr` files show.
#[test]
fn the_trybuild_weight_files_are_what_they_claim() {
    let ui = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/fail");
    let error = |name: &str| {
        let bytes = std::fs::read(format!("{ui}/{name}")).unwrap();
        let mut net = Tiny::<f32>::ZERO;
        let err = flat::load(&mut net, &bytes).unwrap_err();
        assert!(!agree::<Tiny<f32>>(&bytes));
        err
    };
    let good_len = flat::encoded_len::<f32, Tiny<f32>>() as u64;
    assert_eq!(
        error("const_weights_truncated.nnw"),
        LoadError::Truncated {
            needed: good_len,
            available: good_len - 4
        }
    );
    assert_eq!(
        error("const_weights_shape.nnw").to_string(),
        "tensor `fc1.weight` has shape [4, 2] in the file, but [3, 2] in the network"
    );
    assert_eq!(
        error("const_weights_name.nnw").to_string(),
        "the file has a tensor `hidden.weight` where the network has `fc1.weight`"
    );
}

/// Writes the bad weight files of the trybuild cases and the f64 fixture (run on purpose).
#[test]
#[ignore = "writes the fixtures when NN_WRITE_CONST_FIXTURES=1"]
fn write_const_fixtures() {
    if std::env::var_os("NN_WRITE_CONST_FIXTURES").is_none() {
        return;
    }
    let ui = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/fail");
    let tiny = flat_of::<f32, Tiny<f32>>(11);
    std::fs::write(
        format!("{ui}/const_weights_truncated.nnw"),
        &tiny[..tiny.len() - 4],
    )
    .unwrap();
    std::fs::write(
        format!("{ui}/const_weights_shape.nnw"),
        flat_of::<f32, TinyWider<f32>>(11),
    )
    .unwrap();
    std::fs::write(
        format!("{ui}/const_weights_name.nnw"),
        flat_of::<f32, TinyRenamed<f32>>(11),
    )
    .unwrap();
    std::fs::write(CONV_F64_PATH, flat_of::<f64, ConvNet<f64>>(12)).unwrap();
}
