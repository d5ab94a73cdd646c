//! A real-process crash test of the messaging core: a worker process opens
//! the broker (fsync durability, the default) and runs a mixed workload on a
//! queue with a dead-letter queue — producers publishing, consumers
//! receiving, acking, nacking and abandoning leases, and the periodic
//! `tick` (journal snapshots, lease expiry) — reporting on its stdout every
//! call only after it RETURNED, so the reports are a lower bound of what the
//! broker acknowledged. The parent kills it with SIGKILL at random moments,
//! 30 times, restarting it each time on the same directory; then it opens
//! the broker itself, drains both queues, and checks that after killing and
//! reopening during a mixed workload no acknowledged publish or ack is lost:
//!
//! - every message reported published (or received) was acked, or is still
//!   in the queue, or was dead-lettered; the only message whose fate may be
//!   unknown is one whose ack was in progress when the worker died;
//! - a message reported acked is never delivered again (no later delivery
//!   count, no delivery in a later run, not in the queue at the end, not
//!   dead-lettered);
//! - delivery counts survive: those of one message are distinct, grow from
//!   one run to the next, and never pass `max_deliveries`;
//! - a message keeps its partition and offset in every report.
//!
//! There is no extra binary: the test re-executes its own test binary,
//! asking libtest to run only `worker`, with `HERMOD_CORE_KILL_DIR` set. Set
//! `HERMOD_CORE_KILL_SEED` to replay a run with the seed it printed (the
//! kill times and the consumers' choices; thread timing still varies).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hermod_core::defs::QueueConfig;
use hermod_core::{Broker, BrokerConfig, Error, Message, Received};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Tells the re-executed test binary that it is the worker, and where the
/// broker's data directory is.
const WORKER_ENV: &str = "HERMOD_CORE_KILL_DIR";
/// The worker's run number (it names the messages it publishes).
const ROUND_ENV: &str = "HERMOD_CORE_KILL_ROUND";
/// Replays a run: the seed of the kill times and the consumers' choices.
const SEED_ENV: &str = "HERMOD_CORE_KILL_SEED";
const ROUNDS: u64 = 30;
const PRODUCERS: u64 = 3;
const CONSUMERS: u64 = 3;
/// Each producer publishes at most once per this long, so the backlog grows
/// alike on a fast disk and a slow one.
const PRODUCER_PACE: Duration = Duration::from_millis(2);
/// How often the worker calls `Broker::tick`.
const TICK_EVERY: Duration = Duration::from_millis(20);
/// Short, so that abandoned leases expire and are redelivered within a run.
const VISIBILITY_MS: u64 = 250;
const MAX_DELIVERIES: u32 = 4;
/// Every message whose number is `POISON` modulo this is always nacked, so
/// it ends in the dead-letter queue (unless a kill comes first).
const POISON_EVERY: u64 = 13;
const POISON: u64 = 5;
/// Entries between two journal snapshots: small, so snapshots (and the
/// journal segments they let go) happen all the time.
const JOURNAL_SNAPSHOT_EVERY: u64 = 64;
/// The worker gives up on its own after this long (should its parent
/// vanish without killing it).
const WORKER_LIFETIME: Duration = Duration::from_secs(20);
const QUEUE: &str = "orders";
const DLQ: &str = "orders-dlq";

fn broker_config(dir: &Path) -> BrokerConfig {
    let mut config = BrokerConfig::new(dir);
    config.journal_snapshot_every = JOURNAL_SNAPSHOT_EVERY;
    config
}

fn queue_config() -> QueueConfig {
    QueueConfig {
        partitions: 2,
        visibility_timeout_ms: VISIBILITY_MS,
        max_deliveries: MAX_DELIVERIES,
        dead_letter: Some(DLQ.to_owned()),
        ..QueueConfig::default()
    }
}

/// The body of message `name` (`r{round}-p{producer}-{n}`): the name and a
/// filler whose length depends on `n`, so a reader can check it whole.
fn value_for(name: &str) -> String {
    let n = number_of(name).expect("well-formed name");
    format!("{name}|{}", ".".repeat((n % 40) as usize))
}

