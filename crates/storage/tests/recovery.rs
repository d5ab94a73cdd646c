//! Recovery on a real file system: a torn tail at every byte of the last
//! batch is cut, while damage to synced data is reported as corruption (or
//! quarantined), never silently dropped. And a failed sync poisons the log.

mod common;

use std::path::{Path, PathBuf};

use common::{make_batch, read_all, value_for};
use hermod_storage::clock::SystemClock;
use hermod_storage::io::StdFs;
use hermod_storage::sim::SimFs;
use hermod_storage::{CorruptionPolicy, Durability, Error, Log, LogConfig, RecoveryReport};

fn open(dir: &Path, config: LogConfig) -> Result<(Log, RecoveryReport), Error> {
    Log::open(dir, config, StdFs::shared(), SystemClock::shared())
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_torn_last_batch_is_cut_at_every_byte_and_earlier_batches_stay() {
    let src = tempfile::tempdir().unwrap();
    // Interval mode: the first batches are synced by `sync`, the last one is
    // only written, as it would be when power fails during its write.
    let config = LogConfig {
        durability: Durability::Interval { ms: 1_000_000 },
        ..LogConfig::default()
    };
    let (log, _) = open(src.path(), config.clone()).unwrap();
    for tag in 0..5 {
        log.append(&mut make_batch(tag, 3, 50, 0)).unwrap();
    }
    log.sync().unwrap();
    let synced_len = std::fs::metadata(&segment_files(src.path())[0])
        .unwrap()
        .len();
    log.append(&mut make_batch(5, 3, 50, 0)).unwrap();
    drop(log);
    let full_len = std::fs::metadata(&segment_files(src.path())[0])
        .unwrap()
        .len();
    assert!(full_len > synced_len);

    let scratch = tempfile::tempdir().unwrap();
    for cut in synced_len..full_len {
        let dir = scratch.path().join(cut.to_string());
        copy_dir(src.path(), &dir);
        let segment = &segment_files(&dir)[0];
        std::fs::OpenOptions::new()
            .write(true)
            .open(segment)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (log, report) =
            open(&dir, config.clone()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(log.end_offset(), 15, "cut at {cut}");
        if cut > synced_len {
            let (_, position, bytes) = report.torn_tail.clone().expect("a torn tail is reported");
            assert_eq!((position, bytes), (synced_len, cut - synced_len));
        }
        let records = read_all(&log, 0);
        assert_eq!(records.len(), 15);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(
                r.value.as_deref(),
                Some(&value_for(i as u64 / 3, i % 3, 50)[..])
            );
        }
        // The log goes on where the whole batches end.
        assert_eq!(
            log.append(&mut make_batch(9, 1, 5, 0)).unwrap().base_offset,
            15
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A log of two segments, fsync mode, dropped without a clean close.
fn two_segment_log(dir: &Path, config: &LogConfig) -> Vec<PathBuf> {
    let (log, _) = open(dir, config.clone()).unwrap();
    for tag in 0..30 {
        log.append(&mut make_batch(tag, 2, 200, 0)).unwrap();
    }
    assert!(log.segment_count() >= 2);
    drop(log);
    segment_files(dir)
}

fn flip_bit(path: &Path, position: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[position as usize] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 8 << 10,
        ..LogConfig::default()
    }
}

#[test]
fn a_flipped_bit_in_synced_data_of_the_last_segment_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let files = two_segment_log(dir.path(), &small_segments());
    let last = files.last().unwrap();
    // Inside the second batch's records (past its 61-byte header).
    let first = hermod_storage::batch::BatchHeader::parse(&std::fs::read(last).unwrap()).unwrap();
    let batch_len = first.total_len() as u64;
    let position = batch_len + 100;
    flip_bit(last, position);
    match open(dir.path(), small_segments()) {
        Err(Error::Corruption {
            file,
            position: at,
            reason,
        }) => {
            assert_eq!(&file, last);
            assert_eq!(at, batch_len, "names the start of the damaged batch");
            assert!(reason.to_lowercase().contains("crc"), "{reason}");
        }
        other => panic!("expected corruption, got {:?}", other.map(|(_, r)| r)),
    }
    // Nothing was cut: the damaged file is still whole for a person to look at.
    let expected = std::fs::metadata(&files[0]).unwrap().len();
    assert!(std::fs::metadata(last).unwrap().len() > 0 && expected > 0);
}

#[test]
fn a_flipped_bit_in_a_sealed_segment_is_reported_by_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let files = two_segment_log(dir.path(), &small_segments());
    flip_bit(&files[0], 70);
    let (log, _) = open(dir.path(), small_segments()).unwrap();
    match log.read(0, 1 << 20) {
        Err(Error::Corruption { file, position, .. }) => {
            assert_eq!(file, files[0]);
            assert_eq!(position, 0);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn quarantine_copies_the_damage_aside_and_never_reuses_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        on_corruption: CorruptionPolicy::Quarantine,
        ..small_segments()
    };
    let files = two_segment_log(dir.path(), &config);
    let end_before = open(dir.path(), config.clone()).unwrap().0.end_offset();
    let last_bytes = std::fs::read(files.last().unwrap()).unwrap();
    let last_base = hermod_storage::batch::BatchHeader::parse(&last_bytes)
        .unwrap()
        .base_offset;
    flip_bit(files.last().unwrap(), 100);
    let (log, report) = open(dir.path(), config).unwrap();
    assert_eq!(report.quarantined.len(), 1);
    let copy = &report.quarantined[0];
    assert!(copy.starts_with(dir.path().join(hermod_storage::QUARANTINE_DIR)));
    assert!(std::fs::metadata(copy).unwrap().len() > 0);
    // The damaged batch was the first of the last segment: the log keeps the
    // sealed segment and goes on after every offset it ever handed out.
    assert_eq!(read_all(&log, 0).len() as i64, last_base);
    let next = log
        .append(&mut make_batch(99, 1, 10, 0))
        .unwrap()
        .base_offset;
    assert!(
        next >= end_before,
        "offset {next} handed out again (end was {end_before})"
    );
}

#[test]
fn a_segment_shorter_than_what_was_synced_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), LogConfig::default()).unwrap();
    for tag in 0..4 {
        log.append(&mut make_batch(tag, 1, 100, 0)).unwrap();
    }
    drop(log);
    let segment = &segment_files(dir.path())[0];
    let batch_len = make_batch(0, 1, 100, 0).len() as u64;
    // Cut at a batch boundary: every remaining batch is whole, but one that
    // was synced (and acknowledged) is gone.
    std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap()
        .set_len(3 * batch_len)
        .unwrap();
    match open(dir.path(), LogConfig::default()) {
        Err(Error::Corruption { position, .. }) => assert_eq!(position, 3 * batch_len),
        other => panic!("expected corruption, got {:?}", other.map(|(_, r)| r)),
    }
}

