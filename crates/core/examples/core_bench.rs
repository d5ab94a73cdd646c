//! In-process benchmarks of the messaging core (`hermod-core`): publish,
//! receive and ack through a [`Broker`] on a real data directory, with
//! `fsync` durability (the default), no sockets and no protocol front.
//!
//! ```text
//! core_bench --scenario queue|ordered|fanout|fanout-exchange
//!     [--count 200000] [--size 1024] [--producers P] [--consumers C]
//!     [--batch 1] [--receive-max 10] [--backlog 0] [--prefill-batch 1000]
//!     [--prefill-threads 2] [--keys 1000] [--partitions 1] [--tick-ms 1000]
//!     [--settle-secs 0] [--trace-capacity 100000] [--dir DIR] [--keep]
//! ```
//!
//! - `queue`: one queue (default `QueueConfig`: 1 partition, `fsync`,
//!   shared delivery). P producer threads (default 4) publish `--count`
//!   messages of `--size` bytes between them; C consumer threads (default
//!   4) call `receive(--receive-max)` (long-polling on the doorbell) and ack
//!   each received batch with one `ack` call, until every message is acked.
//! - `queue --backlog N`: the same queue is first filled with N records
//!   (`--prefill-batch` messages per publish, from `--prefill-threads`
//!   threads; still `fsync`, so each prefill batch costs one sync). Then the
//!   measured phase runs as above: producers append `--count` new messages
//!   at the tail while consumers ack `--count` messages from the head, so the
//!   queue stays N deep throughout. The end-to-end latency of a backlog run
//!   is the age of the backlog and is reported but meaningless; the publish
//!   and ack call latencies are the comparable ones.
//! - `ordered`: a FIFO queue (`fifo: true`, ordered delivery), messages keyed
//!   over `--keys` keys (default 1,000). Checked: at most one record per key
//!   in flight, and per key the offsets are delivered in increasing order.
//! - `fanout`: one topic with 3 shared subscriptions; P producers (default 1)
//!   publish, C consumers per subscription (default 1) drain each; every
//!   subscription must ack every message once.
//! - `fanout-exchange`: a fanout exchange bound to 3 queues (one publish
//!   appends to each queue in turn, so 3 log syncs per message); `--batch`
//!   must be 1 (an exchange publish takes one message).
//!
//! `--batch` is the number of messages per `publish` call (one log append,
//! so one group-commit participant). The default of 1 is the unbatched case
//! of SQS `SendMessage` or an AMQP publish with confirms; `--receive-max`
//! (default 10, SQS's largest) is both the receive batch and the ack batch.
//!
//! Every message carries its send time and a unique index in its first 20
//! bytes. Every scenario checks that each message was acked exactly once
//! (per subscription), that every ack was accepted, that every publish got
//! its own offset, and (ordered) per-key order. A tick thread calls
//! `Broker::tick` every `--tick-ms` as the server does (retention of
//! finished segments, journal snapshots).
//!
//! Output: one JSON line (starting with `{`) and one human line (starting
//! with `#`). Rates are messages per second and MiB/s (2^20 bytes) of
//! message values; latencies in microseconds; memory from /proc/self/status
//! (VmHWM is reset after the prefill where the kernel allows it); syncs are
//! counted by wrapping the file system (`fdatasync` calls per kind of file).

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hermod_core::defs::{
    BindingDef, ExchangeConfig, QueueConfig, StartPosition, SubscriptionConfig, TopicConfig,
};
use hermod_core::routing::ExchangeKind;
use hermod_core::subscription::Subscription;
use hermod_core::{Broker, BrokerConfig, Message};
use hermod_storage::io::{File, Fs, StdFs};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxError>;

