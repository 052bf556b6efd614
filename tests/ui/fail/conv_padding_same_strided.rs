// `padding = same` needs stride 1 (PyTorch refuses it for strided convolutions too).
nn::network! {
    struct Net {
        input: [1, 8],
        conv: Conv1d<4, 3, stride = 2, padding = same>,
    }
}

fn main() {}
