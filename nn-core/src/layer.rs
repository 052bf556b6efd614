//! The `Layer` trait: what a parameterised layer provides to generated networks.

use crate::init::{self, Init};
use crate::{ConstZero, Params, Real, Zeroable};
use core::fmt::{self, Debug};
use core::marker::PhantomData;
use nalgebra::SMatrix;
use rand_core::Rng;

/// What a tensor of a layer is for: decides regularization and initialisation defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A weight: initialised by the layer's [`Init`] scheme, regularized by L1/L2 by default.
    Weight,
    /// A bias: initialised to zero, not regularized by default.
    Bias,
    /// Non-trainable state saved with the weights (batch norm's running statistics): not in
    /// the parameter slice, never regularized or initialised by a scheme.
    State,
    /// A non-trainable integer count saved with the weights (batch norm's
    /// `num_batches_tracked`, an `int64` scalar in PyTorch): not in the parameter slice.
    Count,
}

/// One value of a layer's state tensor (see [`Layer::STATE_TENSORS`]): a real number (a
/// running statistic) or an integer count (PyTorch's `int64` `num_batches_tracked`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StateValue<T> {
    /// A value of a tensor of role [`Role::State`].
    Real(T),
    /// The value of a tensor of role [`Role::Count`].
    Count(u64),
}

/// Where a layer's saved state tensors ([`Layer::STATE_TENSORS`]) are in its
/// [`State`](Layer::State) `S`: the byte offset in `S` of each, in order, for
/// [`Layer::STATE_OFFSETS`]. A network built at compile time
/// ([`flat_const`](crate::io::flat_const), a `const fn`, which cannot call
/// [`Layer::set_state_value`]) writes a file's state values there.
///
/// At `offsets[i]` starts tensor `i`: for one of role [`Role::State`], its `len()` values of
/// `T` laid out as a parameter tensor of that shape is (the column-major `d0 × (d1·…)`
/// matrix of [`storage_index`](crate::io::storage_index); a vector `[C]` is `C` contiguous
/// values, as an `SMatrix<T, C, 1>` field holds them); for one of role [`Role::Count`], a
/// `u64`. Writing a value there must do what [`Layer::set_state_value`] does with it, so that
/// the network built at compile time equals the one loaded at run time. `offset_of!` gives
/// the offsets:
///
/// ```ignore
/// // SAFETY: `BatchNormState` holds floats and a `u64` only: every bit pattern is valid.
/// const STATE_OFFSETS: StateOffsets<Self::State> = unsafe {
///     StateOffsets::new(&[
///         offset_of!(BatchNormState<T, C>, running_mean),
///         offset_of!(BatchNormState<T, C>, running_var),
///         offset_of!(BatchNormState<T, C>, num_batches_tracked),
///     ])
/// };
/// ```
pub struct StateOffsets<S> {
    offsets: &'static [usize],
    state: PhantomData<fn() -> S>,
}

impl<S> StateOffsets<S> {
    /// No offsets: the layer's state cannot be built at compile time (a network with state
    /// tensors placed nowhere is refused by [`flat_const::load`](crate::io::flat_const::load)).
    pub const NONE: Self = StateOffsets {
        offsets: &[],
        state: PhantomData,
    };

    /// The offsets `offsets` (see the [type](StateOffsets)'s docs) in `S`.
    ///
    /// The compile-time loader checks that each tensor ends within `S`, and writes it there
    /// byte by byte: whatever the offsets, it only writes inside `S`.
    ///
    /// # Safety
    ///
    /// Every bit pattern of `size_of::<S>()` bytes is a valid `S`: `S` is made of floats,
    /// integers, arrays and `repr(C)` structs of them and padding (no `bool`, `char`, enum,
    /// reference or pointer), since the loader may write any byte anywhere inside `S`.
    pub const unsafe fn new(offsets: &'static [usize]) -> Self {
        StateOffsets {
            offsets,
            state: PhantomData,
        }
    }

    /// The byte offset of each state tensor in `S`.
    pub const fn offsets(&self) -> &'static [usize] {
        self.offsets
    }

    /// Bytes of `S`: each tensor must end within them.
    pub const fn size(&self) -> usize {
        size_of::<S>()
    }
}

impl<S> Clone for StateOffsets<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for StateOffsets<S> {}

