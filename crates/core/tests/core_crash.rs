//! Crash test of the broker over the simulated file system: each seed runs a
//! random workload (publishes to a topic and a FIFO queue, receives, acks,
//! nacks, clock moves, ticks, publish retries with a de-duplication id) and
//! cuts the power at random points (unsynced writes dropped, kept in part,
//! torn or reordered), then opens the broker again and checks:
//!
//! - no acknowledged publish is lost: every publish that returned `Ok` is in
//!   the topic (read back through a new `stream` subscription starting at
//!   the earliest offset), and in the end every one was delivered, acked
//!   or dead-lettered;
//! - no acknowledged ack is lost: a record whose ack returned `Ok` is never
//!   delivered again;
//! - receipts from before the crash are refused;
//! - a retried publish with the same de-duplication id is still a
//!   duplicate of the original, at the original offset;
//! - dead letters carry `max_deliveries` deliveries.
//!
//! The first test is single-threaded and deterministic: the power goes
//! between two operations. The second runs the workload on several threads
//! (and a ticker taking snapshots) and cuts the power while operations are
//! under way, so a publish, delivery, ack or dead-letter move can be cut in
//! the middle; what returned `Ok` before must survive all the same.
//!
//! `HERMOD_CRASH_SEED=n` runs one seed, `HERMOD_CRASH_SEEDS=n` runs n seeds
//! (each test), `HERMOD_CRASH_TRACE=1` prints every step of the
//! single-threaded test.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hermod_core::defs::{
    DeliveryMode, QueueConfig, StartPosition, SubscriptionConfig, TopicConfig,
};
use hermod_core::meta::MetaConfig;
use hermod_core::{Broker, BrokerConfig, Error, Message, Receipt, Received};
use hermod_storage::clock::{Clock, ManualClock};
use hermod_storage::sim::SimFs;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEEDS: u64 = 200;
const CONCURRENT_SEEDS: u64 = 100;
const THREADS: usize = 3;
const ROUNDS: usize = 3;
const STEPS: usize = 150;
const EVENTS: &str = "events";
const JOBS: &str = "jobs.fifo";
const DLQ: &str = "jobs-dead";
const MAX_DELIVERIES: u32 = 3;
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;

/// The three leased subscriptions the workload consumes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sub {
    /// The shared subscription `work` on the topic `events`.
    Work,
    Jobs,
    Dlq,
}

const SUBS: [Sub; 3] = [Sub::Work, Sub::Jobs, Sub::Dlq];

impl Sub {
    fn topic(self) -> &'static str {
        match self {
            Sub::Work => EVENTS,
            Sub::Jobs => JOBS,
            Sub::Dlq => DLQ,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sub::Work => "work",
            s => s.topic(),
        }
    }
}

/// A publish to the FIFO queue that returned `Ok`, for retries.
struct Sent {
    message: Message,
    offset: u64,
    at: i64,
}

struct Run {
    fs: Arc<SimFs>,
    clock: Arc<ManualClock>,
    rng: StdRng,
    config: BrokerConfig,
    broker: Option<Broker>,
    /// Values whose publish returned `Ok`, per topic.
    published: HashMap<&'static str, Vec<String>>,
    jobs_sent: Vec<Sent>,
    /// Values whose ack returned `Ok`, per subscription.
    acked: HashMap<Sub, HashSet<String>>,
    /// Receipts held, with the value they deliver.
    outstanding: Vec<(Sub, Receipt, String)>,
    /// Receipts held when the power went.
    stale: Vec<(Sub, Receipt, String)>,
    /// FIFO: offset last delivered per key.
    last_delivered: HashMap<Vec<u8>, u64>,
    /// Deliveries seen per record.
    deliveries: HashMap<(Sub, String), u32>,
    next_value: u64,
    checks: u64,
    crashes: u64,
    acks: u64,
    dead_letters: u64,
    retries: u64,
}

fn trace() -> bool {
    std::env::var_os("HERMOD_CRASH_TRACE").is_some()
}