/// The `n` of a message name, if the name is well-formed.
fn number_of(name: &str) -> Option<u64> {
    let mut parts = name.split('-');
    let round = parts.next()?.strip_prefix('r')?.parse::<u64>().ok();
    let producer = parts.next()?.strip_prefix('p')?.parse::<u64>().ok();
    let n = parts.next()?.parse::<u64>().ok()?;
    (round.is_some() && producer.is_some() && parts.next().is_none()).then_some(n)
}

/// The name of a message read back, checking its body is the one written.
fn name_of(value: &[u8]) -> String {
    let text = std::str::from_utf8(value).expect("utf-8 body");
    let (name, _) = text
        .split_once('|')
        .unwrap_or_else(|| panic!("malformed body {text:?}"));
    assert!(number_of(name).is_some(), "malformed name in body {text:?}");
    assert_eq!(text, value_for(name), "body of {name}");
    name.to_owned()
}

fn is_poison(name: &str) -> bool {
    number_of(name).is_some_and(|n| n % POISON_EVERY == POISON)
}

/// Writes one whole report line; false once the parent is gone.
fn report(line: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes())
        .and_then(|_| out.flush())
        .is_ok()
}

/// The worker: runs the workload until killed, reporting every publish,
/// delivery and ack after the call returned (and every ack also before it
/// is attempted, so the parent knows which acks a kill left undecided).
#[test]
fn worker() {
    let Some(dir) = std::env::var_os(WORKER_ENV) else {
        return; // Not the worker: nothing to do.
    };
    let round: u64 = std::env::var(ROUND_ENV)
        .expect("round")
        .parse()
        .expect("round number");
    let seed: u64 = std::env::var(SEED_ENV)
        .expect("seed")
        .parse()
        .expect("seed number");
    let broker = Broker::open(broker_config(Path::new(&dir))).expect("worker: open");
    // The dead-letter queue first: the queue names it. A kill between the
    // two (or inside a create) is repaired by the next run.
    if broker.queue(DLQ).is_err() {
        broker
            .create_queue(DLQ, QueueConfig::default())
            .expect("worker: create the dead-letter queue");
    }
    if broker.queue(QUEUE).is_err() {
        broker
            .create_queue(QUEUE, queue_config())
            .expect("worker: create the queue");
    }
    let broker = Arc::new(broker);
    // libtest may have printed "test worker ... " without a newline.
    if !report("\nREADY") {
        return;
    }
    let started = Instant::now();
    let deadline = started + WORKER_LIFETIME;
    let mut threads = Vec::new();
    for p in 0..PRODUCERS {
        let broker = broker.clone();
        threads.push(thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed ^ (round << 20) ^ (p << 8));
            produce(&broker, round, p, &mut rng, started, deadline);
        }));
    }
    for c in 0..CONSUMERS {
        let broker = broker.clone();
        threads.push(thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed ^ (round << 20) ^ (c << 8) ^ 0xc0);
            consume(&broker, &mut rng, deadline);
        }));
    }
    {
        let broker = broker.clone();
        threads.push(thread::spawn(move || {
            while Instant::now() < deadline {
                thread::sleep(TICK_EVERY);
                broker.tick().expect("worker: tick");
            }
        }));
    }
    for t in threads {
        t.join().expect("worker thread");
    }
}

fn produce(
    broker: &Broker,
    round: u64,
    producer: u64,
    rng: &mut StdRng,
    started: Instant,
    deadline: Instant,
) {
    let mut n = 0u64;
    let mut calls = 0u32;
    while Instant::now() < deadline {
        if let Some(early) =
            (started + PRODUCER_PACE * calls).checked_duration_since(Instant::now())
        {
            thread::sleep(early);
        }
        calls += 1;
        let count = rng.random_range(1..=3);
        let names: Vec<String> = (n..n + count)
            .map(|j| format!("r{round}-p{producer}-{j}"))
            .collect();
        n += count;
        let messages = names
            .iter()
            .map(|name| Message {
                value: Bytes::from(value_for(name)),
                ..Message::default()
            })
            .collect();
        let published = broker
            .publish(QUEUE, messages, None)
            .expect("worker: publish");
        for (name, p) in names.iter().zip(&published) {
            assert!(!p.duplicate, "{name} taken for a duplicate");
            if !report(&format!("PUB {name} {} {}", p.partition, p.offset)) {
                return;
            }
        }
    }
}