impl<S> Debug for StateOffsets<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateOffsets")
            .field("offsets", &self.offsets)
            .field("size", &self.size())
            .finish()
    }
}

/// Whether a backward pass adds a gradient to what its destination holds (the contract of
/// [`Layer::backward`]) or writes it over whatever is there ([`Layer::backward_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `destination += gradient`.
    Add,
    /// `destination = gradient` (as if the destination had been zeroed, then added to).
    Overwrite,
}

/// One named tensor of a layer's parameters, in [`Params::as_slice`] order.
///
/// `shape` is PyTorch's (`[out, in]` for a dense weight). Its `shape.iter().product()`
/// scalars follow one another in the slice; a matrix `[out, in]` is stored column-major as
/// nalgebra stores it, so the slice holds the transpose of PyTorch's row-major bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The name within the layer, as in a PyTorch `state_dict`: `weight`, `bias`.
    pub name: &'static str,
    /// PyTorch's shape: `[out, in]`, `[out]`.
    pub shape: &'static [usize],
    /// Weight or bias.
    pub role: Role,
}

impl TensorInfo {
    /// Number of scalars.
    pub const fn len(&self) -> usize {
        let mut len = 1;
        let mut i = 0;
        while i < self.shape.len() {
            len *= self.shape[i];
            i += 1;
        }
        len
    }

    /// True for a tensor with a zero dimension.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A layer with parameters, mapping `IN` features to `OUT` features, for a batch of `B`
/// samples stored one per column.
///
/// The built-in [`Dense`](crate::layers::Dense) implements it, and so can a layer of your
/// own: declare it in `network!` as `name: MyLayer<T, ..> -> [OUT]` and the generated code
/// calls these methods. The layer's gradient has the layer's own type (`Self`), so the
/// generated gradient struct holds one `Self` per layer.
///
/// Besides its trainable parameters (`Self`, which must be [`Params`]), a layer may have
/// - a [`State`](Layer::State) that training updates and inference reads, outside the
///   parameters (batch normalization's running statistics, dropout's generator), kept by the
///   network in its `state` field; `()` for most layers;
/// - a [`Cache`](Layer::Cache): what `forward_train` records for `backward` besides the input
///   and output (max-pooling's arg-max, dropout's mask), kept in the tape; `()` for most.
///
/// Contract, which the generated backward pass relies on:
/// - `forward` and `forward_train` overwrite `y` (they never read it);
/// - `backward` *adds* the parameter gradients to `grads` and, when `dx` is given, `∂L/∂x`
///   to it, given the `x` and cache of the matching `forward_train` and the upstream
///   gradient `dy = ∂L/∂y`. Adding (not overwriting) is what makes fan-out and shared layers
///   correct. `dx` is `None` where no gradient of the input is wanted (a layer fed by the
///   network's input during training): skip that product.
/// - `backward` does not get the output `y`: the tape keeps a layer's input, not its output
///   (the activation after it usually differentiates from its own output). A layer that
///   needs `y` keeps it in its cache, as PyTorch's `ctx.save_for_backward`.
/// - `scratch` is working memory of [`SCRATCH`](Layer::SCRATCH)` · B +`
///   [`SCRATCH_PER_CALL`](Layer::SCRATCH_PER_CALL) scalars, shared with other layers: its
///   contents on entry are unspecified.
///
/// Check an implementation with
/// [`gradcheck::check_layer`](crate::gradcheck::check_layer).
pub trait Layer<T: Real, const IN: usize, const OUT: usize>: Params<T> {
    /// The layer's tensors in [`Params::as_slice`] order; their lengths add up to
    /// [`Params::LEN`]. The default is one weight tensor `params` holding everything, and no
    /// tensor at all for a layer without parameters (as PyTorch lists none for `nn.MaxPool2d`
    /// or `nn.Dropout`).
    const TENSORS: &'static [TensorInfo] = if Self::LEN == 0 {
        &[]
    } else {
        &[TensorInfo {
            name: "params",
            shape: &[Self::LEN],
            role: Role::Weight,
        }]
    };

    /// The tensors of the layer's [`State`](Layer::State) that are saved with the weights, as
    /// PyTorch's buffers (batch norm's `running_mean`, `running_var`, `num_batches_tracked`),
    /// each of role [`Role::State`] or [`Role::Count`]. Read and written one value at a time
    /// by [`Layer::state_value`] and [`Layer::set_state_value`]. The default is none: state
    /// that PyTorch does not save (dropout's generator) is not saved.
    const STATE_TENSORS: &'static [TensorInfo] = &[];

