// `padding = same` with an even kernel needs one more position on one side: this layer pads
// both sides alike, so the message gives the two numbers that work.
nn::network! {
    struct Net {
        input: [1, 8, 8],
        conv: Conv2d<4, 4, padding = same>,
    }
}

fn main() {}
