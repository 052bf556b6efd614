//! A flat int8 weight file, and a `const fn` reader of it: an int8 network built while
//! compiling, a `static` in flash, as [`include_flat!`](crate::include_flat) does for `f32`.
//!
//! Written by [`write_header`], [`write_dense`] and [`write_conv2d`] (to any sink, no allocation; [`Writer`]
//! collects them in a `Vec`, feature `alloc`); read by [`Reader`] in a `const` block (a
//! network generated with `#[nn(int8)]` has both as `NetQ8::write_file` and
//! `NetQ8::from_file`):
//!
//! ```ignore
//! static NET: SineQ8 = {
//!     let mut file = Reader::new(include_bytes!("sine.q8"));
//!     let fc1 = file.dense::<1, 16>("fc1");
//!     let fc2 = file.dense::<16, 16>("fc2");
//!     let out = file.dense::<16, 1>("out");
//!     file.finish();
//!     Chain { first: Chain { first: fc1, second: fc2 }, second: out }
//! };
//! ```
//!
//! A file that does not fit (another magic or version, a layer of another name or shape,
//! a layer whose input scale is not the previous layer's output scale, missing or extra
//! bytes) is a compile error that says so.
//!
//! # Format (little-endian)
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | magic `NNQ8` |
//! | 4..8 | version, `u32` = 2 (1 is read too) |
//! | 8..12 | number of layers, `u32` |
//!
//! then each layer, in order: name length (`u8`) and name (UTF-8); its kind (`u8`: 0 for a
//! Dense layer, 1 for a 2-d convolution; absent in version 1, whose layers are all Dense);
//! its shape: for a Dense layer `IN` and `OUT` (`u32`), for a convolution `CO, CI, H, W, KH,
//! KW, SH, SW, PH, PW, DH, DW` (`u32` each: channels, input size, kernel, stride, padding,
//! dilation); input scale (`f32`) and zero point (`i32`); output scale (`f32`) and zero
//! point (`i32`); `min` and `max` (`i8`); the weights, `OUT · IN` `i8` row-major (`[out, in]`,
//! PyTorch's layout; a convolution's `[CO, CI·KH·KW]`, PyTorch's `[CO, CI, KH, KW]`); the
//! folded biases, `OUT` (`CO`) `i32`; the multipliers' `m0`, `OUT` `i32`; their shifts, `OUT`
//! `i8`. Max pooling, flatten and dropout have no record (nothing to store; the scales pass
//! through them).

use super::{Conv2dQ8, DenseQ8, MaxPool2dQ8, Multiplier, QuantParams};
use crate::layers::{ConvGeometry2d, PoolGeometry2d};
use core::marker::PhantomData;

/// The file's first bytes.
pub const MAGIC: [u8; 4] = *b"NNQ8";
/// The format's version (the reader also reads version 1, of Dense layers only).
pub const VERSION: u32 = 2;

/// A Dense layer's record.
const KIND_DENSE: u8 = 0;
/// A 2-d convolution's record.
const KIND_CONV2D: u8 = 1;

/// Reads an int8 weight file in a `const fn`; every mismatch panics with a message (in a
/// `const`, a compile error).
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    layers_left: u32,
    previous: Option<QuantParams>,
    version: u32,
}

