//! Helpers shared by the crate's tests: one pseudo-random generator ([`Rng`], SplitMix64,
//! the generator of [`DropoutState`]) and what is built on it, deterministic values shared
//! with the numpy references, and comparisons.

use crate::layers::DropoutState;
use crate::{ConstZero, Layer, Params, Store};
use nalgebra::SMatrix;

/// SplitMix64 from the state `Rng(seed)`, the generator of [`DropoutState`] (whose tests
/// check it against the reference values); a [`rand_core::Rng`] for `init` and `init_state`.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut generator = DropoutState { rng: self.0 };
        let bits = generator.next_u64();
        self.0 = generator.rng;
        bits
    }

    /// A uniform value in `[-1, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

impl rand_core::TryRng for Rng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.next() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// A matrix of deterministic pseudo-random values in `[-scale, scale)`.
pub fn random_matrix<const R: usize, const C: usize>(seed: u64, scale: f64) -> SMatrix<f64, R, C> {
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    SMatrix::from_fn(|_, _| rng.uniform() * scale)
}

/// Largest absolute difference between two slices of equal length.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Fills every parameter with pseudo-random values in `[-scale, scale)`.
pub fn randomize<P: Params<f64>>(params: &mut P, seed: u64, scale: f64) {
    // Another stream than `random_matrix`'s for the same seed.
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66);
    for value in params.as_mut_slice() {
        *value = rng.uniform() * scale;
    }
}

/// `0.5·sin(1.7·k + seed)`: deterministic values shared with `tests/layers_reference.py`
/// (`k` is the row-major index in PyTorch's layout).
pub fn det(k: usize, seed: f64) -> f64 {
    0.5 * (1.7 * k as f64 + seed).sin()
}

/// A matrix of PyTorch shape `[R, C]` (row-major index `k = i·C + j`) filled by [`det`].
pub fn det_matrix<const R: usize, const C: usize>(seed: f64) -> SMatrix<f64, R, C> {
    SMatrix::from_fn(|i, j| det(i * C + j, seed))
}

/// A batch of `B` samples of `N` values, PyTorch's `(B, …)` tensor filled by [`det`].
pub fn det_batch<const N: usize, const B: usize>(seed: f64) -> SMatrix<f64, N, B> {
    SMatrix::from_fn(|i, j| det(j * N + i, seed))
}

/// `L::SCRATCH · B + L::SCRATCH_PER_CALL` scalars of NaN: `layer`'s scratch memory for a batch like `x`, as the
/// checkers give it (a layer that reads scratch it has not written returns NaN).
pub fn scratch_for<L, const IN: usize, const OUT: usize, const B: usize>(
    _layer: &L,
    _x: &SMatrix<f64, IN, B>,
) -> alloc::vec::Vec<f64>
where
    L: Layer<f64, IN, OUT>,
{
    alloc::vec![f64::NAN; L::SCRATCH * B + L::SCRATCH_PER_CALL]
}

/// `layer`'s training forward pass on `x` (from the zero state) and its backward pass from
/// `∂L/∂y = dy`, with NaN scratch memory: the output, the cache, `∂L/∂x` and the parameter
/// gradients.
#[allow(clippy::type_complexity)]
pub fn train_pass<L, const IN: usize, const OUT: usize, const B: usize>(
    layer: &L,
    x: &SMatrix<f64, IN, B>,
    dy: &SMatrix<f64, OUT, B>,
) -> (SMatrix<f64, OUT, B>, L::Cache<B>, SMatrix<f64, IN, B>, L)
where
    L: Layer<f64, IN, OUT>,
{
    let mut scratch = alloc::vec![f64::NAN; L::SCRATCH * B + L::SCRATCH_PER_CALL];
    let (mut state, mut y, mut cache) = (L::State::ZERO, SMatrix::ZERO, L::Cache::<B>::ZERO);
    layer.forward_train(&mut state, x, &mut y, &mut cache, &mut scratch);
    let (mut dx, mut grads) = (SMatrix::ZERO, L::ZERO);
    layer.backward(x, &cache, dy, Some(&mut dx), &mut grads, &mut scratch);
    (y, cache, dx, grads)
}