impl Run {
    fn new(seed: u64) -> Run {
        let mut rng = StdRng::seed_from_u64(seed);
        let fs = SimFs::new(seed);
        let clock = ManualClock::new(1_000_000);
        let mut config = BrokerConfig::new("/sim");
        config.fs = fs.clone();
        config.clock = clock.clone();
        config.trace_capacity = 1_000;
        config.journal_snapshot_every = rng.random_range(2..30);
        config.meta = MetaConfig {
            snapshot_every: rng.random_range(1..6),
            ..MetaConfig::default()
        };
        let mut run = Run {
            fs,
            clock,
            rng,
            config,
            broker: None,
            published: HashMap::new(),
            jobs_sent: Vec::new(),
            acked: SUBS.iter().map(|s| (*s, HashSet::new())).collect(),
            outstanding: Vec::new(),
            stale: Vec::new(),
            last_delivered: HashMap::new(),
            deliveries: HashMap::new(),
            next_value: 0,
            checks: 0,
            crashes: 0,
            acks: 0,
            dead_letters: 0,
            retries: 0,
        };
        run.open();
        run.setup();
        run
    }

    fn open(&mut self) {
        assert!(self.broker.is_none());
        let broker = Broker::open(self.config.clone()).unwrap_or_else(|e| panic!("open: {e}"));
        self.broker = Some(broker);
    }

    fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("open")
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn setup(&mut self) {
        let partitions = self.rng.random_range(1..=3);
        setup(self.broker(), partitions);
    }

    fn value(&mut self, prefix: &str) -> String {
        let n = self.next_value;
        self.next_value += 1;
        let pad = self.rng.random_range(0..400);
        format!("{prefix}{n}-{}", "x".repeat(pad))
    }

    fn step(&mut self) {
        let roll = self.rng.random_range(0..100);
        match roll {
            0..=24 => self.publish_events(),
            25..=39 => self.publish_jobs(),
            40..=44 => self.retry_job(),
            45..=64 => {
                let sub = SUBS[self.rng.random_range(0..SUBS.len())];
                let max = self.rng.random_range(1..=5);
                let visibility = [1_000, 5_000, 30_000][self.rng.random_range(0..3)];
                self.receive(sub, max, visibility);
            }
            65..=79 => self.ack(),
            80..=85 => self.nack(),
            86..=90 => self.clock.advance(self.rng.random_range(1..6_000)),
            91..=93 => self.broker().tick().unwrap(),
            _ => self.crash(),
        }
    }

    fn publish_events(&mut self) {
        let n = self.rng.random_range(1..=4);
        let mut messages = Vec::new();
        let mut values = Vec::new();
        for _ in 0..n {
            let value = self.value("e");
            let key = self
                .rng
                .random_bool(0.7)
                .then(|| format!("k{}", self.rng.random_range(0..6)));
            messages.push(Message {
                key: key.map(Bytes::from),
                value: Bytes::from(value.clone()),
                ..Message::default()
            });
            values.push(value);
        }
        if trace() {
            eprintln!("publish {EVENTS} {}", short(&values));
        }
        self.broker().publish(EVENTS, messages, None).unwrap();
        self.published.entry(EVENTS).or_default().extend(values);
    }

    fn publish_jobs(&mut self) {
        let n = self.rng.random_range(1..=3);
        let mut messages = Vec::new();
        let mut values = Vec::new();
        for _ in 0..n {
            let value = self.value("j");
            let key = format!("g{}", self.rng.random_range(0..3));
            messages.push(Message {
                key: Some(Bytes::from(key)),
                value: Bytes::from(value.clone()),
                dedup_id: Some(format!("id-{value}")),
                ..Message::default()
            });
            values.push(value);
        }
        if trace() {
            eprintln!("publish {JOBS} {}", short(&values));
        }
        let now = self.now();
        let published = self.broker().publish(JOBS, messages.clone(), None).unwrap();
        for (message, p) in messages.into_iter().zip(published) {
            assert!(!p.duplicate, "every id is new: {p:?}");
            self.jobs_sent.push(Sent {
                message,
                offset: p.offset,
                at: now,
            });
        }
        self.published.entry(JOBS).or_default().extend(values);
    }

