// A negative size gets the message of a zero one, not the integer parser's.
nn::network! {
    pub struct Net {
        input: [16],
        fc: Dense<-4>,
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
