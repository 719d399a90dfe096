//! Charts as SVG or PNG, chosen by the file's extension: line charts (training curves,
//! gradient flow, accuracy by distance; optional log-scale y axis, a legend, point markers on
//! short series) and labelled scatter plots (embedding maps).
//!
//! Text is drawn with DejaVu Sans, compiled into the binary from `data/fonts/` (licence next to
//! it), so a PNG looks the same on every machine and no system font is needed.

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../../data/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (900, 560);

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled file is a valid TrueType font; failing here would be a build defect.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled DejaVuSans.ttf did not load"));
    });
}

/// Named series of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// How a line chart looks.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Logarithmic y axis (perplexities, gradient norms); ignored unless every y is > 0.
    pub log_y: bool,
    /// Fixed y range instead of one fitted to the data.
    pub y_range: Option<(f64, f64)>,
}

/// `stem`.svg and `stem`.png. Returns the two paths.
pub fn both(stem: &Path, draw: impl Fn(&Path) -> Result<()>) -> Result<[PathBuf; 2]> {
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    draw(&svg)?;
    draw(&png)?;
    Ok([svg, png])
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
    line_chart_with(
        path,
        &LineChart {
            title,
            x_label,
            y_label,
            log_y,
            y_range: None,
        },
        series,
    )
}

/// Renders to `path` (PNG when it ends in `.png`, SVG otherwise) through a temporary file, so
/// a reader never sees half a picture.
fn render(
    path: &Path,
    draw: impl FnOnce(DrawingArea<BitMapBackend, Shift>) -> Result<()>,
    draw_svg: impl FnOnce(DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<()> {
    ensure_font();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let tmp = path.with_extension(if png { "tmp.png" } else { "tmp.svg" });
    if png {
        draw(BitMapBackend::new(&tmp, SIZE).into_drawing_area())?;
    } else {
        draw_svg(SVGBackend::new(&tmp, SIZE).into_drawing_area())?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e:?}")
}

/// Ten distinguishable colours (the usual categorical palette with black for the sixth), so up
/// to ten series never share one.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(0, 0, 0),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
];

/// An axis label: short decimals, or powers of ten (1e-5) on a log axis far from 1.
fn tick(v: f64, log: bool) -> String {
    if log && v != 0.0 && !(1e-2..1e4).contains(&v.abs()) {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// A line chart with the options in `c`.
pub fn line_chart_with(path: &Path, c: &LineChart, series: &[Series]) -> Result<()> {
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    if all.is_empty() {
        return Ok(());
    }
    render(
        path,
        |root| draw_lines(root, c, series, &all),
        |root| draw_lines(root, c, series, &all),
    )
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &LineChart,
    series: &[Series],
    all: &[(f64, f64)],
) -> Result<()> {
    let (x0, x1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.0), a.1.max(p.0))
    });
    let (y0, y1) = c.y_range.unwrap_or_else(|| {
        all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
            (a.0.min(p.1), a.1.max(p.1))
        })
    });
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    root.fill(&WHITE).map_err(err)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(c.title, (FAMILY, 24))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(80);
    let markers = all.len() <= 40 * series.len().max(1);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(c.x_label)
                .y_desc(c.y_label)
                .y_labels(12)
                .x_label_formatter(&|v| tick(*v, false))
                .y_label_formatter(&|v| tick(*v, c.log_y))
                .label_style((FAMILY, 15))
                .axis_desc_style((FAMILY, 17))
                .draw()
                .map_err(err)?;
            for (i, s) in series.iter().enumerate() {
                let col = COLORS[i % COLORS.len()];
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|p| p.0.is_finite() && p.1.is_finite() && (!c.log_y || p.1 > 0.0))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2)))
                    .map_err(err)?
                    .label(s.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3))
                    });
                if markers {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, col.filled())))
                        .map_err(err)?;
                }
            }
            chart
                .configure_series_labels()
                .label_font((FAMILY, 16))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(err)?;
        }};
    }
    if c.log_y && y0 > 0.0 {
        draw!(builder
            .build_cartesian_2d(x0..x1, (y0 * 0.8..y1 * 1.25).log_scale())
            .map_err(err)?);
    } else {
        let pad = ((y1 - y0) * 0.05).max(1e-9);
        let (lo, hi) = if c.y_range.is_some() {
            (y0, y1)
        } else {
            (y0 - pad, y1 + pad)
        };
        draw!(builder.build_cartesian_2d(x0..x1, lo..hi).map_err(err)?);
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Labelled points, e.g. words at their 2-D projection.
pub fn scatter_labels(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(String, f64, f64)],
) -> Result<()> {
    if points.is_empty() {
        return Ok(());
    }
    render(
        path,
        |root| draw_scatter(root, title, x_label, y_label, points),
        |root| draw_scatter(root, title, x_label, y_label, points),
    )
}

