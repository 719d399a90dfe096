//! SVG plots of training curves.

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;

/// Named series of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Draws the series as lines on one chart; `log_y` for perplexities and gradient norms.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()> {
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|p| p.1.is_finite())
        .collect();
    if all.is_empty() {
        return Ok(());
    }
    let (x0, x1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.0), a.1.max(p.0))
    });
    let (y0, y1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.1), a.1.max(p.1))
    });
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let tmp = path.with_extension("svg.tmp");
    {
        let root = SVGBackend::new(&tmp, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70);
        let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .draw()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                for (i, s) in series.iter().enumerate() {
                    let c = colors[i % colors.len()];
                    chart
                        .draw_series(LineSeries::new(
                            s.points.iter().copied().filter(|p| p.1.is_finite()),
                            c.stroke_width(2),
                        ))
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?
                        .label(s.name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                        });
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }};
        }
        if log_y && y0 > 0.0 {
            draw!(builder
                .build_cartesian_2d(x0..x1, (y0 * 0.9..y1 * 1.1).log_scale())
                .map_err(|e| anyhow::anyhow!("{e:?}"))?);
        } else {
            let pad = ((y1 - y0) * 0.05).max(1e-9);
            draw!(builder
                .build_cartesian_2d(x0..x1, y0 - pad..y1 + pad)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?);
        }
        root.present().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
