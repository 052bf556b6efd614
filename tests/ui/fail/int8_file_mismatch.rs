// An int8 weight file (the sine network's, 1 → 16 → 16 → 1) that does not fit the network
// (1 → 8 → 16 → 1): `from_file` in a `static` fails the build, naming the layer.
nn::network! {
    #[nn(int8)]
    pub struct Small {
        input: [1],
        fc1: Dense<8>, Relu,
        fc2: Dense<16>, Relu,
        out: Dense<1>,
    }
}

static NET: SmallQ8 = SmallQ8::from_file(include_bytes!("../../../firmware/weights/sine.q8"));

fn main() {
    let _ = NET.forward(&[0]);
}
