//! `hermod bench`: a load generator in the spirit of
//! kafka-producer-perf-test, RabbitMQ's perf-test and iggy-bench. Scenarios
//! `publish`, `queue`, `fanout` and `replay` run against the broker in this
//! process (`--embedded`, the default) or a server (`--server URL`, over
//! the HTTP API). Every message carries its sequence number and send time,
//! so the run ends with end-to-end latency percentiles (HDR histogram) and
//! a check that every message was accounted for.

mod payload;
mod report;
mod run;
mod tally;
mod target;

use std::path::PathBuf;

use anyhow::Context;
use hermod_api::DurabilityMode;

pub use run::run_bench;

pub const EXAMPLES: &str = "Examples:
  hermod bench queue --count 100000 --producers 4 --consumers 4
  hermod bench publish --size 1024 --batch 10 --durability fsync --json
  hermod bench fanout --subscriptions 3 --duration 30
  hermod bench queue --rate 1000 --duration 20     # latency at a fixed rate
  hermod bench queue --server http://127.0.0.1:9080 --count 20000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Producers only, until every publish is acknowledged.
    Publish,
    /// Producers and consumers at once; each message received and acked once.
    Queue,
    /// Producers and `--subscriptions` subscriptions, each receiving everything.
    Fanout,
    /// Fill a topic, then read it from the start (a `stream` subscription).
    Replay,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Bytes per message (at least 32: a sequence number and a send time).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Messages in all (with --duration: the most that may be sent).
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Send for this many seconds instead of a fixed count.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Publishing tasks.
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Consuming tasks (per subscription in `fanout`).
    #[arg(long, default_value_t = 4)]
    pub consumers: usize,
    /// Subscriptions of the topic in `fanout`.
    #[arg(long, default_value_t = 3)]
    pub subscriptions: usize,
    /// Send at this many messages per second in all (open loop: each
    /// message's latency counts from when it was due, so a stalled broker
    /// cannot hide its delays); without it, as fast as acks come back.
    #[arg(long, value_name = "MSGS_PER_S")]
    pub rate: Option<u64>,
    /// Messages per publish request.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Partitions of the topic or queue.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// When a publish is acknowledged: fsync, memory or interval:MS.
    #[arg(long, default_value = "fsync", value_parser = parse_durability)]
    pub durability: DurabilityMode,
    /// Run against a broker in this process (the default).
    #[arg(long, conflicts_with = "server")]
    pub embedded: bool,
    /// Run against the server at this URL over the HTTP API.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Where the embedded broker keeps its data: a new directory is made
    /// under this one and removed at the end (use a real disk, not tmpfs).
    #[arg(long, default_value = ".")]
    pub data_dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_durability(text: &str) -> Result<DurabilityMode, String> {
    match text {
        "fsync" => Ok(DurabilityMode::Fsync),
        "memory" => Ok(DurabilityMode::Memory),
        other => other
            .strip_prefix("interval:")
            .and_then(|ms| ms.parse().ok())
            .map(|ms| DurabilityMode::Interval { ms })
            .ok_or_else(|| format!("`{other}`: use fsync, memory or interval:MS")),
    }
}

/// Runs `hermod bench` on its own runtime.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.producers > 0, "--producers must be at least 1");
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    anyhow::ensure!(args.rate != Some(0), "--rate must be at least 1");
    let needs_consumers = matches!(args.scenario, Scenario::Queue | Scenario::Fanout);
    anyhow::ensure!(
        !needs_consumers || args.consumers > 0,
        "--consumers must be at least 1"
    );
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run_bench(args))
}
