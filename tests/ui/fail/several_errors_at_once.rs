// Three independent mistakes, all reported by one compile: an unknown activation, an
// element-wise sum of a [8] and a [4], and a declared output shape that is not the computed
// one. The struct `Net` still exists (so code naming it gets no "cannot find type" error).
nn::network! {
    struct Net {
        fc1: Dense<8>,
        fc2: Dense<8>,
        head: Dense<1>,
    }
    forward(x: [4]) -> (a, b, y: [2]) {
        let a = rleu(fc1(x));
        let b = fc2(x) + x;
        let y = head(x);
    }
}

fn main() {
    let _net: Option<Net> = None;
}