    /// Publishes a message again with its de-duplication id, as a client
    /// that did not hear the answer would: within the window it must be a
    /// duplicate of the original.
    fn retry_job(&mut self) {
        let now = self.now();
        let recent: Vec<&Sent> = self
            .jobs_sent
            .iter()
            .filter(|s| now - s.at < DEDUP_WINDOW_MS)
            .collect();
        if recent.is_empty() {
            return;
        }
        let sent = recent[self.rng.random_range(0..recent.len())];
        let (message, offset) = (sent.message.clone(), sent.offset);
        if trace() {
            eprintln!("retry {:?} (offset {offset})", message.dedup_id);
        }
        let again = self.broker().publish(JOBS, vec![message], None).unwrap();
        assert!(again[0].duplicate, "retry appended again: {again:?}");
        assert_eq!(again[0].offset, offset, "retry: not the original offset");
        self.retries += 1;
    }

    fn receive(&mut self, sub: Sub, max: usize, visibility: u64) -> Vec<Received> {
        let s = self.broker().subscription(sub.topic(), sub.name()).unwrap();
        let got = s.receive(max, Some(visibility)).unwrap();
        for r in &got {
            let value = value_of(r);
            if trace() {
                eprintln!(
                    "received {:?} {} (delivery {}, offset {})",
                    sub,
                    &value[..value.find('-').unwrap_or(value.len())],
                    r.delivery_count,
                    r.message.offset
                );
            }
            assert!(
                !self.acked[&sub].contains(&value),
                "{sub:?}: {value} was acked, and is delivered again"
            );
            // Delivery counts are durable: every delivery, before a crash or
            // after, counts once.
            let count = self.deliveries.entry((sub, value.clone())).or_insert(0);
            *count += 1;
            assert_eq!(r.delivery_count, *count, "{sub:?}: deliveries of {value}");
            match sub {
                Sub::Dlq => {
                    let dead = r.message.dead_letter.as_ref().expect("a dead letter");
                    assert_eq!(dead.deliveries, MAX_DELIVERIES, "{value}");
                    assert_eq!(dead.topic, JOBS);
                    let delivered = self.deliveries.get(&(Sub::Jobs, value.clone()));
                    assert_eq!(delivered, Some(&MAX_DELIVERIES), "{value}: dead-lettered");
                    if r.delivery_count == 1 {
                        self.dead_letters += 1;
                    }
                }
                Sub::Jobs => {
                    assert!(r.delivery_count <= MAX_DELIVERIES, "{value}");
                    let key = r.message.key.clone().expect("keyed").to_vec();
                    let last = self.last_delivered.entry(key).or_insert(0);
                    assert!(
                        r.message.offset >= *last,
                        "{value}: offset {} after {last} in its group",
                        r.message.offset
                    );
                    *last = r.message.offset;
                }
                Sub::Work => {}
            }
            self.outstanding.push((sub, r.receipt, value));
        }
        got
    }

