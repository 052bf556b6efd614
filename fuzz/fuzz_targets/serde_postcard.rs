//! `nn::io::serde::deserialize_into` from postcard (a binary, non-self-describing format),
//! on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nn_fuzz::{Net, check};

fuzz_target!(|data: &[u8]| {
    check(data, |net, bytes| {
        nn::io::serde::deserialize_into::<f32, Net<f32>, _>(
            &mut postcard::Deserializer::from_bytes(bytes),
            net,
        )
    });
});
