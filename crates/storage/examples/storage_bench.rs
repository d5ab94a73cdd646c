//! Storage benchmarks for `hermod-storage`: appends (per durability mode and
//! writer count), sequential reads, and opening a large log cleanly and after
//! a crash. Each run prints one JSON line (starting with `{`) and one human
//! line (starting with `#`), and checks its own results where it can.
//!
//! ```text
//! storage_bench append --durability fsync|interval|memory|in-memory
//!     [--interval-ms 100] [--writers 1] [--record-bytes 1024] [--batch 1]
//!     [--seconds 10] [--gib <stop after this much>] [--segment-mib 1024]
//!     [--flusher-ms <run a Flusher with this period>] [--dir DIR] [--keep]
//! storage_bench read [--gib 2] [--record-bytes 1024] [--batch 100]
//!     [--read-bytes 1048576] [--drop-caches] [--dir DIR] [--keep]
//! storage_bench open [--gib 10] [--segments 1000] [--record-bytes 1024]
//!     [--batch 100] [--repeat 3] [--drop-caches] [--rebuild] [--dir DIR]
//! ```
//!
//! Sizes are binary: 1 GiB = 2^30 bytes, rates are MiB/s (2^20 bytes/s) of
//! batch bytes as stored (record payload plus batch and record framing).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hermod_storage::batch::{self, BatchHeader, BatchOptions, Record};
use hermod_storage::clock::SystemClock;
use hermod_storage::io::StdFs;
use hermod_storage::{Durability, Flusher, Log, LogConfig, RecoveryReport};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxError>;

const MIB: f64 = (1u64 << 20) as f64;
const GIB: f64 = (1u64 << 30) as f64;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!("usage: storage_bench append|read|open [--option value]... (see the source)");
        std::process::exit(2);
    };
    let outcome = Args::parse(rest).and_then(|mut args| {
        let out = match cmd.as_str() {
            "append" => bench_append(&mut args),
            "read" => bench_read(&mut args),
            "open" => bench_open(&mut args),
            other => Err(format!("unknown subcommand {other:?}").into()),
        }?;
        args.finish()?;
        Ok(out)
    });
    match outcome {
        Ok(report) => {
            println!("{}", report.json());
            println!("# {}", report.human);
        }
        Err(e) => {
            eprintln!("storage_bench {cmd}: FAILED: {e}");
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

    fn opt<T: std::str::FromStr>(&mut self, key: &str) -> Res<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.used.insert(key.to_string());
        match self.values.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e| format!("--{key} {v:?}: {e}").into()),
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

// ---------------------------------------------------------------- reporting

enum Value {
    Int(u64),
    Num(f64),
    Str(String),
    Bool(bool),
}

/// One scenario's results: JSON fields in order, and a sentence for humans.
struct Report {
    fields: Vec<(String, Value)>,
    human: String,
}

impl Report {
    fn new(scenario: &str) -> Report {
        let mut r = Report {
            fields: Vec::new(),
            human: String::new(),
        };
        r.str("scenario", scenario);
        r
    }
    fn int(&mut self, k: &str, v: u64) {
        self.fields.push((k.into(), Value::Int(v)));
    }
    fn num(&mut self, k: &str, v: f64) {
        self.fields.push((k.into(), Value::Num(v)));
    }
    fn str(&mut self, k: &str, v: &str) {
        self.fields.push((k.into(), Value::Str(v.into())));
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.fields.push((k.into(), Value::Bool(v)));
    }

    fn json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{k}\":");
            match v {
                Value::Int(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::Num(x) if x.is_finite() => {
                    let _ = write!(out, "{}", (x * 1000.0).round() / 1000.0);
                }
                Value::Num(_) => out.push_str("null"),
                Value::Bool(b) => {
                    let _ = write!(out, "{b}");
                }
                Value::Str(s) => {
                    out.push('"');
                    for c in s.chars() {
                        match c {
                            '"' => out.push_str("\\\""),
                            '\\' => out.push_str("\\\\"),
                            c if (c as u32) < 0x20 => {
                                let _ = write!(out, "\\u{:04x}", c as u32);
                            }
                            c => out.push(c),
                        }
                    }
                    out.push('"');
                }
            }
        }
        out.push('}');
        out
    }
}