    /// Acks one to three held receipts of one subscription.
    fn ack(&mut self) {
        if self.outstanding.is_empty() {
            return;
        }
        let sub = self.outstanding[self.rng.random_range(0..self.outstanding.len())].0;
        let mut picked = Vec::new();
        for _ in 0..self.rng.random_range(1..=3) {
            let mine: Vec<usize> = (0..self.outstanding.len())
                .filter(|&i| self.outstanding[i].0 == sub)
                .collect();
            if mine.is_empty() {
                break;
            }
            let i = mine[self.rng.random_range(0..mine.len())];
            picked.push(self.outstanding.swap_remove(i));
        }
        let fresh = picked.len();
        // Now and then a receipt from before a crash, which must be refused
        // (its lease id must not have been handed out again).
        let stale: Vec<usize> = (0..self.stale.len())
            .filter(|&i| self.stale[i].0 == sub)
            .collect();
        if !stale.is_empty() && self.rng.random_bool(0.3) {
            let i = stale[self.rng.random_range(0..stale.len())];
            let mut stale = self.stale[i].clone();
            stale.2 = format!("stale {}", stale.2);
            picked.push(stale);
        }
        let receipts: Vec<Receipt> = picked.iter().map(|(_, r, _)| *r).collect();
        let s = self.broker().subscription(sub.topic(), sub.name()).unwrap();
        let results = s.ack(&receipts).unwrap();
        for (k, ((_, _, value), result)) in picked.into_iter().zip(results).enumerate() {
            if k >= fresh {
                assert!(
                    matches!(result, Err(Error::UnknownReceipt)),
                    "{value}: {result:?}"
                );
                continue;
            }
            if trace() {
                eprintln!(
                    "ack {sub:?} {}: {result:?}",
                    &value[..value.find('-').unwrap()]
                );
            }
            // A lease that expired and was taken back is refused; that is fine.
            if result.is_ok() {
                self.acks += 1;
                self.acked.get_mut(&sub).unwrap().insert(value);
            }
        }
    }

    fn nack(&mut self) {
        if self.outstanding.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.outstanding.len());
        let (sub, receipt, _) = self.outstanding.swap_remove(i);
        let delay = [0, 200][self.rng.random_range(0..2)];
        let s = self.broker().subscription(sub.topic(), sub.name()).unwrap();
        let result = s.nack(&receipt, delay);
        if trace() {
            eprintln!("nack {sub:?}: {result:?}");
        }
        match result {
            Ok(()) | Err(Error::UnknownReceipt) => {}
            Err(e) => panic!("nack: {e}"),
        }
    }

    /// Power loss: the broker is gone without a word, the disk keeps what it
    /// keeps. Then a restart and the checks.
    fn crash(&mut self) {
        if trace() {
            eprintln!("crash");
        }
        drop(self.broker.take());
        self.fs.crash();
        self.crashes += 1;
        self.open();
        self.check_after_restart();
    }

    fn check_after_restart(&mut self) {
        self.checks += 1;
        // Every acknowledged publish to the topic is there, once.
        let found = events_in_topic(self.broker(), self.checks);
        let published = self.published.get(EVENTS).map_or(&[][..], |v| &v[..]);
        for value in published {
            assert_eq!(found.get(value), Some(&1), "{EVENTS}: acknowledged {value}");
        }
        assert_eq!(
            found.len(),
            published.len(),
            "{EVENTS}: records nobody published"
        );
        // Receipts from before the crash are refused, now and later.
        let outstanding = std::mem::take(&mut self.outstanding);
        check_stale(self.broker(), outstanding.clone());
        self.stale.extend(outstanding);
    }

    /// The last crash, then every subscription is drained: nothing acked comes
    /// back, and everything published comes out (jobs perhaps as dead letters).
    fn finish(&mut self) {
        self.crash();
        self.clock.advance(3_600_000);
        let mut drained: HashMap<Sub, HashSet<String>> = HashMap::new();
        for sub in SUBS {
            loop {
                let got = self.receive(sub, 10, 60_000);
                if got.is_empty() {
                    break;
                }
                let receipts: Vec<Receipt> = got.iter().map(|r| r.receipt).collect();
                let s = self.broker().subscription(sub.topic(), sub.name()).unwrap();
                for result in s.ack(&receipts).unwrap() {
                    result.unwrap();
                }
                for r in &got {
                    self.acked.get_mut(&sub).unwrap().insert(value_of(r));
                    drained.entry(sub).or_default().insert(value_of(r));
                }
                self.outstanding.clear();
            }
        }
        for value in self.published.get(EVENTS).into_iter().flatten() {
            assert!(
                self.acked[&Sub::Work].contains(value),
                "{value} was never delivered"
            );
        }
        for value in self.published.get(JOBS).into_iter().flatten() {
            assert!(
                self.acked[&Sub::Jobs].contains(value) || self.acked[&Sub::Dlq].contains(value),
                "{value} was never delivered"
            );
        }
        // The drain's acks are durable too.
        self.crash();
        for sub in SUBS {
            assert!(self.receive(sub, 10, 1_000).is_empty(), "{sub:?}");
        }
    }
}

