//! The summary table, as the generated `summary()` prints it.

use super::graph::Graph;
use crate::model::{Model, Op, memory};
use std::fmt::Write as _;

/// The text `summary()` prints for `f32` (`nn::Summary`'s `Display`), computed here from the
/// model. The parameter count of a layer of your own is `?`: only its type knows it.
pub fn summary_text(model: &Model) -> String {
    let graph = Graph::new(model);
    let rows: Vec<[String; 4]> = model
        .nodes
        .iter()
        .enumerate()
        .map(|(id, node)| {
            let mut op = graph.operation(id);
            let params = match &node.op {
                Op::Layer { shared: true, .. } => {
                    op.push_str(", shared");
                    "0".to_string()
                }
                Op::Layer { layer, .. } => model.layers[*layer]
                    .param_count()
                    .map_or_else(|| "?".to_string(), |count| count.to_string()),
                _ => "0".to_string(),
            };
            [node.name.to_string(), op, node.shape.to_string(), params]
        })
        .collect();
    let titles = ["Node", "Operation", "Output shape", "Params"];
    let widths: Vec<usize> = (0..4)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .fold(titles[column].len(), usize::max)
        })
        .collect();
    let total_width = widths.iter().sum::<usize>() + 6;
    let row_text = |row: [&str; 4]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    let mut out = format!("Network: {}\n", model.name);
    out.push_str(&"=".repeat(total_width));
    out.push('\n');
    out.push_str(&row_text(titles));
    out.push_str(&"-".repeat(total_width));
    out.push('\n');
    for row in &rows {
        out.push_str(&row_text([&row[0], &row[1], &row[2], &row[3]]));
    }
    out.push_str(&"=".repeat(total_width));
    out.push('\n');
    let known: usize = rows
        .iter()
        .filter_map(|row| row[3].parse::<usize>().ok())
        .sum();
    let _ = write!(out, "Trainable params: {known}");
    if rows.iter().any(|row| row[3] == "?") {
        out.push_str(" + ? (layers of your own: see PARAM_COUNT)");
    } else {
        // As `nn::Summary` writes the bytes, for the default scalar, `f32`.
        let bytes = known * 4;
        let n = bytes as f64;
        let _ = if bytes < 1024 {
            write!(out, " ({bytes} B)")
        } else if n < 1024.0 * 1024.0 {
            write!(out, " ({:.1} KiB)", n / 1024.0)
        } else {
            write!(out, " ({:.1} MiB)", n / (1024.0 * 1024.0))
        };
    }
    // As `nn::MemoryPlan` writes it.
    let plan = memory::plan(model).per_sample(model);
    let _ = write!(
        out,
        "\nMemory per sample (scalars): workspace {} (lower bound {}); tape {} saved + {} \
         inputs/outputs + {} in slots (lower bound {})",
        plan.workspace,
        plan.workspace_lower_bound,
        plan.tape_saved,
        plan.tape_ends,
        plan.tape_work,
        plan.tape_work_lower_bound
    );
    let per_call = crate::model::LayerDecl::call_scratch(&model.layers);
    if per_call.known() != Some(0) {
        let _ = write!(
            out,
            "; and {per_call} scalars of scratch, whatever the batch"
        );
    }
    out
}
