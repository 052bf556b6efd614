//! `nn::io::flat::load` on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nn_fuzz::check;

fuzz_target!(|data: &[u8]| {
    check(data, |net, bytes| nn::io::flat::load(net, bytes));
});
