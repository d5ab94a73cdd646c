//! Running a scenario: set up the topic or queue, start the producers and
//! consumers, show progress, stop, clean up, report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hermod_api::{DeliveryMode, QueueConfig, StartPosition, SubscriptionConfig, TopicConfig};
use hermod_core::{Broker, BrokerConfig};
use tokio::task::JoinSet;

use super::report::Report;
use super::tally::Tally;
use super::target::{From, Target};
use super::{payload, BenchArgs, Scenario};

/// How long consumers go on receiving nothing, after the producers are
/// done, before the run is declared finished with messages missing.
const STALL: Duration = Duration::from_secs(10);
/// Most messages one receive or poll asks for.
const RECEIVE_MAX: usize = 100;

/// What producers and consumers share.
struct Shared {
    target: Target,
    args: BenchArgs,
    topic: String,
    tally: Tally,
    next_seq: AtomicU64,
    deadline: Option<Instant>,
    producers_done: AtomicBool,
    /// Received per reader group.
    group_received: Vec<AtomicU64>,
}

pub async fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    let (target, temp) = open_target(&args).await?;
    let topic = format!(
        "bench-{}-{}-{}",
        name(args.scenario),
        std::process::id(),
        payload::now_us() % 1_000_000
    );
    let groups = match args.scenario {
        Scenario::Fanout => args.subscriptions.max(1),
        _ => 1,
    };
    let shared = Arc::new(Shared {
        tally: Tally::new(groups, args.count),
        next_seq: AtomicU64::new(0),
        deadline: args
            .duration
            .map(|s| Instant::now() + Duration::from_secs(s)),
        producers_done: AtomicBool::new(false),
        group_received: (0..groups).map(|_| AtomicU64::new(0)).collect(),
        target,
        topic,
        args,
    });
    let froms = set_up(&shared).await?;
    let result = measure(&shared, &froms).await;
    let cleaned = shared
        .target
        .delete_topic(&shared.topic, shared.args.scenario == Scenario::Queue)
        .await;
    if let Target::Embedded(b) = &shared.target {
        b.close().context("closing the embedded broker")?;
    }
    drop(temp);
    let report = result?;
    cleaned.context("deleting the benchmark's topic")?;
    report.print(shared.args.json)?;
    anyhow::ensure!(
        report.passed,
        "the benchmark's check failed: {}",
        report.check
    );
    Ok(())
}

fn name(s: Scenario) -> &'static str {
    match s {
        Scenario::Publish => "publish",
        Scenario::Queue => "queue",
        Scenario::Fanout => "fanout",
        Scenario::Replay => "replay",
    }
}

async fn open_target(args: &BenchArgs) -> anyhow::Result<(Target, Option<tempfile::TempDir>)> {
    if let Some(url) = &args.server {
        let client = hermod_client::Client::new(url)?;
        client
            .readyz()
            .await
            .with_context(|| format!("the server at {url} is not ready"))?;
        return Ok((Target::Server(client), None));
    }
    let temp = tempfile::Builder::new()
        .prefix("hermod-bench-")
        .tempdir_in(&args.data_dir)
        .with_context(|| {
            format!(
                "cannot make a data directory in {}",
                args.data_dir.display()
            )
        })?;
    let broker = Broker::open(BrokerConfig::new(temp.path()))?;
    Ok((Target::Embedded(Arc::new(broker)), Some(temp)))
}

/// Creates what the scenario reads from; returns one source per group.
async fn set_up(sh: &Shared) -> anyhow::Result<Vec<From>> {
    let a = &sh.args;
    let topic = sh.topic.clone();
    if a.scenario == Scenario::Queue {
        let config = QueueConfig {
            partitions: a.partitions,
            durability: a.durability,
            visibility_timeout_ms: 300_000,
            ..QueueConfig::default()
        };
        sh.target.create_queue(&topic, config).await?;
        return Ok(vec![From {
            subscription: topic.clone(),
            topic,
            queue: true,
        }]);
    }
    let config = TopicConfig {
        partitions: a.partitions,
        durability: a.durability,
        ..TopicConfig::default()
    };
    sh.target.create_topic(&topic, config).await?;
    let (mode, count) = match a.scenario {
        Scenario::Fanout => (DeliveryMode::Shared, a.subscriptions.max(1)),
        Scenario::Replay => (DeliveryMode::Stream, 1),
        _ => return Ok(Vec::new()),
    };
    let mut froms = Vec::new();
    for i in 0..count {
        let name = format!("reader-{i}");
        let config = SubscriptionConfig {
            mode,
            start: StartPosition::Earliest,
            visibility_timeout_ms: 300_000,
            ..SubscriptionConfig::default()
        };
        sh.target.create_subscription(&topic, &name, config).await?;
        froms.push(From {
            topic: topic.clone(),
            subscription: name,
            queue: false,
        });
    }
    Ok(froms)
}

