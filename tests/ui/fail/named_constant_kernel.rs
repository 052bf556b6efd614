// A size the macro computes with (a kernel, a stride) must be a number; constants are for
// channel, feature and sequence sizes.
const K: usize = 3;

nn::network! {
    pub struct Net {
        input: [1, 8],
        conv: Conv1d<4, K>,
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
