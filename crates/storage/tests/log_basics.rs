//! The log's everyday behaviour on a real file system: append and read back,
//! offsets, reopening, rolling, time lookup, retention and truncation.

mod common;

use std::sync::Arc;

use common::{make_batch, read_all, value_for};
use hermod_storage::clock::{ManualClock, SystemClock};
use hermod_storage::io::StdFs;
use hermod_storage::{Durability, Error, Log, LogConfig};

fn open(dir: &std::path::Path, config: LogConfig) -> Log {
    Log::open(dir, config, StdFs::shared(), SystemClock::shared())
        .expect("open")
        .0
}

#[test]
fn appends_get_consecutive_offsets_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let mut expected = Vec::new();
    for tag in 0..20u64 {
        let count = 1 + tag as usize % 5;
        let info = log.append(&mut make_batch(tag, count, 100, 1000)).unwrap();
        assert_eq!(info.last_offset - info.base_offset + 1, count as u64);
        assert_eq!(info.base_offset, expected.len() as u64);
        for i in 0..count {
            expected.push(value_for(tag, i, 100));
        }
    }
    assert_eq!(log.start_offset(), 0);
    assert_eq!(log.end_offset(), expected.len() as u64);
    let records = read_all(&log, 0);
    assert_eq!(records.len(), expected.len());
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(&expected[i][..]));
    }
}

#[test]
fn read_inside_a_batch_returns_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append(&mut make_batch(0, 10, 10, 0)).unwrap();
    log.append(&mut make_batch(1, 10, 10, 0)).unwrap();
    let read = log.read(13, 1).unwrap();
    let batches: Vec<_> = hermod_storage::batch::batches(&read.bytes).collect();
    assert_eq!(
        batches.len(),
        1,
        "max_bytes below one batch still returns one batch"
    );
    let (header, _) = batches[0].as_ref().unwrap();
    assert_eq!(header.base_offset, 10);
    assert_eq!(read.next_offset, 20);
    assert!(log.read(20, 1000).unwrap().bytes.is_empty());
    assert!(matches!(
        log.read(21, 1000),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn reopen_after_clean_close_and_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 8 << 10,
        index_interval_bytes: 512,
        ..LogConfig::default()
    };
    {
        let log = open(dir.path(), config.clone());
        for tag in 0..50 {
            log.append(&mut make_batch(tag, 3, 200, tag as i64))
                .unwrap();
        }
        assert!(log.segment_count() >= 4, "small segments roll");
        log.close().unwrap();
        assert!(matches!(
            log.append(&mut make_batch(99, 1, 1, 0)),
            Err(Error::Closed { .. })
        ));
    }
    let (log, report) = Log::open(
        dir.path(),
        config.clone(),
        StdFs::shared(),
        SystemClock::shared(),
    )
    .unwrap();
    assert!(report.clean);
    assert_eq!(report.scanned_bytes, 0);
    assert_eq!(log.end_offset(), 150);
    log.append(&mut make_batch(50, 3, 200, 50)).unwrap();
    drop(log); // no close: the next open recovers as after a crash
    let (log, report) =
        Log::open(dir.path(), config, StdFs::shared(), SystemClock::shared()).unwrap();
    assert!(!report.clean);
    assert!(report.torn_tail.is_none());
    let records = read_all(&log, 0);
    assert_eq!(records.len(), 153);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(
            r.value.as_deref(),
            Some(&value_for(i as u64 / 3, i % 3, 200)[..])
        );
    }
    // Reads from the middle of every segment agree with a full read.
    for offset in (0..153).step_by(7) {
        let from_here = read_all(&log, offset);
        assert_eq!(from_here.len() as u64, 153 - offset);
        assert_eq!(from_here[0].offset as u64, offset);
    }
}

#[test]
fn rolls_by_age_with_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let config = LogConfig {
        segment_ms: Some(60_000),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config, StdFs::shared(), clock.clone())
        .unwrap()
        .0;
    log.append(&mut make_batch(0, 1, 10, 0)).unwrap();
    clock.advance(59_999);
    log.append(&mut make_batch(1, 1, 10, 0)).unwrap();
    assert_eq!(log.segment_count(), 1);
    clock.advance(1);
    log.append(&mut make_batch(2, 1, 10, 0)).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(read_all(&log, 0).len(), 3);
}

