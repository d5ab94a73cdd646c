//! A real-process crash test: a child process appends in `fsync` mode and
//! reports every acknowledged append on its stdout; the parent kills it with
//! SIGKILL at random moments, 50 times, and after each kill reopens the log
//! and checks that every acknowledged record is there, whole, at its offset.
//!
//! There is no extra binary: the test re-executes its own test binary, asking
//! libtest to run only `child_writer`, with `HERMOD_KILL_CHILD_DIR` set. Set
//! `HERMOD_KILL_SEED` to replay a run with the seed it printed.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{make_batch, read_all, value_for};
use hermod_storage::batch::{self, Record};
use hermod_storage::clock::SystemClock;
use hermod_storage::io::StdFs;
use hermod_storage::{Log, LogConfig, RecoveryReport};
use rand::{Rng, SeedableRng};

/// Tells the re-executed test binary that it is the child, and where the log is.
const CHILD_ENV: &str = "HERMOD_KILL_CHILD_DIR";
/// Replays a run: the seed of the random kill times.
const SEED_ENV: &str = "HERMOD_KILL_SEED";
const ROUNDS: u64 = 50;
const WRITERS: u64 = 4;
/// Each writer appends at most once per this long, so that the log (and the
/// time to check it) grows alike on a fast disk and a slow one; a slow disk
/// simply falls behind the pace.
const WRITER_PACE: Duration = Duration::from_millis(1);
/// The child gives up on its own after this long (should its parent vanish
/// without killing it).
const CHILD_LIFETIME: Duration = Duration::from_secs(20);

fn config() -> LogConfig {
    LogConfig {
        // Small enough for several rolls per round.
        segment_bytes: 64 << 10,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    }
}

/// A tag names one append: round, writer thread and sequence number.
fn tag_for(round: u64, writer: u64, seq: u64) -> u64 {
    round * 100_000_000 + writer * 10_000_000 + seq
}

/// How many records the batch with this tag holds (1..=5).
fn count_for(tag: u64) -> usize {
    1 + (tag % 5) as usize
}

/// How long the values of the batch with this tag are.
fn value_len_for(tag: u64) -> usize {
    16 + (tag % 7) as usize * 40
}

/// The child: appends from several threads until killed, printing
/// `ACK base last tag` for every acknowledged append.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return; // Not the child: nothing to do.
    };
    let round: u64 = std::env::var("HERMOD_KILL_CHILD_ROUND")
        .expect("round")
        .parse()
        .expect("round number");
    let (log, _) = Log::open(
        Path::new(&dir),
        config(),
        StdFs::shared(),
        SystemClock::shared(),
    )
    .expect("child: open");
    let log = Arc::new(log);
    // libtest may have printed "test child_writer ... " without a newline.
    {
        let mut out = std::io::stdout().lock();
        if out
            .write_all(b"\nREADY\n")
            .and_then(|_| out.flush())
            .is_err()
        {
            return;
        }
    }
    let started = Instant::now();
    let deadline = started + CHILD_LIFETIME;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            thread::spawn(move || {
                let mut seq = 0;
                while Instant::now() < deadline {
                    if let Some(early) =
                        (started + WRITER_PACE * seq as u32).checked_duration_since(Instant::now())
                    {
                        thread::sleep(early);
                    }
                    let tag = tag_for(round, w, seq);
                    seq += 1;
                    let mut batch = make_batch(tag, count_for(tag), value_len_for(tag), 0);
                    let info = log.append(&mut batch).expect("child: append");
                    let line = format!("ACK {} {} {tag}\n", info.base_offset, info.last_offset);
                    let mut out = std::io::stdout().lock();
                    if out
                        .write_all(line.as_bytes())
                        .and_then(|_| out.flush())
                        .is_err()
                    {
                        return; // The parent is gone.
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("child writer thread");
    }
}

/// Kills and reaps the child however the parent test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One acknowledged append as the child reported it.
#[derive(Debug, Clone, Copy)]
struct Ack {
    base: u64,
    last: u64,
    tag: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let rest = line.strip_prefix("ACK ")?;
    let mut parts = rest.split(' ').map(|p| p.parse::<u64>());
    let ack = Ack {
        base: parts.next()?.ok()?,
        last: parts.next()?.ok()?,
        tag: parts.next()?.ok()?,
    };
    assert!(parts.next().is_none(), "malformed ack line {line:?}");
    Some(ack)
}

/// What one child did before it was killed.
struct ChildRun {
    acks: Vec<Ack>,
    /// How long after the spawn it had opened the log.
    ready_after: Option<Duration>,
}

/// Runs the child for `wait`, kills it, and returns what it acknowledged.
fn run_child(dir: &Path, round: u64, wait: Duration) -> ChildRun {
    let spawned = Instant::now();
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env("HERMOD_KILL_CHILD_ROUND", round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut guard = KillOnDrop(child);
    let reader = thread::spawn(move || {
        let mut run = ChildRun {
            acks: Vec::new(),
            ready_after: None,
        };
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).expect("read child");
            if n == 0 || line.last() != Some(&b'\n') {
                // End of output; a line cut short by the kill is no ack.
                return run;
            }
            let text = std::str::from_utf8(&line[..n - 1]).expect("utf-8 line");
            if let Some(ack) = parse_ack(text) {
                run.acks.push(ack);
            } else if text == "READY" {
                run.ready_after = Some(spawned.elapsed());
            } else {
                assert!(!text.contains("ACK"), "garbled ack line {text:?}");
            }
        }
    });
    thread::sleep(wait);
    if let Ok(Some(status)) = guard.0.try_wait() {
        panic!("child exited on its own before the kill: {status}");
    }
    guard.0.kill().expect("SIGKILL child");
    let status = guard.0.wait().expect("wait for child");
    assert!(!status.success(), "child was killed, not finished");
    reader.join().expect("reader thread")
}

/// Reads the record's batch tag and index from its key and header, checking
/// that its value is the one written.
fn check_record(r: &Record) -> (u64, usize) {
    let key = r.key.as_deref().expect("key");
    let key = std::str::from_utf8(key).expect("utf-8 key");
    let (tag, i) = key
        .strip_prefix('k')
        .and_then(|k| k.split_once('-'))
        .unwrap_or_else(|| panic!("offset {}: bad key {key:?}", r.offset));
    let tag: u64 = tag.parse().expect("tag");
    let i: usize = i.parse().expect("index");
    assert_eq!(r.headers.len(), 1, "offset {}", r.offset);
    assert_eq!(
        r.headers[0].value.as_deref(),
        Some(tag.to_string().as_bytes()),
        "offset {}: header tag",
        r.offset
    );
    assert!(
        i < count_for(tag),
        "offset {}: record {i} of {tag}",
        r.offset
    );
    assert_eq!(
        r.value.as_deref(),
        Some(&value_for(tag, i, value_len_for(tag))[..]),
        "offset {}: value of record {i} of batch {tag}",
        r.offset
    );
    (tag, i)
}

/// A batch seen in the log: its offsets and checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    base: u64,
    last: u64,
    crc: u32,
}