/// The topic, queues and subscriptions both tests use.
fn setup(broker: &Broker, partitions: u32) {
    let topic = TopicConfig {
        partitions,
        // The smallest segments, so that logs roll.
        segment_bytes: 64 << 10,
        ..TopicConfig::default()
    };
    broker.create_topic(EVENTS, topic).unwrap();
    let work = SubscriptionConfig {
        mode: DeliveryMode::Shared,
        start: StartPosition::Earliest,
        ..SubscriptionConfig::default()
    };
    broker.create_subscription(EVENTS, "work", work).unwrap();
    broker.create_queue(DLQ, QueueConfig::default()).unwrap();
    let jobs = QueueConfig {
        fifo: true,
        max_deliveries: MAX_DELIVERIES,
        dead_letter: Some(DLQ.into()),
        ..QueueConfig::default()
    };
    broker.create_queue(JOBS, jobs).unwrap();
}

/// Every value in the topic `events`, with how often it is there, read by a
/// new stream subscription from the earliest offset (deleted afterwards).
fn events_in_topic(broker: &Broker, check: u64) -> HashMap<String, u32> {
    let name = format!("check-{check}");
    let stream = SubscriptionConfig {
        mode: DeliveryMode::Stream,
        start: StartPosition::Earliest,
        ..SubscriptionConfig::default()
    };
    broker.create_subscription(EVENTS, &name, stream).unwrap();
    let s = broker.subscription(EVENTS, &name).unwrap();
    let mut found: HashMap<String, u32> = HashMap::new();
    loop {
        let records = s.poll(1_000, 1 << 20).unwrap();
        if records.is_empty() {
            break;
        }
        for r in records {
            let value = String::from_utf8(r.value.to_vec()).unwrap();
            *found.entry(value).or_default() += 1;
        }
    }
    drop(s);
    broker.delete_subscription(EVENTS, &name).unwrap();
    found
}

/// Receipts from before a crash are refused.
fn check_stale(broker: &Broker, receipts: Vec<(Sub, Receipt, String)>) {
    for (sub, receipt, value) in receipts {
        let s = broker.subscription(sub.topic(), sub.name()).unwrap();
        let result = s.ack(&[receipt]).unwrap().pop().unwrap();
        assert!(
            matches!(result, Err(Error::UnknownReceipt)),
            "{sub:?}: a receipt of {value} from before the crash: {result:?}"
        );
    }
}

fn value_of(r: &Received) -> String {
    String::from_utf8(r.message.value.to_vec()).unwrap()
}

fn short(values: &[String]) -> String {
    let names: Vec<&str> = values
        .iter()
        .map(|v| &v[..v.find('-').unwrap_or(v.len())])
        .collect();
    names.join(",")
}

/// The seeds to run: `HERMOD_CRASH_SEED`, else `HERMOD_CRASH_SEEDS` or
/// `default` many.
fn seeds(default: u64) -> std::ops::Range<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse().ok());
    match (var("HERMOD_CRASH_SEED"), var("HERMOD_CRASH_SEEDS")) {
        (Some(seed), _) => seed..seed + 1,
        (None, Some(count)) => 0..count,
        (None, None) => 0..default,
    }
}

