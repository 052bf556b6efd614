//! Two interleaved spirals, the classic test of a non-linear classifier: a 2 → 32 → 32 → 2
//! tanh network learns to tell them apart, and the plot shows the decision boundary it drew.
//!
//! The data: for each class `c ∈ {0, 1}`, 200 points at `t ∈ [0.05, 1]`, radius `r = t`,
//! angle `θ = 3π·t + c·π` (one and a half turns, the second spiral the first turned by π),
//! plus Gaussian noise of standard deviation 0.02 on each coordinate. The network sees the
//! coordinates standardized (zero mean, unit variance), and is trained with Adam (learning
//! rate 0.01, cosine-annealed) on the softmax cross-entropy of the two class scores.
//!
//! Prints the progress, the training accuracy, and writes `output/spirals.png`: the plane
//! colored by predicted class (paler where the network is less sure), the boundary (the level
//! p = ½, by marching squares over a 200 × 200 grid), and the training points on top.
//!
//! When run (seed 2024, 1000 epochs of mini-batches of 32, 0.8 s of training in release
//! mode) it reached 100% training accuracy by epoch 200 and printed
//! `training accuracy 100.00% (400/400)`.
//!
//! Run: `cargo run --release --example spirals`

#[path = "common/mod.rs"]
mod common;

use nn::init::unit;
use nn::loss::SoftmaxCrossEntropy;
use nn::optim::{Adam, Cosine, Schedule};
use nn::prelude::*;
use nn::train::{Samples, TrainConfig, Trainer, argmax, argmax_accuracy};
use plotters::prelude::*;
use rand_core::{Rng, SeedableRng};
use std::f64::consts::PI;
use std::path::Path;
use std::time::Instant;

nn::network! {
    /// (x, y) → 32 tanh → 32 tanh → 2 class scores (logits).
    pub struct SpiralNet {
        input: [2],
        hidden1: Dense<32>, Tanh,
        hidden2: Dense<32>, Tanh,
        logits: Dense<2>,
    }
}

const SEED: u64 = 2024;
const PER_CLASS: usize = 200;
const NOISE: f64 = 0.02;
const TURNS: f64 = 1.5;
const BATCH: usize = 32;
const EPOCHS: usize = 1000;
/// Epochs between two progress lines.
const REPORT_EVERY: usize = 100;
/// Cells per side of the decision-region grid.
const GRID: usize = 200;
/// The plotted square, [−EXTENT, EXTENT]².
const EXTENT: f64 = 1.2;

type Point = SMatrix<f32, 2, 1>;

/// A standard normal sample (Box–Muller).
fn normal<R: Rng>(rng: &mut R) -> f64 {
    let radius = (-2.0 * (1.0 - unit(rng)).ln()).sqrt();
    radius * (2.0 * PI * unit(rng)).cos()
}

/// Standardization of the inputs: each coordinate minus its mean, over its standard
/// deviation, as measured on the training points.
#[derive(Clone, Copy, Debug)]
struct Scaler {
    mean: [f64; 2],
    std: [f64; 2],
}

impl Scaler {
    fn fit(points: &[[f64; 2]]) -> Self {
        let n = points.len() as f64;
        let mean = [0, 1].map(|k| points.iter().map(|p| p[k]).sum::<f64>() / n);
        let std = [0, 1].map(|k| {
            let var = points.iter().map(|p| (p[k] - mean[k]).powi(2)).sum::<f64>() / n;
            var.sqrt()
        });
        Scaler { mean, std }
    }

    /// The network's input for the point (x, y).
    fn input(&self, x: f64, y: f64) -> Point {
        Point::new(
            ((x - self.mean[0]) / self.std[0]) as f32,
            ((y - self.mean[1]) / self.std[1]) as f32,
        )
    }
}

