//! The result of a run: rates, latency percentiles and the check, printed
//! for people or as JSON; and the progress bar shown meanwhile.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::tally::{Tally, Verdict};
use super::{BenchArgs, Scenario};

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub target: String,
    pub size: usize,
    pub batch: usize,
    pub producers: usize,
    pub consumers: usize,
    pub partitions: u32,
    /// The fixed send rate, if one was set.
    pub rate: Option<u64>,
    pub durability: String,
    pub messages: u64,
    /// Deliveries in all (messages × subscriptions in `fanout`).
    pub deliveries: u64,
    pub seconds: f64,
    pub messages_per_s: f64,
    pub deliveries_per_s: f64,
    pub mb_per_s: f64,
    /// What the latency measures.
    pub latency: &'static str,
    pub latency_us: Percentiles,
    pub verdict: Verdict,
    pub passed: bool,
    pub check: String,
}

#[derive(Debug, serde::Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Report {
    pub fn new(
        args: &BenchArgs,
        published: u64,
        groups: usize,
        elapsed: Duration,
        tally: &Tally,
    ) -> Report {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let (deliveries, verdict) = if args.scenario == Scenario::Publish {
            (
                published,
                Verdict {
                    expected: published,
                    missing: 0,
                    duplicated: 0,
                    foreign: 0,
                },
            )
        } else {
            let v = tally.verdict(published);
            (v.expected - v.missing, v)
        };
        let h = tally.histogram();
        let at = |q: f64| h.value_at_quantile(q);
        // A queue's leases outlast the run, so nothing may come twice.
        let passed = verdict.ok(false);
        let check = if passed {
            format!(
                "every message accounted for: {} expected, 0 missing, 0 duplicated",
                verdict.expected
            )
        } else {
            format!(
                "{} expected, {} missing, {} duplicated, {} unknown",
                verdict.expected, verdict.missing, verdict.duplicated, verdict.foreign
            )
        };
        Report {
            scenario: args.scenario,
            target: args.server.clone().unwrap_or_else(|| "embedded".into()),
            size: args.size.max(super::payload::HEADER_BYTES),
            batch: args.batch,
            producers: args.producers,
            consumers: if args.scenario == Scenario::Publish {
                0
            } else {
                args.consumers
            },
            partitions: args.partitions,
            rate: args.rate,
            durability: format!("{:?}", args.durability).to_lowercase(),
            messages: published,
            deliveries,
            seconds,
            messages_per_s: published as f64 / seconds,
            deliveries_per_s: deliveries as f64 / seconds,
            mb_per_s: (deliveries.max(published) as f64 * args.size as f64) / seconds / 1e6,
            latency: match args.scenario {
                Scenario::Publish => "publish round trip, per request",
                Scenario::Replay => "record age when read (includes the fill)",
                _ if args.rate.is_some() => "end to end: due time of the send to receipt",
                _ => "end to end: publish call to receipt by a consumer",
            },
            latency_us: Percentiles {
                p50: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                p999: at(0.999),
                max: h.max(),
            },
            verdict,
            passed,
            check: if groups > 1 {
                format!("{check} (per subscription × {groups})")
            } else {
                check
            },
        }
    }

    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(self)?);
            return Ok(());
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let l = &self.latency_us;
        println!(
            "{:?} on {}: {} messages of {} B in {:.2} s (producers {}, consumers {}, batch {}, partitions {}, {})",
            self.scenario, self.target, self.messages, self.size, self.seconds, self.producers,
            self.consumers, self.batch, self.partitions, self.durability
        );
        println!(
            "  {:.0} msgs/s, {:.0} deliveries/s, {:.1} MB/s",
            self.messages_per_s, self.deliveries_per_s, self.mb_per_s
        );
        println!(
            "  latency ({}): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.latency, ms(l.p50), ms(l.p90), ms(l.p99), ms(l.p999), ms(l.max)
        );
        println!(
            "  check: {}",
            if self.passed {
                format!("ok, {}", self.check)
            } else {
                format!("FAILED, {}", self.check)
            }
        );
        Ok(())
    }
}

/// A progress bar with the live rate (hidden with `--quiet` or when
/// stderr is not a terminal).
pub fn progress(quiet: bool, total: u64) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