#[test]
fn acknowledged_publishes_and_acks_survive_power_loss() {
    let (mut crashes, mut acks, mut dead, mut retries, mut published) = (0, 0, 0, 0, 0);
    let seeds = seeds(SEEDS);
    let count = seeds.end - seeds.start;
    for seed in seeds {
        let result = std::panic::catch_unwind(|| {
            let mut run = Run::new(seed);
            for _ in 0..STEPS {
                run.step();
            }
            run.finish();
            run
        });
        let run = result.unwrap_or_else(|panic| {
            eprintln!(
                "seed {seed} failed; rerun it with HERMOD_CRASH_SEED={seed} HERMOD_CRASH_TRACE=1"
            );
            std::panic::resume_unwind(panic)
        });
        crashes += run.crashes;
        acks += run.acks;
        dead += run.dead_letters;
        retries += run.retries;
        published += run.published.values().map(Vec::len).sum::<usize>() as u64;
    }
    eprintln!(
        "{count} seeds: {published} records published, {acks} acks, {dead} dead letters, \
         {retries} retried publishes, {crashes} crashes"
    );
    assert!(crashes >= count * 3, "too few crashes to prove anything");
    assert!(acks >= count * 10, "too few acks to prove anything");
    assert!(published >= count * 50);
}

/// What the threads of the concurrent test learned: only what returned `Ok`
/// counts.
#[derive(Default)]
struct Ledger {
    /// Values whose publish returned `Ok`, per topic.
    published: HashMap<&'static str, HashSet<String>>,
    /// Every value a publish was tried with.
    tried: HashSet<String>,
    /// Records (see [`ident`]) whose ack returned `Ok`, per subscription.
    acked: HashMap<Sub, HashSet<String>>,
    /// Records whose ack failed as a whole (the power went): the ack may
    /// have reached the disk or not, so the record may or may not come back.
    ack_tried: HashMap<Sub, HashSet<String>>,
    /// Receipts held when the power went.
    outstanding: Vec<(Sub, Receipt, String)>,
    /// Delivered again after an ack that returned `Ok` (must stay empty).
    violations: Vec<String>,
    acks: u64,
    dead_letters: u64,
}

impl Ledger {
    /// Notes a delivery; one of a record acked with `Ok` is a violation.
    fn delivered(&mut self, sub: Sub, r: &Received) {
        let id = ident(sub, r);
        if self.acked.get(&sub).is_some_and(|a| a.contains(&id)) {
            let name = &id[..id.find('-').unwrap_or(id.len())];
            self.violations.push(format!(
                "{sub:?}: {name} delivered after its ack returned Ok"
            ));
        }
        if sub == Sub::Dlq {
            self.dead_letters += u64::from(r.delivery_count == 1);
            let deliveries = r.message.dead_letter.as_ref().map(|d| d.deliveries);
            if deliveries != Some(MAX_DELIVERIES) {
                self.violations
                    .push(format!("dead letter with {deliveries:?} deliveries"));
            }
        }
    }
}

/// What identifies a delivered record in the concurrent test: its value, and
/// for a dead letter also its offset, since a power loss in the middle of a
/// dead-letter move may move a record twice (never lose it): the second copy
/// is another record.
fn ident(sub: Sub, r: &Received) -> String {
    match sub {
        Sub::Dlq => format!("{}@{}", value_of(r), r.message.offset),
        _ => value_of(r),
    }
}

