//! Whether a run passed: its replies, and the thresholds the options set.
//! A run fails (exit status 1) on any wrong reply, on failed requests
//! beyond `--max-error-rate` (none by default: a lost, short or timed-out
//! reply fails the run), and on a latency or throughput threshold missed;
//! each failure names what it broke.

use std::time::Duration;

use crate::common;
use crate::record::{Totals, format_micros};

/// The thresholds a run must meet.
#[derive(clap::Args, Clone, Debug)]
pub struct Thresholds {
    /// Fail the run if the median latency is over this ("2ms").
    #[arg(long, value_name = "DURATION", value_parser = common::parse_timeout)]
    pub max_p50: Option<Duration>,
    /// Fail the run if the 99th percentile latency is over this ("5ms");
    /// in a sweep, a step over it is past the knee.
    #[arg(long, value_name = "DURATION", value_parser = common::parse_timeout)]
    pub max_p99: Option<Duration>,
    /// Fail the run if the 99.9th percentile latency is over this.
    #[arg(long, value_name = "DURATION", value_parser = common::parse_timeout)]
    pub max_p999: Option<Duration>,
    /// Fail the run if more than this share of its requests failed
    /// (errors, timeouts, lost, short or wrong replies): "0.1%" or
    /// "0.001". By default none may: any failure fails the run. A wrong
    /// reply fails it whatever this says.
    #[arg(long, value_name = "SHARE", default_value = "0", value_parser = parse_share)]
    pub max_error_rate: f64,
    /// Fail the run if fewer correct replies a second came than this.
    #[arg(long, value_name = "PER_SECOND")]
    pub min_throughput: Option<f64>,
}

/// A share: "0.1%" or "0.001", from 0 to 1.
fn parse_share(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = match text.strip_suffix('%') {
        Some(percent) => (percent, 100.0),
        None => (text, 1.0),
    };
    let share = number
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("{text:?} is not a share, such as 0.1% or 0.001"))?
        / scale;
    if !(0.0..=1.0).contains(&share) {
        return Err(format!("{text} is not between 0 and 100%"));
    }
    Ok(share)
}

/// A share as a percentage: "1.05%".
pub fn percent(share: f64) -> String {
    let percent = share * 100.0;
    let text = format!("{percent:.3}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

impl Thresholds {
    /// What the run broke, each naming the option or check: empty if it
    /// passed.
    pub fn check(&self, totals: &Totals) -> Vec<String> {
        let c = &totals.counts;
        let mut broken = Vec::new();
        if c.mismatches > 0 {
            broken.push(format!(
                "{} mismatched replies: the server answered wrong",
                c.mismatches
            ));
        }
        let rate = totals.error_rate();
        if rate > self.max_error_rate {
            let default = match self.max_error_rate {
                0.0 => " (the default: any failure fails the run)",
                _ => "",
            };
            broken.push(format!(
                "{} of {} requests failed ({} short, {} errors, {} timeouts, {} lost): {} over --max-error-rate {}{default}",
                c.failed(),
                c.ops + c.failed(),
                c.short,
                c.errors,
                c.timeouts,
                c.lost,
                percent(rate),
                percent(self.max_error_rate),
            ));
        }
        for (name, q, bound) in [
            ("p50", 0.5, self.max_p50),
            ("p99", 0.99, self.max_p99),
            ("p99.9", 0.999, self.max_p999),
        ] {
            let Some(bound) = bound else { continue };
            let option = name.replace('.', "");
            if c.ops == 0 {
                broken.push(format!("no reply to hold against --max-{option}"));
                continue;
            }
            let us = totals.percentile_us(q);
            if u128::from(us) > bound.as_micros() {
                broken.push(format!(
                    "{name} {} over --max-{option} {}",
                    format_micros(us),
                    common::show_duration(bound)
                ));
            }
        }
        if let Some(min) = self.min_throughput
            && totals.throughput() < min
        {
            broken.push(format!(
                "{:.0} replies/s under --min-throughput {min}",
                totals.throughput()
            ));
        }
        broken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_read_as_fractions_or_percentages() {
        assert_eq!(parse_share("0"), Ok(0.0));
        assert_eq!(parse_share("0.001"), Ok(0.001));
        assert_eq!(parse_share("1%"), Ok(0.01));
        assert!(parse_share("150%").is_err());
        assert!(parse_share("some").is_err());
        assert_eq!(percent(0.0105), "1.05%");
        assert_eq!(percent(0.0), "0%");
    }
}