    /// Where each of [`Layer::STATE_TENSORS`] is in [`State`](Layer::State), for networks
    /// built at compile time (`nn::include_flat!`, [`flat_const`](crate::io::flat_const)),
    /// which write the state bytes in place as they cannot call
    /// [`set_state_value`](Layer::set_state_value). The default places none: a layer that
    /// saves state tensors and keeps the default can be loaded at run time, but a network
    /// with it cannot be built by `include_flat!` (a compile error says so).
    const STATE_OFFSETS: StateOffsets<Self::State> = StateOffsets::NONE;

    /// Whether `forward_train` mixes the samples of a batch (batch statistics): then a batch
    /// padded with zero columns trains differently from the same samples alone, and the
    /// trainer and [`train_step`](crate::train::train_step) refuse partial batches.
    const BATCH_STATISTICS: bool = false;

    /// Scalars of working memory per sample that the passes need (`scratch` holds
    /// `SCRATCH · B` of them). The `network!` macro plans it with the other intermediate
    /// values; a layer of your own gets none (0, the default, is checked).
    const SCRATCH: usize = 0;

    /// Scalars of working memory a pass needs whatever the batch size (one sample's
    /// temporaries reused sample after sample, as a convolution's im2col tile): `scratch`
    /// holds `SCRATCH · B + SCRATCH_PER_CALL` of them. Planned by the `network!` macro as one
    /// buffer of the workspace and of the tape, shared by the layers (one runs at a time); a
    /// layer of your own gets none (0, the default, is checked).
    const SCRATCH_PER_CALL: usize = 0;

    /// What `forward_train` keeps for `backward` besides the input `x`, for `B` samples.
    type Cache<const B: usize>: ConstZero + Zeroable + Clone + Debug + PartialEq;

    /// Non-trainable state updated by training and read by inference.
    type State: ConstZero + Zeroable + Clone + Debug + PartialEq;

    /// Inference: writes `y = f(x)`.
    fn forward<const B: usize>(
        &self,
        state: &Self::State,
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        scratch: &mut [T],
    );

    /// Training forward pass: writes `y`, records `cache`, and may update `state` (and use
    /// batch statistics or randomness where inference does not). The default is `forward`.
    fn forward_train<const B: usize>(
        &self,
        state: &mut Self::State,
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        cache: &mut Self::Cache<B>,
        scratch: &mut [T],
    ) {
        let _ = cache;
        self.forward(state, x, y, scratch);
    }

