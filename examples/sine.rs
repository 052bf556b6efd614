//! The universal approximation theorem in practice: a network with a single hidden layer of
//! 32 tanh units fits sin(x) on [−π, π].
//!
//! The theorem (Cybenko 1989, Hornik 1991) says that one hidden layer of enough sigmoid-like
//! units approximates any continuous function on a compact set as closely as wanted. Here 32
//! units (97 parameters), trained with Adam and a cosine-annealed learning rate on the mean
//! squared error over 256 evenly spaced points, bring the largest error over a dense grid to
//! about 0.002.
//!
//! Prints the progress every 500 epochs, then the largest and the root-mean-square error of
//! the network over 2001 evenly spaced points of [−π, π], and writes `output/sine.png`: the
//! target curve, the network's curve and the training points, and below them the error.
//!
//! When run (`f64`, seed 2024, 5000 epochs of mini-batches of 32, 0.6 s of training in
//! release mode) it printed
//!
//! ```text
//! over 2001 evenly spaced points of [−π, π]: max |error| 0.00202, RMS error 0.00074
//! ```
//!
//! (the largest errors are at the two ends of the interval).
//!
//! Run: `cargo run --release --example sine`

#[path = "common/mod.rs"]
mod common;

use nn::loss::Mse;
use nn::optim::{Adam, Cosine, Schedule};
use nn::prelude::*;
use nn::train::{Samples, TrainConfig, Trainer};
use plotters::prelude::*;
use rand_core::SeedableRng;
use std::f64::consts::PI;
use std::path::Path;
use std::time::Instant;

nn::network! {
    /// x → 32 tanh units → y: one hidden layer, as in the theorem.
    pub struct SineNet {
        input: [1],
        hidden: Dense<32>, Tanh,
        out: Dense<1>,
    }
}

const SEED: u64 = 2024;
const SAMPLES: usize = 256;
const BATCH: usize = 32;
const EPOCHS: usize = 5000;
/// Epochs between two progress lines.
const REPORT_EVERY: usize = 500;
/// Points of the evaluation grid over [−π, π].
const GRID: usize = 2001;

type Point = SMatrix<f64, 1, 1>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(SEED);

    // Training points: x evenly spaced over [−π, π], ends included, target sin x (no noise).
    let xs: Vec<f64> = (0..SAMPLES)
        .map(|i| -PI + 2.0 * PI * i as f64 / (SAMPLES - 1) as f64)
        .collect();
    let inputs: Vec<Point> = xs.iter().map(|&x| Point::new(x)).collect();
    let targets: Vec<f64> = xs.iter().map(|x| x.sin()).collect();
    println!("{}\n", SineNet::<f64>::summary());
    println!("{SAMPLES} training points of sin(x), evenly spaced over [−π, π]\n");

    let mut net = SineNet::<f64>::ZERO;
    net.init(&mut rng);
    let mut optimizer = Adam::<f64, SineNetGrads<f64>>::new(0.01);
    // Cosine annealing of the learning rate from 0.01 to 1e-5 over the whole run.
    let schedule = Cosine {
        lr: 0.01,
        t_max: EPOCHS,
        eta_min: 1e-5,
    };

    // Train in rounds of REPORT_EVERY epochs, to measure the error over a dense grid between
    // them, carrying the epoch count into the schedule (the optimizer's moments carry over
    // since it is the same optimizer; each round shuffles with its own seed).
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
            .fit::<_, _, _, BATCH>(
                &mut net,
                &mut optimizer,
                &Mse,
                Samples::new(&inputs, &targets),
                None,
            )?;
        let last = history.epochs.last().expect("at least one epoch");
        let (max_error, rms_error) = grid_errors(&net);
        println!(
            "epoch {:>4}/{EPOCHS}  loss (½·MSE) {:.3e}  lr {:.2e}  grid: max |error| {max_error:.5}  RMS {rms_error:.5}",
            offset + last.epoch + 1,
            last.train_loss,
            last.learning_rate,
        );
    }
    let training_time = started.elapsed();

    let (max_error, rms_error) = grid_errors(&net);
    println!(
        "\nover {GRID} evenly spaced points of [−π, π]: max |error| {max_error:.5}, RMS error {rms_error:.5}"
    );
    println!("training {:.2}s", training_time.as_secs_f64());

    let path = common::output_path("sine.png");
    plot(&path, &net, &xs, &targets, max_error, rms_error)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The network's value at `x`.