fn draw_scatter<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(String, f64, f64)],
) -> Result<()> {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (_, x, y) in points {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    let px = ((x1 - x0) * 0.12).max(1e-6);
    let py = ((y1 - y0) * 0.08).max(1e-6);
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 24))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x0 - px..x1 + px, y0 - py..y1 + py)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .draw()
        .map_err(err)?;
    let col = COLORS[0];
    chart
        .draw_series(points.iter().map(|(w, x, y)| {
            EmptyElement::at((*x, *y))
                + Circle::new((0, 0), 4, col.filled())
                + Text::new(w.clone(), (6, -8), (FAMILY, 16).into_font())
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A heat map of `weights` (rows × columns, each in [0, 1]), e.g. attention: one row per
/// output word (top to bottom), one column per source word, darker for more weight, with the
/// words on the axes.
pub fn heat_map(
    path: &Path,
    title: &str,
    columns: &[String],
    rows: &[String],
    weights: &[Vec<f32>],
) -> Result<()> {
    anyhow::ensure!(
        !columns.is_empty() && !rows.is_empty(),
        "a heat map needs at least one row and one column"
    );
    anyhow::ensure!(
        weights.len() == rows.len() && weights.iter().all(|w| w.len() >= columns.len()),
        "heat map weights are not rows x columns"
    );
    render(
        path,
        |root| draw_heat(root, title, columns, rows, weights),
        |root| draw_heat(root, title, columns, rows, weights),
    )
}

fn draw_heat<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    columns: &[String],
    rows: &[String],
    weights: &[Vec<f32>],
) -> Result<()> {
    let (nc, nr) = (columns.len() as i32, rows.len() as i32);
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 24))
        .margin(18)
        .x_label_area_size(60)
        .y_label_area_size(110)
        // An i32 range is inclusive in plotters: 0..n-1 gives n segments.
        .build_cartesian_2d((0..nc - 1).into_segmented(), (0..nr - 1).into_segmented())
        .map_err(err)?;
    let word = |v: &SegmentValue<i32>, words: &[String], flip: bool| match v {
        SegmentValue::CenterOf(i) if (0..words.len() as i32).contains(i) => {
            let i = if flip { words.len() as i32 - 1 - i } else { *i };
            words[i as usize].clone()
        }
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(columns.len())
        .y_labels(rows.len())
        .x_label_formatter(&|v| word(v, columns, false))
        .y_label_formatter(&|v| word(v, rows, true))
        // Smaller type for long sentences, so neighbouring words do not overlap.
        .x_label_style((FAMILY, (720 / columns.len().max(1)).clamp(9, 15) as u32))
        .y_label_style((FAMILY, 15))
        .x_desc("source")
        .y_desc("output")
        .axis_desc_style((FAMILY, 17))
        .draw()
        .map_err(err)?;
    let cells = (0..nr).flat_map(|r| (0..nc).map(move |c| (r, c)));
    chart
        .draw_series(cells.map(|(r, c)| {
            let w = weights[r as usize][c as usize].clamp(0.0, 1.0) as f64;
            // White to dark blue.
            let shade = |full: f64| (255.0 - (255.0 - full) * w).round() as u8;
            let colour = RGBColor(shade(8.0), shade(48.0), shade(107.0));
            let y = nr - 1 - r;
            Rectangle::new(
                [
                    (SegmentValue::Exact(c), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(c + 1), SegmentValue::Exact(y + 1)),
                ],
                colour.filled(),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes a PNG and checks it is a real picture: the PNG signature, an IHDR of the
    /// expected size, more than a few bytes, and more than one colour.
    pub fn assert_real_png(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.len() > 2000,
            "{}: only {} bytes",
            path.display(),
            bytes.len()
        );
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((w, h), SIZE);
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        let first = *img.get_pixel(0, 0);
        let different = img.pixels().filter(|&&p| p != first).count();
        assert!(different > 1000, "{}: nearly one colour", path.display());
        // Some pixels are dark (text, axes), not only coloured lines.
        assert!(img.pixels().any(|p| p.0.iter().all(|&c| c < 60)));
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(5.0, false), "5");
        assert_eq!(tick(0.25, false), "0.25");
        assert_eq!(tick(9.99999e-5, true), "1e-4");
        assert_eq!(tick(0.01, true), "0.01");
    }

    #[test]
    fn every_chart_kind_renders_to_png_and_svg() {
        let dir = std::env::temp_dir().join(format!("firth-plot-test-{}", std::process::id()));
        let series = vec![
            Series {
                name: "rnn".into(),
                points: (0..50).map(|d| (d as f64, 0.5f64.powi(d))).collect(),
            },
            Series {
                name: "lstm".into(),
                points: (0..50).map(|d| (d as f64, 0.95f64.powi(d))).collect(),
            },
        ];
        let log = LineChart {
            title: "Gradient flow",
            x_label: "distance t-k",
            y_label: "mean ||dJ/dh||",
            log_y: true,
            y_range: None,
        };
        let lin = LineChart {
            title: "Agreement",
            x_label: "distance",
            y_label: "accuracy",
            log_y: false,
            y_range: Some((0.0, 1.0)),
        };
        let short = vec![Series {
            name: "n-gram".into(),
            points: vec![(0.0, 0.9), (1.0, 0.8), (4.0, 0.55)],
        }];
        let words: Vec<(String, f64, f64)> = ["king", "queen", "man", "woman"]
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), i as f64, (i * i) as f64))
            .collect();
        let [_, p1] = both(&dir.join("gradients"), |p| {
            line_chart_with(p, &log, &series)
        })
        .unwrap();
        let [_, p2] = both(&dir.join("agreement"), |p| line_chart_with(p, &lin, &short)).unwrap();
        let [s3, p3] = both(&dir.join("curves"), |p| {
            line_chart(p, "Training", "epoch", "perplexity", &series, false)
        })
        .unwrap();
        let [_, p4] = both(&dir.join("map"), |p| {
            scatter_labels(p, "Embedding map", "PC 1", "PC 2", &words)
        })
        .unwrap();
        let cols: Vec<String> = ["ein", "hund", "läuft", "."]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows: Vec<String> = ["a", "dog", "runs", ".", "</s>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let weights: Vec<Vec<f32>> = (0..5)
            .map(|r| {
                (0..4)
                    .map(|c| if r.min(3) == c { 0.9 } else { 0.033 })
                    .collect()
            })
            .collect();
        let [s5, p5] = both(&dir.join("attention"), |p| {
            heat_map(p, "Attention", &cols, &rows, &weights)
        })
        .unwrap();
        assert!(std::fs::read_to_string(&s5).unwrap().contains("läuft"));
        for p in [&p1, &p2, &p3, &p4, &p5] {
            assert_real_png(p);
        }
        let svg = std::fs::read_to_string(&s3).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("perplexity") && svg.contains("lstm"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
