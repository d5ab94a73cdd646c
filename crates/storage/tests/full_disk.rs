//! Full-disk tests on a small tmpfs (so they need root; otherwise they are
//! skipped with a message): an append that does not fit fails with an I/O
//! error, nothing that failed is acknowledged or shows up after a reopen,
//! every acknowledged record survives, and writing resumes once space is
//! freed and the log reopened.
//!
//! Three ways to run out: data blocks while writing a batch, data blocks
//! while a roll writes the sealed segment's indexes, and inodes while a roll
//! creates the next segment file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{make_batch, read_all, value_for};
use hermod_storage::clock::SystemClock;
use hermod_storage::io::StdFs;
use hermod_storage::{Error, Log, LogConfig};

const SEGMENT_BYTES: u64 = 512 << 10;
const RECORDS_PER_BATCH: usize = 4;
const VALUE_LEN: usize = 1000;
/// Tags have four digits, so that every batch has the same length.
const FIRST_TAG: u64 = 1000;
/// ENOSPC on Linux.
const ENOSPC: i32 = 28;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> hermod_storage::Result<Log> {
    Log::open(dir, config(), StdFs::shared(), SystemClock::shared()).map(|(log, _)| log)
}

fn batch(tag: u64) -> Vec<u8> {
    assert!((FIRST_TAG..10_000).contains(&tag));
    make_batch(tag, RECORDS_PER_BATCH, VALUE_LEN, tag as i64)
}

/// Batches that fit in one segment (the next one rolls).
fn batches_per_segment() -> usize {
    (SEGMENT_BYTES / batch(FIRST_TAG).len() as u64) as usize
}

