//! `loadgen sweep`: the open loop at rising rates against one server,
//! each rate after a warm-up of its own, and where the server stops
//! keeping up. Rates are evenly apart on a log scale, so the low rates,
//! where latency is flat, and the high ones, where it climbs, each get
//! their share of the steps.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

use crate::plot::{self, Point, Series};
use crate::record::{Totals, format_micros};
use crate::{Args, Error, Mode, Outcome, Setup, context, describe, measure, outcome_json, usage};

/// A step is past the knee when it achieves less than this share of the
/// rate it offered.
const KEPT_UP: f64 = 0.95;

#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    run: Args,
    /// The first rate, requests a second across all clients.
    #[arg(long)]
    from: f64,
    /// The last rate.
    #[arg(long)]
    to: f64,
    /// How many rates, from --from to --to evenly apart on a log scale.
    #[arg(long, default_value_t = 8)]
    steps: usize,
    /// Also draw the latency against throughput chart into this SVG file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// This sweep's name in the chart and the JSON (default: the
    /// server's).
    #[arg(long)]
    label: Option<String>,
}

/// `steps` rates from `from` to `to`, evenly apart on a log scale.
fn rates(from: f64, to: f64, steps: usize) -> Vec<f64> {
    if steps == 1 {
        return vec![from];
    }
    let ratio = (to / from).powf(1.0 / (steps - 1) as f64);
    (0..steps)
        .map(|i| (from * ratio.powi(i as i32)).round())
        .collect()
}

/// One step's result.
struct Step {
    offered: f64,
    totals: Totals,
}

impl Step {
    /// Whether the server kept up with this step's rate under `max_p99`.
    fn kept_up(&self, max_p99_us: Option<u128>) -> bool {
        let fast_enough = max_p99_us.is_none_or(|bound| u128::from(self.totals.percentile_us(0.99)) <= bound);
        self.totals.throughput() >= KEPT_UP * self.offered && fast_enough
    }

    fn row(&self, knee: bool) -> String {
        let t = &self.totals;
        let achieved = t.throughput();
        let mark = if knee {
            format!("  <- knee: {:.0}% of offered", achieved / self.offered * 100.0)
        } else {
            String::new()
        };
        format!(
            "{:>10.0} {:>10.0} {:>10} {:>10} {:>10} {:>10} {:>8}{mark}",
            self.offered,
            achieved,
            format_micros(t.percentile_us(0.5)),
            format_micros(t.percentile_us(0.99)),
            format_micros(t.percentile_us(0.999)),
            format_micros(t.percentile_us(1.0)),
            t.counts.failed(),
        )
    }

    fn point(&self) -> Point {
        let t = &self.totals;
        Point {
            achieved: t.throughput(),
            p50_us: t.percentile_us(0.5),
            p99_us: t.percentile_us(0.99),
            p999_us: t.percentile_us(0.999),
        }
    }
}

const HEADER: &str = "   offered   achieved        p50        p99      p99.9        max   failed";

pub fn run(sweep: &SweepArgs) -> Result<ExitCode, Error> {
    let args = &sweep.run;
    if args.rate.is_some() {
        return Err(usage(
            "sweep sets the rate of each step: use --from, --to and --steps, not --rate",
        ));
    }
    let valid = |rate: f64| rate > 0.0 && rate.is_finite();
    if !valid(sweep.from) || !valid(sweep.to) || sweep.to < sweep.from || sweep.steps == 0 {
        return Err(usage(
            "sweep needs 0 < --from <= --to requests a second, and --steps of at least 1",
        ));
    }
    if matches!(args.mode, Mode::Idle | Mode::Slow) {
        return Err(usage(
            "sweep paces requests: use the tcp, churn, udp or framed mode",
        ));
    }
    let setup = Setup::new(args)?;
    let server_name = setup.server_name();
    let label = sweep.label.clone().unwrap_or_else(|| server_name.to_owned());
    let max_p99_us = args.thresholds.max_p99.map(|d| d.as_micros());
    if !args.json {
        println!(
            "{}",
            describe(args, setup.target, server_name, "open loop at each rate")
        );
        println!("{HEADER}");
    }
    let mut steps = Vec::new();
    let mut knee = None;
    for rate in rates(sweep.from, sweep.to, sweep.steps) {
        let Outcome { totals, .. } = measure(args, &setup, Some(rate))?;
        let step = Step {
            offered: rate,
            totals,
        };
        let at_knee = knee.is_none() && !step.kept_up(max_p99_us);
        if at_knee {
            knee = Some(steps.len());
        }
        if !args.json {
            println!("{}", step.row(at_knee));
        }
        steps.push(step);
    }
    let target = setup.target;
    setup.stop()?;
    let summary = summarize(&steps, knee);
    let mismatches: u64 = steps.iter().map(|s| s.totals.counts.mismatches).sum();
    if args.json {
        let mut report = context(args, target, server_name);
        report["label"] = json!(label);
        report["steps"] = Value::Array(
            steps
                .iter()
                .map(|step| outcome_json(args, Some(step.offered), &step.totals))
                .collect(),
        );
        report["knee"] = json!(knee);
        report["summary"] = json!(summary);
        report["passed"] = json!(mismatches == 0);
        println!("{report}");
    } else {
        println!("{summary}");
    }
    if let Some(path) = &sweep.plot {
        let series = Series {
            label,
            points: steps.iter().map(Step::point).collect(),
            knee,
        };
        let title = plot::title(args.mode.name(), args.connections as u64, args.size);
        plot::draw(path, &title, &[series])?;
        if !args.json {
            println!("chart        {}", path.display());
        }
    }
    if mismatches > 0 {
        eprintln!("loadgen: FAILED: {mismatches} mismatched replies: the server answered wrong");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the server stopped keeping up, in a sentence.
fn summarize(steps: &[Step], knee: Option<usize>) -> String {
    match knee {
        None => format!(
            "knee         none: the server kept up with every rate, to {:.0}/s",
            steps.last().map_or(0.0, |s| s.offered)
        ),
        Some(0) => "knee         at the first rate already: the server kept up with none".to_owned(),
        Some(at) => format!(
            "knee         at {:.0}/s offered ({:.0}/s achieved); the server kept up to {:.0}/s",
            steps[at].offered,
            steps[at].totals.throughput(),
            steps[at - 1].offered
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_rise_evenly_on_a_log_scale() {
        assert_eq!(rates(100.0, 10_000.0, 3), vec![100.0, 1000.0, 10_000.0]);
        assert_eq!(rates(5000.0, 5000.0, 1), vec![5000.0]);
        let twelve = rates(5000.0, 200_000.0, 12);
        assert_eq!((twelve[0], twelve[11], twelve.len()), (5000.0, 200_000.0, 12));
    }
}