/// One worker thread: publishes, receives, acks and nacks until told to
/// stop, recording what returned `Ok`. Errors after the power went are
/// expected; so are refused receipts.
fn worker(
    broker: Arc<Broker>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    seed: u64,
    tag: String,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut held: Vec<(Sub, Receipt, String)> = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        ops.fetch_add(1, Ordering::SeqCst);
        match rng.random_range(0..100) {
            0..=24 => {
                let values: Vec<String> = (0..rng.random_range(1..=3))
                    .map(|_| {
                        n += 1;
                        format!("e{tag}.{n}-{}", "x".repeat(rng.random_range(0..300)))
                    })
                    .collect();
                let messages = values
                    .iter()
                    .map(|v| Message {
                        key: rng
                            .random_bool(0.7)
                            .then(|| Bytes::from(format!("k{}", rng.random_range(0..6)))),
                        value: Bytes::from(v.clone()),
                        ..Message::default()
                    })
                    .collect();
                ledger.lock().unwrap().tried.extend(values.iter().cloned());
                if broker.publish(EVENTS, messages, None).is_ok() {
                    let mut l = ledger.lock().unwrap();
                    l.published.entry(EVENTS).or_default().extend(values);
                }
            }
            25..=39 => {
                n += 1;
                let value = format!("j{tag}.{n}-");
                let message = Message {
                    key: Some(Bytes::from(format!("g{}", rng.random_range(0..4)))),
                    value: Bytes::from(value.clone()),
                    dedup_id: Some(value.clone()),
                    ..Message::default()
                };
                ledger.lock().unwrap().tried.insert(value.clone());
                if broker.publish(JOBS, vec![message], None).is_ok() {
                    let mut l = ledger.lock().unwrap();
                    l.published.entry(JOBS).or_default().insert(value);
                }
            }
            40..=69 => {
                let sub = SUBS[rng.random_range(0..SUBS.len())];
                let Ok(s) = broker.subscription(sub.topic(), sub.name()) else {
                    continue;
                };
                if let Ok(got) = s.receive(rng.random_range(1..=4), Some(60_000)) {
                    let mut l = ledger.lock().unwrap();
                    for r in &got {
                        l.delivered(sub, r);
                        held.push((sub, r.receipt, ident(sub, r)));
                    }
                }
            }
            70..=84 => {
                if held.is_empty() {
                    continue;
                }
                let sub = held[rng.random_range(0..held.len())].0;
                let mine: Vec<(Sub, Receipt, String)>;
                (mine, held) = held.into_iter().partition(|(s, _, _)| *s == sub);
                let receipts: Vec<Receipt> = mine.iter().map(|(_, r, _)| *r).collect();
                let Ok(s) = broker.subscription(sub.topic(), sub.name()) else {
                    continue;
                };
                let outcome = s.ack(&receipts);
                let mut l = ledger.lock().unwrap();
                match outcome {
                    Ok(results) => {
                        for ((_, _, value), result) in mine.into_iter().zip(results) {
                            if result.is_ok() {
                                l.acks += 1;
                                l.acked.entry(sub).or_default().insert(value);
                            }
                        }
                    }
                    Err(_) => {
                        let tried = l.ack_tried.entry(sub).or_default();
                        tried.extend(mine.into_iter().map(|(_, _, value)| value));
                    }
                }
            }
            _ => {
                if held.is_empty() {
                    continue;
                }
                let (sub, receipt, _) = held.swap_remove(rng.random_range(0..held.len()));
                if let Ok(s) = broker.subscription(sub.topic(), sub.name()) {
                    let _ = s.nack(&receipt, 0);
                }
            }
        }
    }
    ledger.lock().unwrap().outstanding.extend(held);
}