/// Runs the workers and times them.
async fn measure(sh: &Arc<Shared>, froms: &[From]) -> anyhow::Result<Report> {
    if sh.args.scenario == Scenario::Replay {
        // The fill is not measured: publish everything first.
        run_producers(sh, false).await?;
    }
    let progress =
        super::report::progress(sh.args.quiet, sh.args.count * froms.len().max(1) as u64);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (group, from) in froms.iter().enumerate() {
        let readers = if sh.args.scenario == Scenario::Replay {
            1
        } else {
            sh.args.consumers
        };
        for _ in 0..readers {
            let (sh, from) = (sh.clone(), from.clone());
            tasks.spawn(async move { consume(&sh, group, &from).await });
        }
    }
    let producers = {
        let sh = sh.clone();
        let timed = sh.args.scenario != Scenario::Replay;
        tokio::spawn(async move {
            if timed {
                run_producers(&sh, sh.args.scenario == Scenario::Publish).await?;
            }
            sh.producers_done.store(true, Relaxed);
            anyhow::Ok(())
        })
    };
    let ticker = {
        let (sh, progress) = (sh.clone(), progress.clone());
        let publish = sh.args.scenario == Scenario::Publish;
        tokio::spawn(async move {
            loop {
                let done = if publish {
                    sh.next_seq.load(Relaxed)
                } else {
                    sh.tally.received.load(Relaxed)
                };
                progress.set_position(done);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    producers.await.context("the producers failed")??;
    while let Some(done) = tasks.join_next().await {
        done.context("a consumer failed")??;
    }
    let elapsed = started.elapsed();
    ticker.abort();
    progress.finish_and_clear();
    let published = sh.next_seq.load(Relaxed).min(sh.args.count);
    Ok(Report::new(
        &sh.args,
        published,
        froms.len(),
        elapsed,
        &sh.tally,
    ))
}

/// Publishes batches of fresh sequence numbers until the count (or the
/// duration) is reached, at `--rate` if set; with `timed`, each publish's
/// round trip (from when it was due) is a latency sample.
async fn run_producers(sh: &Arc<Shared>, timed: bool) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    let (start, start_us) = (Instant::now(), payload::now_us());
    for _ in 0..sh.args.producers {
        let sh = sh.clone();
        tasks.spawn(async move {
            loop {
                if sh.deadline.is_some_and(|d| Instant::now() >= d) {
                    return anyhow::Ok(());
                }
                let batch = sh.args.batch as u64;
                let first = sh.next_seq.fetch_add(batch, Relaxed);
                if first >= sh.args.count {
                    return Ok(());
                }
                let last = (first + batch).min(sh.args.count);
                let due_us = match sh.args.rate {
                    // Message `first` is due `first / rate` seconds in.
                    Some(rate) => {
                        let offset_us = first * 1_000_000 / rate;
                        let due = start + Duration::from_micros(offset_us);
                        tokio::time::sleep_until(due.into()).await;
                        start_us + offset_us
                    }
                    None => payload::now_us(),
                };
                let values = (first..last)
                    .map(|s| payload::make(s, sh.args.size, due_us))
                    .collect();
                sh.target.publish(&sh.topic, values).await?;
                if timed {
                    sh.tally.latency(payload::now_us().saturating_sub(due_us));
                    sh.tally.received.fetch_add(last - first, Relaxed);
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a producer failed")??;
    }
    Ok(())
}

/// Receives (and acks) or polls until the group has every published
/// message, or nothing came for `STALL` after the producers finished.
async fn consume(sh: &Arc<Shared>, group: usize, from: &From) -> anyhow::Result<()> {
    let mut idle_since: Option<Instant> = None;
    loop {
        let done = sh.producers_done.load(Relaxed);
        let published = sh.next_seq.load(Relaxed).min(sh.args.count);
        if done && sh.group_received[group].load(Relaxed) >= published {
            return Ok(());
        }
        let values = if sh.args.scenario == Scenario::Replay {
            sh.target.poll(from, RECEIVE_MAX).await?
        } else {
            let got = sh
                .target
                .receive(from, RECEIVE_MAX, Duration::from_millis(500))
                .await?;
            let (values, receipts): (Vec<_>, Vec<_>) = got.into_iter().unzip();
            if !receipts.is_empty() {
                sh.target.ack(from, receipts).await?;
            }
            values
        };
        for v in &values {
            sh.tally.saw(group, v);
        }
        sh.group_received[group].fetch_add(values.len() as u64, Relaxed);
        if !values.is_empty() || !done {
            idle_since = None;
        } else if idle_since.get_or_insert_with(Instant::now).elapsed() > STALL {
            return Ok(());
        }
    }
}
