"""PyTorch and JAX on the workloads of BENCHMARKS.md, with nn's weights and data.

Reads the files `NN_BENCH_EXPORT=DIR cargo bench --bench cpu` writes (one set per workload:
weights in nn's safetensors file, PyTorch's names and layouts; the batch and targets; nn's
losses of three SGD steps, or its outputs), checks that each framework computes the same
losses (or outputs), then times it the way `benches/cpu` times nn: the median of 3
interleaved runs, each the median of 7 blocks of about 20 ms, in process CPU time, one
thread. Prints Markdown rows.

    bash bench-peers/setup.sh                      # the pinned venv, once (bench-peers/.venv)
    NN_BENCH_EXPORT=/tmp/nn-export cargo bench --bench cpu
    taskset -c 0 bench-peers/.venv/bin/python bench-peers/peers.py /tmp/nn-export [W1 C1 ...]
"""

import json
import os
import struct
import sys
import time

# One thread everywhere, before the frameworks start their pools.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

LR = 0.01
DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    """The tensors of a safetensors file as numpy arrays (empty ones left out)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or 0 in info["shape"]:
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=DTYPES[info["dtype"]])
        out[name] = array.reshape(info["shape"]).copy()
    return out


# ---------------------------------------------------------------------------------------
# The networks, by workload: the same layer names as nn's, so the weight files load as they
# are.

ARCH = {
    "W1": "tiny", "W4": "tiny",
    "W2": "relu_mlp", "W3": "relu_mlp", "W5": "relu_mlp", "W6": "relu_mlp",
    "C1": "lenet", "C2": "lenet", "C3": "lenet",
    "C4": "bn_cnn",
    "G1": "gru",
    "A1": "attention",
}


class Mlp(torch.nn.Module):
    def __init__(self, weights, act):
        super().__init__()
        for name in ("l1", "l2", "l3"):
            out, inp = weights[f"{name}.weight"].shape
            setattr(self, name, torch.nn.Linear(inp, out))
        self.act = act

    def forward(self, x):
        return self.l3(self.act(self.l2(self.act(self.l1(x)))))


class LeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.fc1 = torch.nn.Linear(400, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class BnCnn(torch.nn.Module):
    """C4: conv 8@3×3 pad 1, batch norm, ReLU, avg-pool 2, conv 16@3×3 pad 1, batch norm,
    ReLU, avg-pool 2, 10 logits (trained in train mode: batch statistics)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.pool1 = torch.nn.AvgPool2d(2)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = torch.nn.BatchNorm2d(16)
        self.pool2 = torch.nn.AvgPool2d(2)
        self.fc = torch.nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = self.pool1(F.relu(self.bn1(self.conv1(x))))
        x = self.pool2(F.relu(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


class GruNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(16, 64, batch_first=True)
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[0])


class AttentionNet(torch.nn.Module):
    """A1: self-attention over 32 tokens of 64 features, 4 heads, flattened into 10 logits."""

    def __init__(self):
        super().__init__()
        self.attention = torch.nn.MultiheadAttention(64, 4, batch_first=True)
        self.head = torch.nn.Linear(32 * 64, 10)

    def forward(self, x):
        y, _ = self.attention(x, x, x, need_weights=False)
        return self.head(torch.flatten(y, 1))


def torch_model(arch, weights):
    model = {
        "tiny": lambda: Mlp(weights, torch.tanh),
        "relu_mlp": lambda: Mlp(weights, F.relu),
        "lenet": LeNet,
        "bn_cnn": BnCnn,
        "gru": GruNet,
        "attention": AttentionNet,
    }[arch]()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    return model


def torch_loss(kind, y, t):
    if kind == "mse_half":  # nn's Mse: ½ × PyTorch's MSELoss
        return 0.5 * ((y[:, 0] - t) ** 2).mean()
    return F.cross_entropy(y, t)


def torch_train(arch, weights, x, t, kind):
    model = torch_model(arch, weights)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x, t = torch.from_numpy(x), torch.from_numpy(t)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = torch_loss(kind, model(x), t)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def torch_infer(arch, weights, x):
    model = torch_model(arch, weights)
    x = torch.from_numpy(x)

    def forward():
        with torch.inference_mode():
            return model(x).numpy()

    return forward


# JAX: the same networks as pure functions of a dict of parameters (PyTorch's layouts).


def jax_forward(arch):
    def linear(p, name, x):
        return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]

    def mlp(act):
        return lambda p, x: linear(p, "l3", act(linear(p, "l2", act(linear(p, "l1", x)))))

    def conv(p, name, x, pad):
        y = lax.conv_general_dilated(
            x, p[f"{name}.weight"], (1, 1), [(pad, pad), (pad, pad)],
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )
        return y + p[f"{name}.bias"][None, :, None, None]

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def lenet(p, x):
        x = pool(jax.nn.relu(conv(p, "conv1", x, 2)))
        x = pool(jax.nn.relu(conv(p, "conv2", x, 0)))
        x = x.reshape(x.shape[0], -1)
        x = jax.nn.relu(linear(p, "fc1", x))
        return linear(p, "fc3", jax.nn.relu(linear(p, "fc2", x)))

    def batch_norm(p, name, x, eps=1e-5):
        # Training mode: the batch's mean and biased variance per channel (the running
        # statistics do not enter the loss, so they are not kept here).
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        x_hat = (x - mean) / jnp.sqrt(var + eps)
        gamma, beta = p[f"{name}.weight"], p[f"{name}.bias"]
        return x_hat * gamma[None, :, None, None] + beta[None, :, None, None]

    def avg_pool(x):
        return lax.reduce_window(x, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 2, 2), "VALID") / 4

    def bn_cnn(p, x):
        x = avg_pool(jax.nn.relu(batch_norm(p, "bn1", conv(p, "conv1", x, 1))))
        x = avg_pool(jax.nn.relu(batch_norm(p, "bn2", conv(p, "conv2", x, 1))))
        return linear(p, "fc", x.reshape(x.shape[0], -1))

    def gru(p, x):
        # PyTorch's GRU: gates [r; z; n]; the input products of all steps at once.
        w_hh, b_hh = p["gru.weight_hh_l0"], p["gru.bias_hh_l0"]
        gi = jnp.einsum("bsd,gd->sbg", x, p["gru.weight_ih_l0"]) + p["gru.bias_ih_l0"]
        hidden = w_hh.shape[1]

        def cell(h, gi_t):
            gh = h @ w_hh.T + b_hh
            r = jax.nn.sigmoid(gi_t[:, :hidden] + gh[:, :hidden])
            z = jax.nn.sigmoid(gi_t[:, hidden : 2 * hidden] + gh[:, hidden : 2 * hidden])
            n = jnp.tanh(gi_t[:, 2 * hidden :] + r * gh[:, 2 * hidden :])
            return (1 - z) * n + z * h, None

        h, _ = lax.scan(cell, jnp.zeros((x.shape[0], hidden), x.dtype), gi)
        return linear(p, "head", h)

    def attention(p, x, heads=4):
        # PyTorch's MultiheadAttention: [Q; K; V] = x·W_inᵀ + b_in, per head
        # softmax(Q·Kᵀ/√d)·V, the heads concatenated, then the output projection.
        b, s, d = x.shape
        qkv = x @ p["attention.in_proj_weight"].T + p["attention.in_proj_bias"]
        q, k, v = (qkv[..., i * d : (i + 1) * d].reshape(b, s, heads, d // heads) for i in range(3))
        scores = jnp.einsum("bqhe,bkhe->bhqk", q, k) / jnp.sqrt(d // heads).astype(x.dtype)
        o = jnp.einsum("bhqk,bkhe->bqhe", jax.nn.softmax(scores, axis=-1), v).reshape(b, s, d)
        y = o @ p["attention.out_proj.weight"].T + p["attention.out_proj.bias"]
        return linear(p, "head", y.reshape(b, -1))

    return {
        "attention": attention,
        "tiny": mlp(jnp.tanh),
        "relu_mlp": mlp(jax.nn.relu),
        "lenet": lenet,
        "bn_cnn": bn_cnn,
        "gru": gru,
    }[arch]


def jax_loss(kind, y, t):
    if kind == "mse_half":
        return 0.5 * jnp.mean((y[:, 0] - t) ** 2)
    logp = jax.nn.log_softmax(y)
    return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))


def jax_train(arch, weights, x, t, kind):
    forward = jax_forward(arch)

    @jax.jit
    def step(p, x, t):
        loss, g = jax.value_and_grad(lambda p: jax_loss(kind, forward(p, x), t))(p)
        return jax.tree_util.tree_map(lambda w, d: w - LR * d, p, g), loss

    # Batch norm's buffers are state, not parameters: not differentiated.
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    params = {k: v for k, v in weights.items() if not k.endswith(buffers)}
    state = {"p": {k: jnp.asarray(v) for k, v in params.items()}}
    x, t = jnp.asarray(x), jnp.asarray(t.astype(np.int32) if t.dtype == np.int64 else t)

    def run():
        state["p"], loss = step(state["p"], x, t)
        return float(loss.block_until_ready())

    return run


def jax_infer(arch, weights, x):
    forward = jax.jit(jax_forward(arch))
    p = {k: jnp.asarray(v) for k, v in weights.items()}
    x = jnp.asarray(x)
    return lambda: np.asarray(forward(p, x).block_until_ready())


# ---------------------------------------------------------------------------------------
# Timing: as benches/cpu/workloads.rs `measure`.


def measure(contestants, runs=3, blocks=7, block=0.020):
    iters = []
    for _, f in contestants:
        n = 1
        while True:
            t = time.process_time()
            for _ in range(n):
                f()
            e = time.process_time() - t
            if e >= block / 4 or n >= 1 << 30:
                iters.append(max(1, int(block / (e / n))))
                break
            n *= 4
    per_run = [[] for _ in contestants]
    for _ in range(runs):
        for k, (_, f) in enumerate(contestants):
            samples = []
            for _ in range(blocks):
                t = time.process_time()
                for _ in range(iters[k]):
                    f()
                samples.append((time.process_time() - t) * 1e9 / iters[k])
            per_run[k].append(float(np.median(samples)))
    return [float(np.median(v)) for v in per_run]


def pretty(ns):
    if ns < 1e3:
        return f"{ns / 1e3:.3f} µs"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns / 1e6:.3f} ms"


