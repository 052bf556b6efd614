// A convolution over a length given by a constant: whether the kernel fits is a const
// assertion, reported with the message a literal length would get.
const LEN: usize = 3;

nn::network! {
    pub struct Net {
        input: [1, LEN],
        conv: Conv1d<2, 5>,
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