/// Checks the log after every round without decoding all of it every time:
/// batches checked in an earlier round must still be there with the same
/// offsets and checksum (which the read verifies against the bytes); new
/// batches are decoded and checked record by record.
#[derive(Debug, Default)]
struct Checker {
    seen: Vec<Seen>,
    /// Where each batch (by tag) starts.
    batch_base: HashMap<u64, u64>,
}

impl Checker {
    fn check(&mut self, log: &Log, acked: &[Ack], round: u64) -> u64 {
        assert_eq!(log.start_offset(), 0);
        let end = log.end_offset();
        let mut offset = 0;
        let mut index = 0;
        loop {
            let read = log.read(offset, 4 << 20).expect("read");
            if read.bytes.is_empty() {
                break;
            }
            for b in batch::batches(&read.bytes) {
                let (h, bytes) = b.expect("valid batch");
                let seen = Seen {
                    base: h.base_offset as u64,
                    last: h.last_offset() as u64,
                    crc: h.crc,
                };
                assert_eq!(seen.base, offset, "round {round}: offsets contiguous");
                if let Some(old) = self.seen.get(index) {
                    assert_eq!(*old, seen, "round {round}: a checked batch changed");
                } else {
                    self.check_new_batch(seen, bytes, round);
                }
                index += 1;
                offset = seen.last + 1;
            }
            assert_eq!(offset, read.next_offset);
        }
        assert_eq!(offset, end, "round {round}: read to the end offset");
        assert_eq!(
            index,
            self.seen.len(),
            "round {round}: batches checked before are gone"
        );
        for a in acked {
            assert!(
                a.last < end,
                "round {round}: acknowledged {a:?} is past the end {end}"
            );
            assert_eq!(
                self.batch_base.get(&a.tag),
                Some(&a.base),
                "round {round}: acknowledged batch {a:?} is not at its offset"
            );
        }
        end
    }

    fn check_new_batch(&mut self, seen: Seen, bytes: &[u8], round: u64) {
        let records = batch::decode_records(bytes).expect("decodable");
        let (tag, _) = check_record(&records[0]);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(check_record(r), (tag, i), "round {round}: {seen:?}");
            assert_eq!(r.offset as u64, seen.base + i as u64);
        }
        assert_eq!(records.len(), count_for(tag), "round {round}: {seen:?}");
        assert!(
            self.batch_base.insert(tag, seen.base).is_none(),
            "round {round}: batch {tag} appears twice"
        );
        self.seen.push(seen);
    }
}

