//! The latency against throughput chart of one sweep or several (SVG,
//! drawn with plotters): for each, p50, p99 and p99.9 latency on a log
//! scale against the rate the server achieved, and the knee marked.
//! `loadgen plot` draws it from sweeps saved with `loadgen sweep --json`,
//! so several servers, measured one after the other, share one chart.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plotters::prelude::*;
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// Sweeps saved with `loadgen sweep --json`, one series each.
    #[arg(required = true, value_name = "SWEEP.json")]
    sweeps: Vec<PathBuf>,
    /// The SVG file to write.
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// The chart's title (default: what the first sweep measured).
    #[arg(long)]
    title: Option<String>,
}

/// One step of a sweep, as the chart shows it.
pub struct Point {
    /// Replies a second.
    pub achieved: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
}

/// One sweep.
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
    /// The step where the server stopped keeping up.
    pub knee: Option<usize>,
}

/// One colour per sweep.
const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

pub fn run(args: &PlotArgs) -> io::Result<ExitCode> {
    let mut all = Vec::new();
    let mut first_title = None;
    for path in &args.sweeps {
        let text = fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
        let sweep: Value = serde_json::from_str(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a sweep's JSON ({e})", path.display()),
            )
        })?;
        first_title.get_or_insert_with(|| title_of(&sweep));
        all.push(series_of(&sweep).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} has no sweep steps (save one with `loadgen sweep --json`)",
                    path.display()
                ),
            )
        })?);
    }
    let title = args.title.clone().or(first_title).unwrap_or_default();
    draw(&args.out, &title, &all)?;
    println!("chart        {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// What a sweep measured, for the title.
fn title_of(sweep: &Value) -> String {
    title(
        sweep["mode"].as_str().unwrap_or("?"),
        sweep["connections"].as_u64().unwrap_or(0),
        sweep["size"].as_u64().unwrap_or(0),
    )
}

/// The chart's title for sweeps of `mode` with `clients` clients sending
/// `size`-byte messages.
pub fn title(mode: &str, clients: u64, size: u64) -> String {
    format!("{mode} mode, {clients} clients, {size}-byte messages: latency against throughput, open loop")
}

/// A latency axis label: "0.05", "0.7", "2", "150".
fn label_ms(ms: &f64) -> String {
    let text = format!("{ms:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A sweep's JSON as a series; `None` if it is not one.
fn series_of(sweep: &Value) -> Option<Series> {
    let steps = sweep["steps"].as_array()?;
    let points = steps
        .iter()
        .map(|step| {
            let latency = &step["latency_us"];
            Some(Point {
                achieved: step["throughput"].as_f64()?,
                p50_us: latency["p50"].as_u64()?,
                p99_us: latency["p99"].as_u64()?,
                p999_us: latency["p999"].as_u64()?,
            })
        })
        .collect::<Option<Vec<Point>>>()?;
    Some(Series {
        label: sweep["label"].as_str().or(sweep["server"].as_str())?.to_owned(),
        points,
        knee: sweep["knee"].as_u64().map(|k| k as usize),
    })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A line of the chart: its name, its latency from a point, its width.
type Percentile = (&'static str, fn(&Point) -> u64, u32);

/// A sweep's steps that have a latency to show (some replies came).
fn shown(series: &Series) -> Vec<&Point> {
    series.points.iter().filter(|p| p.p50_us > 0).collect()
}

/// Draws `series` into the SVG file `path`.
pub fn draw(path: &Path, title: &str, series: &[Series]) -> io::Result<()> {
    let failed = |e: &dyn std::fmt::Display| io::Error::other(format!("cannot draw {}: {e}", path.display()));
    let points: Vec<&Point> = series.iter().flat_map(|s| shown(s)).collect();
    let x_max = points.iter().map(|p| p.achieved).fold(1.0, f64::max) * 1.05;
    let y_min = points.iter().map(|p| ms(p.p50_us)).fold(f64::INFINITY, f64::min);
    let y_max = points.iter().map(|p| ms(p.p999_us)).fold(0.001, f64::max);
    let y_min = if y_min.is_finite() { y_min / 1.5 } else { 0.001 };

    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x_max, (y_min..y_max * 1.5).log_scale())
        .map_err(|e| failed(&e))?;
    chart
        .configure_mesh()
        .x_desc("achieved throughput (replies/s)")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&|x| format!("{:.0}k", x / 1000.0))
        .y_label_formatter(&label_ms)
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| failed(&e))?;
    let percentiles: [Percentile; 3] = [
        ("p50", |p| p.p50_us, 1),
        ("p99", |p| p.p99_us, 2),
        ("p99.9", |p| p.p999_us, 3),
    ];
    for (index, sweep) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let points = shown(sweep);
        for (name, value, width) in percentiles {
            let line: Vec<(f64, f64)> = points.iter().map(|p| (p.achieved, ms(value(p)))).collect();
            let style = color.stroke_width(width);
            chart
                .draw_series(LineSeries::new(line.clone(), style))
                .map_err(|e| failed(&e))?
                .label(format!("{} {name}", sweep.label))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            chart
                .draw_series(line.iter().map(|&at| Circle::new(at, 2 + width, color.filled())))
                .map_err(|e| failed(&e))?;
        }
        if let Some(knee) = sweep
            .knee
            .and_then(|k| sweep.points.get(k))
            .filter(|p| p.p50_us > 0)
        {
            let at = (knee.achieved, ms(knee.p99_us));
            // A ring round the knee's p99, named below and to its left
            // (the knee is often the rightmost point).
            let name = Text::new(
                format!("{} knee", sweep.label),
                (-90, 14),
                ("sans-serif", 13).into_font().color(&color),
            );
            chart
                .draw_series([EmptyElement::at(at) + Circle::new((0, 0), 10, color.stroke_width(2)) + name])
                .map_err(|e| failed(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| failed(&e))?;
    root.present().map_err(|e| failed(&e))?;
    Ok(())
}