    /// Adds `∂L/∂θ` to `grads` and, if `dx` is given, `∂L/∂x` to `dx`.
    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        cache: &Self::Cache<B>,
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        scratch: &mut [T],
    );

    /// [`backward`](Layer::backward), told for each gradient whether to add to it or to
    /// write over it ([`Store`]): `∂L/∂x` to `dx` by `dx_store`, `∂L/∂θ` to `grads` by
    /// `grads_store`. The generated backward pass calls it where a gradient gets its first
    /// contribution (the layer is the first to reach its input's gradient; the training
    /// step's `backward_params_overwrite` reaches the layer's parameters), instead of zeroing
    /// that gradient first.
    ///
    /// The default zeroes what is to be overwritten and calls `backward`. A layer overrides it
    /// where writing is cheaper than zeroing and adding: a dense layer's products then start
    /// from their first term instead of from zero, which can turn a `−0` into `+0` and
    /// changes nothing else.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn backward_with<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        cache: &Self::Cache<B>,
        dy: &SMatrix<T, OUT, B>,
        mut dx: Option<&mut SMatrix<T, IN, B>>,
        dx_store: Store,
        grads: &mut Self,
        grads_store: Store,
        scratch: &mut [T],
    ) {
        // Zeroed on a pool's threads when large (`crate::parallel`).
        let zero = |values: &mut [T]| {
            crate::parallel::elementwise([values], [], |[values], []| values.fill(T::ZERO));
        };
        if dx_store == Store::Overwrite
            && let Some(dx) = dx.as_deref_mut()
        {
            zero(dx.as_mut_slice());
        }
        if grads_store == Store::Overwrite {
            zero(grads.as_mut_slice());
        }
        self.backward(x, cache, dy, dx, grads, scratch);
    }

    /// Value `element` (in PyTorch's row-major order) of state tensor `tensor` (an index into
    /// [`Layer::STATE_TENSORS`]), as it is saved. Called only with valid indices.
    fn state_value(state: &Self::State, tensor: usize, element: usize) -> StateValue<T> {
        let _ = (state, tensor, element);
        StateValue::Real(T::ZERO)
    }

    /// Sets value `element` of state tensor `tensor` to `value`, of the kind its role says
    /// (loaders call it only after checking the whole file).
    fn set_state_value(
        state: &mut Self::State,
        tensor: usize,
        element: usize,
        value: StateValue<T>,
    ) {
        let _ = (state, tensor, element, value);
    }

    /// Puts `state` in its initial condition (e.g. running variance 1, a seeded generator).
    /// Called by the generated `init`; `Net::ZERO` has all-zero state until then. The default
    /// does nothing.
    fn init_state<R: Rng + ?Sized>(state: &mut Self::State, rng: &mut R) {
        let _ = (state, rng);
    }

    /// Initialises the parameters in place: each [`Role::Weight`] tensor by `scheme` (fans
    /// from its PyTorch shape), each [`Role::Bias`] tensor to zero.
    fn init<R: Rng + ?Sized>(&mut self, scheme: Init, rng: &mut R) {
        let mut offset = 0;
        let params = self.as_mut_slice();
        for tensor in Self::TENSORS {
            let values = &mut params[offset..offset + tensor.len()];
            match tensor.role {
                Role::Weight => init::fill(values, scheme, tensor.shape, rng),
                Role::Bias | Role::State | Role::Count => values.fill(T::ZERO),
            }
            offset += tensor.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Dropout, MaxPool2d, PoolGeometry2dOf};

    /// A layer of its own with parameters, keeping every default.
    #[derive(Clone, Debug, PartialEq)]
    #[repr(C)]
    struct Shift {
        b: SMatrix<f64, 3, 1>,
    }

    impl ConstZero for Shift {
        const ZERO: Self = Shift { b: SMatrix::ZERO };
    }

    // SAFETY: repr(C), one static matrix of f64.
    unsafe impl Zeroable for Shift {}

    // SAFETY: repr(C), one static matrix of f64: 3 contiguous values.
    unsafe impl Params<f64> for Shift {
        const LEN: usize = 3;
    }

    impl Layer<f64, 3, 3> for Shift {
        type Cache<const B: usize> = ();
        type State = ();

        fn forward<const B: usize>(
            &self,
            _: &(),
            x: &SMatrix<f64, 3, B>,
            y: &mut SMatrix<f64, 3, B>,
            _: &mut [f64],
        ) {
            for (j, mut column) in y.column_iter_mut().enumerate() {
                column.copy_from(&(x.column(j) + self.b));
            }
        }

        fn backward<const B: usize>(
            &self,
            _: &SMatrix<f64, 3, B>,
            _: &(),
            dy: &SMatrix<f64, 3, B>,
            dx: Option<&mut SMatrix<f64, 3, B>>,
            grads: &mut Self,
            _: &mut [f64],
        ) {
            if let Some(dx) = dx {
                *dx += dy;
            }
            grads.b += dy.column_sum();
        }
    }

    #[test]
    fn a_layer_without_parameters_has_no_tensor_and_one_with_has_one_by_default() {
        type Pool = MaxPool2d<f32, 16, 4, PoolGeometry2dOf<1, 4, 4, 2, 2, 2, 2>>;
        assert!(<Pool as Layer<f32, 16, 4>>::TENSORS.is_empty());
        assert!(<Dropout<f32, 8, 0> as Layer<f32, 8, 8>>::TENSORS.is_empty());
        let tensors = <Shift as Layer<f64, 3, 3>>::TENSORS;
        assert_eq!(tensors.len(), 1);
        assert_eq!((tensors[0].name, tensors[0].shape), ("params", &[3][..]));
        // No state is saved, and training does not mix the samples, by default.
        assert!(<Shift as Layer<f64, 3, 3>>::STATE_TENSORS.is_empty());
        const { assert!(!<Shift as Layer<f64, 3, 3>>::BATCH_STATISTICS) };
    }
}
