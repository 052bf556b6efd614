//! Weights built at compile time (`nn::include_flat!`, `nn::io::flat_const`): the constant
//! tensor tables agree with `visit_tensors` and `visit_state_tensors`; a network built in a
//! `const` equals the one the run-time loader loads, bit for bit, batch normalization's
//! running statistics and count included, in f32 and f64; and on every file, valid or
//! mutated, the const parser accepts exactly what `flat::load` accepts, with the same message.
//!
//! The compile errors themselves are trybuild cases: `tests/ui/fail/const_weights_*.rs`, each
//! with its weight file beside it. Regenerate those files and `tests/fixtures/const_*.nnw`
//! with `NN_WRITE_CONST_FIXTURES=1 cargo test --test const_weights -- --ignored`.

mod common;

use common::randomize;
use nn::io::flat_const::{self, ConstTensors};
use nn::io::{LoadError, flat};
use nn::prelude::*;
use nn::{Role, StateValue, TensorInfo};

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
    /// `Tiny` with batch normalization: running statistics and a count in the file.
    pub struct TinyBn {
        input: [2],
        fc1: Dense<3>,
        bn: BatchNorm1d, Relu,
        out: Dense<1>,
    }
}

/// `y = s ⊙ x`, whose state (a running mean of its input, updated by training) is saved as
/// `running_mean` but not placed by `STATE_OFFSETS`: a network with it loads at run time and
/// cannot be built at compile time (`tests/ui/fail/const_weights_state_offsets.rs`).
#[derive(Clone, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Scale<T: Real, const N: usize> {
    pub s: SMatrix<T, N, 1>,
}

/// The state of [`Scale`].
#[derive(Clone, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct RunningMean<T: Real, const N: usize> {
    pub mean: SMatrix<T, N, 1>,
}

impl<T: Real, const N: usize> Layer<T, N, N> for Scale<T, N> {
    const STATE_TENSORS: &'static [TensorInfo] = &[TensorInfo {
        name: "running_mean",
        shape: &[N],
        role: Role::State,
    }];

    type Cache<const B: usize> = ();
    type State = RunningMean<T, N>;

    fn forward<const B: usize>(
        &self,
        _: &Self::State,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        _: &mut [T],
    ) {
        for (j, mut column) in y.column_iter_mut().enumerate() {
            column.copy_from(&x.column(j).component_mul(&self.s));
        }
    }

    fn forward_train<const B: usize>(
        &self,
        state: &mut Self::State,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        _: &mut (),
        scratch: &mut [T],
    ) {
        self.forward(state, x, y, scratch);
        state.mean = state.mean * T::of(0.9) + x.column_mean() * T::of(0.1);
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        _: &(),
        dy: &SMatrix<T, N, B>,
        dx: Option<&mut SMatrix<T, N, B>>,
        grads: &mut Self,
        _: &mut [T],
    ) {
        for j in 0..B {
            grads.s += dy.column(j).component_mul(&x.column(j));
        }
        if let Some(dx) = dx {
            for j in 0..B {
                let mut dx_j = dx.column_mut(j);
                dx_j += dy.column(j).component_mul(&self.s);
            }
        }
    }

    fn state_value(state: &Self::State, _: usize, element: usize) -> StateValue<T> {
        StateValue::Real(state.mean[element])
    }

    fn set_state_value(state: &mut Self::State, _: usize, element: usize, value: StateValue<T>) {
        if let StateValue::Real(v) = value {
            state.mean[element] = v;
        }
    }
}

nn::network! {
    /// A network with a layer whose saved state has no `STATE_OFFSETS`.
    pub struct Scaled {
        fc1: Dense<3>,
        scale: Scale<T, 3> -> [3],
        out: Dense<1>,
    }
    forward(x: [2]) -> y {
        let y = out(scale(fc1(x)));
    }
}

