//! The recurrent layers and attention keep their batch-sized and sequence-sized temporaries
//! in their scratch memory, planned by the macro into the workspace and the tape (issue 11):
//! the stack a training step and an inference use does not grow with the batch, the hidden
//! size or the sequence, in debug and in release.

mod common;

use common::stack::stack_used;
use nn::prelude::*;
use rand_core::SeedableRng;

nn::network! {
    /// Small: attention over 8 tokens of 16 features, then each recurrent layer with 16 units.
    pub struct Small {
        input: [8, 16],
        attention: MultiHeadAttention<2>,
        gru: Gru<16>,
        rnn: Rnn<16>,
        lstm: Lstm<16, last = true>,
        head: Dense<4>,
    }
}

nn::network! {
    /// Large: 32 tokens of 64 features, 256 units. Before the scratch memory its passes
    /// used 148 KiB of stack at B = 1 and 897 KiB at B = 64 in debug (one `3H × B` matrix of
    /// the GRU is 192 KiB), against 24 KiB and 67 KiB for `Small`.
    pub struct Large {
        input: [32, 64],
        attention: MultiHeadAttention<4>,
        gru: Gru<256>,
        rnn: Rnn<256>,
        lstm: Lstm<256, last = true>,
        head: Dense<4>,
    }
}

/// The stack one inference and one training step (forward and backward) use, for a network
/// and batch, everything else on the heap.
fn stack_of_passes<N: Network<f32> + 'static, const B: usize>() -> usize {
    stack_used(|| {
        let mut net = N::new_boxed();
        net.init(&mut rand_pcg::Pcg64Mcg::seed_from_u64(5));
        let mut tape = <N::Tape<B> as Zeroable>::new_boxed();
        let mut workspace = <N::Workspace<B> as Zeroable>::new_boxed();
        let mut grads = <N::Grads as Zeroable>::new_boxed();
        let x = <N::Input<B> as Zeroable>::new_boxed();
        net.forward_in(&x, &mut workspace);
        net.forward_train(&x, &mut tape);
        net.backward(&mut tape, &mut grads);
        std::hint::black_box((&*workspace, &*tape, &*grads));
    })
}

#[test]
fn the_stack_of_recurrent_and_attention_layers_does_not_grow_with_the_batch_or_the_sizes() {
    let small_1 = stack_of_passes::<Small<f32>, 1>();
    let small_64 = stack_of_passes::<Small<f32>, 64>();
    let large_1 = stack_of_passes::<Large<f32>, 1>();
    let large_64 = stack_of_passes::<Large<f32>, 64>();
    println!(
        "stack used: small B=1 {small_1} B, B=64 {small_64} B; large B=1 {large_1} B, \
         B=64 {large_64} B"
    );
    // The large network's batch of 64 has 2 MiB of activations per layer (in the tape); the
    // passes use what the kernels' fixed blocks and the frames of the code need.
    for used in [small_1, small_64, large_1, large_64] {
        assert!(used < 64 << 10, "{used} B of stack");
    }
    assert!(
        small_64 < small_1 + (8 << 10),
        "{small_64} B against {small_1} B"
    );
    // The large LSTM's gate products have 1,024 rows (columns of 4 KiB), whose micro-panels
    // the GEMM copies into its tile (`MAX_STACK_BYTES`), in a frame of its own.
    for used in [large_1, large_64] {
        assert!(
            used < small_1 + nn::kernels::MAX_STACK_BYTES + (8 << 10),
            "{used} B against {small_1} B"
        );
    }
}
