//! The CPU workloads W1–W6 of BENCHMARKS.md, timed in one run for nn, the same networks
//! written by hand over nalgebra (with nalgebra's products and with matrixmultiply's), dfdx
//! 0.13 and candle 0.11, after checking that every contestant computes the same losses (or
//! outputs) on the same data from the same weights.
//!
//! Run on one core: `cd bench-peers && RAYON_NUM_THREADS=1 taskset -c 0 cargo run --release`.
//! PyTorch and JAX are timed by `peers.py` beside this package (BENCHMARKS.md has the
//! commands), on the weights and data the `cpu` bench exports.
//! Not a workspace member: CI and `cargo test --workspace` never build it.

#[path = "../../benches/cpu/workloads.rs"]
mod workloads;

use std::time::Duration;
use workloads::*;

/// dfdx 0.13 (CPU device, its `gemm`-based matmul).
mod dfdx_peer {
    use super::workloads::{Data, LR, LayerData, Run, Targets, checksum};
    use dfdx::nn::modules;
    use dfdx::optim::{Optimizer, Sgd};
    use dfdx::prelude::*;

    fn set<const I: usize, const O: usize>(l: &mut modules::Linear<I, O, f32, Cpu>, d: &LayerData) {
        l.weight.copy_from(&d.w);
        l.bias.copy_from(&d.b);
    }

    fn sgd() -> SgdConfig {
        SgdConfig {
            lr: LR as f64,
            momentum: None,
            weight_decay: None,
        }
    }

    fn one_hot<const B: usize>(dev: &Cpu, d: &Data) -> Tensor<Rank2<B, 10>, f32, Cpu> {
        let Targets::Classes(c) = &d.targets else {
            panic!("classes")
        };
        let mut v = vec![0.0f32; B * 10];
        for (j, &k) in c.iter().enumerate() {
            v[j * 10 + k] = 1.0;
        }
        let mut t = dev.zeros();
        t.copy_from(&v);
        t
    }

    type Tiny = (Linear<2, 16>, Tanh, Linear<16, 16>, Tanh, Linear<16, 1>);
    type Small = (Linear<64, 32>, ReLU, Linear<32, 16>, ReLU, Linear<16, 10>);
    type Mnist = (
        Linear<784, 256>,
        ReLU,
        Linear<256, 128>,
        ReLU,
        Linear<128, 10>,
    );

    pub fn w1(d: &Data) -> Box<dyn Run> {
        let dev: Cpu = Default::default();
        let mut model = dev.build_module::<Tiny, f32>();
        set(&mut model.0, &d.layers[0]);
        set(&mut model.2, &d.layers[1]);
        set(&mut model.4, &d.layers[2]);
        let mut grads = Some(model.alloc_grads());
        let mut opt = Sgd::new(&model, sgd());
        let x: Tensor<Rank1<2>, f32, Cpu> = dev.tensor([d.x[0], d.x[1]]);
        let Targets::Values(v) = &d.targets else {
            panic!("values")
        };
        let t: Tensor<Rank1<1>, f32, Cpu> = dev.tensor([v[0]]);
        Box::new(move || {
            let y = model.forward_mut(x.trace(grads.take().unwrap()));
            let loss = mse_loss(y, t.clone()) * 0.5;
            let value = loss.array();
            let mut g = loss.backward();
            opt.update(&mut model, &g).unwrap();
            model.zero_grads(&mut g);
            grads = Some(g);
            value
        })
    }

    pub fn w4(d: &Data) -> Box<dyn Run> {
        let dev: Cpu = Default::default();
        let mut model = dev.build_module::<Tiny, f32>();
        set(&mut model.0, &d.layers[0]);
        set(&mut model.2, &d.layers[1]);
        set(&mut model.4, &d.layers[2]);
        let x: Tensor<Rank1<2>, f32, Cpu> = dev.tensor([d.x[0], d.x[1]]);
        Box::new(move || checksum(&model.forward(x.clone()).as_vec()))
    }

    macro_rules! train {
        ($name:ident, $model:ty, $in:literal, $b:literal) => {
            pub fn $name(d: &Data) -> Box<dyn Run> {
                let dev: Cpu = Default::default();
                let mut model = dev.build_module::<$model, f32>();
                set(&mut model.0, &d.layers[0]);
                set(&mut model.2, &d.layers[1]);
                set(&mut model.4, &d.layers[2]);
                let mut grads = Some(model.alloc_grads());
                let mut opt = Sgd::new(&model, sgd());
                let mut x: Tensor<Rank2<$b, $in>, f32, Cpu> = dev.zeros();
                x.copy_from(&d.x);
                let t = one_hot::<$b>(&dev, d);
                Box::new(move || {
                    let y = model.forward_mut(x.trace(grads.take().unwrap()));
                    let loss = cross_entropy_with_logits_loss(y, t.clone());
                    let value = loss.array();
                    let mut g = loss.backward();
                    opt.update(&mut model, &g).unwrap();
                    model.zero_grads(&mut g);
                    grads = Some(g);
                    value
                })
            }
        };
    }