#[test]
fn finds_the_first_offset_at_or_after_a_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 4 << 10,
        index_interval_bytes: 256,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    // Batch t has records at timestamps 1000*t .. 1000*t+4, offsets 5t..5t+4.
    for t in 0..40u64 {
        log.append(&mut make_batch(t, 5, 100, 1000 * t as i64))
            .unwrap();
    }
    assert!(log.segment_count() > 3);
    assert_eq!(log.offset_for_timestamp(-5).unwrap(), Some(0));
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some(0));
    assert_eq!(log.offset_for_timestamp(3).unwrap(), Some(3));
    assert_eq!(log.offset_for_timestamp(5).unwrap(), Some(5));
    assert_eq!(log.offset_for_timestamp(17_002).unwrap(), Some(87));
    assert_eq!(log.offset_for_timestamp(39_004).unwrap(), Some(199));
    assert_eq!(log.offset_for_timestamp(39_005).unwrap(), None);
    for t in 0..40u64 {
        let ts = 1000 * t as i64 + 2;
        assert_eq!(log.offset_for_timestamp(ts).unwrap(), Some(5 * t + 2));
    }
}

#[test]
fn retention_by_size_and_age_deletes_whole_old_segments_unless_held() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(10_000_000);
    let config = LogConfig {
        segment_bytes: 4 << 10,
        retention_bytes: Some(16 << 10),
        retention_ms: None,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config, StdFs::shared(), clock.clone())
        .unwrap()
        .0;
    for t in 0..60 {
        log.append(&mut make_batch(t, 2, 300, 0)).unwrap();
    }
    let before = log.segment_count();
    let held = log.apply_retention(&|_| false).unwrap();
    assert_eq!(held.deleted_segments, 0, "the hook can hold every segment");
    let report = log.apply_retention(&|_| true).unwrap();
    assert!(report.deleted_segments > 0);
    assert_eq!(log.segment_count(), before - report.deleted_segments);
    assert_eq!(log.start_offset(), report.start_offset);
    assert!(matches!(
        log.read(0, 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
    let rest = read_all(&log, report.start_offset);
    assert_eq!(rest.len() as u64, 120 - report.start_offset);
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        on_disk < (16 << 10) + (4 << 10),
        "{on_disk} bytes left on disk"
    );
}

#[test]
fn delete_before_removes_only_segments_wholly_below_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 2 << 10,
        retention_ms: None,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    for t in 0..30 {
        log.append(&mut make_batch(t, 2, 300, 0)).unwrap();
    }
    let report = log.delete_before(0).unwrap();
    assert_eq!(report.deleted_segments, 0);
    let report = log.delete_before(21).unwrap();
    assert!(report.deleted_segments > 0);
    assert!(report.start_offset <= 21, "offset 21 is kept");
    assert_eq!(log.start_offset(), report.start_offset);
    assert_eq!(read_all(&log, 21)[0].offset, 21);
    log.delete_before(u64::MAX).unwrap();
    assert_eq!(log.segment_count(), 1, "the active segment stays");
    assert_eq!(log.end_offset(), 60);
}

#[test]
fn retention_by_age_uses_record_timestamps_and_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(100_000);
    let config = LogConfig {
        segment_bytes: 2 << 10,
        retention_ms: Some(50_000),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config, StdFs::shared(), clock.clone())
        .unwrap()
        .0;
    for t in 0..20 {
        // Records from timestamp 0 to 95_000.
        log.append(&mut make_batch(t, 1, 600, t as i64 * 5_000))
            .unwrap();
    }
    let report = log.apply_retention(&|_| true).unwrap();
    assert!(report.deleted_segments > 0);
    // Every remaining record (but those of the active segment) is younger than 50 s.
    let records = read_all(&log, log.start_offset());
    assert!(records[0].timestamp >= 40_000, "{}", records[0].timestamp);
    clock.advance(1_000_000);
    log.apply_retention(&|_| true).unwrap();
    assert_eq!(log.segment_count(), 1, "only the active segment is left");
}