impl<'a> Reader<'a> {
    /// Checks the header.
    pub const fn new(bytes: &'a [u8]) -> Reader<'a> {
        let mut reader = Reader {
            bytes,
            at: 0,
            layers_left: 0,
            previous: None,
            version: 0,
        };
        if bytes.len() < 12
            || bytes[0] != MAGIC[0]
            || bytes[1] != MAGIC[1]
            || bytes[2] != MAGIC[2]
            || bytes[3] != MAGIC[3]
        {
            panic!("int8 weight file: not an NNQ8 file (no magic `NNQ8`)");
        }
        reader.at = 4;
        reader.version = reader.u32();
        if reader.version != 1 && reader.version != VERSION {
            panic!("int8 weight file: version is not 1 or 2");
        }
        reader.layers_left = reader.u32();
        reader
    }

    /// The next layer, a [`DenseQ8`] named `name` from `IN` to `OUT` values.
    pub const fn dense<const IN: usize, const OUT: usize>(
        &mut self,
        name: &str,
    ) -> DenseQ8<IN, OUT> {
        self.start(name, KIND_DENSE);
        let (file_in, file_out) = (self.u32() as usize, self.u32() as usize);
        if file_in != IN || file_out != OUT {
            let mut message = Message::new();
            message.push("int8 weight file: layer `");
            message.push(name);
            message.push("` has shape [");
            message.push_usize(file_out);
            message.push(", ");
            message.push_usize(file_in);
            message.push("] ([out, in]) in the file, but [");
            message.push_usize(OUT);
            message.push(", ");
            message.push_usize(IN);
            message.push("] in the network");
            message.panic();
        }
        let (input, output, min, max) = self.params_and_clamp(name);
        let mut q = DenseQ8 {
            weight: [[0; IN]; OUT],
            bias: [0; OUT],
            multiplier: [Multiplier { m0: 0, shift: 0 }; OUT],
            input,
            output,
            min,
            max,
        };
        self.channels(&mut q.weight, &mut q.bias, &mut q.multiplier);
        q
    }

    /// The next layer, a [`Conv2dQ8`] named `name`, of `CO` output channels and the geometry
    /// `G` (the file's must be the same: channels, input size, kernel, stride, padding,
    /// dilation).
    pub const fn conv2d<
        const CO: usize,
        const K: usize,
        const IN: usize,
        const OUT: usize,
        G: ConvGeometry2d,
    >(
        &mut self,
        name: &str,
    ) -> Conv2dQ8<CO, K, IN, OUT, G> {
        self.start(name, KIND_CONV2D);
        let expected = conv_shape::<G>(CO);
        let mut found = [0usize; 12];
        let mut i = 0;
        let mut same = true;
        while i < 12 {
            found[i] = self.u32() as usize;
            same = same && found[i] == expected[i];
            i += 1;
        }
        if !same {
            let mut message = Message::new();
            message.push("int8 weight file: layer `");
            message.push(name);
            message.push("` is ");
            message.push_conv(&found);
            message.push(" in the file, but ");
            message.push_conv(&expected);
            message.push(" in the network");
            message.panic();
        }
        if K != G::CI * G::KH * G::KW || IN != G::CI * G::H * G::W || OUT != CO * G::OH * G::OW {
            panic!("int8 weight file: a convolution's K, IN or OUT does not fit its geometry");
        }
        let (input, output, min, max) = self.params_and_clamp(name);
        let mut q = Conv2dQ8 {
            weight: [[0; K]; CO],
            bias: [0; CO],
            multiplier: [Multiplier { m0: 0, shift: 0 }; CO],
            input,
            output,
            min,
            max,
            geometry: PhantomData,
        };
        self.channels(&mut q.weight, &mut q.bias, &mut q.multiplier);
        q
    }

    /// A max pooling (no record in the file: it has no parameters).
    pub const fn max_pool2d<const IN: usize, const OUT: usize, G: PoolGeometry2d>(
        &self,
    ) -> MaxPool2dQ8<IN, OUT, G> {
        MaxPool2dQ8::new()
    }

    /// A layer's name and kind.
    const fn start(&mut self, name: &str, kind: u8) {
        if self.layers_left == 0 {
            fail(
                "the file has no more layers; the network expects",
                name,
                " next",
            );
        }
        self.layers_left -= 1;
        let len = self.u8() as usize;
        let found = self.take(len);
        if !eq(found, name.as_bytes()) {
            fail(
                "the next layer in the file is not",
                name,
                " (the network's)",
            );
        }
        let found = if self.version == 1 {
            KIND_DENSE
        } else {
            self.u8()
        };
        if found != kind {
            let (file, network) = if kind == KIND_DENSE {
                (
                    " is a convolution in the file, but Dense",
                    " in the network",
                )
            } else {
                (
                    " is not a convolution in the file, but",
                    " is one in the network",
                )
            };
            let mut message = Message::new();
            message.push("int8 weight file: layer `");
            message.push(name);
            message.push("`");
            message.push(file);
            message.push(network);
            message.panic();
        }
    }

    /// The input's and output's scales and zero points (the input's checked against the
    /// previous layer's output) and the clamp.
    const fn params_and_clamp(&mut self, name: &str) -> (QuantParams, QuantParams, i8, i8) {
        let input = self.params();
        let output = self.params();
        if let Some(previous) = self.previous
            && (previous.scale != input.scale || previous.zero_point != input.zero_point)
        {
            fail(
                "layer",
                name,
                " quantizes its input differently from the previous layer's output",
            );
        }
        self.previous = Some(output);
        let min = self.u8() as i8;
        let max = self.u8() as i8;
        (input, output, min, max)
    }

    /// The weights, biases, multipliers and shifts of `CO` output channels of `K` weights.
    const fn channels<const K: usize, const CO: usize>(
        &mut self,
        weight: &mut [[i8; K]; CO],
        bias: &mut [i32; CO],
        multiplier: &mut [Multiplier; CO],
    ) {
        let mut c = 0;
        while c < CO {
            let mut k = 0;
            while k < K {
                weight[c][k] = self.u8() as i8;
                k += 1;
            }
            c += 1;
        }
        let mut c = 0;
        while c < CO {
            bias[c] = self.u32() as i32;
            c += 1;
        }
        let mut c = 0;
        while c < CO {
            multiplier[c].m0 = self.u32() as i32;
            c += 1;
        }
        let mut c = 0;
        while c < CO {
            multiplier[c].shift = self.u8() as i8 as i32;
            c += 1;
        }
    }

    /// Checks that every layer and byte of the file was read.
    pub const fn finish(self) {
        if self.layers_left != 0 {
            panic!("int8 weight file: it has more layers than the network");
        }
        if self.at != self.bytes.len() {
            panic!("int8 weight file: bytes after the last layer");
        }
    }

    const fn params(&mut self) -> QuantParams {
        let scale = f32::from_bits(self.u32());
        let zero_point = self.u32() as i32;
        if !(scale > 0.0 && scale < f32::INFINITY) || zero_point < -128 || zero_point > 127 {
            panic!("int8 weight file: a scale or zero point is out of range");
        }
        QuantParams { scale, zero_point }
    }

    const fn take(&mut self, n: usize) -> &'a [u8] {
        if self.bytes.len() - self.at < n {
            panic!("int8 weight file: truncated");
        }
        let (_, rest) = self.bytes.split_at(self.at);
        let (taken, _) = rest.split_at(n);
        self.at += n;
        taken
    }

