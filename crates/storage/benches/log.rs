//! Micro-benchmarks of the storage engine with criterion: `Log::append` of
//! 1 KiB records (batches of 1 and 100, `memory` and `fsync` durability on a
//! real directory), sequential 1 MiB reads over a filled log, and the batch
//! codec (encode, decode, CRC check of 100 × 1 KiB records). Appends and
//! reads run beside a baseline in the same run: the same bytes as a plain
//! `pwrite` (plus `fdatasync` for `fsync`) to a file, and a plain `pread`.
//!
//! Run with `cargo bench -p hermod-storage --bench log`. Logs live under
//! cargo's `CARGO_TARGET_TMPDIR` (`target/tmp`), on the same disk as the
//! build, never on a tmpfs, so `fsync` figures are the disk's. Every group is
//! kept short (a few seconds) so that all of them run in about a minute; the
//! end-to-end figures with baselines are `bench/storage.sh`'s.

use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use hermod_storage::batch::{self, BatchOptions, Record};
use hermod_storage::clock::SystemClock;
use hermod_storage::io::StdFs;
use hermod_storage::{Durability, Log, LogConfig};
use tempfile::TempDir;

/// The payload of every record.
const RECORD_BYTES: usize = 1024;
/// Records per batch for the codec and read benchmarks.
const BATCH_RECORDS: usize = 100;
/// An append benchmark starts a new log once this much is written, so that a
/// fast mode does not fill the disk (or the page cache) over a long run.
const APPEND_LOG_BYTES_MAX: u64 = 64 << 20;
/// Size of the log the read benchmark reads from.
const READ_LOG_BYTES: u64 = 64 << 20;
/// Bytes asked for by one read.
const READ_BYTES: usize = 1 << 20;

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append");
    for mode in [Mode::Memory, Mode::Write, Mode::Fsync, Mode::WriteSync] {
        // An fsync takes 0.1–5 ms on this disk: few, flat samples keep the
        // group to a few seconds.
        if mode.syncs() {
            group
                .sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(3));
        } else {
            group
                .sample_size(20)
                .sampling_mode(SamplingMode::Auto)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(2));
        }
        for records in [1, BATCH_RECORDS] {
            let mut batch = make_batch(records);
            group.throughput(Throughput::Bytes(batch.len() as u64));
            let id = BenchmarkId::new(mode.name(), format!("batch_{records}"));
            group.bench_function(id, |b| {
                let mut target = AppendTarget::new(mode);
                b.iter_custom(|iters| target.append_timed(&mut batch, iters));
            });
        }
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_read");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let dir = bench_dir();
    let log = open_log(dir.path(), Durability::Memory);
    let mut batch = make_batch(BATCH_RECORDS);
    let mut written = 0;
    while written < READ_LOG_BYTES {
        log.append(&mut batch).unwrap();
        written += batch.len() as u64;
    }
    let end = log.end_offset();
    let first = log.read(0, READ_BYTES).unwrap();
    assert!(first.bytes.len() >= READ_BYTES - batch.len() && first.next_offset < end);
    let read_len = first.bytes.len();
    group.throughput(Throughput::Bytes(read_len as u64));
    group.bench_function("sequential_1MiB", |b| {
        let mut offset = 0;
        b.iter(|| {
            let got = log.read(offset, READ_BYTES).unwrap();
            // Wrap before the short read at the end, so every read is ~1 MiB.
            offset = if end - got.next_offset < first.next_offset {
                0
            } else {
                got.next_offset
            };
            black_box(got.bytes)
        });
    });
    // Baseline: the same reads as plain `pread`s of the segment file into a
    // new buffer, without the log's index lookup and CRC checks.
    let segment = std::fs::File::open(segment_file(dir.path())).unwrap();
    let segment_len = segment.metadata().unwrap().len();
    group.bench_function("baseline_pread_1MiB", |b| {
        let mut at = 0;
        b.iter(|| {
            let mut buf = vec![0; read_len];
            segment.read_exact_at(&mut buf, at).unwrap();
            at += read_len as u64;
            if at + read_len as u64 > segment_len {
                at = 0;
            }
            black_box(buf)
        });
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_codec");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let records = make_records(BATCH_RECORDS);
    let options = BatchOptions::default();
    let encoded = batch::encode(&records, &options);
    assert_eq!(
        batch::decode_records(&encoded).unwrap().len(),
        BATCH_RECORDS
    );
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("encode_100x1KiB", |b| {
        b.iter(|| batch::encode(black_box(&records), &options));
    });
    group.bench_function("decode_100x1KiB", |b| {
        b.iter(|| batch::decode_records(black_box(&encoded)).unwrap());
    });
    // What the log does to every batch it appends or reads back.
    group.bench_function("verify_crc_100x1KiB", |b| {
        b.iter(|| batch::verify(black_box(&encoded)).unwrap());
    });
    group.finish();
}

criterion_group!(benches, append, read, codec);
criterion_main!(benches);

/// What an append benchmark writes to.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `Log::append` with `memory` durability (never synced).
    Memory,
    /// `Log::append` with `fsync` durability.
    Fsync,
    /// Baseline for `Memory`: one `pwrite` at the end of a plain file.
    Write,
    /// Baseline for `Fsync`: one `pwrite` then one `fdatasync`.
    WriteSync,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Memory => "memory",
            Mode::Fsync => "fsync",
            Mode::Write => "baseline_write",
            Mode::WriteSync => "baseline_write_fdatasync",
        }
    }

    fn syncs(self) -> bool {
        matches!(self, Mode::Fsync | Mode::WriteSync)
    }
}