/// The two spirals: points and their class (0 or 1).
fn spirals<R: Rng>(rng: &mut R) -> (Vec<[f64; 2]>, Vec<usize>) {
    let (mut points, mut labels) = (Vec::new(), Vec::new());
    for class in 0..2 {
        for i in 0..PER_CLASS {
            let t = 0.05 + 0.95 * i as f64 / (PER_CLASS - 1) as f64;
            let angle = 2.0 * PI * TURNS * t + class as f64 * PI;
            let x = t * angle.cos() + NOISE * normal(rng);
            let y = t * angle.sin() + NOISE * normal(rng);
            points.push([x, y]);
            labels.push(class);
        }
    }
    (points, labels)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(SEED);
    let (points, labels) = spirals(&mut rng);
    // The spirals fill [−1, 1]², with a standard deviation of about 0.4 per coordinate:
    // standardized to unit variance, they train much more easily (a tanh network on the raw
    // coordinates, at this learning rate, got stuck near a straight boundary).
    let scaler = Scaler::fit(&points);
    let inputs: Vec<Point> = points.iter().map(|p| scaler.input(p[0], p[1])).collect();
    println!("{}\n", SpiralNet::<f32>::summary());
    println!(
        "two spirals of {PER_CLASS} points each, {TURNS} turns, noise σ = {NOISE} (seed {SEED})\n"
    );

    let mut net = SpiralNet::<f32>::ZERO;
    net.init(&mut rng);
    let mut optimizer = Adam::<f32, SpiralNetGrads<f32>>::new(0.01);
    let schedule = Cosine {
        lr: 0.01,
        t_max: EPOCHS,
        eta_min: 1e-4,
    };

    // Rounds of REPORT_EVERY epochs, for one progress line each (the trainer's own
    // progress prints a line per epoch); the schedule gets the overall epoch number.
    for round in 0..EPOCHS / REPORT_EVERY {
        let offset = round * REPORT_EVERY;
        let round_schedule = move |epoch: usize| schedule.learning_rate(offset + epoch);
        let config = TrainConfig {
            epochs: REPORT_EVERY,
            seed: SEED + round as u64,
            progress: false,
            ..TrainConfig::default()
        };
        let history = Trainer::new(config)
            .schedule(&round_schedule)
            .accuracy(argmax_accuracy)
            .fit::<_, _, _, BATCH>(
                &mut net,
                &mut optimizer,
                &SoftmaxCrossEntropy,
                Samples::new(&inputs, &labels),
                None,
            )?;
        let last = history.epochs.last().expect("at least one epoch");
        println!(
            "epoch {:>4}/{EPOCHS}  loss {:.4}  accuracy during the epoch {:>6.2}%  lr {:.2e}",
            offset + last.epoch + 1,
            last.train_loss,
            100.0 * last.train_accuracy.unwrap_or(0.0),
            last.learning_rate,
        );
    }
    let training_time = started.elapsed();

    let correct = inputs
        .iter()
        .zip(&labels)
        .filter(|&(x, &label)| argmax(net.forward(x).as_slice()) == Some(label))
        .count();
    let accuracy = correct as f64 / points.len() as f64;
    println!(
        "\ntraining accuracy {:.2}% ({correct}/{}), training {:.2}s",
        100.0 * accuracy,
        points.len(),
        training_time.as_secs_f64()
    );

    let path = common::output_path("spirals.png");
    plot(&path, &net, scaler, &points, &labels, accuracy)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The probability of class 1 at (x, y).
fn probability_of_1(net: &SpiralNet<f32>, scaler: Scaler, x: f64, y: f64) -> f64 {
    let z = net.forward(&scaler.input(x, y));
    // softmax of two logits: σ(z₁ − z₀)
    1.0 / (1.0 + (f64::from(z[0]) - f64::from(z[1])).exp())
}

/// Blends `color` with white: `amount` 0 is white, 1 is `color`.
fn tint(color: RGBColor, amount: f64) -> RGBColor {
    let mix = |c: u8| (255.0 - (255.0 - f64::from(c)) * amount).round() as u8;
    RGBColor(mix(color.0), mix(color.1), mix(color.2))
}

/// The decision regions on a GRID × GRID grid, the boundary, and the points.
fn plot(
    path: &Path,
    net: &SpiralNet<f32>,
    scaler: Scaler,
    points: &[[f64; 2]],
    labels: &[usize],
    accuracy: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    common::register_font();
    let root = BitMapBackend::new(path, (820, 860)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Two spirals: decision regions of a 2 → 32 → 32 → 2 tanh network \
                 (training accuracy {:.1}%)",
                100.0 * accuracy
            ),
            ("sans-serif", 19),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(-EXTENT..EXTENT, -EXTENT..EXTENT)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x₁")
        .y_desc("x₂")
        .axis_desc_style(("sans-serif", 17))
        .draw()?;

    let colors = [RGBColor(215, 48, 39), RGBColor(33, 102, 172)];
    let cell = 2.0 * EXTENT / GRID as f64;
    let centre = |i: usize| -EXTENT + (i as f64 + 0.5) * cell;
    // p[row][column]: probability of class 1 at the centre of each cell.
    let p: Vec<Vec<f64>> = (0..GRID)
        .map(|r| {
            (0..GRID)
                .map(|c| probability_of_1(net, scaler, centre(c), centre(r)))
                .collect()
        })
        .collect();
    chart.draw_series(
        (0..GRID)
            .flat_map(|r| (0..GRID).map(move |c| (r, c)))
            .map(|(r, c)| {
                let p1 = p[r][c];
                let (class, confidence) = if p1 >= 0.5 { (1, p1) } else { (0, 1.0 - p1) };
                // 0.15 (just decided) to 0.45 (sure) of the class color.
                let color = tint(colors[class], 0.15 + 0.3 * (2.0 * confidence - 1.0));
                let (x0, y0) = (-EXTENT + c as f64 * cell, -EXTENT + r as f64 * cell);
                Rectangle::new([(x0, y0), (x0 + cell, y0 + cell)], color.filled())
            }),
    )?;

    // The boundary, the level p = ½ by marching squares over the cell centres: on each
    // square of four neighbouring centres, the points where p − ½ changes sign along the
    // sides (interpolated linearly), joined in pairs.
    let mut edges = Vec::new();
    for r in 0..GRID - 1 {
        for c in 0..GRID - 1 {
            // Corners in order around the square, and the sides between them.
            let corners = [(r, c), (r, c + 1), (r + 1, c + 1), (r + 1, c)];
            let mut crossings = Vec::new();
            for k in 0..4 {
                let (a, b) = (corners[k], corners[(k + 1) % 4]);
                let (pa, pb) = (p[a.0][a.1] - 0.5, p[b.0][b.1] - 0.5);
                if (pa < 0.0) != (pb < 0.0) {
                    let f = pa / (pa - pb);
                    let at = |i: usize, j: usize| centre(i) + f * (centre(j) - centre(i));
                    crossings.push((at(a.1, b.1), at(a.0, b.0)));
                }
            }
            for pair in crossings.chunks_exact(2) {
                edges.push([pair[0], pair[1]]);
            }
        }
    }
    chart
        .draw_series(
            edges
                .into_iter()
                .map(|edge| PathElement::new(edge, BLACK.stroke_width(2))),
        )?
        .label("decision boundary")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));

    for (k, &color) in colors.iter().enumerate() {
        let class_points = points
            .iter()
            .zip(labels)
            .filter(move |&(_, &label)| label == k)
            .map(|(p, _)| (p[0], p[1]));
        chart.draw_series(
            class_points
                .clone()
                .map(|xy| Circle::new(xy, 4, color.filled())),
        )?;
        chart
            .draw_series(class_points.map(|xy| Circle::new(xy, 4, WHITE.stroke_width(1))))?
            .label(format!("class {k} (points, and region predicted {k})"))
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}
