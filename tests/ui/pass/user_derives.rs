// The derives the generated struct already has (`Clone`, `Debug`, `PartialEq`), written by
// the user, work: they are the same impls, not a second one.
use nn::prelude::*;

nn::network! {
    /// A network whose author derives what it already derives.
    #[derive(Clone, Debug)]
    #[derive(core::cmp::PartialEq)]
    #[must_use]
    pub struct Net {
        input: [2],
        out: Dense<1>,
    }
}

fn main() {
    let net = Net::<f32>::ZERO;
    let copy = net.clone();
    assert_eq!(net, copy);
    assert!(format!("{copy:?}").starts_with("Net"));
}