/// A log or plain file in its own directory.
enum Sink {
    Log(Box<Log>),
    File {
        file: std::fs::File,
        end: u64,
        sync: bool,
    },
}

impl Sink {
    fn open(dir: &Path, mode: Mode) -> Sink {
        match mode {
            Mode::Memory => Sink::Log(Box::new(open_log(dir, Durability::Memory))),
            Mode::Fsync => Sink::Log(Box::new(open_log(dir, Durability::Fsync))),
            Mode::Write | Mode::WriteSync => Sink::File {
                file: std::fs::File::create(dir.join("baseline")).unwrap(),
                end: 0,
                sync: matches!(mode, Mode::WriteSync),
            },
        }
    }

    fn append(&mut self, batch: &mut [u8]) {
        match self {
            Sink::Log(log) => {
                black_box(log.append(batch).unwrap());
            }
            Sink::File { file, end, sync } => {
                file.write_all_at(batch, *end).unwrap();
                *end += batch.len() as u64;
                if *sync {
                    file.sync_data().unwrap();
                }
            }
        }
    }
}

/// What appends are timed against, replaced by a fresh one in a new
/// directory (untimed) whenever it reaches `APPEND_LOG_BYTES_MAX`.
struct AppendTarget {
    mode: Mode,
    current: Option<(Sink, TempDir)>,
    written: u64,
}

impl AppendTarget {
    fn new(mode: Mode) -> AppendTarget {
        AppendTarget {
            mode,
            current: None,
            written: 0,
        }
    }

    /// Appends `batch` `iters` times and returns the time spent appending
    /// only, not in replacing full logs.
    fn append_timed(&mut self, batch: &mut [u8], iters: u64) -> Duration {
        let per_log = (APPEND_LOG_BYTES_MAX / batch.len() as u64).max(1);
        let mut elapsed = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let room = per_log.saturating_sub(self.written / batch.len() as u64);
            if room == 0 || self.current.is_none() {
                self.renew();
                continue;
            }
            let chunk = room.min(left);
            let (sink, _) = self.current.as_mut().unwrap();
            let start = Instant::now();
            for _ in 0..chunk {
                sink.append(batch);
            }
            elapsed += start.elapsed();
            self.written += chunk * batch.len() as u64;
            left -= chunk;
        }
        elapsed
    }

    fn renew(&mut self) {
        // Close the old sink before deleting its directory.
        self.current = None;
        let dir = bench_dir();
        self.current = Some((Sink::open(dir.path(), self.mode), dir));
        self.written = 0;
    }
}

/// The one segment file of a log in `dir`.
fn segment_file(dir: &Path) -> std::path::PathBuf {
    let mut logs = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"));
    let first = logs.next().expect("a segment file");
    assert!(logs.next().is_none(), "the read log must be one segment");
    first
}

fn bench_dir() -> TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn open_log(dir: &Path, durability: Durability) -> Log {
    let config = LogConfig {
        durability,
        ..LogConfig::default()
    };
    Log::open(dir, config, StdFs::shared(), SystemClock::shared())
        .unwrap()
        .0
}

fn make_batch(count: usize) -> Vec<u8> {
    batch::encode(&make_records(count), &BatchOptions::default())
}

/// `count` records of `RECORD_BYTES` of cheap pseudo-random filler, so the
/// bytes are not all equal.
fn make_records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| {
            let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ i as u64;
            let value: Vec<u8> = (0..RECORD_BYTES)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            Record {
                offset: 0,
                timestamp: 1_700_000_000_000,
                key: None,
                value: Some(Bytes::from(value)),
                headers: Vec::new(),
            }
        })
        .collect()
}