fn consume(broker: &Broker, rng: &mut StdRng, deadline: Instant) {
    let q = broker.queue(QUEUE).expect("worker: the queue");
    while Instant::now() < deadline {
        let got = q
            .receive(rng.random_range(1..=6), Some(VISIBILITY_MS))
            .expect("worker: receive");
        if got.is_empty() {
            thread::sleep(Duration::from_millis(2));
            continue;
        }
        let mut acks: Vec<(String, Received)> = Vec::new();
        for r in &got {
            let name = name_of(&r.message.value);
            let m = &r.message;
            if !report(&format!(
                "RCV {name} {} {} {}",
                m.partition, m.offset, r.delivery_count
            )) {
                return;
            }
        }
        for r in got {
            let name = name_of(&r.message.value);
            if is_poison(&name) || rng.random_ratio(1, 12) {
                // Given back: redelivered at once, or dead-lettered once its
                // deliveries are used up.
                match q.nack(&r.receipt, 0) {
                    Ok(()) | Err(Error::UnknownReceipt | Error::LeaseExpired) => {}
                    Err(e) => panic!("worker: nack: {e}"),
                }
            } else if rng.random_ratio(1, 25) {
                // Abandoned: its lease expires and it is delivered again.
            } else {
                acks.push((name, r));
            }
        }
        if acks.is_empty() {
            continue;
        }
        for (name, _) in &acks {
            if !report(&format!("ACKING {name}")) {
                return;
            }
        }
        let receipts: Vec<_> = acks.iter().map(|(_, r)| r.receipt).collect();
        let results = q.ack(&receipts).expect("worker: ack");
        for ((name, r), result) in acks.iter().zip(results) {
            let line = match result {
                Ok(()) => format!(
                    "ACKED {name} {} {} {}",
                    r.message.partition, r.message.offset, r.delivery_count
                ),
                // The lease expired and was reclaimed first.
                Err(Error::UnknownReceipt | Error::LeaseExpired) => format!("ACKFAIL {name}"),
                Err(e) => panic!("worker: ack of {name}: {e}"),
            };
            if !report(&line) {
                return;
            }
        }
    }
}

/// One line of a worker's report.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Report {
    Ready,
    /// The publish of the message returned, with its place.
    Published {
        name: String,
        partition: u32,
        offset: u64,
    },
    /// A receive returned the message, with its delivery count.
    Received {
        name: String,
        partition: u32,
        offset: u64,
        count: u32,
    },
    /// An ack of the message is about to be attempted.
    Acking {
        name: String,
    },
    /// The ack returned Ok for this delivery.
    Acked {
        name: String,
        partition: u32,
        offset: u64,
        count: u32,
    },
    /// The ack returned, refusing this receipt.
    AckFailed {
        name: String,
    },
}

const KEYWORDS: [&str; 5] = ["PUB ", "RCV ", "ACKING ", "ACKED ", "ACKFAIL "];

fn parse_report(line: &str) -> Option<Report> {
    if line == "READY" {
        return Some(Report::Ready);
    }
    let mut words = line.split(' ');
    let kind = words.next()?;
    let name = words.next()?.to_owned();
    let mut numbers = words.map(|w| w.parse::<u64>());
    let mut number = || -> Option<u64> { numbers.next()?.ok() };
    let report = match kind {
        "PUB" => Report::Published {
            name,
            partition: number()? as u32,
            offset: number()?,
        },
        "RCV" => Report::Received {
            name,
            partition: number()? as u32,
            offset: number()?,
            count: number()? as u32,
        },
        "ACKING" => Report::Acking { name },
        "ACKED" => Report::Acked {
            name,
            partition: number()? as u32,
            offset: number()?,
            count: number()? as u32,
        },
        "ACKFAIL" => Report::AckFailed { name },
        _ => return None,
    };
    assert!(number().is_none(), "malformed report line {line:?}");
    Some(report)
}

/// Kills and reaps the worker however the parent test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// When the parent kills a worker.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after the spawn, maybe while the broker is still opening.
    AfterSpawn(Duration),
    /// This long after the worker said it is ready.
    AfterReady(Duration),
}

