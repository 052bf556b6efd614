//! `nn::io::safetensors::load_with` on any bytes, strict and lenient, converting dtypes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nn::io::safetensors::{Names, Options};
use nn_fuzz::check;

fuzz_target!(|data: &[u8]| {
    check(data, |net, bytes| nn::io::safetensors::load(net, bytes));
    let lenient = Options {
        names: Names::Prefix(""),
        strict: false,
        convert_dtype: true,
    };
    check(data, |net, bytes| {
        nn::io::safetensors::load_with(net, bytes, &lenient)
    });
});
