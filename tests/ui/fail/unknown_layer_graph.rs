nn::network! {
    struct Net {
        fc: Dens<3>,
    }
    forward(x: [4]) -> y {
        let y = fc(x);
    }
}

fn main() {}