    const fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    const fn u32(&mut self) -> u32 {
        let b = self.take(4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// A convolution's record shape: `CO, CI, H, W, KH, KW, SH, SW, PH, PW, DH, DW`.
const fn conv_shape<G: ConvGeometry2d>(co: usize) -> [usize; 12] {
    [
        co,
        G::CI,
        G::H,
        G::W,
        G::KH,
        G::KW,
        G::SH,
        G::SW,
        G::PH,
        G::PW,
        G::DH,
        G::DW,
    ]
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Panics with `int8 weight file: <before> `<name>`<after>`.
const fn fail(before: &str, name: &str, after: &str) -> ! {
    let mut message = Message::new();
    message.push("int8 weight file: ");
    message.push(before);
    message.push(" `");
    message.push(name);
    message.push("`");
    message.push(after);
    message.panic()
}

/// A panic message assembled in a `const fn`, which cannot format: up to 320 bytes, the rest
/// cut.
struct Message {
    buffer: [u8; 320],
    len: usize,
}

impl Message {
    const fn new() -> Message {
        Message {
            buffer: [0; 320],
            len: 0,
        }
    }

    const fn push(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() && self.len < self.buffer.len() {
            self.buffer[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
    }

    const fn push_usize(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut count = 0;
        loop {
            digits[count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while count > 0 && self.len < self.buffer.len() {
            count -= 1;
            self.buffer[self.len] = digits[count];
            self.len += 1;
        }
    }

    /// `Conv2d(CI → CO, KH×KW, stride SH×SW, padding PH×PW, dilation DH×DW) on [CI, H, W]`.
    const fn push_conv(&mut self, shape: &[usize; 12]) {
        self.push("Conv2d(");
        self.push_usize(shape[1]);
        self.push(" → ");
        self.push_usize(shape[0]);
        self.push(", ");
        self.push_pair(shape[4], shape[5]);
        self.push(", stride ");
        self.push_pair(shape[6], shape[7]);
        self.push(", padding ");
        self.push_pair(shape[8], shape[9]);
        self.push(", dilation ");
        self.push_pair(shape[10], shape[11]);
        self.push(") on [");
        self.push_usize(shape[1]);
        self.push(", ");
        self.push_usize(shape[2]);
        self.push(", ");
        self.push_usize(shape[3]);
        self.push("]");
    }

    const fn push_pair(&mut self, a: usize, b: usize) {
        self.push_usize(a);
        self.push("×");
        self.push_usize(b);
    }

    const fn panic(&self) -> ! {
        let (message, _) = self.buffer.split_at(self.len);
        // A cut inside a character: up to it.
        let valid = match core::str::from_utf8(message) {
            Ok(_) => message.len(),
            Err(error) => error.valid_up_to(),
        };
        match core::str::from_utf8(message.split_at(valid).0) {
            Ok(message) => panic!("{}", message),
            Err(_) => panic!("int8 weight file: a layer does not fit the network"),
        }
    }
}

/// Writes the file's header for `layers` layers to `sink` (no allocation: a firmware can
/// write to a buffer or a serial port).
pub fn write_header(layers: u32, sink: &mut dyn FnMut(&[u8])) {
    sink(&MAGIC);
    sink(&VERSION.to_le_bytes());
    sink(&layers.to_le_bytes());
}

/// Writes `layer` under `name` (at most 255 bytes) to `sink`, after the header and the
/// layers before it.
pub fn write_dense<const IN: usize, const OUT: usize>(
    name: &str,
    layer: &DenseQ8<IN, OUT>,
    sink: &mut dyn FnMut(&[u8]),
) {
    write_start(name, KIND_DENSE, sink);
    sink(&(IN as u32).to_le_bytes());
    sink(&(OUT as u32).to_le_bytes());
    write_channels(
        [layer.input, layer.output],
        [layer.min, layer.max],
        &layer.weight,
        &layer.bias,
        &layer.multiplier,
        sink,
    );
}

/// Writes the convolution `layer` under `name` (at most 255 bytes) to `sink`, after the
/// header and the layers before it.
pub fn write_conv2d<
    const CO: usize,
    const K: usize,
    const IN: usize,
    const OUT: usize,
    G: ConvGeometry2d,
>(
    name: &str,
    layer: &Conv2dQ8<CO, K, IN, OUT, G>,
    sink: &mut dyn FnMut(&[u8]),
) {
    write_start(name, KIND_CONV2D, sink);
    for n in conv_shape::<G>(CO) {
        sink(&(n as u32).to_le_bytes());
    }
    write_channels(
        [layer.input, layer.output],
        [layer.min, layer.max],
        &layer.weight,
        &layer.bias,
        &layer.multiplier,
        sink,
    );
}

fn write_start(name: &str, kind: u8, sink: &mut dyn FnMut(&[u8])) {
    assert!(name.len() <= 255, "a layer name has at most 255 bytes");
    sink(&[name.len() as u8]);
    sink(name.as_bytes());
    sink(&[kind]);
}

fn write_channels<const K: usize, const CO: usize>(
    params: [QuantParams; 2],
    clamp: [i8; 2],
    weight: &[[i8; K]; CO],
    bias: &[i32; CO],
    multiplier: &[Multiplier; CO],
    sink: &mut dyn FnMut(&[u8]),
) {
    for params in params {
        sink(&params.scale.to_bits().to_le_bytes());
        sink(&params.zero_point.to_le_bytes());
    }
    sink(&[clamp[0] as u8, clamp[1] as u8]);
    for row in weight {
        for &w in row {
            sink(&[w as u8]);
        }
    }
    for bias in bias {
        sink(&bias.to_le_bytes());
    }
    for m in multiplier {
        sink(&m.m0.to_le_bytes());
    }
    // Shifts are within [−31, 8]: one byte each.
    for m in multiplier {
        sink(&[m.shift as i8 as u8]);
    }
}

/// Writes an int8 weight file into a `Vec` (feature `alloc`).
#[cfg(feature = "alloc")]
pub struct Writer {
    bytes: alloc::vec::Vec<u8>,
    layers: u32,
}

#[cfg(feature = "alloc")]
impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "alloc")]
impl Writer {
    /// An empty file.
    pub fn new() -> Writer {
        let mut bytes = alloc::vec::Vec::new();
        write_header(0, &mut |b| bytes.extend_from_slice(b));
        Writer { bytes, layers: 0 }
    }

    /// Appends `layer` under `name` (at most 255 bytes).
    pub fn dense<const IN: usize, const OUT: usize>(
        &mut self,
        name: &str,
        layer: &DenseQ8<IN, OUT>,
    ) {
        write_dense(name, layer, &mut |b| self.bytes.extend_from_slice(b));
        self.layers += 1;
    }

    /// Appends the convolution `layer` under `name` (at most 255 bytes).
    pub fn conv2d<
        const CO: usize,
        const K: usize,
        const IN: usize,
        const OUT: usize,
        G: ConvGeometry2d,
    >(
        &mut self,
        name: &str,
        layer: &Conv2dQ8<CO, K, IN, OUT, G>,
    ) {
        write_conv2d(name, layer, &mut |b| self.bytes.extend_from_slice(b));
        self.layers += 1;
    }

    /// The file's bytes.
    pub fn finish(mut self) -> alloc::vec::Vec<u8> {
        self.bytes[8..12].copy_from_slice(&self.layers.to_le_bytes());
        self.bytes
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::super::{Chain, LayerQ8};
    use super::*;

    fn layers() -> (DenseQ8<2, 3>, DenseQ8<3, 1>) {
        let (fc1, fc2, [p0, p1, p2]) = super::super::chain::tests::example();
        (
            DenseQ8::quantize(&fc1, p0, p1, true).unwrap(),
            DenseQ8::quantize(&fc2, p1, p2, false).unwrap(),
        )
    }

    fn file() -> alloc::vec::Vec<u8> {
        let (a, b) = layers();
        let mut writer = Writer::new();
        writer.dense("fc1", &a);
        writer.dense("fc2", &b);
        writer.finish()
    }

    #[test]
    fn read_is_written() {
        let bytes = file();
        // 12 + (1 + 3 + 1 + 8 + 16 + 2 + 6 + 12 + 12 + 3)
        //    + (1 + 3 + 1 + 8 + 16 + 2 + 3 + 4 + 4 + 1).
        assert_eq!(bytes.len(), 12 + 64 + 43);
        let mut reader = Reader::new(&bytes);
        let a = reader.dense::<2, 3>("fc1");
        let b = reader.dense::<3, 1>("fc2");
        reader.finish();
        assert_eq!((a, b), layers());
        let chain: Chain<_, _, 3> = Chain {
            first: a,
            second: b,
        };
        assert_eq!(
            LayerQ8::forward(&chain, &[1, 2]),
            b.forward(&a.forward(&[1, 2]))
        );
    }

    fn panics(f: impl FnOnce() + std::panic::UnwindSafe) -> std::string::String {
        let payload = std::panic::catch_unwind(f).unwrap_err();
        payload
            .downcast_ref::<std::string::String>()
            .cloned()
            .or_else(|| {
                payload
                    .downcast_ref::<&str>()
                    .map(|s| std::string::String::from(*s))
            })
            .unwrap()
    }

    #[test]
    fn mismatches_panic_with_the_layer_named() {
        let bytes = file();
        let message = panics(|| {
            Reader::new(&bytes).dense::<2, 4>("fc1");
        });
        assert_eq!(
            message,
            "int8 weight file: layer `fc1` has shape [3, 2] ([out, in]) in the file, but [4, 2] in the network"
        );
        let message = panics(|| {
            Reader::new(&bytes).dense::<2, 3>("hidden");
        });
        assert_eq!(
            message,
            "int8 weight file: the next layer in the file is not `hidden` (the network's)"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        let message = panics(move || {
            let mut reader = Reader::new(&longer);
            reader.dense::<2, 3>("fc1");
            reader.dense::<3, 1>("fc2");
            reader.finish();
        });
        assert_eq!(message, "int8 weight file: bytes after the last layer");
        let message = panics(|| {
            Reader::new(&bytes[..40]).dense::<2, 3>("fc1");
        });
        assert_eq!(message, "int8 weight file: truncated");
        let message = panics(|| {
            let mut reader = Reader::new(&bytes);
            reader.dense::<2, 3>("fc1");
            reader.finish();
        });
        assert_eq!(
            message,
            "int8 weight file: it has more layers than the network"
        );
        let mut other = bytes.clone();
        other[0] = b'X';
        assert!(
            panics(move || {
                Reader::new(&other);
            })
            .contains("no magic")
        );
        // The second layer's input scale changed: no longer the first's output.
        let mut other = bytes.clone();
        other[12 + 64 + 13] ^= 1;
        assert_eq!(
            panics(move || {
                let mut reader = Reader::new(&other);
                reader.dense::<2, 3>("fc1");
                reader.dense::<3, 1>("fc2");
            }),
            "int8 weight file: layer `fc2` quantizes its input differently from the previous layer's output"
        );
    }

    /// A version-1 file (no kind bytes) of the same layers.
    fn version_1(bytes: &[u8]) -> alloc::vec::Vec<u8> {
        let mut old = bytes.to_vec();
        old[4] = 1;
        // The kind bytes follow the names: at 12 + 1 + 3 and at 12 + 64 + 1 + 3.
        old.remove(12 + 64 + 4);
        old.remove(12 + 4);
        old
    }

    #[test]
    fn version_1_files_are_read() {
        let old = version_1(&file());
        let mut reader = Reader::new(&old);
        let a = reader.dense::<2, 3>("fc1");
        let b = reader.dense::<3, 1>("fc2");
        reader.finish();
        assert_eq!((a, b), layers());
    }

    type G = crate::layers::Geometry2d<2, 4, 3, 3, 2, 2, 1, 1, 0, 1, 2>;
    type Conv = Conv2dQ8<3, 12, 24, 6, G>;
    type Pool = crate::layers::PoolGeometry2dOf<3, 2, 1, 2, 1, 2, 1>;

    fn conv_layers() -> (Conv, DenseQ8<3, 2>) {
        let mut state = 5;
        let mut random = || super::super::dense::tests::splitmix(&mut state);
        let conv = crate::layers::Conv2d::<f32, 3, 12, 3, 24, 6, G>::new(
            nalgebra::SMatrix::from_fn(|_, _| random()),
            nalgebra::SMatrix::from_fn(|_, _| random()),
        );
        let dense = crate::layers::Dense::<f32, 3, 2> {
            weight: nalgebra::SMatrix::from_fn(|_, _| random()),
            bias: nalgebra::SMatrix::from_fn(|_, _| random()),
        };
        let p = [(-1.0, 1.0), (0.0, 3.0), (-2.0, 2.0)]
            .map(|(a, b)| QuantParams::from_range(super::super::Range::new(a, b)));
        (
            Conv2dQ8::quantize(&conv, p[0], p[1], true).unwrap(),
            DenseQ8::quantize(&dense, p[1], p[2], false).unwrap(),
        )
    }

    fn conv_file() -> alloc::vec::Vec<u8> {
        let (conv, dense) = conv_layers();
        let mut writer = Writer::new();
        writer.conv2d("conv", &conv);
        writer.dense("fc", &dense);
        writer.finish()
    }

    #[test]
    fn convolutions_are_read_as_written() {
        let bytes = conv_file();
        // (1 + 4 + 1 + 48 + 16 + 2 + 36 + 12 + 12 + 3) + (1 + 2 + 1 + 8 + 16 + 2 + 6 + 8 + 8 + 2).
        assert_eq!(bytes.len(), 12 + 135 + 54);
        let mut reader = Reader::new(&bytes);
        let conv = reader.conv2d::<3, 12, 24, 6, G>("conv");
        // A pooling between them: no record, the scales pass through.
        let _pool = reader.max_pool2d::<6, 3, Pool>();
        let dense = reader.dense::<3, 2>("fc");
        reader.finish();
        assert_eq!((conv, dense), conv_layers());
    }

    #[test]
    fn convolution_mismatches_panic_with_the_layer_named() {
        let bytes = conv_file();
        type Other = crate::layers::Geometry2d<2, 4, 3, 3, 2, 1, 1, 1, 1, 1, 2>;
        assert_eq!(
            panics(|| {
                Reader::new(&bytes).conv2d::<3, 12, 24, 36, Other>("conv");
            }),
            "int8 weight file: layer `conv` is Conv2d(2 → 3, 3×2, stride 2×1, padding 1×0, \
             dilation 1×2) on [2, 4, 3] in the file, but Conv2d(2 → 3, 3×2, stride 1×1, \
             padding 1×1, dilation 1×2) on [2, 4, 3] in the network"
        );
        assert_eq!(
            panics(|| {
                Reader::new(&bytes).dense::<24, 3>("conv");
            }),
            "int8 weight file: layer `conv` is a convolution in the file, but Dense in the network"
        );
        let dense_file = file();
        assert_eq!(
            panics(|| {
                Reader::new(&dense_file).conv2d::<3, 12, 24, 6, G>("fc1");
            }),
            "int8 weight file: layer `fc1` is not a convolution in the file, but is one in the network"
        );
        let old = version_1(&dense_file);
        assert_eq!(
            panics(move || {
                Reader::new(&old).conv2d::<3, 12, 24, 6, G>("fc1");
            }),
            "int8 weight file: layer `fc1` is not a convolution in the file, but is one in the network"
        );
    }
}
