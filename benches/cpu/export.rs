//! `NN_BENCH_EXPORT=DIR cargo bench --bench cpu`: writes each workload's initial weights, batch,
//! targets and nn's results to `DIR`, so that `bench-peers/peers.py` (PyTorch, JAX) runs the
//! same computation and checks that it gets the same losses or outputs.
//!
//! Per workload `ID`: `ID.weights.safetensors` (nn's weight file: PyTorch's names and
//! layouts), `ID.data.safetensors` (`x` `[B, …input shape]`; `targets`, `f32` `[B]` or `i64`
//! `[B]`; for inference `y` `[B, out]`, nn's outputs) and `ID.json` (kind, loss, learning
//! rate, batch, input shape, nn's losses of three bare steps).

use crate::workloads::*;
use nn::prelude::*;
use safetensors::{Dtype, tensor::TensorView};
use std::path::Path;

/// The tensors of `ID.data.safetensors`.
type Tensors = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A workload's class or value targets as a tensor.
pub trait TargetTensor: Sized {
    fn tensor(targets: &[Self]) -> (Dtype, Vec<u8>);
}
impl TargetTensor for f32 {
    fn tensor(targets: &[f32]) -> (Dtype, Vec<u8>) {
        (Dtype::F32, f32_bytes(targets))
    }
}
impl TargetTensor for usize {
    fn tensor(targets: &[usize]) -> (Dtype, Vec<u8>) {
        let bytes = targets
            .iter()
            .flat_map(|&c| (c as i64).to_le_bytes())
            .collect();
        (Dtype::I64, bytes)
    }
}

fn write(dir: &Path, id: &str, weights: Vec<u8>, tensors: Tensors, meta: serde_json::Value) {
    std::fs::write(dir.join(format!("{id}.weights.safetensors")), weights).unwrap();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let data = safetensors::tensor::serialize(views, None).unwrap();
    std::fs::write(dir.join(format!("{id}.data.safetensors")), data).unwrap();
    std::fs::write(
        dir.join(format!("{id}.json")),
        serde_json::to_string_pretty(&meta).unwrap(),
    )
    .unwrap();
}

/// Exports a training workload: `state` fresh, then three bare steps for nn's losses.
fn train<N, Tg, L, const IN: usize, const OUT: usize, const B: usize>(
    dir: &Path,
    id: &str,
    shape: &[usize],
    mut state: NnTrain<N, Tg, IN, OUT, B>,
    loss: &L,
    loss_name: &str,
) where
    N: Network<f32, Input<B> = SMatrix<f32, IN, B>, Output<B> = SMatrix<f32, OUT, B>>,
    Tg: Clone + TargetTensor + 'static,
    L: Loss<f32, OUT, Tg>,
{
    let weights = nn::io::safetensors::save(&*state.net).unwrap();
    let (dtype, targets) = Tg::tensor(&state.targets);
    let mut x_shape = vec![B];
    x_shape.extend_from_slice(shape);
    let tensors = vec![
        (
            "x".into(),
            Dtype::F32,
            x_shape,
            f32_bytes(state.x.as_slice()),
        ),
        ("targets".into(), dtype, vec![B], targets),
    ];
    let losses: Vec<f32> = (0..3).map(|_| state.raw_step(loss)).collect();
    let meta = serde_json::json!({
        "kind": "train", "loss": loss_name, "lr": LR, "batch": B,
        "input_shape": shape, "losses": losses,
    });
    write(dir, id, weights, tensors, meta);
}

/// Exports an inference workload: the network, the batch and nn's outputs.
fn infer<N, const IN: usize, const OUT: usize, const B: usize>(
    dir: &Path,
    id: &str,
    shape: &[usize],
    net: &N,
    x: &SMatrix<f32, IN, B>,
) where
    N: Network<f32, Input<B> = SMatrix<f32, IN, B>, Output<B> = SMatrix<f32, OUT, B>>,
{
    let y = net.forward::<B>(x);
    let mut x_shape = vec![B];
    x_shape.extend_from_slice(shape);
    let tensors = vec![
        ("x".into(), Dtype::F32, x_shape, f32_bytes(x.as_slice())),
        (
            "y".into(),
            Dtype::F32,
            vec![B, OUT],
            f32_bytes(y.as_slice()),
        ),
    ];
    let meta = serde_json::json!({"kind": "infer", "batch": B, "input_shape": shape});
    write(
        dir,
        id,
        nn::io::safetensors::save(net).unwrap(),
        tensors,
        meta,
    );
}

/// A network loaded from a workload's dense-layer data.
fn loaded<N: Params<f32> + Zeroable>(d: &Data) -> Box<N> {
    let mut net = N::new_boxed();
    load(&mut *net, d);
    net
}

/// Writes every workload that `bench-peers/peers.py` runs.
pub fn export_all(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let d = w1_data();
    let w1 = NnTrain::<Tiny<f32>, f32, 2, 1, 1>::new(&d, values(&d));
    train(dir, "W1", &[2], w1, &MSE, "mse_half");
    let x = SMatrix::<f32, 2, 1>::from_column_slice(&d.x);
    infer(dir, "W4", &[2], &*loaded::<Tiny<f32>>(&d), &x);
    let d = w2_data();
    let w2 = NnTrain::<Small<f32>, usize, 64, 10, 32>::new(&d, classes(&d));
    train(dir, "W2", &[64], w2, &CE, "cross_entropy");
    let d = w3_data(64);
    let w3 = NnTrain::<Mnist<f32>, usize, 784, 10, 64>::new(&d, classes(&d));
    train(dir, "W3", &[784], w3, &CE, "cross_entropy");
    let mnist = loaded::<Mnist<f32>>(&d);
    let mut x = boxed::<SMatrix<f32, 784, 64>>();
    x.as_mut_slice().copy_from_slice(&d.x);
    infer(dir, "W6", &[784], &*mnist, &*x);
    let d1 = w3_data(1);
    let x1 = SMatrix::<f32, 784, 1>::from_column_slice(&d1.x);
    infer(dir, "W5", &[784], &*loaded::<Mnist<f32>>(&d1), &x1);
    train(dir, "C1", &[1, 28, 28], c1_state(), &CE, "cross_entropy");
    let (net, x) = lenet_inference::<1>();
    infer(dir, "C2", &[1, 28, 28], &*net, &*x);
    let (net, x) = lenet_inference::<64>();
    infer(dir, "C3", &[1, 28, 28], &*net, &*x);
    train(dir, "C4", &[1, 28, 28], c4_state(), &CE, "cross_entropy");
    train(dir, "G1", &[32, 16], g1_state(), &CE, "cross_entropy");
    train(dir, "A1", &[32, 64], a1_state(), &CE, "cross_entropy");
}
