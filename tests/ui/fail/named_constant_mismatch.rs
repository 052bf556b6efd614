// A rule the macro cannot decide (a size is a constant) is a const assertion: rustc reports
// it with the macro's own message, on the token to change.
const H: usize = 8;

nn::network! {
    pub struct Net {
        a: Dense<H>,
        b: Dense<16>,
        stated: Dense<{ H / 2 }, 4>,
    }
    forward(x: [4]) -> (y, z) {
        let y = a(x) + b(x);
        let z = stated(a(x));
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