/// Runs one worker, kills it, and returns its complete report lines.
fn run_worker(dir: &Path, round: u64, seed: u64, kill_at: KillAt) -> Vec<Report> {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["worker", "--exact", "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .env(SEED_ENV, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the worker");
    let stdout = child.stdout.take().expect("worker stdout");
    let mut guard = KillOnDrop(child);
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut reports = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .expect("read the worker");
            if n == 0 || line.last() != Some(&b'\n') {
                // End of output; a line cut short by the kill reports nothing.
                return reports;
            }
            let text = std::str::from_utf8(&line[..n - 1]).expect("utf-8 line");
            match parse_report(text) {
                Some(Report::Ready) => {
                    let _ = ready_tx.send(());
                    reports.push(Report::Ready);
                }
                Some(r) => reports.push(r),
                None => assert!(
                    !KEYWORDS.iter().any(|k| text.contains(k)),
                    "garbled report line {text:?}"
                ),
            }
        }
    });
    match kill_at {
        KillAt::AfterSpawn(wait) => thread::sleep(wait),
        KillAt::AfterReady(wait) => {
            if ready_rx.recv_timeout(Duration::from_secs(15)).is_err() {
                let status = guard.0.try_wait();
                panic!("round {round}: the worker never got ready ({status:?})");
            }
            thread::sleep(wait);
        }
    }
    if let Ok(Some(status)) = guard.0.try_wait() {
        panic!("round {round}: the worker exited on its own before the kill: {status}");
    }
    guard.0.kill().expect("SIGKILL the worker");
    let status = guard.0.wait().expect("wait for the worker");
    assert!(!status.success(), "the worker was killed, not finished");
    reader.join().expect("reader thread")
}

/// What the parent drained from one queue at the end.
#[derive(Debug)]
struct Drained {
    name: String,
    partition: u32,
    offset: u64,
    count: u32,
    /// For a dead letter: where it came from, and its deliveries there.
    origin: Option<(u32, u64, u32)>,
}

/// Receives (and acks) everything left in a queue; it must be empty after.
fn drain(broker: &Broker, queue: &str) -> Vec<Drained> {
    let q = broker.queue(queue).expect("queue after the kills");
    let mut out = Vec::new();
    loop {
        let got = q.receive(500, Some(600_000)).expect("drain: receive");
        if got.is_empty() {
            break;
        }
        let receipts: Vec<_> = got.iter().map(|r| r.receipt).collect();
        for result in q.ack(&receipts).expect("drain: ack") {
            result.expect("drain: ack of a fresh lease");
        }
        for r in got {
            let origin = r.message.dead_letter.as_ref().map(|d| {
                assert_eq!(d.topic, QUEUE, "dead letter from {d:?}");
                (d.partition, d.offset, d.deliveries)
            });
            out.push(Drained {
                name: name_of(&r.message.value),
                partition: r.message.partition,
                offset: r.message.offset,
                count: r.delivery_count,
                origin,
            });
        }
    }
    assert_eq!(q.depth(), 0, "{queue}: messages left after draining");
    out
}

/// Everything the workers reported, and what the checks found.
#[derive(Debug, Default)]
struct Model {
    /// Where each message is in the queue.
    places: HashMap<String, (u32, u64)>,
    owners: HashMap<(u32, u64), String>,
    published: HashSet<String>,
    /// Every delivery of each message: (round, delivery count). The final
    /// drain counts as round `ROUNDS`.
    deliveries: HashMap<String, Vec<(u64, u32)>>,
    /// Acked messages: round and delivery count of the acked delivery.
    acked: HashMap<String, (u64, u32)>,
    /// Messages whose ack was in progress when a worker was killed.
    maybe_acked: HashSet<String>,
    failures: Vec<String>,
}

impl Model {
    fn fail(&mut self, failure: String) {
        self.failures.push(failure);
    }