/// Checks one seed of the concurrent test; returns (acks, dead letters,
/// crashes).
fn concurrent_run(seed: u64) -> (u64, u64, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let fs = SimFs::new(seed);
    let clock = ManualClock::new(1_000_000);
    let mut config = BrokerConfig::new("/sim");
    config.fs = fs.clone();
    config.clock = clock.clone();
    config.trace_capacity = 1_000;
    config.journal_snapshot_every = rng.random_range(2..20);
    config.meta = MetaConfig {
        snapshot_every: rng.random_range(1..4),
        ..MetaConfig::default()
    };
    let open = |config: &BrokerConfig| {
        Arc::new(Broker::open(config.clone()).unwrap_or_else(|e| panic!("open: {e}")))
    };
    let mut broker = open(&config);
    setup(&broker, rng.random_range(1..=3));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut crashes = 0;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for t in 0..THREADS {
            let (broker, ledger, stop, ops) =
                (broker.clone(), ledger.clone(), stop.clone(), ops.clone());
            let worker_seed = rng.random();
            let tag = format!("{round}.{t}");
            threads.push(std::thread::spawn(move || {
                worker(broker, ledger, stop, ops, worker_seed, tag)
            }));
        }
        {
            // A ticker: snapshots and lease upkeep while the workers run.
            let (broker, stop) = (broker.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let _ = broker.tick();
                    std::thread::yield_now();
                }
            }));
        }
        let target = rng.random_range(20..400);
        while ops.load(Ordering::SeqCst) < target {
            std::thread::yield_now();
        }
        // The power goes while the threads are busy.
        fs.crash();
        crashes += 1;
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().expect("a worker panicked");
        }
        drop(broker);
        clock.advance(rng.random_range(0..1_000));
        broker = open(&config);
        let mut l = ledger.lock().unwrap();
        assert!(l.violations.is_empty(), "{:?}", l.violations);
        let found = events_in_topic(&broker, round as u64);
        for value in l.published.get(EVENTS).into_iter().flatten() {
            assert_eq!(found.get(value), Some(&1), "acknowledged {value}");
        }
        for (value, count) in &found {
            assert!(l.tried.contains(value), "{value} was never published");
            assert_eq!(*count, 1, "{value} is there {count} times");
        }
        // Receipts from before are refused, also once new leases are out
        // (a new lease must never reuse the id of one handed out before).
        let mut fresh = Vec::new();
        for sub in SUBS {
            let s = broker.subscription(sub.topic(), sub.name()).unwrap();
            for r in s.receive(50, Some(60_000)).unwrap() {
                l.delivered(sub, &r);
                fresh.push((s.clone(), r.receipt));
            }
        }
        check_stale(&broker, std::mem::take(&mut l.outstanding));
        for (s, receipt) in fresh {
            s.nack(&receipt, 0).unwrap();
        }
    }
    // Drain: nothing acked comes back, everything published comes out.
    clock.advance(3_600_000);
    let mut l = ledger.lock().unwrap();
    for sub in SUBS {
        let s = broker.subscription(sub.topic(), sub.name()).unwrap();
        loop {
            let got = s.receive(100, Some(60_000)).unwrap();
            if got.is_empty() {
                break;
            }
            for r in &got {
                l.delivered(sub, r);
                l.acked.entry(sub).or_default().insert(ident(sub, r));
            }
            let receipts: Vec<Receipt> = got.iter().map(|r| r.receipt).collect();
            for result in s.ack(&receipts).unwrap() {
                result.unwrap();
            }
        }
    }
    assert!(l.violations.is_empty(), "{:?}", l.violations);
    // Every acknowledged publish was delivered, and acked (or its ack was
    // cut by the power loss, and may have landed).
    let done = |sub: Sub, value: &String| {
        let has = |m: &HashMap<Sub, HashSet<String>>| {
            m.get(&sub)
                .is_some_and(|ids| ids.iter().any(|id| id.split('@').next() == Some(value)))
        };
        has(&l.acked) || has(&l.ack_tried)
    };
    for value in l.published.get(EVENTS).into_iter().flatten() {
        assert!(done(Sub::Work, value), "{value} never delivered");
    }
    for value in l.published.get(JOBS).into_iter().flatten() {
        assert!(
            done(Sub::Jobs, value) || done(Sub::Dlq, value),
            "{value} never delivered"
        );
    }
    (l.acks, l.dead_letters, crashes)
}

#[test]
fn acknowledged_work_survives_power_loss_in_the_middle_of_concurrent_operations() {
    let (mut acks, mut dead, mut crashes) = (0, 0, 0);
    let seeds = seeds(CONCURRENT_SEEDS);
    let count = seeds.end - seeds.start;
    for seed in seeds {
        let result = std::panic::catch_unwind(|| concurrent_run(seed));
        let (a, d, c) = result.unwrap_or_else(|panic| {
            eprintln!("concurrent seed {seed} failed (thread timing varies between runs)");
            std::panic::resume_unwind(panic)
        });
        acks += a;
        dead += d;
        crashes += c;
    }
    eprintln!("{count} concurrent seeds: {acks} acks, {dead} dead letters, {crashes} crashes");
    assert!(acks >= count * 5, "too few acks to prove anything");
}