/// [`gradcheck::check_layer`](crate::gradcheck::check_layer), after checking that
/// `backward` without `dx` adds exactly (bit for bit) the parameter gradients it adds with
/// one: skipping `∂L/∂x` must not change the order of any sum.
pub fn check_layer<L, const IN: usize, const OUT: usize, const B: usize>(
    layer: &mut L,
    state: &L::State,
    x: &SMatrix<f64, IN, B>,
) -> crate::gradcheck::Report
where
    L: Layer<f64, IN, OUT>,
{
    let mut scratch = alloc::vec![f64::NAN; L::SCRATCH * B + L::SCRATCH_PER_CALL];
    let (mut y, mut cache) = (SMatrix::<f64, OUT, B>::ZERO, L::Cache::<B>::ZERO);
    layer.forward_train(&mut state.clone(), x, &mut y, &mut cache, &mut scratch);
    let dy = random_matrix::<OUT, B>(77, 1.0);
    let (mut dx, mut grads, mut params_only) = (SMatrix::ZERO, L::ZERO, L::ZERO);
    layer.backward(x, &cache, &dy, Some(&mut dx), &mut grads, &mut scratch);
    layer.backward(x, &cache, &dy, None, &mut params_only, &mut scratch);
    assert_eq!(params_only.as_slice(), grads.as_slice(), "dx: None");
    // `backward_with`: what is to be overwritten holds NaNs, what is to be added to holds
    // zeros; the same values as `backward` on zeros (`==`: a `−0` may become `+0`).
    for dx_store in [Store::Add, Store::Overwrite] {
        for grads_store in [Store::Add, Store::Overwrite] {
            let start = |store| if store == Store::Add { 0.0 } else { f64::NAN };
            let mut written_dx = SMatrix::repeat(start(dx_store));
            let mut written = L::ZERO;
            written.as_mut_slice().fill(start(grads_store));
            layer.backward_with(
                x,
                &cache,
                &dy,
                Some(&mut written_dx),
                dx_store,
                &mut written,
                grads_store,
                &mut scratch,
            );
            let what = (dx_store, grads_store);
            assert_eq!(
                written.as_slice(),
                grads.as_slice(),
                "backward_with {what:?}"
            );
            assert_eq!(written_dx, dx, "backward_with {what:?}: dx");
        }
    }
    crate::gradcheck::check_layer(layer, state, x)
}

/// Runs `layer` and its `f32` copy (parameters rounded) on `x`, each with NaN scratch memory:
/// forward, training forward and backward (with `∂L/∂y = 1`) agree within `tol` (relative
/// to 1).
pub fn check_f32<L64, L32, const IN: usize, const OUT: usize, const B: usize>(
    layer: &L64,
    x: &SMatrix<f64, IN, B>,
    tol: f64,
) where
    L64: Layer<f64, IN, OUT>,
    L32: Layer<f32, IN, OUT>,
{
    let mut single = L32::ZERO;
    for (s, &d) in single.as_mut_slice().iter_mut().zip(layer.as_slice()) {
        *s = d as f32;
    }
    let x32 = x.cast::<f32>();
    let mut scratch64 = alloc::vec![f64::NAN; L64::SCRATCH * B + L64::SCRATCH_PER_CALL];
    let mut scratch32 = alloc::vec![f32::NAN; L32::SCRATCH * B + L32::SCRATCH_PER_CALL];
    let (mut y64, mut y32) = (SMatrix::<f64, OUT, B>::ZERO, SMatrix::<f32, OUT, B>::ZERO);
    layer.forward(&L64::State::ZERO, x, &mut y64, &mut scratch64);
    single.forward(&L32::State::ZERO, &x32, &mut y32, &mut scratch32);
    assert_close(y32.cast::<f64>().as_slice(), y64.as_slice(), tol);

    let mut cache64 = <L64 as Layer<f64, IN, OUT>>::Cache::<B>::ZERO;
    let mut cache32 = <L32 as Layer<f32, IN, OUT>>::Cache::<B>::ZERO;
    let (mut state64, mut state32) = (L64::State::ZERO, L32::State::ZERO);
    layer.forward_train(&mut state64, x, &mut y64, &mut cache64, &mut scratch64);
    single.forward_train(&mut state32, &x32, &mut y32, &mut cache32, &mut scratch32);
    let (mut dx64, mut dx32) = (SMatrix::<f64, IN, B>::ZERO, SMatrix::<f32, IN, B>::ZERO);
    let (mut grads64, mut grads32) = (L64::ZERO, L32::ZERO);
    let (dy64, dy32) = (SMatrix::repeat(1.0), SMatrix::repeat(1.0));
    layer.backward(
        x,
        &cache64,
        &dy64,
        Some(&mut dx64),
        &mut grads64,
        &mut scratch64,
    );
    single.backward(
        &x32,
        &cache32,
        &dy32,
        Some(&mut dx32),
        &mut grads32,
        &mut scratch32,
    );
    assert_close(dx32.cast::<f64>().as_slice(), dx64.as_slice(), tol);
    for (&g32, &g64) in grads32.as_slice().iter().zip(grads64.as_slice()) {
        assert!((f64::from(g32) - g64).abs() <= tol, "{g32} {g64}");
    }
}

/// Asserts `|a − b| ≤ tol` component-wise, with a message.
pub fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    let diff = max_diff(a, b);
    assert!(
        diff <= tol,
        "max difference {diff:e} > {tol:e}\n{a:?}\n{b:?}"
    );
}

/// Asserts that `passes` gives what it gives on the calling thread on pools of 2 and 3
/// threads, inside a region and not, and, where the CPU has AVX-512 (where the layers' split
/// passes run), that each pool's two runs split at least `min_splits` times.
#[cfg(target_arch = "x86_64")]
pub fn same_on_threads<R: PartialEq + Send>(passes: impl Fn() -> R + Sync, min_splits: usize) {
    use core::sync::atomic::Ordering::Relaxed;
    let whole = passes();
    for threads in [2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let before = crate::parallel::SPLITS.load(Relaxed);
        assert!(pool.install(&passes) == whole, "{threads} threads");
        assert!(
            pool.install(|| crate::parallel::region(&passes)) == whole,
            "{threads} threads, in a region"
        );
        if crate::kernels::has_avx512() {
            assert!(crate::parallel::SPLITS.load(Relaxed) >= before + min_splits);
        }
    }
}
