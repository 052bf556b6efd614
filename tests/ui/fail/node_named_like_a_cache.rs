// The tape keeps a convolution's cache in the field `<node>_cache`: a node of that name
// would be a second field of the same name.
nn::network! {
    struct Net {
        conv: Conv1d<2, 3>,
        head: Dense<1>,
    }
    forward(x: [1, 8]) -> y {
        let c = conv(x);
        let c_cache = flatten(c);
        let y = head(c_cache);
    }
}

fn main() {}