    macro_rules! infer {
        ($name:ident, $b:literal) => {
            pub fn $name(d: &Data) -> Box<dyn Run> {
                let dev: Cpu = Default::default();
                let mut model = dev.build_module::<Mnist, f32>();
                set(&mut model.0, &d.layers[0]);
                set(&mut model.2, &d.layers[1]);
                set(&mut model.4, &d.layers[2]);
                let mut x: Tensor<Rank2<$b, 784>, f32, Cpu> = dev.zeros();
                x.copy_from(&d.x);
                Box::new(move || checksum(&model.forward(x.clone()).as_vec()))
            }
        };
    }

    train!(w2, Small, 64, 32);
    train!(w3, Mnist, 784, 64);
    infer!(w5, 1);
    infer!(w6, 64);
}

/// candle 0.11 (`candle-core` CPU backend, `candle-nn`'s loss and SGD).
mod candle_peer {
    use super::workloads::{Data, LR, Run, Targets, checksum};
    use candle_core::{Device, Tensor, Var};
    use candle_nn::Optimizer;

    struct Mlp {
        layers: Vec<(Var, Var)>,
        tanh: bool,
    }

    impl Mlp {
        fn new(d: &Data, tanh: bool) -> Self {
            let dev = Device::Cpu;
            let layers = d
                .layers
                .iter()
                .map(|l| {
                    (
                        Var::from_slice(&l.w, (l.outputs, l.inputs), &dev).unwrap(),
                        Var::from_slice(&l.b, l.outputs, &dev).unwrap(),
                    )
                })
                .collect();
            Mlp { layers, tanh }
        }

        fn forward(&self, x: &Tensor) -> Tensor {
            let mut h = x.clone();
            for (k, (w, b)) in self.layers.iter().enumerate() {
                h = h.matmul(&w.t().unwrap()).unwrap().broadcast_add(b).unwrap();
                if k + 1 < self.layers.len() {
                    h = if self.tanh { h.tanh() } else { h.relu() }.unwrap();
                }
            }
            h
        }

        fn vars(&self) -> Vec<Var> {
            self.layers
                .iter()
                .flat_map(|(w, b)| [w.clone(), b.clone()])
                .collect()
        }
    }

    fn input(d: &Data) -> Tensor {
        let inputs = d.layers[0].inputs;
        Tensor::from_slice(&d.x, (d.batch, inputs), &Device::Cpu).unwrap()
    }

    pub fn train(d: &Data, tanh: bool) -> Box<dyn Run> {
        let mlp = Mlp::new(d, tanh);
        let mut opt = candle_nn::SGD::new(mlp.vars(), LR as f64).unwrap();
        let x = input(d);
        let target = match &d.targets {
            Targets::Values(v) => Tensor::from_slice(v, (d.batch, 1), &Device::Cpu).unwrap(),
            Targets::Classes(c) => {
                let c: Vec<u32> = c.iter().map(|&k| k as u32).collect();
                Tensor::from_slice(&c, d.batch, &Device::Cpu).unwrap()
            }
        };
        let mse = matches!(d.targets, Targets::Values(_));
        Box::new(move || {
            let y = mlp.forward(&x);
            let loss = if mse {
                ((y - &target).unwrap().sqr().unwrap().mean_all().unwrap() * 0.5).unwrap()
            } else {
                candle_nn::loss::cross_entropy(&y, &target).unwrap()
            };
            let value = loss.to_scalar::<f32>().unwrap();
            opt.backward_step(&loss).unwrap();
            value
        })
    }

    pub fn infer(d: &Data, tanh: bool) -> Box<dyn Run> {
        let mlp = Mlp::new(d, tanh);
        let x = input(d);
        Box::new(move || {
            let y = mlp
                .forward(&x)
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            checksum(&y)
        })
    }
}

fn main() {
    let settings = Settings {
        runs: 3,
        blocks: 7,
        block: Duration::from_millis(20),
    };
    println!("| workload | contestant | time | speed vs nalgebra by hand | |");
    println!("|---|---|---|---|---|");
    for workload in SUITE {
        let mut w = workload();
        let peers: Vec<(&str, Box<dyn Run>)> = match &w.name[..2] {
            "W1" => vec![
                ("dfdx", dfdx_peer::w1(&w1_data())),
                ("candle", candle_peer::train(&w1_data(), true)),
            ],
            "W4" => vec![
                ("dfdx", dfdx_peer::w4(&w1_data())),
                ("candle", candle_peer::infer(&w1_data(), true)),
            ],
            "W2" => vec![
                ("dfdx", dfdx_peer::w2(&w2_data())),
                ("candle", candle_peer::train(&w2_data(), false)),
            ],
            "W3" => vec![
                ("dfdx", dfdx_peer::w3(&w3_data(64))),
                ("candle", candle_peer::train(&w3_data(64), false)),
            ],
            "W5" => vec![
                ("dfdx", dfdx_peer::w5(&w3_data(1))),
                ("candle", candle_peer::infer(&w3_data(1), false)),
            ],
            "W6" => vec![
                ("dfdx", dfdx_peer::w6(&w3_data(64))),
                ("candle", candle_peer::infer(&w3_data(64), false)),
            ],
            _ => continue, // P3 (threads) is the in-repo bench's
        };
        for (name, run) in peers {
            w.contestants.push((name.to_string(), run));
        }
        run(w, &settings);
    }
}
