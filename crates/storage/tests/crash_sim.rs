//! Randomized crash testing over the fault-injecting file system.
//!
//! Each seed drives a log through random appends, syncs, clock moves, clean
//! reopens, truncations, injected I/O failures and simulated power losses
//! (un-synced bytes dropped, kept in part, torn or reordered). After every
//! reopen it checks the log against a model: every acknowledged record is
//! present and intact at its offset, offsets are contiguous, and every record
//! that is there (acknowledged or not) is exactly what was written at that
//! offset; nothing unacknowledged is corrupt.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{make_batch, read_all, value_for};
use hermod_storage::clock::ManualClock;
use hermod_storage::sim::SimFs;
use hermod_storage::{Durability, Error, Log, LogConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEEDS: u64 = 1000;

/// What the test knows of the log.
#[derive(Default)]
struct Model {
    /// Every record at an offset the log may hold: (batch tag, index, value length).
    written: BTreeMap<u64, (u64, usize, usize)>,
    /// Offsets below this were acknowledged as durable.
    acked_end: u64,
}

struct Run {
    fs: Arc<SimFs>,
    clock: Arc<ManualClock>,
    config: LogConfig,
    rng: StdRng,
    model: Model,
    next_tag: u64,
    acked_records: u64,
    crashes: u64,
    torn_tails: u64,
}

impl Run {
    fn new(seed: u64) -> Run {
        let mut rng = StdRng::seed_from_u64(seed);
        let durability = if rng.random_bool(0.6) {
            Durability::Fsync
        } else {
            Durability::Interval { ms: 50 }
        };
        let config = LogConfig {
            durability,
            segment_bytes: rng.random_range(2_000..12_000),
            index_interval_bytes: rng.random_range(100..2_000),
            checkpoint_interval_ms: if rng.random_bool(0.5) { 0 } else { 1_000_000 },
            retention_ms: None,
            ..LogConfig::default()
        };
        Run {
            fs: SimFs::new(seed),
            clock: ManualClock::new(1_000_000),
            config,
            rng,
            model: Model::default(),
            next_tag: 0,
            acked_records: 0,
            crashes: 0,
            torn_tails: 0,
        }
    }

    /// Reopens the log, as an operator would after fixing the disk.
    fn open(&mut self) -> Log {
        self.fs.fail_syncs(0);
        self.fs.fail_writes(0);
        self.fs.set_capacity(None);
        let (log, report) = Log::open(
            Path::new("/data/log"),
            self.config.clone(),
            self.fs.clone(),
            self.clock.clone(),
        )
        .unwrap_or_else(|e| panic!("open failed: {e}"));
        assert!(
            report.quarantined.is_empty(),
            "nothing is ever corrupt here"
        );
        self.torn_tails += u64::from(report.torn_tail.is_some());
        self.check(&log);
        log
    }

    /// The log agrees with the model; the model forgets what the log lost.
    fn check(&mut self, log: &Log) {
        let end = log.end_offset();
        assert!(
            end >= self.model.acked_end,
            "acknowledged offsets lost: log ends at {end}, {} were acknowledged",
            self.model.acked_end
        );
        let records = read_all(log, log.start_offset());
        assert_eq!(
            records.len() as u64,
            end - log.start_offset(),
            "offsets are contiguous"
        );
        for r in &records {
            let offset = r.offset as u64;
            let &(tag, i, len) = self
                .model
                .written
                .get(&offset)
                .unwrap_or_else(|| panic!("offset {offset} holds a record nobody wrote"));
            assert_eq!(
                r.value.as_deref(),
                Some(&value_for(tag, i, len)[..]),
                "offset {offset}"
            );
        }
        self.model.written.split_off(&end);
        self.model.acked_end = end;
    }

    fn append(&mut self, log: &Log) -> Result<(), Error> {
        let count = self.rng.random_range(1..5);
        let len = self.rng.random_range(1..400);
        let tag = self.next_tag;
        self.next_tag += 1;
        let info = log.append(&mut make_batch(tag, count, len, self.clock_ms()))?;
        for i in 0..count {
            self.model
                .written
                .insert(info.base_offset + i as u64, (tag, i, len));
        }
        if self.config.durability == Durability::Fsync {
            self.acknowledge(info.last_offset + 1);
        }
        if trace() {
            eprintln!("  appended {info:?}");
        }
        Ok(())
    }

    fn acknowledge(&mut self, end: u64) {
        if end > self.model.acked_end {
            self.acked_records += end - self.model.acked_end;
            self.model.acked_end = end;
        }
    }

    fn clock_ms(&self) -> i64 {
        use hermod_storage::clock::Clock;
        self.clock.now_ms()
    }

    /// One random step; returns the log to go on with.
    fn step(&mut self, log: Log) -> Log {
        let roll = self.rng.random_range(0..100);
        if trace() {
            eprintln!(
                "step {roll}: end {} acked {}",
                log.end_offset(),
                self.model.acked_end
            );
        }
        let outcome = match roll {
            0..=59 => self.append(&log),
            60..=69 => log.sync().map(|_| self.acknowledge(log.end_offset())),
            70..=74 => {
                self.clock.advance(self.rng.random_range(1..100));
                log.sync_if_due().map(|_| ())
            }
            75..=79 => return self.crash(log),
            80..=82 => {
                // A close that fails (injected fault) is a crash of sorts.
                let _ = log.close();
                drop(log);
                return self.open();
            }
            83..=85 => self.truncate(&log),
            86..=89 => {
                self.fs.fail_syncs(1);
                Ok(())
            }
            90..=93 => {
                self.fs.fail_writes(1);
                Ok(())
            }
            _ => {
                let capacity = self.rng.random_range(0..30_000u64) + self.used();
                self.fs.set_capacity(Some(capacity));
                Ok(())
            }
        };
        if trace() {
            eprintln!("  outcome {outcome:?}");
        }
        match outcome {
            Ok(()) => log,
            Err(e) if e.is_fatal() || self.rng.random_bool(0.3) => {
                // A poisoned log must be reopened; sometimes the machine dies.
                self.fs.set_capacity(None);
                if self.rng.random_bool(0.5) {
                    self.crash(log)
                } else {
                    drop(log);
                    self.open()
                }
            }
            Err(_) => log,
        }
    }

    fn truncate(&mut self, log: &Log) -> Result<(), Error> {
        let (start, end) = (log.start_offset(), log.end_offset());
        if end == start {
            return Ok(());
        }
        let at = self.rng.random_range(start..end);
        // Records at or past the point were asked to go: even a truncation
        // that fails part way may have removed them.
        self.model.acked_end = self.model.acked_end.min(at);
        let new_end = log.truncate(at)?;
        assert!(new_end <= at);
        self.model.written.split_off(&new_end);
        self.model.acked_end = self.model.acked_end.min(new_end);
        Ok(())
    }

    fn crash(&mut self, log: Log) -> Log {
        drop(log);
        self.fs.set_capacity(None);
        self.fs.crash();
        self.crashes += 1;
        self.open()
    }

    fn used(&self) -> u64 {
        self.fs
            .file_names(Path::new("/data/log"))
            .iter()
            .filter_map(|n| self.fs.durable_len(&Path::new("/data/log").join(n)))
            .sum()
    }
}

/// Set `HERMOD_SIM_TRACE=1` to print every step, `HERMOD_SIM_SEED=N` to run
/// one seed.
fn trace() -> bool {
    std::env::var_os("HERMOD_SIM_TRACE").is_some()
}

fn seeds() -> std::ops::Range<u64> {
    match std::env::var("HERMOD_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => seed..seed + 1,
        None => 0..SEEDS,
    }
}

#[test]
fn acknowledged_records_survive_random_crashes_and_faults() {
    let mut total_acked = 0;
    let mut total_crashes = 0;
    let mut total_torn = 0;
    let seeds = seeds();
    let count = seeds.end - seeds.start;
    for seed in seeds {
        let mut run = Run::new(seed);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut log = run.open();
            for _ in 0..120 {
                log = run.step(log);
            }
            run.crash(log);
        }));
        if let Err(panic) = result {
            eprintln!("seed {seed} failed (config {:?})", run.config);
            std::panic::resume_unwind(panic);
        }
        total_acked += run.acked_records;
        total_crashes += run.crashes;
        total_torn += run.torn_tails;
    }
    eprintln!("{count} seeds: {total_acked} records acknowledged, {total_crashes} crashes, {total_torn} torn tails cut");
    assert!(
        total_acked > count * 50,
        "the runs acknowledged too little to prove anything"
    );
    assert!(total_crashes > count * 2);
    assert!(total_torn > count / 10, "crashes should tear some tails");
}