fn predict(net: &SineNet<f64>, x: f64) -> f64 {
    net.forward(&Point::new(x))[0]
}

/// x of grid point `i`, from −π to π.
fn grid_x(i: usize) -> f64 {
    -PI + 2.0 * PI * i as f64 / (GRID - 1) as f64
}

/// Largest and root-mean-square |network − sin| over the grid.
fn grid_errors(net: &SineNet<f64>) -> (f64, f64) {
    let (mut max, mut squares) = (0.0f64, 0.0);
    for i in 0..GRID {
        let x = grid_x(i);
        let error = predict(net, x) - x.sin();
        max = max.max(error.abs());
        squares += error * error;
    }
    (max, (squares / GRID as f64).sqrt())
}

/// Top: sin x, the network and the training points; bottom: the error on the grid.
fn plot(
    path: &Path,
    net: &SineNet<f64>,
    xs: &[f64],
    targets: &[f64],
    max_error: f64,
    rms_error: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    common::register_font();
    let root = BitMapBackend::new(path, (900, 780)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "sin(x) fitted by one hidden layer of 32 tanh units",
        ("sans-serif", 24),
    )?;
    let (top, bottom) = root.split_vertically(480);

    let target_curve: Vec<(f64, f64)> = (0..GRID).map(|i| (grid_x(i), grid_x(i).sin())).collect();
    let net_curve: Vec<(f64, f64)> = (0..GRID)
        .map(|i| (grid_x(i), predict(net, grid_x(i))))
        .collect();
    let mut chart = ChartBuilder::on(&top)
        .caption("target and network", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(-PI..PI, -1.15..1.15)?;
    chart
        .configure_mesh()
        .x_desc("x")
        .y_desc("y")
        .axis_desc_style(("sans-serif", 16))
        .y_label_formatter(&|v: &f64| format!("{:.1}", if v.abs() < 1e-9 { 0.0 } else { *v }))
        .draw()?;
    let orange = RGBColor(235, 110, 0);
    let gray = RGBColor(170, 170, 170);
    chart
        .draw_series(LineSeries::new(target_curve, gray.stroke_width(7)))?
        .label("target sin(x)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], gray.stroke_width(7)));
    chart
        .draw_series(
            xs.iter()
                .zip(targets)
                .map(|(&x, &y)| Circle::new((x, y), 2, orange.filled())),
        )?
        .label(format!("training points ({})", xs.len()))
        .legend(move |(x, y)| Circle::new((x + 10, y), 3, orange.filled()));
    let blue = RGBColor(20, 70, 200);
    chart
        .draw_series(LineSeries::new(net_curve, blue.stroke_width(2)))?
        .label("network")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], blue.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 15))
        .draw()?;

    let errors: Vec<(f64, f64)> = (0..GRID)
        .map(|i| (grid_x(i), predict(net, grid_x(i)) - grid_x(i).sin()))
        .collect();
    let bound = max_error * 1.15;
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            format!("error: network − sin(x)   (max |error| {max_error:.5}, RMS {rms_error:.5})"),
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(75)
        .build_cartesian_2d(-PI..PI, -bound..bound)?;
    chart
        .configure_mesh()
        .x_desc("x")
        .y_desc("error")
        .axis_desc_style(("sans-serif", 16))
        .y_label_formatter(&|v: &f64| format!("{:.4}", if v.abs() < 1e-12 { 0.0 } else { *v }))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(-PI, 0.0), (PI, 0.0)],
        BLACK.mix(0.5).stroke_width(1),
    ))?;
    chart.draw_series(LineSeries::new(errors, RED.stroke_width(2)))?;
    root.present()?;
    Ok(())
}
