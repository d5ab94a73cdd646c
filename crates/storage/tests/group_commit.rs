//! Group commit under concurrency and faults: many threads append in `fsync`
//! mode while group writes and syncs fail now and then; nobody hangs, and
//! after a crash every append that was acknowledged is there, intact, at its
//! offset.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use common::{make_batch, read_all, value_for};
use hermod_storage::clock::SystemClock;
use hermod_storage::sim::SimFs;
use hermod_storage::{Error, Log, LogConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const WRITERS: u64 = 8;
const APPENDS: u64 = 300;
/// Not a timing assertion: a run that takes this long is stuck.
const HANG: Duration = Duration::from_secs(60);

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

/// One writer: appends, and remembers what was acknowledged where.
fn writer(log: Arc<Log>, id: u64) -> BTreeMap<u64, (u64, usize, usize)> {
    let mut acked = BTreeMap::new();
    for seq in 0..APPENDS {
        let tag = id * 10_000 + seq;
        let (count, len) = (1 + (seq % 3) as usize, 20 + (seq % 50) as usize);
        match log.append(&mut make_batch(tag, count, len, 0)) {
            Ok(info) => {
                for i in 0..count {
                    acked.insert(info.base_offset + i as u64, (tag, i, len));
                }
            }
            Err(e) if e.is_fatal() => break,
            Err(Error::Io { .. } | Error::Unwritten { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    acked
}

fn run(seed: u64) -> (usize, bool) {
    let fs = SimFs::new(seed);
    let dir = Path::new("/data/p");
    let open = || {
        Log::open(dir, config(), fs.clone(), SystemClock::shared())
            .unwrap()
            .0
    };
    let log = Arc::new(open());
    let stop = Arc::new(AtomicBool::new(false));
    let chaos = {
        let (fs, stop) = (fs.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut injected_sync_failure = false;
            while !stop.load(Ordering::Relaxed) {
                match rng.random_range(0..100) {
                    0..=9 => fs.fail_writes(1),
                    10 if seed.is_multiple_of(3) && !injected_sync_failure => {
                        fs.fail_syncs(1);
                        injected_sync_failure = true;
                    }
                    _ => {}
                }
                std::thread::yield_now();
            }
        })
    };
    let (done, finished) = mpsc::channel();
    for id in 0..WRITERS {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || done.send(writer(log, id)).unwrap());
    }
    let mut acked = BTreeMap::new();
    for _ in 0..WRITERS {
        let part = finished
            .recv_timeout(HANG)
            .unwrap_or_else(|_| panic!("seed {seed}: a writer hung"));
        acked.extend(part);
    }
    stop.store(true, Ordering::Relaxed);
    chaos.join().unwrap();
    let poisoned = matches!(log.sync(), Err(Error::Poisoned { .. }));
    drop(log);
    fs.fail_writes(0);
    fs.fail_syncs(0);
    fs.crash();
    let log = open();
    let records = read_all(&log, 0);
    let end = log.end_offset();
    assert_eq!(records.len() as u64, end, "seed {seed}: offsets contiguous");
    for (&offset, &(tag, i, len)) in &acked {
        assert!(
            offset < end,
            "seed {seed}: acknowledged offset {offset} lost (end {end})"
        );
        let r = &records[offset as usize];
        assert_eq!(
            r.value.as_deref(),
            Some(&value_for(tag, i, len)[..]),
            "seed {seed}, offset {offset}"
        );
    }
    (acked.len(), poisoned)
}

#[test]
fn concurrent_appends_with_failing_writes_and_syncs_lose_nothing_acknowledged() {
    let mut acked = 0;
    let mut poisoned = 0;
    for seed in 0..100 {
        let (n, p) = run(seed);
        acked += n;
        poisoned += usize::from(p);
    }
    assert!(acked > 10_000, "only {acked} records acknowledged");
    assert!(poisoned > 0, "no run exercised a failed sync");
}