#[test]
fn truncate_cuts_at_the_batch_holding_the_offset_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 4 << 10,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config.clone());
    for t in 0..40 {
        log.append(&mut make_batch(t, 4, 100, 0)).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    assert_eq!(
        log.truncate(161).unwrap(),
        160,
        "nothing at or past the end"
    );
    assert_eq!(
        log.truncate(50).unwrap(),
        48,
        "cut at the start of the batch holding 50"
    );
    assert!(log.segment_count() < segments);
    assert_eq!(log.end_offset(), 48);
    let info = log.append(&mut make_batch(100, 2, 100, 0)).unwrap();
    assert_eq!(info.base_offset, 48);
    drop(log);
    let log = open(dir.path(), config);
    let records = read_all(&log, 0);
    assert_eq!(records.len(), 50);
    assert_eq!(
        records[48].value.as_deref(),
        Some(&value_for(100, 0, 100)[..])
    );
}

#[test]
fn rejects_bad_batches_without_changing_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_batch_bytes: 2048,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    let mut big = make_batch(0, 10, 500, 0);
    assert!(matches!(
        log.append(&mut big),
        Err(Error::BatchTooLarge { .. })
    ));
    let mut flipped = make_batch(1, 1, 10, 0);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        log.append(&mut flipped),
        Err(Error::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append(&mut [0u8; 10]),
        Err(Error::InvalidBatch(_))
    ));
    assert_eq!(log.end_offset(), 0);
}

#[test]
fn interval_mode_syncs_when_due_by_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let config = LogConfig {
        durability: Durability::Interval { ms: 100 },
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config, StdFs::shared(), clock.clone())
        .unwrap()
        .0;
    let syncs = log.sync_count();
    log.append(&mut make_batch(0, 1, 10, 0)).unwrap();
    log.sync_if_due().unwrap();
    assert_eq!(log.sync_count(), syncs, "not due yet");
    clock.advance(100);
    log.sync_if_due().unwrap();
    assert_eq!(log.sync_count(), syncs + 1);
    log.sync_if_due().unwrap();
    assert_eq!(log.sync_count(), syncs + 1, "nothing new to sync");
}

#[test]
fn concurrent_appends_share_syncs_and_get_distinct_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), LogConfig::default()));
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..50u64)
                    .map(|i| {
                        log.append(&mut make_batch(t * 1000 + i, 1, 64, 0))
                            .unwrap()
                            .base_offset
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut offsets: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..800).collect::<Vec<_>>());
    assert!(log.sync_count() <= 800);
    assert_eq!(read_all(&log, 0).len(), 800);
}

#[test]
fn memory_logs_work_without_a_disk() {
    let log = Log::open_in_memory(LogConfig::default(), SystemClock::shared()).unwrap();
    for t in 0..10 {
        log.append(&mut make_batch(t, 2, 10, 0)).unwrap();
    }
    assert_eq!(read_all(&log, 0).len(), 20);
    assert_eq!(log.sync_count(), 0);
}

#[test]
fn the_flusher_syncs_interval_logs_once_their_deadline_passes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let config = LogConfig {
        durability: Durability::Interval { ms: 100 },
        ..LogConfig::default()
    };
    let log = Arc::new(
        Log::open(dir.path(), config, StdFs::shared(), clock.clone())
            .unwrap()
            .0,
    );
    let flusher = hermod_storage::Flusher::start(std::time::Duration::from_millis(1));
    flusher.register(&log);
    log.append(&mut make_batch(0, 1, 10, 0)).unwrap();
    let before = log.sync_count();
    // The flusher looks every millisecond, but the injected clock says the
    // deadline has not passed: give it many chances to sync too early.
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(log.sync_count(), before, "synced before the deadline");
    clock.advance(100);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.sync_count() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the flusher never synced"
        );
        std::thread::yield_now();
    }
    drop(flusher);
}

#[test]
fn many_writers_on_two_cores_never_hang_in_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), LogConfig::default()));
    let threads: Vec<_> = (0..64u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut batch = make_batch(t, 1, 1024, 0);
                for _ in 0..200 {
                    log.append(&mut batch).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.end_offset(), 64 * 200);
}

#[test]
fn a_batch_larger_than_the_group_buffer_is_written_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append(&mut make_batch(0, 1, 10, 0)).unwrap();
    log.append(&mut make_batch(1, 3, 1 << 20, 0)).unwrap();
    log.append(&mut make_batch(2, 1, 10, 0)).unwrap();
    let records = read_all(&log, 0);
    assert_eq!(records.len(), 5);
    assert_eq!(
        records[2].value.as_deref(),
        Some(&value_for(1, 1, 1 << 20)[..])
    );
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(read_all(&log, 0).len(), 5);
}
