//! Tests of the activations (being written).