// ---------------------------------------------------------------- helpers

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One batch of `count` records of `record_bytes` value bytes each.
fn make_batch(count: usize, record_bytes: usize, seed: u64) -> Vec<u8> {
    let ts = now_ms();
    let records: Vec<Record> = (0..count)
        .map(|i| {
            // Cheap non-constant filler so the bytes are not all equal.
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
            let value: Vec<u8> = (0..record_bytes)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            Record {
                offset: 0,
                timestamp: ts,
                key: None,
                value: Some(Bytes::from(value)),
                headers: Vec::new(),
            }
        })
        .collect();
    batch::encode(&records, &BatchOptions::default())
}

fn parse_durability(name: &str, interval_ms: u64) -> Res<Durability> {
    Ok(match name {
        "fsync" => Durability::Fsync,
        "interval" => Durability::Interval { ms: interval_ms },
        "memory" | "in-memory" => Durability::Memory,
        other => {
            return Err(format!(
                "--durability {other:?}: want fsync, interval, memory or in-memory"
            )
            .into())
        }
    })
}

fn durability_name(d: Durability) -> String {
    match d {
        Durability::Fsync => "fsync".into(),
        Durability::Interval { ms } => format!("interval-{ms}ms"),
        Durability::Memory => "memory".into(),
    }
}

fn open_log(dir: &Path, config: LogConfig) -> Res<(Log, RecoveryReport)> {
    Ok(Log::open(
        dir,
        config,
        StdFs::shared(),
        SystemClock::shared(),
    )?)
}

fn fresh_dir(dir: &Path) -> Res<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

fn default_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("target/bench-data/{name}"))
}

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

