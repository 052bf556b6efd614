//! What the fuzz targets share: a network, and the check every loader must pass on any
//! input: no panic; on an error, the network exactly as it was; on success, weights that save
//! and load back bit for bit.

use nn::prelude::*;

nn::network! {
    /// Non-square layers, two activations.
    pub struct Net {
        input: [3],
        fc1: Dense<5>, Tanh,
        fc2: Dense<4>, Relu,
        fc3: Dense<2>,
    }
}

/// The network every load starts from: distinctive, non-zero values.
pub fn victim() -> Net<f32> {
    let mut net = Net::<f32>::ZERO;
    for (i, p) in net.as_mut_slice().iter_mut().enumerate() {
        *p = (i as f32 - 30.0) * 0.0625;
    }
    net
}

fn bits(net: &Net<f32>) -> Vec<u32> {
    net.as_slice().iter().map(|v| v.to_bits()).collect()
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
