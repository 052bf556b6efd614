//! `nn::io::flat::load` on any bytes, as given and with the checksum recomputed (so that
//! mutations reach the checks after it: the tensor table, the counts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nn::io::flat::{Crc32, HEADER_LEN};
use nn_fuzz::check;

fuzz_target!(|data: &[u8]| {
    check(data, |net, bytes| nn::io::flat::load(net, bytes));
    if data.len() >= HEADER_LEN {
        let mut resealed = data.to_vec();
        let crc = Crc32::new()
            .update(&resealed[..28])
            .update(&resealed[HEADER_LEN..])
            .finish();
        resealed[28..32].copy_from_slice(&crc.to_le_bytes());
        check(&resealed, |net, bytes| nn::io::flat::load(net, bytes));
    }
});
