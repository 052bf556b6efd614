//! Helpers shared by the examples: plots (plotters, with an embedded DejaVu font so that no
//! system font is needed) and the output folder.
#![allow(dead_code)]

pub mod digits;

use nn::train::History;
use plotters::prelude::*;
use std::path::PathBuf;
use std::sync::Once;

/// `output/<name>`, creating the folder.
pub fn output_path(name: &str) -> PathBuf {
    let dir = PathBuf::from("output");
    std::fs::create_dir_all(&dir).expect("cannot create the output folder");
    dir.join(name)
}

/// Registers the embedded font as plotters' "sans-serif" (once).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "invalid font")
            .expect("the embedded DejaVu font loads");
    });
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Two panels: the losses and the accuracies per epoch.
pub fn plot_history(path: &PathBuf, title: &str, history: &History) -> PlotResult {
    register_font();
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (left, right) = root.split_horizontally(500);
    let epochs = history.epochs.len().max(2) as f64;

    let series = |f: fn(&nn::train::EpochStats) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .epochs
            .iter()
            .filter_map(|e| f(e).map(|v| (e.epoch as f64 + 1.0, v)))
            .collect()
    };
    let train_loss = series(|e| Some(e.train_loss));
    let valid_loss = series(|e| e.valid_loss);
    let max_loss = train_loss
        .iter()
        .chain(&valid_loss)
        .map(|p| p.1)
        .fold(0.0f64, f64::max);
    let mut chart = ChartBuilder::on(&left)
        .caption("loss", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0..epochs, 0.0..max_loss * 1.05)?;
    chart.configure_mesh().x_desc("epoch").draw()?;
    chart
        .draw_series(LineSeries::new(train_loss, BLUE.stroke_width(2)))?
        .label("training")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    if !valid_loss.is_empty() {
        chart
            .draw_series(LineSeries::new(valid_loss, RED.stroke_width(2)))?
            .label("validation")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let train_acc = series(|e| e.train_accuracy.map(|a| 100.0 * a));
    let valid_acc = series(|e| e.valid_accuracy.map(|a| 100.0 * a));
    if !train_acc.is_empty() {
        let low = train_acc
            .iter()
            .chain(&valid_acc)
            .map(|p| p.1)
            .fold(100.0f64, f64::min);
        let mut chart = ChartBuilder::on(&right)
            .caption("accuracy (%)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(1.0..epochs, (low - 2.0).max(0.0)..100.5)?;
        chart.configure_mesh().x_desc("epoch").draw()?;
        chart
            .draw_series(LineSeries::new(train_acc, BLUE.stroke_width(2)))?
            .label("training")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        if !valid_acc.is_empty() {
            chart
                .draw_series(LineSeries::new(valid_acc, RED.stroke_width(2)))?
                .label("validation")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
