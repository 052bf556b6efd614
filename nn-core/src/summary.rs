//! The `summary()` table of a generated network.

use core::fmt;

/// One row of a [`Summary`]: a node of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The node's name (a `let` binding, an input, or a name the macro gave).
    pub node: &'static str,
    /// Its operation, e.g. `fc1: Dense(16 → 32)` or `relu`.
    pub op: &'static str,
    /// Its output shape for one sample, e.g. `[32]`.
    pub shape: &'static str,
    /// Parameters it introduces (0 for activations, inputs and a shared layer's later uses).
    pub params: usize,
}

/// A network's layers, shapes and parameter counts, printed like Keras' `model.summary()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary<const K: usize> {
    /// The network's name.
    pub name: &'static str,
    /// Its nodes in execution order.
    pub rows: [SummaryRow; K],
    /// Bytes of one scalar (4 for `f32`, 8 for `f64`).
    pub scalar_bytes: usize,
    /// The memory plan's sizes.
    pub memory: MemoryPlan,
}

/// The sizes of a network's memory plan, in scalars per sample (multiply by the batch size
/// and the scalar's bytes): what the generated `WORKSPACE_PER_SAMPLE`, `TAPE_*` constants
/// give, with the lower bounds no plan can beat (the most memory the values of one step
/// need).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The inference workspace: the outputs and the slots.
    pub workspace: usize,
    /// Its lower bound.
    pub workspace_lower_bound: usize,
    /// The values the training tape keeps for the backward pass (besides the outputs).
    pub tape_saved: usize,
    /// The tape's outputs, their gradients and the inputs' gradients.
    pub tape_ends: usize,
    /// The tape's slots, shared by the forward pass's other values and the gradients.
    pub tape_work: usize,
    /// The slots' lower bound.
    pub tape_work_lower_bound: usize,
    /// Scalars (not per sample) of the layers' shared working memory that does not grow with
    /// the batch, in the workspace and in the tape: `SCRATCH_PER_CALL`.
    pub scratch_per_call: usize,
}

impl fmt::Display for MemoryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Memory per sample (scalars): workspace {} (lower bound {}); tape {} saved + {} \
             inputs/outputs + {} in slots (lower bound {})",
            self.workspace,
            self.workspace_lower_bound,
            self.tape_saved,
            self.tape_ends,
            self.tape_work,
            self.tape_work_lower_bound
        )?;
        if self.scratch_per_call > 0 {
            write!(
                f,
                "; and {} scalars of scratch, whatever the batch",
                self.scratch_per_call
            )?;
        }
        Ok(())
    }
}

impl<const K: usize> Summary<K> {
    /// Total number of trainable parameters.
    pub fn param_count(&self) -> usize {
        self.rows.iter().map(|row| row.params).sum()
    }
}

impl<const K: usize> fmt::Display for Summary<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |column: fn(&SummaryRow) -> usize, title: &str| {
            self.rows.iter().map(column).fold(title.len(), usize::max)
        };
        let node_w = width(|r| r.node.chars().count(), "Node");
        let op_w = width(|r| r.op.chars().count(), "Operation");
        let shape_w = width(|r| r.shape.chars().count(), "Output shape");
        let params_w = width(|r| digits(r.params), "Params");
        let total_w = node_w + op_w + shape_w + params_w + 6;
        writeln!(f, "Network: {}", self.name)?;
        rule(f, '=', total_w)?;
        writeln!(
            f,
            "{:<node_w$}  {:<op_w$}  {:<shape_w$}  {:>params_w$}",
            "Node", "Operation", "Output shape", "Params"
        )?;
        rule(f, '-', total_w)?;
        for row in &self.rows {
            writeln!(
                f,
                "{:<node_w$}  {:<op_w$}  {:<shape_w$}  {:>params_w$}",
                row.node, row.op, row.shape, row.params
            )?;
        }
        rule(f, '=', total_w)?;
        let bytes = self.param_count() * self.scalar_bytes;
        writeln!(
            f,
            "Trainable params: {} ({})",
            self.param_count(),
            Bytes(bytes)
        )?;
        write!(f, "{}", self.memory)
    }
}

/// A byte count with a binary unit: `132 B`, `18.8 KiB`, `3.1 MiB`.
struct Bytes(usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0 as f64;
        if self.0 < 1024 {
            write!(f, "{} B", self.0)
        } else if n < 1024.0 * 1024.0 {
            write!(f, "{:.1} KiB", n / 1024.0)
        } else {
            write!(f, "{:.1} MiB", n / (1024.0 * 1024.0))
        }
    }
}

fn rule(f: &mut fmt::Formatter<'_>, c: char, width: usize) -> fmt::Result {
    for _ in 0..width {
        write!(f, "{c}")?;
    }
    writeln!(f)
}

fn digits(mut n: usize) -> usize {
    let mut count = 1;
    while n >= 10 {
        n /= 10;
        count += 1;
    }
    count
}