/// The effective user id, from /proc (no `unsafe` for `geteuid`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// A tmpfs mounted on a temporary directory, lazily unmounted when dropped
/// (also when the test panics), before the directory is removed.
struct Tmpfs {
    at: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options`, or says why the test is skipped.
    fn mount(options: &str) -> Option<Tmpfs> {
        match effective_uid() {
            Some(0) => {}
            uid => {
                println!(
                    "skipping full-disk test: not running as root (uid {uid:?}), \
                     cannot mount a small tmpfs"
                );
                return None;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs {
                at: dir.path().to_path_buf(),
                _dir: dir,
            }),
            Ok(out) => {
                println!(
                    "skipping full-disk test: mount -t tmpfs -o {options} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipping full-disk test: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

fn enospc_op(e: &Error) -> Option<&'static str> {
    match e {
        Error::Io { op, source, .. } if source.raw_os_error() == Some(ENOSPC) => Some(op),
        _ => None,
    }
}

/// The acknowledged batches, by tag, in offset order.
#[derive(Debug, Default)]
struct Acked {
    tags: Vec<u64>,
    next_tag: u64,
}

impl Acked {
    fn new() -> Acked {
        Acked {
            tags: Vec::new(),
            next_tag: FIRST_TAG,
        }
    }

    /// Appends the next batch, recording it if acknowledged.
    fn append(&mut self, log: &Log) -> hermod_storage::Result<()> {
        let tag = self.next_tag;
        self.next_tag += 1;
        let info = log.append(&mut batch(tag))?;
        let base = (self.tags.len() * RECORDS_PER_BATCH) as u64;
        assert_eq!(info.base_offset, base, "batch {tag}");
        assert_eq!(info.last_offset, base + RECORDS_PER_BATCH as u64 - 1);
        self.tags.push(tag);
        Ok(())
    }

    /// Checks that the log holds exactly the acknowledged batches, whole and
    /// in order, from offset 0.
    fn check(&self, log: &Log) {
        let records = read_all(log, 0);
        let expected = self.tags.len() * RECORDS_PER_BATCH;
        assert_eq!(records.len(), expected, "records in the log");
        assert_eq!(log.start_offset(), 0);
        assert_eq!(log.end_offset(), expected as u64, "end offset");
        for (i, r) in records.iter().enumerate() {
            let tag = self.tags[i / RECORDS_PER_BATCH];
            assert_eq!(r.offset as u64, i as u64);
            assert_eq!(
                r.value.as_deref(),
                Some(&value_for(tag, i % RECORDS_PER_BATCH, VALUE_LEN)[..]),
                "offset {i}"
            );
        }
    }

    fn records(&self) -> usize {
        self.tags.len() * RECORDS_PER_BATCH
    }
}

/// From the first failed append on: more appends fail and acknowledge
/// nothing; the log (and a reopened one, the disk still full) holds exactly
/// what was acknowledged; after `free` and a reopen, appends work again,
/// across a roll and a clean close.
fn after_the_disk_filled(
    name: &str,
    dir: &Path,
    log: Log,
    mut acked: Acked,
    first_error: Error,
    expected_op: &str,
    free: impl FnOnce(),
) {
    println!(
        "full_disk/{name}: first failure after {} acknowledged batches, {} segments: {first_error}",
        acked.tags.len(),
        log.segment_count()
    );
    assert_eq!(
        enospc_op(&first_error),
        Some(expected_op),
        "{name}: the append failed with {first_error:?}"
    );
    assert!(
        !first_error.is_fatal(),
        "{name}: running out of space does not poison the log"
    );
    for _ in 0..5 {
        let e = acked
            .append(&log)
            .expect_err("an append on a full disk succeeded");
        assert!(
            enospc_op(&e).is_some() || matches!(e, Error::Poisoned { .. }),
            "{name}: unexpected error {e:?}"
        );
    }
    acked.check(&log);
    drop(log);

    // Reopen with the disk still full.
    let log = open(dir).expect("reopen on a full disk");
    acked.check(&log);
    let e = acked.append(&log).expect_err("the disk is still full");
    assert!(enospc_op(&e).is_some(), "{name}: unexpected error {e:?}");
    acked.check(&log);
    drop(log);

    // Free space, reopen, and write again, across a roll.
    free();
    let log = open(dir).expect("reopen after freeing space");
    acked.check(&log);
    let before = acked.tags.len();
    let segments = log.segment_count();
    for _ in 0..batches_per_segment() + 1 {
        acked.append(&log).expect("append after freeing space");
    }
    assert!(log.segment_count() > segments, "{name}: a roll happened");
    acked.check(&log);
    log.close().expect("clean close after freeing space");
    drop(log);
    let (log, report) = Log::open(dir, config(), StdFs::shared(), SystemClock::shared())
        .expect("reopen after a clean close");
    assert!(report.clean);
    acked.check(&log);
    println!(
        "full_disk/{name}: {} acknowledged records checked, {} batches after freeing space",
        acked.records(),
        acked.tags.len() - before
    );
}

/// Appends until an append fails; returns its error.
fn append_until_failure(log: &Log, acked: &mut Acked) -> Error {
    loop {
        assert!(acked.next_tag < 9_000, "the tmpfs never filled up");
        if let Err(e) = acked.append(log) {
            return e;
        }
    }
}

/// Appends until the next append must roll to a third segment.
fn fill_two_segments(log: &Log, acked: &mut Acked) {
    while acked.tags.len() < 2 * batches_per_segment() {
        acked.append(log).expect("append before the disk is full");
    }
    assert_eq!(log.segment_count(), 2);
}

/// Writes a file until the disk is full (the file stays).
fn fill_blocks(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 4096];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(ENOSPC) => return,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

#[test]
fn a_batch_write_fails_on_a_full_disk_and_writing_resumes() {
    let Some(fs) = Tmpfs::mount("size=2m") else {
        return;
    };
    let filler = fs.at.join("filler");
    // Two rolls happen before the rest fills, in the middle of the third
    // segment; freeing the filler leaves room for more than a segment.
    std::fs::write(&filler, vec![0xa5u8; 768 << 10]).unwrap();
    let dir = fs.at.join("log");
    let log = open(&dir).expect("open on an empty tmpfs");
    let mut acked = Acked::new();
    let error = append_until_failure(&log, &mut acked);
    assert!(
        log.segment_count() >= 2,
        "a roll happened before the disk filled"
    );
    after_the_disk_filled("write", &dir, log, acked, error, "write", || {
        std::fs::remove_file(&filler).unwrap()
    });
}

#[test]
fn a_roll_that_cannot_write_the_indexes_fails_cleanly() {
    let Some(fs) = Tmpfs::mount("size=2m") else {
        return;
    };
    let dir = fs.at.join("log");
    let log = open(&dir).expect("open on an empty tmpfs");
    let mut acked = Acked::new();
    fill_two_segments(&log, &mut acked);
    let filler = fs.at.join("filler");
    fill_blocks(&filler);
    let error = acked.append(&log).expect_err("the roll needs space");
    after_the_disk_filled("roll-index", &dir, log, acked, error, "write index", || {
        std::fs::remove_file(&filler).unwrap()
    });
}

#[test]
fn a_roll_that_cannot_create_the_next_segment_fails_cleanly() {
    let Some(fs) = Tmpfs::mount("size=4m,nr_inodes=64") else {
        return;
    };
    let dir = fs.at.join("log");
    let log = open(&dir).expect("open on an empty tmpfs");
    let mut acked = Acked::new();
    fill_two_segments(&log, &mut acked);
    // Use up the inodes, then give back two: the roll's two index files get
    // them, and creating the next segment file fails.
    let mut fillers = Vec::new();
    loop {
        assert!(fillers.len() < 1000, "the tmpfs never ran out of inodes");
        let path = fs.at.join(format!("inode-{}", fillers.len()));
        match std::fs::File::create(&path) {
            Ok(_) => fillers.push(path),
            Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
            Err(e) => panic!("creating {}: {e}", path.display()),
        }
    }
    for path in fillers.drain(fillers.len() - 2..) {
        std::fs::remove_file(path).unwrap();
    }
    let error = acked.append(&log).expect_err("the roll needs an inode");
    after_the_disk_filled(
        "roll-create",
        &dir,
        log,
        acked,
        error,
        "create segment",
        || {
            for path in fillers {
                std::fs::remove_file(path).unwrap();
            }
        },
    );
}
