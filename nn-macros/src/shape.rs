//! The shape of one sample of a node, a layer's input or a parameter: `[C, H, W]`.
//!
//! Every size is a number the macro knows (a literal in the DSL, or computed from literals).
//! Code reads a shape through these methods rather than as a bare vector, so that a size the
//! macro cannot evaluate (a user's `const`) can later become another kind of dimension here.

use crate::diagnostics::shape_text;
use std::fmt;

/// A shape: its sizes, outermost first (PyTorch's order), stored flat in row-major order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// The shape with these sizes.
    pub fn new(dims: Vec<usize>) -> Self {
        Shape(dims)
    }

    /// Its sizes, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Its number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Its number of scalars (the rows a sample takes in the generated matrices).
    pub fn size(&self) -> usize {
        self.0.iter().product()
    }

    /// Its innermost size: the features of a vector, or of each position of a sequence.
    pub fn last(&self) -> usize {
        self.0[self.0.len() - 1]
    }

    /// The same shape with the first size replaced (concatenation along it).
    pub fn with_first(&self, first: usize) -> Self {
        let mut dims = self.0.clone();
        dims[0] = first;
        Shape(dims)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Self {
        Shape(dims)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape(dims.to_vec())
    }
}

/// As the DSL writes it: `[3, 4]`.
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shape_text(&self.0))
    }
}