/// Checks the reopened log from scratch, decoding everything: offsets
/// contiguous from 0, every record whole and recognisable, every batch whole,
/// and every acknowledged append at the offsets it was acknowledged with.
fn check_log(log: &Log, acked: &[Ack], round: u64) -> u64 {
    assert_eq!(log.start_offset(), 0);
    let end = log.end_offset();
    let records = read_all(log, 0);
    assert_eq!(
        records.len() as u64,
        end,
        "round {round}: records read vs end offset"
    );
    // Where each batch (by tag) starts, checking batches are whole and unique.
    let mut batch_base: HashMap<u64, u64> = HashMap::new();
    let mut open_batch: Option<(u64, usize)> = None;
    for (offset, r) in records.iter().enumerate() {
        let offset = offset as u64;
        assert_eq!(r.offset as u64, offset, "round {round}: offsets contiguous");
        let (tag, i) = check_record(r);
        if i == 0 {
            if let Some((prev, n)) = open_batch {
                assert_eq!(n, count_for(prev), "round {round}: batch {prev} cut short");
            }
            assert!(
                batch_base.insert(tag, offset).is_none(),
                "round {round}: batch {tag} appears twice"
            );
            open_batch = Some((tag, 1));
        } else {
            let (prev, n) = open_batch.expect("record 0 first");
            assert_eq!((prev, n), (tag, i), "round {round}: offset {offset}");
            open_batch = Some((tag, n + 1));
        }
    }
    if let Some((prev, n)) = open_batch {
        assert_eq!(n, count_for(prev), "round {round}: last batch cut short");
    }
    for a in acked {
        assert_eq!(
            a.last - a.base + 1,
            count_for(a.tag) as u64,
            "ack {a:?} has the wrong record count"
        );
        assert!(
            a.last < end,
            "round {round}: acknowledged {a:?} is past the end {end}"
        );
        assert_eq!(
            batch_base.get(&a.tag),
            Some(&a.base),
            "round {round}: acknowledged batch {a:?} is not at its offset"
        );
    }
    end
}

fn log_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .count()
}

fn check_report(dir: &Path, report: &RecoveryReport, round: u64, child_wrote: bool) {
    assert_eq!(report.segments, log_files(dir), "round {round}: {report:?}");
    assert!(report.segments >= 1);
    assert!(report.quarantined.is_empty(), "round {round}: {report:?}");
    assert_eq!(report.rebuilt_indexes, 0, "round {round}: {report:?}");
    if child_wrote {
        // The child removed the clean-shutdown marker before its first write.
        assert!(!report.clean, "round {round}: {report:?}");
    }
    if let Some((path, position, cut)) = &report.torn_tail {
        assert!(!report.clean);
        assert!(*cut > 0, "round {round}: {report:?}");
        let len = std::fs::metadata(path).unwrap().len();
        assert_eq!(len, *position, "round {round}: the tail was cut");
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
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
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("log");
    let started = Instant::now();
    let mut acked: Vec<Ack> = Vec::new();
    let mut rounds_with_acks = 0;
    let mut torn_tails = 0;
    let mut end = 0;
    let mut checking = Duration::ZERO;
    let mut checker = Checker::default();
    let mut slowest_start = Duration::ZERO;
    for round in 0..ROUNDS {
        let wait = Duration::from_millis(rng.random_range(20..300));
        let run = run_child(&dir, round, wait);
        if let Some(ready) = run.ready_after {
            slowest_start = slowest_start.max(ready);
        }
        let new = run.acks;
        let check_started = Instant::now();
        if !new.is_empty() {
            rounds_with_acks += 1;
        }
        for a in &new {
            assert!(
                a.base >= end,
                "round {round}: {a:?} reuses an offset below {end}"
            );
        }
        acked.extend_from_slice(&new);
        let (log, report) = Log::open(&dir, config(), StdFs::shared(), SystemClock::shared())
            .unwrap_or_else(|e| {
                panic!("round {round} (seed {seed}): reopen after SIGKILL failed: {e}")
            });
        check_report(&dir, &report, round, !new.is_empty());
        torn_tails += report.torn_tail.is_some() as usize;
        end = checker.check(&log, &acked, round);
        if round == ROUNDS - 1 {
            assert_eq!(check_log(&log, &acked, round), end);
        }
        // Alternate: a clean close, or a drop (recovered as after a crash).
        if round % 2 == 0 {
            log.close().unwrap();
        } else {
            drop(log);
        }
        checking += check_started.elapsed();
    }
    let records: u64 = acked.iter().map(|a| a.last - a.base + 1).sum();
    println!(
        "kill_nine: {ROUNDS} rounds in {:?}: {} acknowledged appends ({records} records) \
         checked, {rounds_with_acks} rounds with acks, {torn_tails} torn tails cut, \
         {end} records and {} segments in the log; {checking:?} spent reopening and \
         checking, slowest child start {slowest_start:?}",
        started.elapsed(),
        acked.len(),
        log_files(&dir),
    );
    assert!(
        records > 0,
        "nothing was acknowledged: the test proved nothing"
    );
    assert!(
        rounds_with_acks > ROUNDS / 4,
        "too few rounds wrote anything"
    );
}
