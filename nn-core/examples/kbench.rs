use nn_core::kernels::*;
use nn_core::{SMatrix, Zeroable};
use std::time::Instant;
fn t<F: FnMut()>(name: &str, flops: f64, mut f: F) {
    for _ in 0..10 { f(); }
    let mut best = f64::MAX;
    for _ in 0..20 { let s = Instant::now(); for _ in 0..20 { f(); } best = best.min(s.elapsed().as_secs_f64()/20.0); }
    println!("{name}: {:.1} µs  {:.1} GFLOP/s", best*1e6, flops/best/1e9);
}
fn main() {
    let w = SMatrix::<f32,256,784>::new_boxed();
    let x = SMatrix::<f32,784,64>::new_boxed();
    let mut y = SMatrix::<f32,256,64>::new_boxed();
    let mut dw = SMatrix::<f32,256,784>::new_boxed();
    let mut dx = SMatrix::<f32,784,64>::new_boxed();
    let f = 2.0*256.0*784.0*64.0;
    t("fwd nn 256x784x64", f, || matmul(&mut *y, &*w, &*x, false));
    t("dW nt", f, || matmul_abt(&mut *dw, &*y, &*x, true));
    t("dX tn", f, || matmul_atb(&mut *dx, &*w, &*y, true));
    let w2 = SMatrix::<f32,32,64>::new_boxed(); let x2 = SMatrix::<f32,64,32>::new_boxed(); let mut y2 = SMatrix::<f32,32,32>::new_boxed();
    t("w2 l1 fwd 32x64x32", 2.0*32.0*64.0*32.0, || matmul(&mut *y2, &*w2, &*x2, false));
    let mut dw2 = SMatrix::<f32,32,64>::new_boxed();
    t("w2 l1 dW 32x32x64", 2.0*32.0*64.0*32.0, || matmul_abt(&mut *dw2, &*y2, &*x2, true));
    let mut dx2 = SMatrix::<f32,64,32>::new_boxed();
    t("w2 l1 dX", 2.0*32.0*64.0*32.0, || matmul_atb(&mut *dx2, &*w2, &*y2, true));
    let w3 = SMatrix::<f32,16,32>::new_boxed(); let x3 = SMatrix::<f32,32,32>::new_boxed(); let mut y3 = SMatrix::<f32,16,32>::new_boxed();
    t("w2 l2 fwd 16x32x32", 2.0*16.0*32.0*32.0, || matmul(&mut *y3, &*w3, &*x3, false));
    let mut dw3 = SMatrix::<f32,16,32>::new_boxed();
    t("w2 l2 dW", 2.0*16.0*32.0*32.0, || matmul_abt(&mut *dw3, &*y3, &*x3, true));
    let mut dx3 = SMatrix::<f32,32,32>::new_boxed();
    t("w2 l2 dX", 2.0*16.0*32.0*32.0, || matmul_atb(&mut *dx3, &*w3, &*y3, true));
}
