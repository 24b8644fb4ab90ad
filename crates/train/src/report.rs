//! What a run reports: per-epoch metrics, the JSON report and the loss / accuracy curves.

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// A curve: its label, colour and points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Training accuracy (classification of the training people).
    pub train_accuracy: f64,
    /// Validation loss, where the task has one.
    pub validation_loss: Option<f64>,
    /// Validation accuracy (classifier: top-1; embedding: 1:1 verification).
    pub validation_accuracy: f64,
    /// Validation TAR at FAR 1e-3 (embedding mode).
    pub validation_tar_at_far_1e3: Option<f64>,
    /// Wall-clock seconds of the epoch, validation included.
    pub seconds: f64,
}

/// Draws the loss and accuracy curves side by side as SVG.
///
/// # Errors
/// [`TrainError::Record`] when the plot cannot be written.
pub fn plot_curves(history: &[EpochMetrics], title: &str, path: &Path) -> Result<(), TrainError> {
    let fail = |e: String| TrainError::Record(format!("plotting {}: {e}", path.display()));
    let root = SVGBackend::new(path, (1100, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|e| fail(e.to_string()))?;
    let (left, right) = root.split_horizontally(550);
    let epochs = history.len().max(2) as f64;
    let train_loss: Vec<(f64, f64)> = history.iter().map(|m| (m.epoch as f64, m.train_loss)).collect();
    let val_loss: Vec<(f64, f64)> =
        history.iter().filter_map(|m| m.validation_loss.map(|l| (m.epoch as f64, l))).collect();
    let max_loss = train_loss.iter().chain(&val_loss).map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.05;
    let mut chart = ChartBuilder::on(&left)
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0..epochs, 0.0..max_loss)
        .map_err(|e| fail(e.to_string()))?;
    chart.configure_mesh().x_desc("epoch").y_desc("loss").draw().map_err(|e| fail(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(train_loss, BLUE.stroke_width(2)))
        .map_err(|e| fail(e.to_string()))?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    if !val_loss.is_empty() {
        chart
            .draw_series(LineSeries::new(val_loss, RED.stroke_width(2)))
            .map_err(|e| fail(e.to_string()))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
    }
    chart.configure_series_labels().border_style(BLACK).draw().map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&right)
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0..epochs, 0.0..1.0)
        .map_err(|e| fail(e.to_string()))?;
    chart.configure_mesh().x_desc("epoch").y_desc("accuracy").draw().map_err(|e| fail(e.to_string()))?;
    let series: [Series; 3] = [
        ("train", BLUE, history.iter().map(|m| (m.epoch as f64, m.train_accuracy)).collect()),
        ("validation", RED, history.iter().map(|m| (m.epoch as f64, m.validation_accuracy)).collect()),
        (
            "validation TAR@FAR1e-3",
            GREEN,
            history.iter().filter_map(|m| m.validation_tar_at_far_1e3.map(|t| (m.epoch as f64, t))).collect(),
        ),
    ];
    for (label, colour, points) in series {
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| fail(e.to_string()))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Writes `value` as pretty JSON.
///
/// # Errors
/// [`TrainError::Io`] when the file cannot be written.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), TrainError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| TrainError::Record(e.to_string()))?;
    crate::dataset::write_atomic(path, &text)
}