    /// Checks that a message is always reported at the same place, and no
    /// place holds two messages.
    fn place(&mut self, name: &str, partition: u32, offset: u64, round: u64, what: &str) {
        let place = (partition, offset);
        if let Some(&known) = self.places.get(name) {
            if known != place {
                self.fail(format!(
                    "round {round}: {what} {name} at {place:?}, but it was at {known:?}"
                ));
            }
        } else {
            self.places.insert(name.to_owned(), place);
        }
        match self.owners.get(&place) {
            Some(owner) if owner != name => {
                let owner = owner.clone();
                self.fail(format!(
                    "round {round}: {what} {name} at {place:?}, which held {owner}"
                ));
            }
            Some(_) => {}
            None => {
                self.owners.insert(place, name.to_owned());
            }
        }
    }

    fn absorb(&mut self, round: u64, reports: &[Report]) {
        let mut pending: HashMap<&str, i64> = HashMap::new();
        for report in reports {
            match report {
                Report::Ready => {}
                Report::Published {
                    name,
                    partition,
                    offset,
                } => {
                    self.place(name, *partition, *offset, round, "published");
                    self.published.insert(name.clone());
                }
                Report::Received {
                    name,
                    partition,
                    offset,
                    count,
                } => {
                    self.place(name, *partition, *offset, round, "received");
                    let seen = self.deliveries.entry(name.clone()).or_default();
                    seen.push((round, *count));
                }
                Report::Acking { name } => *pending.entry(name).or_default() += 1,
                Report::Acked {
                    name,
                    partition,
                    offset,
                    count,
                } => {
                    *pending.entry(name).or_default() -= 1;
                    self.place(name, *partition, *offset, round, "acked");
                    if let Some((r, c)) = self.acked.insert(name.clone(), (round, *count)) {
                        self.fail(format!(
                            "round {round}: {name} acked (delivery {count}) after it was \
                             acked in round {r} (delivery {c})"
                        ));
                    }
                }
                Report::AckFailed { name } => *pending.entry(name).or_default() -= 1,
            }
        }
        // Two consumers may both be acking one message (the first one's
        // lease expired), so more than one ack of it may be undecided.
        for (name, n) in pending {
            assert!(
                n >= 0,
                "round {round}: an ack of {name} reported, not attempted"
            );
            if n > 0 {
                self.maybe_acked.insert(name.to_owned());
            }
        }
    }

    /// Runs every check over the reports and the final drains.
    fn verify(&mut self, queue: &[Drained], dead: &[Drained]) {
        let mut in_queue: HashSet<String> = HashSet::new();
        for d in queue {
            self.place(&d.name, d.partition, d.offset, ROUNDS, "drained");
            if !in_queue.insert(d.name.clone()) {
                self.fail(format!("{} drained twice from the queue", d.name));
            }
            let seen = self.deliveries.entry(d.name.clone()).or_default();
            seen.push((ROUNDS, d.count));
        }
        let mut in_dlq: HashMap<String, u32> = HashMap::new();
        for d in dead {
            let (partition, offset, deliveries) = d.origin.expect("dead-letter origin");
            self.place(&d.name, partition, offset, ROUNDS, "dead-lettered");
            if deliveries != MAX_DELIVERIES {
                self.fail(format!(
                    "{} dead-lettered after {deliveries} deliveries, not {MAX_DELIVERIES}",
                    d.name
                ));
            }
            in_dlq.insert(d.name.clone(), deliveries);
        }
        // Delivery counts: durable, growing, bounded.
        let deliveries = std::mem::take(&mut self.deliveries);
        for (name, seen) in &deliveries {
            let mut by_round: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
            for &(round, count) in seen {
                by_round.entry(round).or_default().push(count);
                if count == 0 || count > MAX_DELIVERIES {
                    self.fail(format!(
                        "round {round}: {name} delivered with count {count} \
                         (max_deliveries {MAX_DELIVERIES})"
                    ));
                }
            }
            let mut before: Option<(u64, u32)> = None;
            for (round, mut counts) in by_round {
                counts.sort_unstable();
                if counts.windows(2).any(|w| w[0] == w[1]) {
                    self.fail(format!(
                        "round {round}: {name} delivered twice with one count: {counts:?}"
                    ));
                }
                if let Some((r, max)) = before {
                    if counts[0] <= max {
                        self.fail(format!(
                            "round {round}: {name} delivered with count {}, but round {r} \
                             delivered it with count {max}: a delivery count was lost",
                            counts[0]
                        ));
                    }
                }
                before = Some((round, *counts.last().unwrap()));
            }
        }
        // Acks: never undone.
        let acked = std::mem::take(&mut self.acked);
        for (name, &(round, count)) in &acked {
            for &(r, c) in deliveries.get(name).into_iter().flatten() {
                if c > count || r > round {
                    self.fail(format!(
                        "{name} acked in round {round} (delivery {count}) but delivered \
                         again in round {r} (delivery {c})"
                    ));
                }
            }
            if in_queue.contains(name) {
                self.fail(format!(
                    "{name} acked in round {round} but still in the queue"
                ));
            }
            if in_dlq.contains_key(name) {
                self.fail(format!("{name} acked in round {round} but dead-lettered"));
            }
        }
        // Publishes: never lost.
        let mut known: Vec<&String> = self.published.iter().chain(deliveries.keys()).collect();
        known.sort();
        known.dedup();
        let mut lost = Vec::new();
        for name in known {
            let settled = acked.contains_key(name)
                || self.maybe_acked.contains(name)
                || in_queue.contains(name)
                || in_dlq.contains_key(name);
            if !settled {
                let how = if self.published.contains(name) {
                    "published"
                } else {
                    "received"
                };
                lost.push(format!(
                    "{name} ({how}, deliveries {:?}) is lost: not acked, not in the \
                     queue, not dead-lettered",
                    deliveries.get(name)
                ));
            }
        }
        self.failures.extend(lost);
        self.deliveries = deliveries;
        self.acked = acked;
    }
}