const MIB: f64 = (1u64 << 20) as f64;
/// Bytes at the start of every value: send time (ns), index, key.
const HEADER: usize = 20;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let outcome = Args::parse(&argv).and_then(|mut args| {
        let opts = Opts::from_args(&mut args)?;
        args.finish()?;
        run(&opts)
    });
    match outcome {
        Ok(report) => {
            println!("{}", report.json());
            println!("# {}", report.human);
        }
        Err(e) => {
            eprintln!("core_bench: FAILED: {e}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------- arguments

/// `--key value` options and `--flag` switches, checked for leftovers.
struct Args {
    values: HashMap<String, String>,
    flags: HashSet<String>,
    used: HashSet<String>,
}

impl Args {
    fn parse(argv: &[String]) -> Res<Args> {
        let mut values = HashMap::new();
        let mut flags = HashSet::new();
        let mut i = 0;
        while i < argv.len() {
            let Some(key) = argv[i].strip_prefix("--") else {
                return Err(format!("unexpected argument {:?}", argv[i]).into());
            };
            match argv.get(i + 1) {
                Some(v) if !v.starts_with("--") => {
                    values.insert(key.to_string(), v.clone());
                    i += 2;
                }
                _ => {
                    flags.insert(key.to_string());
                    i += 1;
                }
            }
        }
        Ok(Args {
            values,
            flags,
            used: HashSet::new(),
        })
    }

    fn get<T: std::str::FromStr>(&mut self, key: &str, default: T) -> Res<T>
    where
        T::Err: std::fmt::Display,
    {
        self.used.insert(key.to_string());
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("--{key} {v:?}: {e}").into()),
        }
    }

    fn flag(&mut self, key: &str) -> bool {
        self.used.insert(key.to_string());
        self.flags.contains(key)
    }

    fn finish(&self) -> Res<()> {
        let unknown: Vec<_> = self
            .values
            .keys()
            .chain(self.flags.iter())
            .filter(|k| !self.used.contains(*k))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("unknown options: {unknown:?}").into())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Queue,
    Ordered,
    Fanout,
    FanoutExchange,
}

struct Opts {
    scenario: Scenario,
    name: String,
    count: u64,
    size: usize,
    producers: usize,
    /// Per subscription.
    consumers: usize,
    batch: usize,
    receive_max: usize,
    backlog: u64,
    prefill_batch: usize,
    prefill_threads: usize,
    keys: u32,
    partitions: u32,
    tick_ms: u64,
    settle_secs: u64,
    trace_capacity: Option<usize>,
    dir: PathBuf,
    keep: bool,
}

impl Opts {
    fn from_args(args: &mut Args) -> Res<Opts> {
        let name: String = args.get("scenario", "queue".to_string())?;
        let scenario = match name.as_str() {
            "queue" => Scenario::Queue,
            "ordered" => Scenario::Ordered,
            "fanout" => Scenario::Fanout,
            "fanout-exchange" => Scenario::FanoutExchange,
            other => {
                return Err(format!(
                    "--scenario {other:?}: want queue, ordered, fanout or fanout-exchange"
                )
                .into())
            }
        };
        let fan = matches!(scenario, Scenario::Fanout | Scenario::FanoutExchange);
        let opts = Opts {
            scenario,
            name,
            count: args.get("count", 200_000)?,
            size: args.get("size", 1024)?,
            producers: args.get("producers", if fan { 1 } else { 4 })?,
            consumers: args.get("consumers", if fan { 1 } else { 4 })?,
            batch: args.get("batch", 1)?,
            receive_max: args.get("receive-max", 10)?,
            backlog: args.get("backlog", 0)?,
            prefill_batch: args.get("prefill-batch", 1000)?,
            prefill_threads: args.get("prefill-threads", 2)?,
            keys: args.get("keys", 1000)?,
            partitions: args.get("partitions", 1)?,
            tick_ms: args.get("tick-ms", 1000)?,
            settle_secs: args.get("settle-secs", 0)?,
            trace_capacity: match args.get("trace-capacity", String::new())? {
                v if v.is_empty() => None,
                v => Some(v.parse()?),
            },
            dir: PathBuf::from(args.get("dir", "target/bench-data/core".to_string())?),
            keep: args.flag("keep"),
        };
        if opts.size < HEADER {
            return Err(format!("--size must be at least {HEADER}").into());
        }
        if opts.producers == 0 || opts.consumers == 0 || opts.batch == 0 || opts.receive_max == 0 {
            return Err("--producers, --consumers, --batch and --receive-max must be > 0".into());
        }
        if opts.count < opts.producers as u64 {
            return Err("--count must be at least --producers".into());
        }
        if scenario == Scenario::FanoutExchange && opts.batch != 1 {
            return Err("fanout-exchange publishes one message per call: --batch 1".into());
        }
        if opts.backlog > 0 && fan {
            return Err("--backlog is for the queue and ordered scenarios".into());
        }
        if opts.keys == 0 {
            return Err("--keys must be > 0".into());
        }
        Ok(opts)
    }
}

// ---------------------------------------------------------------- reporting

/// One scenario's results: JSON fields, and a sentence for humans.
struct Report {
    fields: serde_json::Map<String, serde_json::Value>,
    human: String,
}

impl Report {
    fn new(scenario: &str) -> Report {
        let mut r = Report {
            fields: serde_json::Map::new(),
            human: String::new(),
        };
        r.str("scenario", scenario);
        r
    }
    fn int(&mut self, k: &str, v: u64) {
        self.fields.insert(k.into(), v.into());
    }
    /// Rounded to 3 decimals; not-a-number and infinities become null.
    fn num(&mut self, k: &str, v: f64) {
        let rounded = (v * 1000.0).round() / 1000.0;
        let value =
            serde_json::Number::from_f64(rounded).map_or(serde_json::Value::Null, Into::into);
        self.fields.insert(k.into(), value);
    }
    fn str(&mut self, k: &str, v: &str) {
        self.fields.insert(k.into(), v.into());
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.fields.insert(k.into(), v.into());
    }

    fn json(&self) -> String {
        serde_json::Value::Object(self.fields.clone()).to_string()
    }
}

// ---------------------------------------------------------------- counting file system

/// Which files a sync or write was for.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Topic = 0,
    Journal = 1,
    Meta = 2,
}

