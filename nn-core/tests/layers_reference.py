#!/usr/bin/env python3
"""Reference outputs for the sequence layers of nn-core (rnn, gru, lstm, layer_norm,
attention, embedding, positions), computed with numpy from PyTorch's documented equations,
independently of the Rust code. The numbers printed are pasted into the `REFERENCE_*`
constants of the layers' tests (nn-core/src/layers/*.rs).

Run: python3 nn-core/tests/layers_reference.py   (needs numpy; torch is not used)

Every parameter and input is `det(k, seed) = 0.5·sin(1.7·k + seed)`, with `k` the row-major
index in PyTorch's layout (a batch of inputs is a `(B, ...)` tensor), so the Rust tests build
the same values without reading a file. Outputs are printed flattened per sample, in
PyTorch's row-major order, sample after sample: the order of the Rust batch's `as_slice()`.
"""

import numpy as np


def det(shape, seed):
    n = int(np.prod(shape))
    k = np.arange(n, dtype=np.float64)
    return (0.5 * np.sin(1.7 * k + seed)).reshape(shape)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def emit(name, values):
    flat = np.asarray(values, dtype=np.float64).ravel()
    body = ", ".join(repr(float(v)) for v in flat)
    print(f"const {name}: [f64; {flat.size}] = [{body}];\n")


def rnn(x, h0, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.RNN (tanh), batch_first: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    batch, steps, _ = x.shape
    out = np.zeros((batch, steps, w_hh.shape[0]))
    for b in range(batch):
        h = h0[b]
        for t in range(steps):
            h = np.tanh(w_ih @ x[b, t] + b_ih + w_hh @ h + b_hh)
            out[b, t] = h
    return out


def gru(x, h0, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.GRU, gates (r, z, n):
    r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h."""
    batch, steps, _ = x.shape
    hidden = w_hh.shape[1]
    out = np.zeros((batch, steps, hidden))
    for b in range(batch):
        h = h0[b]
        for t in range(steps):
            gi = w_ih @ x[b, t] + b_ih
            gh = w_hh @ h + b_hh
            r = sigmoid(gi[:hidden] + gh[:hidden])
            z = sigmoid(gi[hidden:2 * hidden] + gh[hidden:2 * hidden])
            n = np.tanh(gi[2 * hidden:] + r * gh[2 * hidden:])
            h = (1 - z) * n + z * h
            out[b, t] = h
    return out


def lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.LSTM, gates (i, f, g, o): c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c')."""
    batch, steps, _ = x.shape
    hidden = w_hh.shape[1]
    out = np.zeros((batch, steps, hidden))
    for b in range(batch):
        h, c = h0[b], c0[b]
        for t in range(steps):
            gates = w_ih @ x[b, t] + b_ih + w_hh @ h + b_hh
            i = sigmoid(gates[:hidden])
            f = sigmoid(gates[hidden:2 * hidden])
            g = np.tanh(gates[2 * hidden:3 * hidden])
            o = sigmoid(gates[3 * hidden:])
            c = f * c + i * g
            h = o * np.tanh(c)
            out[b, t] = h
    return out


def layer_norm(x, weight, bias, eps):
    """torch.nn.LayerNorm(D): biased variance over the last dimension."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def attention(x, in_w, in_b, out_w, out_b, heads, causal):
    """torch.nn.MultiheadAttention(D, heads, batch_first=True)(x, x, x), with
    attn_mask = causal mask (−inf above the diagonal) when causal."""
    batch, steps, dim = x.shape
    hd = dim // heads
    out = np.zeros_like(x)
    for b in range(batch):
        qkv = x[b] @ in_w.T + in_b  # (S, 3D)
        q, k, v = qkv[:, :dim], qkv[:, dim:2 * dim], qkv[:, 2 * dim:]
        ctx = np.zeros((steps, dim))
        for h in range(heads):
            sl = slice(h * hd, (h + 1) * hd)
            scores = (q[:, sl] @ k[:, sl].T) / np.sqrt(hd)
            if causal:
                scores = scores + np.triu(np.full((steps, steps), -np.inf), 1)
            scores = scores - scores.max(axis=1, keepdims=True)
            p = np.exp(scores)
            p = p / p.sum(axis=1, keepdims=True)
            ctx[:, sl] = p @ v[:, sl]
        out[b] = ctx @ out_w.T + out_b
    return out


def sinusoidal(steps, dim):
    """PE[t, 2i] = sin(t / 10000^(2i/D)), PE[t, 2i+1] = cos(t / 10000^(2i/D))."""
    pe = np.zeros((steps, dim))
    for t in range(steps):
        for d in range(dim):
            angle = t / 10000.0 ** ((d - d % 2) / dim)
            pe[t, d] = np.sin(angle) if d % 2 == 0 else np.cos(angle)
    return pe


def main():
    # Rnn<f64, D = 3, H = 4, S = 3, IN = 13, OUT = 12, LAST = false, INIT = true>, batch 2.
    x = det((2, 13), 0.5)
    y = rnn(x[:, :9].reshape(2, 3, 3), x[:, 9:], det((4, 3), 0.1), det((4, 4), 0.2),
            det((4,), 0.3), det((4,), 0.4))
    emit("REFERENCE_RNN", y)

    # Gru<f64, D = 3, H = 4, GH = 12, S = 3, IN = 9, OUT = 12, LAST = false, INIT = false>.
    x = det((2, 9), 0.5)
    y = gru(x.reshape(2, 3, 3), np.zeros((2, 4)), det((12, 3), 0.1), det((12, 4), 0.2),
            det((12,), 0.3), det((12,), 0.4))
    emit("REFERENCE_GRU", y)

    # Lstm<f64, D = 3, H = 4, GH = 16, S = 3, IN = 17, OUT = 12, LAST = false, INIT = true>.
    x = det((2, 17), 0.5)
    y = lstm(x[:, :9].reshape(2, 3, 3), x[:, 9:13], x[:, 13:], det((16, 3), 0.1),
             det((16, 4), 0.2), det((16,), 0.3), det((16,), 0.4))
    emit("REFERENCE_LSTM", y)

    # LayerNorm<f64, D = 5, R = 3, IN = 15, eps = 1e-5>, batch 2.
    x = det((2, 15), 0.8)
    y = layer_norm(x.reshape(2, 3, 5), det((5,), 0.6), det((5,), 0.7), 1e-5)
    emit("REFERENCE_LAYER_NORM", y)

    # MultiHeadAttention<f64, D = 4, HEADS = 2, S = 3, IN = 12, D3 = 12, CAUSAL>, batch 2.
    x = det((2, 12), 1.3).reshape(2, 3, 4)
    params = (det((12, 4), 0.9), det((12,), 1.0), det((4, 4), 1.1), det((4,), 1.2))
    emit("REFERENCE_ATTENTION", attention(x, *params, heads=2, causal=False))
    emit("REFERENCE_ATTENTION_CAUSAL", attention(x, *params, heads=2, causal=True))

    # Embedding<f64, V = 5, D = 3, S = 4, OUT = 12>, ids [[0, 4, 2, 2], [1, 3, 0, 4]].
    weight = det((5, 3), 1.4)
    emit("REFERENCE_EMBEDDING", weight[np.array([[0, 4, 2, 2], [1, 3, 0, 4]])])

    # SinusoidalPositions<f64, S = 4, D = 5, IN = 20>, batch 2.
    x = det((2, 20), 1.5).reshape(2, 4, 5)
    emit("REFERENCE_SINUSOIDAL", x + sinusoidal(4, 5))


if __name__ == "__main__":
    main()
