//! What the fuzz targets share: a network, and the check every loader must pass on any
//! input: no panic; on an error, the network exactly as it was; on success, weights that save
//! and load back bit for bit.

use nn::prelude::*;

nn::network! {
    /// Non-square layers, two activations, and batch norm (whose running statistics and
    /// count are saved state).
    pub struct Net {
        input: [3],
        fc1: Dense<5>, Tanh,
        fc2: Dense<4>,
        bn: BatchNorm1d, Relu,
        fc3: Dense<2>,
    }
}

/// The network every load starts from: distinctive, non-zero values, state included.
pub fn victim() -> Net<f32> {
    let mut net = Net::<f32>::ZERO;
    for (i, p) in net.as_mut_slice().iter_mut().enumerate() {
        *p = (i as f32 - 30.0) * 0.0625;
    }
    net.state.bn.running_mean = SMatrix::from([[0.5, -0.25, 1.0, 0.0]]);
    net.state.bn.running_var = SMatrix::from([[1.5, 0.75, 2.0, 1.0]]);
    net.state.bn.num_batches_tracked = 12;
    net
}

/// Every saved value's bits: parameters, then state.
fn bits(net: &Net<f32>) -> Vec<u64> {
    let mut bits: Vec<u64> = net.as_slice().iter().map(|v| v.to_bits().into()).collect();
    let mut index = 0;
    Net::<f32>::visit_state_tensors(&mut |t| {
        for p in 0..t.info.len() {
            bits.push(match net.state_value(index, p) {
                nn::StateValue::Real(v) => v.to_bits().into(),
                nn::StateValue::Count(n) => n,
            });
        }
        index += 1;
    });
    bits
}

/// Loads `data` into a copy of [`victim`] with `load`, and checks the outcome.
pub fn check<E: std::fmt::Display>(
    data: &[u8],
    load: impl Fn(&mut Net<f32>, &[u8]) -> Result<(), E>,
) {
    let mut net = victim();
    match load(&mut net, data) {
        Err(e) => {
            assert_eq!(bits(&net), bits(&victim()), "changed by a failed load: {e}");
            assert!(!e.to_string().is_empty());
        }
        Ok(()) => {
            let bytes = nn::io::flat::to_vec(&net).expect("saves");
            let mut back = Net::<f32>::ZERO;
            nn::io::flat::load(&mut back, &bytes).expect("loads what it saved");
            assert_eq!(bits(&back), bits(&net));
        }
    }
}

/// Valid encodings of [`victim`] in each format, to start the corpus from.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let net = victim();
    vec![
        ("flat", nn::io::flat::to_vec(&net).unwrap()),
        ("safetensors", nn::io::safetensors::save(&net).unwrap()),
        (
            "serde_json",
            serde_json::to_vec(&nn::io::serde::Weights::new(&net)).unwrap(),
        ),
        (
            "serde_postcard",
            postcard::to_allocvec(&nn::io::serde::Weights::new(&net)).unwrap(),
        ),
    ]
}