def main():
    directory = sys.argv[1]
    only = sys.argv[2:] or ["W1", "W4", "W2", "W3", "W5", "W6", "C1", "C2", "C3", "C4", "G1", "A1"]
    print(f"torch {torch.__version__}, jax {jax.__version__}, numpy {np.__version__}")
    print("| workload | contestant | time | check |")
    print("|---|---|---:|---|")
    for wid in only:
        meta = json.load(open(os.path.join(directory, f"{wid}.json")))
        weights = read_safetensors(os.path.join(directory, f"{wid}.weights.safetensors"))
        data = read_safetensors(os.path.join(directory, f"{wid}.data.safetensors"))
        arch = ARCH[wid]
        x = data["x"]
        if arch in ("tiny", "relu_mlp"):
            x = x.reshape(x.shape[0], -1)
        contestants, checks = [], []
        if meta["kind"] == "train":
            t, kind = data["targets"], meta["loss"]
            want = np.array(meta["losses"])
            for who, make in (("PyTorch", torch_train), ("JAX", jax_train)):
                fresh = make(arch, weights, x, t, kind)
                got = np.array([fresh() for _ in range(3)])
                err = float(np.max(np.abs(got - want) / np.abs(want)))
                assert err < 1e-4, f"{wid} {who}: losses {got} vs nn {want}"
                checks.append(f"losses of 3 steps within {err:.1e} (rel.) of nn's")
                contestants.append((who, make(arch, weights, x, t, kind)))
        else:
            want = data["y"]
            for who, make in (("PyTorch", torch_infer), ("JAX", jax_infer)):
                f = make(arch, weights, x)
                got = f()
                err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
                assert err < 1e-5, f"{wid} {who}: outputs differ from nn's by {err:e}"
                checks.append(f"outputs within {err:.1e} of nn's")
                contestants.append((who, f))
        times = measure(contestants)
        name = f"{wid} {meta['kind']} (batch {meta['batch']})"
        for (who, _), ns, check in zip(contestants, times, checks):
            print(f"| {name} | {who} | {pretty(ns)} | {check} |", flush=True)


if __name__ == "__main__":
    main()