#[test]
fn a_failed_sync_poisons_the_log_until_reopened_and_acknowledges_nothing() {
    let fs = SimFs::new(7);
    let dir = Path::new("/data/p0");
    let open_sim = || {
        Log::open(dir, LogConfig::default(), fs.clone(), SystemClock::shared())
            .unwrap()
            .0
    };
    let log = open_sim();
    log.append(&mut make_batch(0, 2, 10, 0)).unwrap();
    fs.fail_syncs(1);
    let err = log.append(&mut make_batch(1, 2, 10, 0)).unwrap_err();
    assert!(err.is_fatal(), "{err}");
    assert!(matches!(
        log.append(&mut make_batch(2, 1, 10, 0)),
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(log.sync(), Err(Error::Poisoned { .. })));
    assert_eq!(log.end_offset(), 2, "readers never saw the unsynced batch");
    drop(log);
    fs.crash();
    let log = open_sim();
    assert_eq!(log.end_offset(), 2);
    assert_eq!(
        log.append(&mut make_batch(3, 1, 10, 0))
            .unwrap()
            .base_offset,
        2
    );
    assert_eq!(read_all(&log, 0).len(), 3);
}

#[test]
fn a_full_disk_fails_the_append_and_the_log_goes_on_once_space_is_back() {
    let fs = SimFs::new(3);
    let dir = Path::new("/data/p0");
    let log = Log::open(dir, LogConfig::default(), fs.clone(), SystemClock::shared())
        .unwrap()
        .0;
    log.append(&mut make_batch(0, 1, 100, 0)).unwrap();
    fs.set_capacity(Some(300));
    let err = log.append(&mut make_batch(1, 3, 100, 0)).unwrap_err();
    match &err {
        Error::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(28)),
        other => panic!("expected ENOSPC, got {other}"),
    }
    assert!(
        !err.is_fatal(),
        "a failed write is this request's failure only"
    );
    fs.set_capacity(None);
    assert_eq!(
        log.append(&mut make_batch(2, 1, 100, 0))
            .unwrap()
            .base_offset,
        1
    );
    drop(log);
    fs.crash();
    let log = Log::open(dir, LogConfig::default(), fs.clone(), SystemClock::shared())
        .unwrap()
        .0;
    let records = read_all(&log, 0);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].value.as_deref(), Some(&value_for(2, 0, 100)[..]));
}

#[test]
fn a_wrong_index_is_only_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 256,
        ..small_segments()
    };
    let files = two_segment_log(dir.path(), &config);
    // Point every entry of the first segment's index at byte 7 of offset 1.
    let index = files[0].with_extension("index");
    let entries = std::fs::metadata(&index).unwrap().len() / 8;
    assert!(entries > 2);
    let bogus: Vec<u8> = (0..entries)
        .flat_map(|i| [(i as u32).to_be_bytes(), 7u32.to_be_bytes()].concat())
        .collect();
    std::fs::write(&index, bogus).unwrap();
    let (log, _) = open(dir.path(), config).unwrap();
    for from in [0, 1, 5, 13] {
        let records = read_all(&log, from);
        assert_eq!(records[0].offset as u64, from);
        assert_eq!(records.len() as u64, log.end_offset() - from);
    }
}
