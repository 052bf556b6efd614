//! The macro's parameter count of every built-in layer is the layer's `Params::LEN`: the
//! summary the macro writes into the docs (`SUMMARY_TEXT`, its own count per layer) is what
//! `summary()` prints (`Params::LEN` per layer, from `nn-core`). Between them, the networks
//! below use every built-in layer of the DSL, in each of its forms (a unit test of
//! `nn-macros` checks that every name of its table appears here).

nn::network! {
    /// Vectors: dense (with both sizes stated), batch norm, dropout, layer norm.
    pub struct Vectors {
        input: [12],
        fc: Dense<8>, Relu,
        bn: BatchNorm1d<eps = 0.001, momentum = 0.2>,
        drop: Dropout<0.25>,
        ln: LayerNorm,
        out: Dense<8, 3>,
    }
}

nn::network! {
    /// Images: 2-d convolutions (padding, stride, dilation, no bias), batch and group norm,
    /// every pooling.
    pub struct Images {
        input: [2, 9, 8],
        conv1: Conv2d<3, 3, padding = 1>,
        bn: BatchNorm2d,
        gn: GroupNorm<3, eps = 0.001>,
        pool1: MaxPool2d<2>,
        conv2: Conv2d<4, (2, 3), stride = (1, 2), dilation = (2, 1), bias = false>,
        pool2: AvgPool2d<(2, 1), stride = 1>,
        global: GlobalAvgPool,
        head: Dense<2>,
    }
}

nn::network! {
    /// Quantization-aware training: `QatConv2d` takes `Conv2d`'s arguments (padding, stride,
    /// dilation, no bias) and has its parameters.
    pub struct QatImages {
        input: [2, 9, 8],
        conv1: QatConv2d<3, 3, padding = 1>, Relu,
        conv2: QatConv2d<4, (2, 3), stride = (1, 2), dilation = (2, 1), bias = false>,
        global: GlobalAvgPool,
    }
}

nn::network! {
    /// Signals: 1-d convolutions, batch and group norm over channels and positions, 1-d
    /// pooling.
    pub struct Signals {
        input: [3, 20],
        conv1: Conv1d<4, 3, stride = 2, padding = 1, dilation = 2>,
        bn: BatchNorm1d,
        gn: GroupNorm<2>,
        pool1: MaxPool1d<2>,
        pool2: AvgPool1d<2, stride = 1>,
        conv2: Conv1d<2, 1, bias = false, in_channels = 4>,
        global: GlobalAvgPool,
    }
}

nn::network! {
    /// Sequences: embedding, both positional encodings, attention (several heads, causal;
    /// one head), layer norm over positions, dense per position, and the recurrent layers,
    /// with and without an initial state.
    pub struct Sequences {
        embed: Embedding<10, 8>,
        fixed: SinusoidalPositions,
        learned: LearnedPositions,
        mha: MultiHeadAttention<2, causal = true>,
        single: SelfAttention,
        norm: LayerNorm<eps = 0.0001>,
        rnn: Rnn<5>,
        gru: Gru<6, last = true>,
        ff: Dense<3>,
        lstm: Lstm<4>,
    }
    forward(tokens: [6], h0: [6], state_h: [4], state_c: [4]) -> (y, z) {
        let x = learned(fixed(embed(tokens)));
        let a = norm(mha(x) + single(x));
        let y = gru(rnn(a), h0);
        let z = lstm(ff(a), state_h, state_c);
    }
}

/// The summary the macro wrote, with its own parameter counts, and the one `summary()`
/// prints, with each layer's `Params::LEN`.
fn summaries(documented: &str, printed: impl std::fmt::Display) {
    assert_eq!(documented, printed.to_string());
}

#[test]
fn the_macros_parameter_counts_are_the_layers_params_len() {
    summaries(Vectors::<f32>::SUMMARY_TEXT, Vectors::<f32>::summary());
    summaries(Images::<f32>::SUMMARY_TEXT, Images::<f32>::summary());
    summaries(Signals::<f32>::SUMMARY_TEXT, Signals::<f32>::summary());
    summaries(QatImages::<f32>::SUMMARY_TEXT, QatImages::<f32>::summary());
    summaries(Sequences::<f32>::SUMMARY_TEXT, Sequences::<f32>::summary());
}

#[test]
fn the_counts_are_pytorchs() {
    // nn.Linear(12, 8), nn.BatchNorm1d(8), nn.LayerNorm(8), nn.Linear(8, 3).
    assert_eq!(
        Vectors::<f32>::PARAM_COUNT,
        (12 * 8 + 8) + 2 * 8 + 2 * 8 + (8 * 3 + 3)
    );
    // nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.GroupNorm(3, 3),
    // nn.Conv2d(3, 4, (2, 3), bias=False), nn.Linear(4, 2).
    assert_eq!(
        Images::<f32>::PARAM_COUNT,
        (3 * 2 * 9 + 3) + 2 * 3 + 2 * 3 + 4 * 3 * 6 + (4 * 2 + 2)
    );
    // nn.Conv2d(2, 3, 3), nn.Conv2d(3, 4, (2, 3), bias=False): the same as without QAT.
    assert_eq!(QatImages::<f32>::PARAM_COUNT, (3 * 2 * 9 + 3) + 4 * 3 * 6);
    // nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4), nn.GroupNorm(2, 4), nn.Conv1d(4, 2, 1,
    // bias=False).
    assert_eq!(
        Signals::<f32>::PARAM_COUNT,
        (4 * 3 * 3 + 4) + 2 * 4 + 2 * 4 + 2 * 4
    );
    let attention = 3 * 8 * 8 + 3 * 8 + 8 * 8 + 8; // nn.MultiheadAttention(8, heads)
    let recurrent = |gates: usize, d: usize, h: usize| gates * h * (d + h + 2);
    assert_eq!(
        Sequences::<f32>::PARAM_COUNT,
        10 * 8 // nn.Embedding(10, 8)
            + 6 * 8 // learned positions
            + 2 * attention
            + 2 * 8 // nn.LayerNorm(8)
            + recurrent(1, 8, 5) // nn.RNN(8, 5)
            + recurrent(3, 5, 6) // nn.GRU(5, 6)
            + (8 * 3 + 3) // nn.Linear(8, 3)
            + recurrent(4, 3, 4) // nn.LSTM(3, 4)
    );
}

#[test]
fn qat_convolutions_compute_with_the_fake_quantized_weights() {
    // The derivation names fq(W) in the forward and the input gradient, and defines it.
    let text = QatImages::<f32>::EQUATIONS_TEXT;
    assert!(text.contains("fq(W_conv1)"), "{text}");
    assert!(text.contains("straight through"), "{text}");
    // The summary names the layer and its scratch holds fq(W) besides the im2col tile:
    // The larger of conv1's (3 × 18 weights, 18 taps at 9×8 positions) and conv2's (4 × 18
    // weights, 18 taps at 8×3 positions).
    assert!(QatImages::<f32>::SUMMARY_TEXT.contains("QatConv2d(2 → 3, 3×3"));
    let (conv1, conv2) = (3 * 18 + 18 * 72, 4 * 18 + 18 * 8 * 3);
    assert!(conv1 > conv2);
    assert_eq!(QatImages::<f32>::SCRATCH_PER_CALL, conv1);
}