/// Resets VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs).
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Flushes dirty pages and drops the page cache; false if not permitted.
fn drop_caches() -> bool {
    let synced = std::process::Command::new("sync")
        .status()
        .is_ok_and(|s| s.success());
    synced && std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Appends `batch`-record batches from one thread until the log holds at
/// least `bytes` bytes; returns (records, bytes) appended.
fn fill_log(log: &Log, bytes: u64, record_bytes: usize, batch: usize) -> Res<(u64, u64)> {
    let mut buf = make_batch(batch, record_bytes, 1);
    let (mut records, mut written) = (0u64, 0u64);
    while written < bytes {
        let info = log.append(&mut buf)?;
        if info.base_offset != records || info.last_offset + 1 != records + batch as u64 {
            return Err(format!(
                "append at {records} got offsets {}..={}",
                info.base_offset, info.last_offset
            )
            .into());
        }
        records += batch as u64;
        written += buf.len() as u64;
    }
    Ok((records, written))
}

fn percentile_us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

// ---------------------------------------------------------------- append

struct WriterResult {
    hist: Histogram<u64>,
    /// Base offset of every acknowledged append.
    bases: Vec<u64>,
    bytes: u64,
}

fn bench_append(args: &mut Args) -> Res<Report> {
    let mode: String = args.get("durability", "fsync".to_string())?;
    let interval_ms: u64 = args.get("interval-ms", 100)?;
    let writers: usize = args.get("writers", 1)?;
    let record_bytes: usize = args.get("record-bytes", 1024)?;
    let batch_len: usize = args.get("batch", 1)?;
    let seconds: f64 = args.get("seconds", 10.0)?;
    let budget_gib: Option<f64> = args.opt("gib")?;
    let segment_mib: u64 = args.get("segment-mib", 1024)?;
    let flusher_ms: Option<u64> = args.opt("flusher-ms")?;
    let dir: PathBuf = args.get("dir", default_dir("append"))?;
    let keep = args.flag("keep");
    if writers == 0 || batch_len == 0 {
        return Err("--writers and --batch must be positive".into());
    }
    let durability = parse_durability(&mode, interval_ms)?;
    let config = LogConfig {
        durability,
        segment_bytes: segment_mib << 20,
        ..LogConfig::default()
    };
    let in_memory = mode == "in-memory";
    let log = Arc::new(if in_memory {
        Log::open_in_memory(config, SystemClock::shared())?
    } else {
        fresh_dir(&dir)?;
        open_log(&dir, config)?.0
    });
    // A background thread that syncs interval logs, as a broker would run.
    let flusher = flusher_ms.map(|ms| {
        let f = Flusher::start(Duration::from_millis(ms));
        f.register(&log);
        f
    });
    let budget = budget_gib.map_or(u64::MAX, |g| (g * GIB) as u64);

    let stop = AtomicBool::new(false);
    let total_bytes = AtomicU64::new(0);
    let barrier = Barrier::new(writers + 1);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let rss_before = proc_status_kib("VmRSS");
    let (results, elapsed, syncs) = std::thread::scope(|s| -> Res<_> {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (log, stop, total_bytes, barrier, first_error) =
                    (&log, &stop, &total_bytes, &barrier, &first_error);
                s.spawn(move || {
                    let mut buf = make_batch(batch_len, record_bytes, w as u64 + 1);
                    let len = buf.len() as u64;
                    let mut r = WriterResult {
                        hist: Histogram::new(3).expect("histogram"),
                        bases: Vec::with_capacity(1 << 16),
                        bytes: 0,
                    };
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let t0 = Instant::now();
                        match log.append(&mut buf) {
                            Ok(info) => {
                                let ns = t0.elapsed().as_nanos() as u64;
                                r.hist.record(ns.max(1)).expect("record latency");
                                if info.last_offset + 1 - info.base_offset != batch_len as u64 {
                                    first_error.lock().unwrap().get_or_insert(format!(
                                        "append of {batch_len} records got offsets {}..={}",
                                        info.base_offset, info.last_offset
                                    ));
                                }
                                r.bases.push(info.base_offset);
                                r.bytes += len;
                            }
                            Err(e) => {
                                first_error
                                    .lock()
                                    .unwrap()
                                    .get_or_insert(format!("append: {e}"));
                                stop.store(true, Ordering::Relaxed);
                                break;
                            }
                        }
                        if budget != u64::MAX
                            && total_bytes.fetch_add(len, Ordering::Relaxed) + len >= budget
                        {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    r
                })
            })
            .collect();
        let syncs0 = log.sync_count();
        barrier.wait();
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(seconds);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        let results: Vec<WriterResult> = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread panicked"))
            .collect();
        let elapsed = start.elapsed();
        Ok((results, elapsed, log.sync_count() - syncs0))
    })?;
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e.into());
    }
    let rss_after = proc_status_kib("VmRSS");
    let t_sync = Instant::now();
    log.sync()?;
    let final_sync = t_sync.elapsed();

    // Check: every acknowledged append got its own offsets, contiguous from 0,
    // and the log ends exactly after the acknowledged records.
    let mut hist = Histogram::<u64>::new(3)?;
    let mut bases = Vec::new();
    let mut bytes = 0u64;
    for r in results {
        hist.add(&r.hist)?;
        bases.extend(r.bases);
        bytes += r.bytes;
    }
    bases.sort_unstable();
    for (i, &b) in bases.iter().enumerate() {
        if b != i as u64 * batch_len as u64 {
            return Err(format!(
                "offsets not contiguous: append #{i} (sorted) starts at {b}, expected {}",
                i as u64 * batch_len as u64
            )
            .into());
        }
    }
    let appends = bases.len() as u64;
    let records = appends * batch_len as u64;
    let end = log.end_offset();
    if end != records {
        return Err(format!("log end offset {end} != {records} acknowledged records").into());
    }
    let segments = log.segment_count();
    drop(flusher);
    if !in_memory {
        log.close()?;
    }
    drop(log);
    if !keep && !in_memory {
        fresh_dir(&dir)?;
    }

    let secs = elapsed.as_secs_f64();
    let mib_s = bytes as f64 / MIB / secs;
    let mib_s_synced = bytes as f64 / MIB / (secs + final_sync.as_secs_f64());
    let mut rep = Report::new("append");
    let mut dname = if in_memory {
        "in-memory".to_string()
    } else {
        durability_name(durability)
    };
    if let Some(ms) = flusher_ms {
        let _ = write!(dname, "+flusher-{ms}ms");
    }
    rep.str("durability", &dname);
    rep.int("writers", writers as u64);
    rep.int("record_bytes", record_bytes as u64);
    rep.int("batch", batch_len as u64);
    rep.num("seconds", secs);
    rep.int("appends", appends);
    rep.int("records", records);
    rep.int("bytes", bytes);
    rep.int("segments", segments as u64);
    rep.num("records_per_s", records as f64 / secs);
    rep.num("appends_per_s", appends as f64 / secs);
    rep.num("mib_per_s", mib_s);
    rep.num(
        "payload_mib_per_s",
        (records * record_bytes as u64) as f64 / MIB / secs,
    );
    rep.num("final_sync_ms", final_sync.as_secs_f64() * 1e3);
    rep.num("mib_per_s_incl_final_sync", mib_s_synced);
    rep.int("syncs", syncs);
    rep.num("syncs_per_s", syncs as f64 / secs);
    rep.num(
        "records_per_sync",
        if syncs > 0 {
            records as f64 / syncs as f64
        } else {
            0.0
        },
    );
    rep.num("lat_p50_us", percentile_us(&hist, 0.5));
    rep.num("lat_p99_us", percentile_us(&hist, 0.99));
    rep.num("lat_p999_us", percentile_us(&hist, 0.999));
    rep.num("lat_max_us", hist.max() as f64 / 1000.0);
    rep.num("lat_mean_us", hist.mean() / 1000.0);
    rep.int("rss_before_kib", rss_before);
    rep.int("rss_after_kib", rss_after);
    rep.bool("verified", true);
    rep.human = format!(
        "append {dname} writers={writers} record={record_bytes}B batch={batch_len}: \
         {:.0} records/s, {:.0} appends/s, {:.1} MiB/s ({:.1} incl. final sync of {:.0} ms), \
         {:.0} syncs/s ({:.1} records/sync), latency p50 {:.0} us p99 {:.0} us p999 {:.0} us \
         max {:.0} us; {records} records in {secs:.1} s, offsets contiguous 0..{end}",
        records as f64 / secs,
        appends as f64 / secs,
        mib_s,
        mib_s_synced,
        final_sync.as_secs_f64() * 1e3,
        syncs as f64 / secs,
        if syncs > 0 {
            records as f64 / syncs as f64
        } else {
            0.0
        },
        percentile_us(&hist, 0.5),
        percentile_us(&hist, 0.99),
        percentile_us(&hist, 0.999),
        hist.max() as f64 / 1000.0,
    );
    Ok(rep)
}