nn::network! {
    /// Convolutions (rank-4 and rank-3 weights, one without bias), batch norm (running
    /// statistics and count in the file) and a dense head: every storage layout the flat
    /// format converts.
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
/// (`write_const_fixtures`): an f64 network with every tensor layout and batch norm's state.
static CONV_F64: ConvNet<f64> = nn::include_flat!("fixtures/const_conv_f64.nnw");

const CONV_F64_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/const_conv_f64.nnw"
);

/// The same for an f32 network with batch norm, whose count takes two value slots.
static BN_F32: TinyBn<f32> = nn::include_flat!("fixtures/const_bn_f32.nnw");

const BN_F32_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/const_bn_f32.nnw"
);

/// The count `with_state` writes with `seed`: every one of its 8 bytes is used.
fn count_of(seed: u64) -> u64 {
    0x8877_6655_4433_2211 ^ seed
}

/// `net` with its saved state set to values that are not the initial ones: running means in
/// `[-1, 1]`, variances in `[0.5, 1.5]` (from `randomize`'s generator), the count
/// [`count_of`]`(seed)`.
fn with_state<T: Real, N: Network<T>>(mut net: N, seed: u64) -> N {
    let mut tensors = Vec::new();
    N::visit_state_tensors(&mut |t| tensors.push(t));
    let mut values = SMatrix::<T, 64, 1>::zeros();
    randomize(&mut values, seed, 1.0);
    for (i, t) in tensors.iter().enumerate() {
        for e in 0..t.info.len() {
            let value = match t.info.role {
                Role::Count => StateValue::Count(count_of(seed)),
                _ if t.info.name == "running_var" => {
                    StateValue::Real(values[(i * 7 + e) % 64].abs() * T::of(0.5) + T::of(0.5))
                }
                _ => StateValue::Real(values[(i * 7 + e) % 64]),
            };
            net.set_state_value(i, e, value);
        }
    }
    net
}

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

/// `(layer.tensor, shape, role, offset)` of every state tensor, as `visit_state_tensors`
/// lists them.
fn visited_state<T: Real, N: Network<T>>() -> Vec<(String, Vec<usize>, Role, usize)> {
    let mut all = Vec::new();
    N::visit_state_tensors(&mut |t| {
        all.push((t.to_string(), t.info.shape.to_vec(), t.info.role, t.offset))
    });
    all
}