#[test]
fn acknowledged_publishes_and_acks_survive_sigkill() {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("kill_nine: seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("broker");
    let started = Instant::now();
    let mut model = Model::default();
    let mut early_kills = 0;
    let mut rounds_with_acks = 0;
    for round in 0..ROUNDS {
        // Now and then kill it early, maybe while it opens the broker (or,
        // in the first rounds, creates the queues).
        let kill_at = if rng.random_ratio(1, 6) {
            early_kills += 1;
            KillAt::AfterSpawn(Duration::from_millis(rng.random_range(0..60)))
        } else {
            KillAt::AfterReady(Duration::from_millis(rng.random_range(50..500)))
        };
        let reports = run_worker(&dir, round, seed, kill_at);
        if reports.iter().any(|r| matches!(r, Report::Acked { .. })) {
            rounds_with_acks += 1;
        }
        model.absorb(round, &reports);
    }
    let killing = started.elapsed();
    let broker = Broker::open(broker_config(&dir))
        .unwrap_or_else(|e| panic!("seed {seed}: reopening after the kills failed: {e}"));
    let queue = drain(&broker, QUEUE);
    let dead = drain(&broker, DLQ);
    broker.close().expect("close");
    model.verify(&queue, &dead);
    let redelivered_after_kill = model
        .deliveries
        .values()
        .filter(|seen| seen.iter().any(|&(r, _)| r != seen[0].0))
        .count();
    let dead_names: HashSet<&str> = dead.iter().map(|d| d.name.as_str()).collect();
    println!(
        "kill_nine: {ROUNDS} kills ({early_kills} early) in {killing:?}, {:?} in all: \
         {} messages published, {} deliveries, {} acked ({} more maybe acked), \
         {rounds_with_acks} rounds with acks, {redelivered_after_kill} delivered again \
         after a kill; {} left in the queue, {} dead letters ({} messages)",
        started.elapsed(),
        model.published.len(),
        model.deliveries.values().map(Vec::len).sum::<usize>(),
        model.acked.len(),
        model.maybe_acked.len(),
        queue.len(),
        dead.len(),
        dead_names.len(),
    );
    if !model.failures.is_empty() {
        let shown: Vec<&String> = model.failures.iter().take(20).collect();
        panic!(
            "seed {seed}: {} failures (first 20):\n{}",
            model.failures.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        model.acked.len() as u64 > ROUNDS,
        "too few acks: the test proved little"
    );
    assert!(
        rounds_with_acks > ROUNDS / 2,
        "too few rounds acked anything"
    );
}