// ---------------------------------------------------------------- read

fn bench_read(args: &mut Args) -> Res<Report> {
    let gib: f64 = args.get("gib", 2.0)?;
    let record_bytes: usize = args.get("record-bytes", 1024)?;
    let batch_len: usize = args.get("batch", 100)?;
    let read_bytes: usize = args.get("read-bytes", 1 << 20)?;
    let dir: PathBuf = args.get("dir", default_dir("read"))?;
    let want_drop = args.flag("drop-caches");
    let keep = args.flag("keep");
    let config = LogConfig {
        durability: Durability::Interval { ms: 100 },
        ..LogConfig::default()
    };

    fresh_dir(&dir)?;
    let t_build = Instant::now();
    let (log, _) = open_log(&dir, config.clone())?;
    let (written_records, written_bytes) =
        fill_log(&log, (gib * GIB) as u64, record_bytes, batch_len)?;
    log.close()?;
    drop(log);
    let build_s = t_build.elapsed().as_secs_f64();

    let cold = want_drop && drop_caches();
    let (log, report) = open_log(&dir, config)?;
    if !report.clean {
        return Err(format!("log not clean after close: {report:?}").into());
    }
    let rss_before = proc_status_kib("VmRSS");
    let hwm_reset = reset_hwm();

    let done = AtomicBool::new(false);
    let rss_max = AtomicU64::new(rss_before);
    let (records, batches, reads, read_total, elapsed) = std::thread::scope(|s| -> Res<_> {
        let sampler = s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                rss_max.fetch_max(proc_status_kib("VmRSS"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let outcome = (|| -> Res<_> {
            let start = Instant::now();
            let (mut offset, mut records, mut batches, mut reads, mut total) =
                (0u64, 0u64, 0u64, 0u64, 0u64);
            loop {
                let r = log.read(offset, read_bytes)?;
                if r.bytes.is_empty() {
                    break;
                }
                reads += 1;
                total += r.bytes.len() as u64;
                // The log checked every CRC; check the framing and offsets.
                let mut at = 0;
                while at < r.bytes.len() {
                    let h = BatchHeader::parse(&r.bytes[at..])?;
                    if h.base_offset as u64 != offset {
                        return Err(format!(
                            "batch at byte {at} of read {reads} starts at offset {}, expected {offset}",
                            h.base_offset
                        )
                        .into());
                    }
                    records += h.record_count as u64;
                    batches += 1;
                    offset = h.last_offset() as u64 + 1;
                    at += h.total_len();
                }
                if at != r.bytes.len() || r.next_offset != offset {
                    return Err(format!(
                        "read {reads}: next_offset {} but batches end at {offset}",
                        r.next_offset
                    )
                    .into());
                }
            }
            Ok((records, batches, reads, total, start.elapsed()))
        })();
        done.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler panicked");
        outcome
    })?;
    let hwm = proc_status_kib("VmHWM");
    let rss_after = proc_status_kib("VmRSS");
    if records != written_records || read_total != written_bytes {
        return Err(format!(
            "read {records} records / {read_total} bytes, wrote {written_records} / {written_bytes}"
        )
        .into());
    }
    if log.end_offset() != written_records {
        return Err("end offset differs from records written".into());
    }
    log.close()?;
    drop(log);
    if !keep {
        fresh_dir(&dir)?;
    }

    let secs = elapsed.as_secs_f64();
    let mib_s = read_total as f64 / MIB / secs;
    let cache = if cold { "cold" } else { "warm" };
    let rss_max = rss_max.into_inner();
    let mut rep = Report::new("read");
    rep.num("gib", read_total as f64 / GIB);
    rep.int("records", records);
    rep.int("batches", batches);
    rep.int("reads", reads);
    rep.int("read_bytes", read_bytes as u64);
    rep.str("cache", cache);
    rep.num("seconds", secs);
    rep.num("mib_per_s", mib_s);
    rep.num("records_per_s", records as f64 / secs);
    rep.num("build_mib_per_s", written_bytes as f64 / MIB / build_s);
    rep.int("rss_before_kib", rss_before);
    rep.int("rss_max_during_kib", rss_max);
    rep.int("rss_after_kib", rss_after);
    rep.int("vm_hwm_kib", hwm);
    rep.bool("hwm_reset_before_read", hwm_reset);
    rep.bool("verified", true);
    rep.human = format!(
        "read {:.2} GiB ({cache} cache) in {}-byte reads: {mib_s:.0} MiB/s, {:.0} records/s; \
         RSS {rss_before} KiB before, max {rss_max} KiB during, VmHWM {hwm} KiB{}; \
         {records} records verified (build at {:.0} MiB/s)",
        read_total as f64 / GIB,
        read_bytes,
        records as f64 / secs,
        if hwm_reset {
            " (reset before the read)"
        } else {
            " (whole process)"
        },
        written_bytes as f64 / MIB / build_s,
    );
    Ok(rep)
}

// ---------------------------------------------------------------- open

fn bench_open(args: &mut Args) -> Res<Report> {
    let gib: f64 = args.get("gib", 10.0)?;
    let segments: u64 = args.get("segments", 1000)?;
    let record_bytes: usize = args.get("record-bytes", 1024)?;
    let batch_len: usize = args.get("batch", 100)?;
    let repeat: usize = args.get("repeat", 3)?;
    let dir: PathBuf = args.get("dir", default_dir("open"))?;
    let want_drop = args.flag("drop-caches");
    let rebuild = args.flag("rebuild");
    if segments == 0 || repeat == 0 {
        return Err("--segments and --repeat must be positive".into());
    }
    let total = (gib * GIB) as u64;
    let config = LogConfig {
        durability: Durability::Interval { ms: 1000 },
        segment_bytes: (total / segments).max(1 << 20),
        ..LogConfig::default()
    };

    // Build (or reuse) the log.
    let marker = dir.join("bench-built");
    let spec =
        format!("gib={gib} segments={segments} record_bytes={record_bytes} batch={batch_len}");
    let reused = !rebuild && std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == spec);
    let mut build_s = 0.0;
    if !reused {
        fresh_dir(&dir)?;
        let t = Instant::now();
        let (log, _) = open_log(&dir, config.clone())?;
        fill_log(&log, total, record_bytes, batch_len)?;
        log.close()?;
        build_s = t.elapsed().as_secs_f64();
        std::fs::write(&marker, &spec)?;
    }
    let log_bytes = dir_bytes(&dir);

    // Clean opens.
    let mut clean_ms = Vec::new();
    let mut clean_report = RecoveryReport::default();
    let mut cold = false;
    for _ in 0..repeat {
        cold = want_drop && drop_caches();
        let t = Instant::now();
        let (log, report) = open_log(&dir, config.clone())?;
        clean_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if !report.clean || report.torn_tail.is_some() {
            return Err(format!("expected a clean open, got {report:?}").into());
        }
        clean_report = report;
        log.close()?;
    }

    // Opens after a crash: append one batch, drop without closing.
    let mut crash_ms = Vec::new();
    let mut crash_report = RecoveryReport::default();
    for i in 0..repeat {
        let (log, _) = open_log(&dir, config.clone())?;
        let mut buf = make_batch(batch_len, record_bytes, 1000 + i as u64);
        log.append(&mut buf)?;
        let end = log.end_offset();
        drop(log);
        cold = want_drop && drop_caches();
        let t = Instant::now();
        let (log, report) = open_log(&dir, config.clone())?;
        crash_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if report.clean {
            return Err("open after a crash reported a clean log".into());
        }
        if log.end_offset() != end {
            return Err(format!(
                "recovered end offset {} != {end} before the crash",
                log.end_offset()
            )
            .into());
        }
        crash_report = report;
        log.close()?;
    }

    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let cache = if cold { "cold" } else { "warm" };
    let mut rep = Report::new("open");
    rep.num("gib", log_bytes as f64 / GIB);
    rep.int("segments", clean_report.segments as u64);
    rep.int("segment_bytes", config.segment_bytes);
    rep.bool("reused_build", reused);
    rep.num("build_s", build_s);
    rep.str("cache", cache);
    rep.num("clean_open_ms", median(&clean_ms));
    rep.str("clean_open_ms_all", &list(&clean_ms));
    rep.int("clean_scanned_bytes", clean_report.scanned_bytes);
    rep.num("crash_open_ms", median(&crash_ms));
    rep.str("crash_open_ms_all", &list(&crash_ms));
    rep.int("crash_scanned_bytes", crash_report.scanned_bytes);
    rep.int("crash_segments", crash_report.segments as u64);
    rep.bool("verified", true);
    rep.human = format!(
        "open {:.2} GiB in {} segments ({cache} cache): clean {:.1} ms (runs {}), \
         after crash {:.1} ms (runs {}) scanning {} bytes; {}",
        log_bytes as f64 / GIB,
        clean_report.segments,
        median(&clean_ms),
        list(&clean_ms),
        median(&crash_ms),
        list(&crash_ms),
        crash_report.scanned_bytes,
        if reused {
            "reused an existing build".to_string()
        } else {
            format!("built in {build_s:.1} s")
        },
    );
    Ok(rep)
}