/// The same from the constant state table.
fn from_state_table<N: ConstTensors>() -> Vec<(String, Vec<usize>, Role, usize)> {
    let mut all = Vec::new();
    let mut offset = 0;
    for layer in N::STATE {
        for t in layer.tensors {
            let name = format!("{}.{}", layer.layer, t.name);
            all.push((name, t.shape.to_vec(), t.role, offset));
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
        assert_eq!(from_state_table::<N>(), visited_state::<f32, N>());
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
    check::<Scaled<f32>>();
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

#[test]
fn the_state_table_places_each_tensor_in_the_network() {
    // `bn`'s state is the network's `state.bn`, its tensors the fields of `BatchNormState`.
    let state = ConvNet::<f32>::STATE;
    assert_eq!(state.len(), 1);
    let bn = state[0];
    assert_eq!(bn.layer, "bn");
    assert_eq!(bn.at, core::mem::offset_of!(ConvNet<f32>, state.bn));
    assert_eq!(bn.size, size_of::<nn::layers::BatchNormState<f32, 3>>());
    assert_eq!(
        bn.offsets,
        [
            core::mem::offset_of!(nn::layers::BatchNormState<f32, 3>, running_mean),
            core::mem::offset_of!(nn::layers::BatchNormState<f32, 3>, running_var),
            core::mem::offset_of!(nn::layers::BatchNormState<f32, 3>, num_batches_tracked),
        ]
    );
    // A network without state has none; a layer of one's own that places none, no offsets.
    assert!(Tiny::<f32>::STATE.is_empty());
    assert!(Encoder::<f32>::STATE.iter().all(|s| s.tensors.is_empty()));
    let scale = Scaled::<f64>::STATE;
    assert_eq!((scale.len(), scale[0].tensors.len()), (1, 1));
    assert!(scale[0].offsets.is_empty());
}

fn bits<T: Real, N: Network<T>>(net: &N) -> Vec<u64> {
    net.as_slice()
        .iter()
        .map(|v| v.to_f64().to_bits())
        .collect()
}

/// Every saved state value of `net`, as bits (a count as itself).
fn state_bits<T: Real, N: Network<T>>(net: &N) -> Vec<u64> {
    let mut tensors = Vec::new();
    N::visit_state_tensors(&mut |t| tensors.push(t));
    let mut all = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        for e in 0..t.info.len() {
            all.push(match net.state_value(i, e) {
                StateValue::Real(v) => v.to_f64().to_bits(),
                StateValue::Count(n) => n,
            });
        }
    }
    all
}

#[test]
fn a_const_built_f64_network_equals_the_loaded_one_bit_for_bit() {
    let bytes = std::fs::read(CONV_F64_PATH).unwrap();
    let mut loaded = ConvNet::<f64>::ZERO;
    flat::load(&mut loaded, &bytes).unwrap();
    assert_eq!(bits(&CONV_F64), bits(&loaded));
    assert_eq!(state_bits(&CONV_F64), state_bits(&loaded));
    assert_eq!(CONV_F64, loaded);
    // Not all zero, and the state is the one saved (`write_const_fixtures`), not the initial.
    assert!(CONV_F64.as_slice().iter().all(|&v| v != 0.0));
    let saved = with_state(ConvNet::<f64>::ZERO, 12);
    assert_eq!(CONV_F64.state, saved.state);
    assert!(!CONV_F64.state.bn.is_initial());
    assert_eq!(CONV_F64.state.bn.num_batches_tracked, count_of(12));
    // And it computes what the loaded one computes, with the running statistics.
    let x = SMatrix::<f64, 60, 1>::from_fn(|i, _| (i as f64 * 0.37).sin());
    assert_eq!(CONV_F64.forward(&x), loaded.forward(&x));
    let mut initial = loaded.clone();
    initial.state = ConvNet::<f64>::ZERO.state;
    assert_ne!(CONV_F64.forward(&x), initial.forward(&x));
}

#[test]
fn running_statistics_and_count_arrive_exactly() {
    // Built while compiling, in f32: each value where `flat::load` puts it, bit for bit.
    let saved = with_state(
        {
            let mut net = TinyBn::<f32>::ZERO;
            randomize(&mut net, 13, 1.0);
            net
        },
        13,
    );
    let bytes = std::fs::read(BN_F32_PATH).unwrap();
    assert_eq!(bytes, flat::to_vec(&saved).unwrap());
    let mut loaded = TinyBn::<f32>::ZERO;
    flat::load(&mut loaded, &bytes).unwrap();
    assert_eq!(BN_F32, loaded);
    assert_eq!(BN_F32, saved);
    let bn = &BN_F32.state.bn;
    assert_eq!(bn.running_mean, saved.state.bn.running_mean);
    assert_eq!(bn.running_var, saved.state.bn.running_var);
    assert!(
        bn.running_var
            .iter()
            .all(|&v| (0.5..=1.5).contains(&v) && v != 1.0)
    );
    assert!(bn.running_mean.iter().all(|&m| m != 0.0));
    assert_eq!(bn.num_batches_tracked, 0x8877_6655_4433_221C);

    // At run time too, with statistics and a count that training produced.
    let mut trained = TinyBn::<f64>::ZERO;
    randomize(&mut trained, 14, 1.0);
    let mut tape = TinyBnTape::<f64, 4>::ZERO;
    let x = SMatrix::<f64, 2, 4>::from_fn(|i, j| (i as f64 - j as f64 * 0.7).sin());
    for _ in 0..3 {
        trained.forward_train(&x, &mut tape);
    }
    assert_eq!(trained.state.bn.num_batches_tracked, 3);
    let bytes = flat::to_vec(&trained).unwrap();
    let built = flat_const::load::<f64, TinyBn<f64>>(&bytes).unwrap();
    assert_eq!(built.state, trained.state);
    assert_eq!(state_bits(&built), state_bits(&trained));
    assert_eq!(built, trained);
}

/// The const parser, run here at run time, against `flat::load` on the same bytes: both
/// accept, with the same parameters and state bit for bit, or both refuse, with the same
/// message.
fn agree<N: Network<f32> + ConstTensors>(bytes: &[u8]) -> bool {
    let mut loaded = N::ZERO;
    let by_loader = flat::load(&mut loaded, bytes);
    let by_const = flat_const::load::<f32, N>(bytes);
    match (by_loader, by_const) {
        (Ok(()), Ok(built)) => {
            assert_eq!(bits(&built), bits(&loaded));
            assert_eq!(state_bits(&built), state_bits(&loaded));
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

/// Every truncation and bit flip of `good`, then `random` random edits, each also with its
/// checksum recomputed so that the edit reaches the checks behind it: the parsers agree on
/// each. Returns how many loaded, of how many tried.
fn mutations<N: Network<f32> + ConstTensors>(good: &[u8], random: usize) -> (usize, usize) {
    let (mut tried, mut loaded) = (0, 0);
    let mut count = |bytes: &[u8]| {
        tried += 2;
        loaded += agree::<N>(bytes) as usize;
        let mut resealed = bytes.to_vec();
        if resealed.len() >= flat::HEADER_LEN {
            reseal(&mut resealed);
        }
        loaded += agree::<N>(&resealed) as usize;
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
    (loaded, tried)
}

#[test]
fn the_const_parser_accepts_and_refuses_what_the_loader_does() {
    let good = flat_of::<f32, Tiny<f32>>(5);
    assert!(agree::<Tiny<f32>>(&good));
    assert!(agree::<ConvNet<f32>>(&with_state_flat::<ConvNet<f32>>(6)));

    // Whole files of other networks and dtypes.
    for bytes in [
        flat_of::<f32, TinyWider<f32>>(1),
        flat_of::<f32, TinyRenamed<f32>>(1),
        flat_of::<f64, Tiny<f64>>(1),
        flat_of::<f32, ConvNet<f32>>(1),
        flat_of::<f32, TinyBn<f32>>(1),
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

    let (loaded, tried) = mutations::<Tiny<f32>>(&good, 5000);
    // Flips in the values load once resealed: both parsers saw them as values.
    assert!(loaded > 0 && loaded < tried / 2, "{loaded} of {tried}");
}

/// A file of `N` (randomized with `seed`) with its state set by [`with_state`].
fn with_state_flat<N: Network<f32>>(seed: u64) -> Vec<u8> {
    let mut net = N::ZERO;
    randomize(&mut net, seed, 1.0);
    flat::to_vec(&with_state(net, seed)).unwrap()
}

#[test]
fn the_const_parser_checks_the_state_as_the_loader_does() {
    let good = with_state_flat::<TinyBn<f32>>(7);
    assert!(agree::<TinyBn<f32>>(&good));
    let message = |bytes: &[u8]| {
        assert!(!agree::<TinyBn<f32>>(bytes));
        flat_const::load::<f32, TinyBn<f32>>(bytes)
            .unwrap_err()
            .message()
            .to_string()
    };
    // A file without the state (the parameters only, as `save_gradients` writes them) is
    // refused, as `flat::load` (strict) refuses it.
    let grads = TinyBnGrads::<f32>::ZERO;
    let mut parameters_only = vec![0; flat::gradients_len::<f32, TinyBn<f32>>()];
    flat::save_gradients(&TinyBn::<f32>::ZERO, &grads, &mut parameters_only).unwrap();
    assert_eq!(
        message(&parameters_only),
        "tensor `bn.running_mean` is missing from the file"
    );
    // The state of a network without it, a state tensor given as a parameter, a count as
    // a real tensor, an unknown kind, the wrong value count: each as the loader says it.
    assert_eq!(
        flat_const::load::<f32, Tiny<f32>>(&flat_of::<f32, TinyBn<f32>>(1))
            .unwrap_err()
            .message(),
        "the file has a tensor `bn.weight` where the network has `out.weight`"
    );
    let entries = table_entries(&good);
    let kind_at = |name: &str| entries.iter().find(|(n, _)| n == name).unwrap().1;
    let edited = |at: usize, value: u8| {
        let mut bytes = good.clone();
        bytes[at] = value;
        reseal(&mut bytes);
        bytes
    };
    assert_eq!(
        message(&edited(kind_at("bn.running_mean"), flat::KIND_PARAMETER)),
        "malformed file: a table entry's kind (parameter, state or count) is not the \
         tensor's: bn.running_mean"
    );
    assert_eq!(
        message(&edited(kind_at("bn.num_batches_tracked"), flat::KIND_STATE)),
        "malformed file: a table entry's kind (parameter, state or count) is not the \
         tensor's: bn.num_batches_tracked"
    );
    assert_eq!(
        message(&edited(kind_at("bn.running_var"), 9)),
        "malformed file: a table entry has an unknown kind: bn.running_var"
    );
    let mut more = good.clone();
    let slots = u64::from_le_bytes(more[16..24].try_into().unwrap());
    more[16..24].copy_from_slice(&(slots + 1).to_le_bytes());
    more.extend_from_slice(&[0; 4]);
    reseal(&mut more);
    assert_eq!(
        message(&more),
        format!(
            "the file holds {} values, but the network saves {slots}",
            slots + 1
        )
    );

    let (loaded, tried) = mutations::<TinyBn<f32>>(&good, 3000);
    assert!(loaded > 0 && loaded < tried / 2, "{loaded} of {tried}");
}

/// `(name, index of its kind byte)` of every entry of a flat file's tensor table.
fn table_entries(bytes: &[u8]) -> Vec<(String, usize)> {
    let count = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    let mut pos = flat::HEADER_LEN;
    let mut entries = Vec::new();
    for _ in 0..count {
        let (rank, len) = (
            bytes[pos + 1] as usize,
            u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]) as usize,
        );
        let name = String::from_utf8(bytes[pos + 4..pos + 4 + len].to_vec()).unwrap();
        entries.push((name, pos));
        pos += 4 + len + 4 * rank;
    }
    entries
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
    // A good file for `Scaled`, which the run-time loader loads, but whose state the const
    // loader cannot place.
    let bytes = std::fs::read(format!("{ui}/const_weights_state_offsets.nnw")).unwrap();
    let mut net = Scaled::<f32>::ZERO;
    flat::load(&mut net, &bytes).unwrap();
    assert!(net.state.scale.mean.iter().all(|&m| m != 0.0));
    assert_eq!(
        flat_const::load::<f32, Scaled<f32>>(&bytes)
            .unwrap_err()
            .message(),
        "state tensor `scale.running_mean` has no place in its layer's state: give the layer \
         `Layer::STATE_OFFSETS` to build the network at compile time, or load it at run time \
         with `flat::load`"
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
    std::fs::write(
        format!("{ui}/const_weights_state_offsets.nnw"),
        with_state_flat::<Scaled<f32>>(11),
    )
    .unwrap();
    let mut conv = ConvNet::<f64>::ZERO;
    randomize(&mut conv, 12, 1.0);
    std::fs::write(CONV_F64_PATH, flat::to_vec(&with_state(conv, 12)).unwrap()).unwrap();
    std::fs::write(BN_F32_PATH, with_state_flat::<TinyBn<f32>>(13)).unwrap();
}