#[derive(Debug, Default)]
struct Counters {
    syncs: [AtomicU64; 3],
    written: [AtomicU64; 3],
}

impl Counters {
    fn snapshot(&self) -> [(u64, u64); 3] {
        let f = |k: usize| {
            (
                self.syncs[k].load(Ordering::Relaxed),
                self.written[k].load(Ordering::Relaxed),
            )
        };
        [f(0), f(1), f(2)]
    }
}

/// The real file system, counting `fdatasync` calls and bytes written.
#[derive(Debug)]
struct CountingFs {
    inner: Arc<dyn Fs>,
    counters: Arc<Counters>,
}

#[derive(Debug)]
struct CountingFile {
    inner: Arc<dyn File>,
    kind: Kind,
    counters: Arc<Counters>,
}

impl Fs for CountingFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn File>> {
        let text = path.to_string_lossy();
        let kind = if text.contains("/topics/") {
            Kind::Topic
        } else if text.contains("/subscriptions/") {
            Kind::Journal
        } else {
            Kind::Meta
        };
        Ok(Arc::new(CountingFile {
            inner: self.inner.open(path, create)?,
            kind,
            counters: self.counters.clone(),
        }))
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

impl File for CountingFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.counters.written[self.kind as usize].fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.inner.write_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        let r = self.inner.sync_data();
        self.counters.syncs[self.kind as usize].fetch_add(1, Ordering::Relaxed);
        r
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

// ---------------------------------------------------------------- helpers

/// A field of /proc/self/status in KiB (VmRSS, VmHWM).
fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// User plus system CPU time of the process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the
    // 12th and stime the 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

/// Clock ticks per second (USER_HZ), 100 on Linux.
fn ticks_per_second() -> f64 {
    100.0
}

/// Resets VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs).
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Bytes of every file under `dir`, recursively.
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => tree_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn new_hist() -> Histogram<u64> {
    // 1 ns to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds")
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

/// A message whose value starts with send time, index and key number.
fn message(start: Instant, index: u64, key: Option<u32>, size: usize, filler: &[u8]) -> Message {
    let mut value = Vec::with_capacity(size);
    value.extend_from_slice(&(start.elapsed().as_nanos() as u64).to_le_bytes());
    value.extend_from_slice(&index.to_le_bytes());
    value.extend_from_slice(&key.unwrap_or(u32::MAX).to_le_bytes());
    value.extend_from_slice(&filler[..size - HEADER]);
    Message {
        key: key.map(|k| Bytes::from(format!("key-{k}"))),
        value: Bytes::from(value),
        ..Message::default()
    }
}

fn parse_value(v: &[u8]) -> (u64, u64, u32) {
    let sent = u64::from_le_bytes(v[0..8].try_into().unwrap());
    let index = u64::from_le_bytes(v[8..16].try_into().unwrap());
    let key = u32::from_le_bytes(v[16..20].try_into().unwrap());
    (sent, index, key)
}

fn filler(size: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One bit per message index: acked or not.
struct Bitmap(Vec<AtomicU64>);

impl Bitmap {
    fn new(bits: u64) -> Bitmap {
        Bitmap((0..bits.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }
    /// Sets the bit; false if it was already set.
    fn set(&self, i: u64) -> bool {
        let bit = 1u64 << (i % 64);
        self.0[(i / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit == 0
    }
    fn count_in(&self, from: u64, to: u64) -> u64 {
        (from..to)
            .filter(|&i| self.0[(i / 64) as usize].load(Ordering::Relaxed) & (1 << (i % 64)) != 0)
            .count() as u64
    }
}

/// What the threads of one run share.
struct Shared {
    start: Instant,
    /// Per subscription: acked message indices, acked count, target count.
    acked_bits: Vec<Bitmap>,
    acked: Vec<AtomicU64>,
    target: u64,
    duplicates: AtomicU64,
    refused_acks: AtomicU64,
    /// Ordered: last offset delivered per key (u64::MAX: none), key in flight.
    key_last: Vec<AtomicU64>,
    key_busy: Vec<AtomicBool>,
    order_violations: AtomicU64,
    /// Messages delivered from outside the expected index range.
    strays: AtomicU64,
    expect: (u64, u64),
}

struct ThreadResult {
    /// Publish call latency (producers) or ack call latency per acked
    /// message (consumers), ns.
    hist: Histogram<u64>,
    /// End-to-end: send time to ack returned, ns (consumers only).
    e2e: Histogram<u64>,
    /// (partition, offset) of every published message (producers only).
    placed: Vec<(u32, u64)>,
    /// When the thread finished, since start.
    done: Duration,
    calls: u64,
}

// ---------------------------------------------------------------- run

fn run(o: &Opts) -> Res<Report> {
    if o.dir.exists() {
        std::fs::remove_dir_all(&o.dir)?;
    }
    let counters = Arc::new(Counters::default());
    let fs: Arc<dyn Fs> = Arc::new(CountingFs {
        inner: StdFs::shared(),
        counters: counters.clone(),
    });
    let mut config = BrokerConfig::new(&o.dir);
    config.fs = fs;
    if let Some(n) = o.trace_capacity {
        config.trace_capacity = n;
    }
    let broker = Arc::new(Broker::open(config)?);

    // Where producers publish, and the subscriptions consumers drain.
    let (target_name, subs): (String, Vec<Arc<Subscription>>) = match o.scenario {
        Scenario::Queue | Scenario::Ordered => {
            let config = QueueConfig {
                fifo: o.scenario == Scenario::Ordered,
                partitions: o.partitions,
                ..QueueConfig::default()
            };
            broker.create_queue("bench", config)?;
            ("bench".into(), vec![broker.queue("bench")?])
        }
        Scenario::Fanout => {
            let config = TopicConfig {
                partitions: o.partitions,
                ..TopicConfig::default()
            };
            broker.create_topic("bench", config)?;
            let mut subs = Vec::new();
            for s in 0..3 {
                let name = format!("sub{s}");
                let config = SubscriptionConfig {
                    start: StartPosition::Earliest,
                    ..SubscriptionConfig::default()
                };
                broker.create_subscription("bench", &name, config)?;
                subs.push(broker.subscription("bench", &name)?);
            }
            ("bench".into(), subs)
        }
        Scenario::FanoutExchange => {
            let config = ExchangeConfig {
                kind: ExchangeKind::Fanout,
                alternate: None,
            };
            broker.create_exchange("fan", config)?;
            let mut subs = Vec::new();
            for s in 0..3 {
                let name = format!("q{s}");
                let config = QueueConfig {
                    partitions: o.partitions,
                    ..QueueConfig::default()
                };
                broker.create_queue(&name, config)?;
                broker.bind(BindingDef {
                    exchange: "fan".into(),
                    destination: name.clone(),
                    key: None,
                    filter: None,
                })?;
                subs.push(broker.queue(&name)?);
            }
            ("fan".into(), subs)
        }
    };

    let start = Instant::now();
    let total = o.backlog + o.count;
    let ordered = o.scenario == Scenario::Ordered;
    let keys = if ordered { o.keys as usize } else { 0 };
    let shared = Arc::new(Shared {
        start,
        acked_bits: (0..subs.len()).map(|_| Bitmap::new(total)).collect(),
        acked: (0..subs.len()).map(|_| AtomicU64::new(0)).collect(),
        target: o.count,
        duplicates: AtomicU64::new(0),
        refused_acks: AtomicU64::new(0),
        key_last: (0..keys).map(|_| AtomicU64::new(u64::MAX)).collect(),
        key_busy: (0..keys).map(|_| AtomicBool::new(false)).collect(),
        order_violations: AtomicU64::new(0),
        strays: AtomicU64::new(0),
        expect: (0, total),
    });
    let fill = Arc::new(filler(o.size));

    // ------------------------------------------------------------ prefill
    let mut prefill_s = 0.0;
    if o.backlog > 0 {
        let t = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..o.prefill_threads.max(1))
            .map(|_| {
                let (broker, next, fill) = (broker.clone(), next.clone(), fill.clone());
                let (backlog, batch, size, keys) =
                    (o.backlog, o.prefill_batch as u64, o.size, o.keys);
                std::thread::spawn(move || -> Res<()> {
                    loop {
                        let from = next.fetch_add(batch, Ordering::Relaxed);
                        if from >= backlog {
                            return Ok(());
                        }
                        let to = (from + batch).min(backlog);
                        let msgs: Vec<Message> = (from..to)
                            .map(|i| {
                                let key = ordered.then_some((i % u64::from(keys)) as u32);
                                message(start, i, key, size, &fill)
                            })
                            .collect();
                        let placed = broker.publish("bench", msgs, None)?;
                        if placed.len() as u64 != to - from || placed.iter().any(|p| p.duplicate) {
                            return Err("prefill publish placed the wrong messages".into());
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| "prefill thread panicked")??;
        }
        prefill_s = t.elapsed().as_secs_f64();
        let depth = subs[0].depth();
        if depth != o.backlog {
            return Err(format!("backlog depth {depth}, expected {}", o.backlog).into());
        }
        eprintln!(
            "# prefill: {} records in {prefill_s:.1} s ({:.0} records/s), RSS {} MiB",
            o.backlog,
            o.backlog as f64 / prefill_s,
            proc_status_kib("VmRSS") / 1024
        );
    }
    if o.settle_secs > 0 {
        // Let the disk finish with the prefill (host caches included)
        // before measuring.
        std::thread::sleep(Duration::from_secs(o.settle_secs));
    }
    let hwm_before_kib = proc_status_kib("VmHWM");
    let hwm_reset = reset_hwm();
    let rss_start_kib = proc_status_kib("VmRSS");
    let counters_before = counters.snapshot();
    let cpu_before = cpu_ticks();

    // ------------------------------------------------------------ measured phase
    let stop = Arc::new(AtomicBool::new(false));
    let rss_max = Arc::new(AtomicU64::new(rss_start_kib));
    let tick_max_us = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, rss_max, broker, tick_max_us) = (
            stop.clone(),
            rss_max.clone(),
            broker.clone(),
            tick_max_us.clone(),
        );
        let tick_every = Duration::from_millis(o.tick_ms);
        std::thread::spawn(move || -> Res<()> {
            let mut last_tick = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                rss_max.fetch_max(proc_status_kib("VmRSS"), Ordering::Relaxed);
                if last_tick.elapsed() >= tick_every {
                    let t = Instant::now();
                    broker.tick()?;
                    tick_max_us.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    last_tick = Instant::now();
                }
            }
            Ok(())
        })
    };

    let consumers_total = o.consumers * subs.len();
    let barrier = Arc::new(Barrier::new(o.producers + consumers_total + 1));
    let mut producers = Vec::new();
    for p in 0..o.producers {
        let (broker, barrier, fill, shared) = (
            broker.clone(),
            barrier.clone(),
            fill.clone(),
            shared.clone(),
        );
        let per = o.count / o.producers as u64;
        let from = o.backlog + p as u64 * per;
        let to = if p + 1 == o.producers {
            o.backlog + o.count
        } else {
            from + per
        };
        let (batch, size, keys, name, exchange) = (
            o.batch as u64,
            o.size,
            o.keys,
            target_name.clone(),
            o.scenario == Scenario::FanoutExchange,
        );
        producers.push(std::thread::spawn(move || -> Res<ThreadResult> {
            let mut r = ThreadResult {
                hist: new_hist(),
                e2e: new_hist(),
                placed: Vec::with_capacity((to - from) as usize),
                done: Duration::ZERO,
                calls: 0,
            };
            barrier.wait();
            let mut i = from;
            while i < to {
                let end = (i + batch).min(to);
                let msgs: Vec<Message> = (i..end)
                    .map(|j| {
                        let key = ordered.then_some((j % u64::from(keys)) as u32);
                        message(shared.start, j, key, size, &fill)
                    })
                    .collect();
                let t = Instant::now();
                if exchange {
                    let msg = msgs.into_iter().next().expect("one message");
                    let routed = broker.publish_to_exchange(&name, msg)?;
                    if routed.published.len() != 3 {
                        return Err(format!("routed to {} queues", routed.published.len()).into());
                    }
                    for (dest, p) in routed.published {
                        let q: u32 = dest.trim_start_matches('q').parse()?;
                        r.placed.push((q * 1024 + p.partition, p.offset));
                    }
                } else {
                    let placed = broker.publish(&name, msgs, None)?;
                    if placed.len() as u64 != end - i || placed.iter().any(|p| p.duplicate) {
                        return Err("publish placed the wrong messages".into());
                    }
                    r.placed
                        .extend(placed.iter().map(|p| (p.partition, p.offset)));
                }
                r.hist.record(t.elapsed().as_nanos().max(1) as u64)?;
                r.calls += 1;
                i = end;
            }
            r.done = shared.start.elapsed();
            Ok(r)
        }));
    }
    let mut consumers = Vec::new();
    for (s, sub) in subs.iter().enumerate() {
        for _ in 0..o.consumers {
            let (broker, barrier, shared, sub) =
                (broker.clone(), barrier.clone(), shared.clone(), sub.clone());
            let max = o.receive_max;
            consumers.push(std::thread::spawn(move || -> Res<ThreadResult> {
                let mut r = ThreadResult {
                    hist: new_hist(),
                    e2e: new_hist(),
                    placed: Vec::new(),
                    done: Duration::ZERO,
                    calls: 0,
                };
                barrier.wait();
                consume(&broker, &sub, s, max, &shared, &mut r)?;
                r.done = shared.start.elapsed();
                Ok(r)
            }));
        }
    }
    barrier.wait();
    let t0 = start.elapsed();

    let mut failures: Vec<String> = Vec::new();
    let mut publish = new_hist();
    let mut consume_h = new_hist();
    let mut e2e = new_hist();
    let mut placed = Vec::new();
    let mut publish_done = Duration::ZERO;
    let mut consume_done = Duration::ZERO;
    let mut publish_calls = 0;
    let mut receive_calls = 0;
    for t in producers {
        match t.join().map_err(|_| "producer panicked")? {
            Ok(r) => {
                publish.add(&r.hist)?;
                placed.extend(r.placed);
                publish_done = publish_done.max(r.done);
                publish_calls += r.calls;
            }
            Err(e) => failures.push(format!("producer: {e}")),
        }
    }
    if !failures.is_empty() {
        // Consumers would wait forever for messages never published.
        for a in &shared.acked {
            a.fetch_add(o.count, Ordering::Relaxed);
        }
    }
    for t in consumers {
        match t.join().map_err(|_| "consumer panicked")? {
            Ok(r) => {
                consume_h.add(&r.hist)?;
                e2e.add(&r.e2e)?;
                consume_done = consume_done.max(r.done);
                receive_calls += r.calls;
            }
            Err(e) => failures.push(format!("consumer: {e}")),
        }
    }
    let elapsed = consume_done.max(publish_done) - t0;
    let counters_after = counters.snapshot();
    let cpu_secs = (cpu_ticks() - cpu_before) as f64 / ticks_per_second();
    stop.store(true, Ordering::Relaxed);
    if let Err(e) = sampler.join().map_err(|_| "tick thread panicked")? {
        failures.push(format!("tick: {e}"));
    }
    let hwm_kib = proc_status_kib("VmHWM");
    let rss_end_kib = proc_status_kib("VmRSS");
    let rss_max_kib = rss_max.load(Ordering::Relaxed).max(rss_end_kib);
    let depth_after: u64 = subs.iter().map(|s| s.depth()).sum();

    // ------------------------------------------------------------ checks
    if !failures.is_empty() {
        return Err(failures.join("; ").into());
    }
    let published = placed.len() as u64;
    let copies = if o.scenario == Scenario::FanoutExchange {
        3
    } else {
        1
    };
    if published != o.count * copies {
        return Err(format!("published {published}, expected {}", o.count * copies).into());
    }
    placed.sort_unstable();
    placed.dedup();
    if placed.len() as u64 != published {
        return Err("two messages were given the same offset".into());
    }
    for (s, bits) in shared.acked_bits.iter().enumerate() {
        let acked = shared.acked[s].load(Ordering::Relaxed);
        if acked < o.count {
            return Err(format!("subscription {s}: {acked} acked of {}", o.count).into());
        }
        if o.backlog == 0 {
            let n = bits.count_in(0, o.count);
            if n != o.count {
                return Err(format!("subscription {s}: {n} distinct messages acked").into());
            }
        } else {
            // Consumers took the head of the backlog; count what was acked.
            let n = bits.count_in(0, total);
            if n != acked {
                return Err(format!("subscription {s}: {n} distinct of {acked} acks").into());
            }
        }
    }
    let duplicates = shared.duplicates.load(Ordering::Relaxed);
    let refused = shared.refused_acks.load(Ordering::Relaxed);
    let violations = shared.order_violations.load(Ordering::Relaxed);
    let strays = shared.strays.load(Ordering::Relaxed);
    if duplicates + refused + violations + strays > 0 {
        return Err(format!(
            "{duplicates} duplicate deliveries, {refused} refused acks, \
             {violations} per-key order violations, {strays} unknown messages"
        )
        .into());
    }
    let acked_total: u64 = shared.acked.iter().map(|a| a.load(Ordering::Relaxed)).sum();
    let expected_depth = (o.backlog + o.count) * subs.len() as u64 - acked_total;
    if depth_after != expected_depth {
        return Err(format!("depth {depth_after} after the run, expected {expected_depth}").into());
    }

    // ------------------------------------------------------------ report
    let secs = elapsed.as_secs_f64();
    let pub_secs = (publish_done - t0).as_secs_f64();
    let msgs_per_s = o.count as f64 / secs;
    let deliveries = acked_total as f64 / secs;
    let mib_per_s = msgs_per_s * o.size as f64 / MIB;
    let d = |k: usize| {
        (
            counters_after[k].0 - counters_before[k].0,
            counters_after[k].1 - counters_before[k].1,
        )
    };
    let (topic_syncs, topic_bytes) = d(Kind::Topic as usize);
    let (journal_syncs, journal_bytes) = d(Kind::Journal as usize);
    let (meta_syncs, _) = d(Kind::Meta as usize);
    let dir_bytes = tree_bytes(&o.dir);

    let mut r = Report::new(&o.name);
    r.int("count", o.count);
    r.int("size", o.size as u64);
    r.int("producers", o.producers as u64);
    r.int("consumers_per_subscription", o.consumers as u64);
    r.int("subscriptions", subs.len() as u64);
    r.int("batch", o.batch as u64);
    r.int("receive_max", o.receive_max as u64);
    r.int("partitions", o.partitions as u64);
    r.int("backlog", o.backlog);
    if ordered {
        r.int("keys", u64::from(o.keys));
    }
    r.num("prefill_s", prefill_s);
    r.int("settle_secs", o.settle_secs);
    r.num(
        "prefill_records_per_s",
        if prefill_s > 0.0 {
            o.backlog as f64 / prefill_s
        } else {
            0.0
        },
    );
    r.num("seconds", secs);
    r.num("publish_seconds", pub_secs);
    r.num("msgs_per_s", msgs_per_s);
    r.num("publish_msgs_per_s", o.count as f64 / pub_secs);
    r.num("deliveries_per_s", deliveries);
    r.num("mib_per_s", mib_per_s);
    r.int("publish_calls", publish_calls);
    r.int("receive_calls", receive_calls);
    r.num("publish_p50_us", us(&publish, 0.5));
    r.num("publish_p99_us", us(&publish, 0.99));
    r.num("publish_max_us", publish.max() as f64 / 1000.0);
    r.num("ack_p50_us", us(&consume_h, 0.5));
    r.num("ack_p99_us", us(&consume_h, 0.99));
    r.num("ack_max_us", consume_h.max() as f64 / 1000.0);
    r.num("e2e_p50_us", us(&e2e, 0.5));
    r.num("e2e_p99_us", us(&e2e, 0.99));
    r.num("e2e_max_us", e2e.max() as f64 / 1000.0);
    r.num("cpu_seconds", cpu_secs);
    r.num("cpu_us_per_msg", cpu_secs * 1e6 / o.count as f64);
    r.int("trace_capacity", o.trace_capacity.unwrap_or(100_000) as u64);
    r.int("topic_syncs", topic_syncs);
    r.int("journal_syncs", journal_syncs);
    r.int("meta_syncs", meta_syncs);
    r.num(
        "syncs_per_s",
        (topic_syncs + journal_syncs + meta_syncs) as f64 / secs,
    );
    r.num(
        "syncs_per_msg",
        (topic_syncs + journal_syncs) as f64 / o.count as f64,
    );
    r.int("topic_bytes_written", topic_bytes);
    r.int("journal_bytes_written", journal_bytes);
    r.int("vm_hwm_before_kib", hwm_before_kib);
    r.bool("hwm_reset", hwm_reset);
    r.int("rss_start_kib", rss_start_kib);
    r.int("rss_max_kib", rss_max_kib);
    r.int("vm_hwm_kib", hwm_kib);
    r.int("rss_end_kib", rss_end_kib);
    r.int("tick_max_us", tick_max_us.load(Ordering::Relaxed));
    r.int("dir_bytes", dir_bytes);
    r.int("depth_after", depth_after);
    r.bool("checked", true);
    r.human = format!(
        "{}: {} x {} B, {} producers (batch {}), {} consumers x {} subscriptions (receive {}), \
         backlog {}: {:.0} msgs/s ({:.1} MiB/s), {:.0} deliveries/s, publish {:.0} msgs/s; \
         publish p50 {:.0} us p99 {:.0} us; ack call p50 {:.0} us p99 {:.0} us; \
         e2e p50 {:.0} us p99 {:.0} us max {:.0} us; CPU {:.0} us/msg; {:.2} syncs/msg ({} log, {} journal); \
         RSS max {} MiB, VmHWM {} MiB{}; data {:.1} MiB; all checked",
        o.name,
        o.count,
        o.size,
        o.producers,
        o.batch,
        o.consumers,
        subs.len(),
        o.receive_max,
        o.backlog,
        msgs_per_s,
        mib_per_s,
        deliveries,
        o.count as f64 / pub_secs,
        us(&publish, 0.5),
        us(&publish, 0.99),
        us(&consume_h, 0.5),
        us(&consume_h, 0.99),
        us(&e2e, 0.5),
        us(&e2e, 0.99),
        e2e.max() as f64 / 1000.0,
        cpu_secs * 1e6 / o.count as f64,
        (topic_syncs + journal_syncs) as f64 / o.count as f64,
        topic_syncs,
        journal_syncs,
        rss_max_kib / 1024,
        hwm_kib / 1024,
        if hwm_reset { " (reset after prefill)" } else { "" },
        dir_bytes as f64 / MIB,
    );

    broker.close()?;
    drop(subs);
    if !o.keep {
        std::fs::remove_dir_all(&o.dir)?;
    }
    Ok(r)
}

/// Receives and acks on `sub` until the subscription's target is reached.
fn consume(
    broker: &Broker,
    sub: &Subscription,
    s: usize,
    max: usize,
    shared: &Shared,
    r: &mut ThreadResult,
) -> Res<()> {
    let ordered = !shared.key_last.is_empty();
    let mut receipts = Vec::with_capacity(max);
    let mut got_info = Vec::with_capacity(max);
    while shared.acked[s].load(Ordering::Relaxed) < shared.target {
        let got = broker.receive_wait(sub, max, None, Duration::from_millis(20))?;
        r.calls += 1;
        if got.is_empty() {
            continue;
        }
        receipts.clear();
        got_info.clear();
        for m in &got {
            let (sent, index, key) = parse_value(&m.message.value);
            if index < shared.expect.0 || index >= shared.expect.1 {
                shared.strays.fetch_add(1, Ordering::Relaxed);
            }
            if m.delivery_count != 1 {
                shared.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            if ordered {
                let k = key as usize;
                if k >= shared.key_last.len() {
                    shared.strays.fetch_add(1, Ordering::Relaxed);
                } else {
                    if shared.key_busy[k].swap(true, Ordering::AcqRel) {
                        shared.order_violations.fetch_add(1, Ordering::Relaxed);
                    }
                    let last = shared.key_last[k].swap(m.message.offset, Ordering::AcqRel);
                    if last != u64::MAX && last >= m.message.offset {
                        shared.order_violations.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            receipts.push(m.receipt);
            got_info.push((sent, index, key));
        }
        if ordered {
            // Free the keys before acking: once the ack has changed the
            // delivery state another consumer may get the next record.
            for &(_, _, key) in &got_info {
                shared.key_busy[key as usize].store(false, Ordering::Release);
            }
        }
        let t = Instant::now();
        let results = sub.ack(&receipts)?;
        let done = shared.start.elapsed().as_nanos() as u64;
        let ack_ns = t.elapsed().as_nanos().max(1) as u64;
        let mut ok = 0;
        for (res, &(sent, index, _)) in results.iter().zip(&got_info) {
            if res.is_err() {
                shared.refused_acks.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !shared.acked_bits[s].set(index) {
                shared.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            r.hist.record(ack_ns)?;
            r.e2e.record(done.saturating_sub(sent).max(1))?;
            ok += 1;
        }
        shared.acked[s].fetch_add(ok, Ordering::Relaxed);
    }
    Ok(())
}
