// PyTorch writes `nn.Linear(16, 32)`; the DSL's arguments go in angle brackets. The struct
// still exists after the syntax error, so `main` gets no error of its own.
nn::network! {
    pub struct Net {
        input: [16],
        fc: Dense(32),
    }
}

fn main() {
    let _ = Net::<f32>::ZERO;
}
