//! Shows the work: the chain rule as `network!` derived it, and the graph it derived it on.
//!
//! Prints the summary and the forward and backward equations of the README's residual MLP,
//! then the lecture's single neuron and how its equations compose into the lecture's
//! `∂L/∂w`; writes the graph as `explain-resmlp.dot` (Graphviz), `explain-resmlp.mmd`
//! (Mermaid) and `explain-resmlp.svg` (rendered with the `layout-rs` crate) into `docs/`, or
//! into the directory given as argument.
//!
//! Run: `cargo run --example explain [-- DIR]`, or `cargo run --example explain -- --markdown`
//! to print the equations as Markdown with LaTeX math (`ResMlp::EQUATIONS`) instead.
//!
//! Graphviz draws the same DOT more compactly: `dot -Tsvg docs/explain-resmlp.dot`.

use std::path::PathBuf;

nn::network! {
    /// The README's residual MLP: `h` feeds both `fc2` and the residual sum.
    pub struct ResMlp {
        fc1: Dense<32>,
        fc2: Dense<32>,
        head: Dense<1>,
    }
    forward(x: [16]) -> y {
        let h = relu(fc1(x));
        let r = relu(fc2(h));
        let y = sigmoid(head(h + r));
    }
}

nn::network! {
    /// The lecture's single neuron: `z = w·x + b`, `u = σ(z)`.
    pub struct Neuron {
        unit: Dense<1>,
    }
    forward(x: [1]) -> u {
        let z = unit(x);
        let u = sigmoid(z);
    }
}

/// Renders DOT to SVG with `layout-rs` (pure Rust; no Graphviz needed).
fn render_svg(dot: &str) -> Result<String, String> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};
    let mut parser = DotParser::new(dot);
    let graph = parser.process()?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut svg = SVGWriter::new();
    visual.do_it(false, false, false, &mut svg);
    Ok(svg.finalize())
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--markdown") {
        print!("{}", ResMlp::<f32>::EQUATIONS);
        return Ok(());
    }

    println!("{}\n", ResMlp::<f32>::summary());
    println!("{}\n", ResMlp::<f32>::EQUATIONS_TEXT);

    let dir = first.map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir)?;
    let write = |file: &str, contents: &str| -> std::io::Result<()> {
        let path = dir.join(file);
        std::fs::write(&path, contents)?;
        println!("wrote {}", path.display());
        Ok(())
    };
    write("explain-resmlp.dot", ResMlp::<f32>::DOT)?;
    write("explain-resmlp.mmd", ResMlp::<f32>::MERMAID)?;
    match render_svg(ResMlp::<f32>::DOT) {
        Ok(svg) => write("explain-resmlp.svg", &svg)?,
        Err(error) => eprintln!("could not render the SVG: {error}"),
    }

    println!("\n{}\n", Neuron::<f32>::EQUATIONS_TEXT);
    // How those lines compose with the lecture's loss, which is not part of the network.
    for line in [
        "With the lecture's loss L = ½(u − y)² + λw² (target y, w = W_unit), the caller passes",
        "d_u = ∂L/∂u = u − y to `backward`, and the lines above compose to",
        "  ∂L/∂z      = (u − y) ⊙ σ′(z) = (σ(wx+b) − y)·σ′(wx+b)",
        "  ∂L/∂W_unit = ∂L/∂z·xᵀ        = (σ(wx+b) − y)·σ′(wx+b)·x",
        "The regulariser λw², outside the network too, adds its own 2λw to `grads.unit.weight`:",
        "  ∂L/∂w = (σ(wx+b) − y)·σ′(wx+b)·x + 2λw, the lecture's result.",
    ] {
        println!("{line}");
    }
    Ok(())
}
