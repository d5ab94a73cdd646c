//! The metadata log: the durable history of the catalog. Each change to the
//! catalog is one record, and every so often a snapshot of the whole catalog
//! is one record too, after which the segments wholly before it are deleted,
//! so the log stays about one snapshot plus `snapshot_every` changes long.
//! Opening replays the last snapshot and every change after it.
//!
//! A record's value is JSON: `{"change": <Change>}` or
//! `{"snapshot": <Catalog>}`. The log is an ordinary storage [`Log`] with
//! retention off; with the default `fsync` durability a change is on disk
//! when [`MetaLog::append`] returns.
//!
//! One writer at a time: the caller holds its catalog lock across check,
//! append, apply and snapshot, so that a snapshot is exactly the catalog
//! the changes before it built. Anything in the log that does not decode or
//! does not apply is corruption, and opening refuses rather than guesses.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hermod_storage::batch::{self, BatchOptions, Record};
use hermod_storage::clock::Clock;
use hermod_storage::io::Fs;
use hermod_storage::{Durability, Log, LogConfig};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::defs::Change;

/// The largest record the metadata log takes: a snapshot is one record, so
/// this bounds the catalog (the batch format's lengths are 32-bit).
const MAX_RECORD_BYTES: usize = 1 << 30;
/// How much one read during replay asks for.
const READ_BYTES: usize = 1 << 20;

/// How the metadata log is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaConfig {
    /// When an append returns; `Fsync` (the default) means on disk.
    pub durability: Durability,
    /// Size of one segment file.
    pub segment_bytes: u64,
    /// Changes after which [`MetaLog::needs_snapshot`] says so; 0 never does.
    pub snapshot_every: u64,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            durability: Durability::Fsync,
            segment_bytes: 1 << 20,
            snapshot_every: 1000,
        }
    }
}

/// The open metadata log.
#[derive(Debug)]
pub struct MetaLog {
    log: Log,
    clock: Arc<dyn Clock>,
    snapshot_every: u64,
    /// Changes appended after the last snapshot (replayed ones included).
    since_snapshot: AtomicU64,
}

/// What went wrong with the metadata log.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The storage engine failed (I/O, a damaged segment, a poisoned log).
    #[error("metadata log: {0}")]
    Storage(#[from] hermod_storage::Error),
    /// A record that does not decode or does not apply to the catalog.
    #[error("metadata log is corrupt at offset {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
}

/// A record as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    Change(Change),
    Snapshot(Catalog),
}

/// A record as written (borrowing, so a snapshot does not copy the catalog).
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum EntryRef<'a> {
    Change(&'a Change),
    Snapshot(&'a Catalog),
}

impl MetaLog {
    /// Opens or creates the metadata log in `dir` and replays it: the last
    /// snapshot, then each change after it. Returns the catalog they build.
    pub fn open(
        dir: &Path,
        config: MetaConfig,
        fs: Arc<dyn Fs>,
        clock: Arc<dyn Clock>,
    ) -> Result<(MetaLog, Catalog), MetaError> {
        let (log, _report) = Log::open(dir, log_config(&config), fs, clock.clone())?;
        let (catalog, since_snapshot) = replay(&log)?;
        let meta = MetaLog {
            log,
            clock,
            snapshot_every: config.snapshot_every,
            since_snapshot: AtomicU64::new(since_snapshot),
        };
        Ok((meta, catalog))
    }

    /// Appends one change as one record; with `fsync` durability it is on
    /// disk when this returns. The caller has checked the change and applies
    /// it to its catalog once this returns `Ok`, then calls
    /// [`MetaLog::snapshot`] when [`MetaLog::needs_snapshot`] says so.
    pub fn append(&self, change: &Change) -> Result<(), MetaError> {
        self.write(&EntryRef::Change(change))?;
        self.since_snapshot.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether `snapshot_every` changes have been appended since the last
    /// snapshot.
    pub fn needs_snapshot(&self) -> bool {
        self.snapshot_every > 0
            && self.since_snapshot.load(Ordering::Relaxed) >= self.snapshot_every
    }

    /// Writes the whole catalog as one record, then deletes the segments
    /// wholly before it. `catalog` must be the result of every change
    /// appended so far.
    pub fn snapshot(&self, catalog: &Catalog) -> Result<(), MetaError> {
        let offset = self.write(&EntryRef::Snapshot(catalog))?;
        // Under `interval` durability the snapshot may not be on disk yet;
        // the history it replaces must not go before it is.
        self.log.sync()?;
        self.since_snapshot.store(0, Ordering::Relaxed);
        self.log.delete_before(offset)?;
        Ok(())
    }

    /// Syncs and marks the log cleanly closed; appends fail afterwards.
    pub fn close(&self) -> Result<(), MetaError> {
        Ok(self.log.close()?)
    }

    /// How many segment files the log has (for tests and metrics).
    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }

    /// Appends one record; returns its offset.
    fn write(&self, entry: &EntryRef<'_>) -> Result<u64, MetaError> {
        let value = serde_json::to_vec(entry)
            .expect("definitions are plain data with string map keys, which JSON always takes");
        let record = Record {
            offset: 0,
            timestamp: self.clock.now_ms(),
            key: None,
            value: Some(Bytes::from(value)),
            headers: Vec::new(),
        };
        let mut batch = batch::encode(&[record], &BatchOptions::default());
        Ok(self.log.append(&mut batch)?.base_offset)
    }
}

/// The storage settings: retention and age-based rolling off, since only
/// snapshots may decide what history goes.
fn log_config(config: &MetaConfig) -> LogConfig {
    LogConfig {
        durability: config.durability,
        segment_bytes: config.segment_bytes,
        segment_ms: None,
        retention_ms: None,
        retention_bytes: None,
        max_batch_bytes: MAX_RECORD_BYTES,
        ..LogConfig::default()
    }
}

/// Rebuilds the catalog: the last snapshot, then the changes after it.
/// Returns it with the number of those changes.
fn replay(log: &Log) -> Result<(Catalog, u64), MetaError> {
    let start = log.start_offset();
    let mut base = None;
    let mut changes = Vec::new();
    for_each_value(log, start, |offset, value| {
        match decode(offset, value)? {
            Entry::Snapshot(catalog) => {
                base = Some(catalog);
                changes.clear();
            }
            Entry::Change(change) => changes.push((offset, change)),
        }
        Ok(())
    })?;
    if base.is_none() && start > 0 {
        return Err(MetaError::Corrupt {
            offset: start,
            reason: "the log starts here with no snapshot; the changes before it are gone".into(),
        });
    }
    let mut catalog = base.unwrap_or_default();
    for (offset, change) in &changes {
        catalog.apply(change).map_err(|e| MetaError::Corrupt {
            offset: *offset,
            reason: format!("change does not apply to the catalog: {e}"),
        })?;
    }
    Ok((catalog, changes.len() as u64))
}

fn decode(offset: u64, value: &[u8]) -> Result<Entry, MetaError> {
    serde_json::from_slice(value).map_err(|e| MetaError::Corrupt {
        offset,
        reason: format!("record is not a change or a snapshot: {e}"),
    })
}

/// Calls `f` with the offset and value of every record from `offset` to the
/// end of the log.
fn for_each_value(
    log: &Log,
    mut offset: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), MetaError>,
) -> Result<(), MetaError> {
    loop {
        let read = log.read(offset, READ_BYTES)?;
        if read.bytes.is_empty() {
            return Ok(());
        }
        for item in batch::batches(&read.bytes) {
            let here = offset;
            let corrupt = move |reason: String| MetaError::Corrupt {
                offset: here,
                reason,
            };
            let (_, bytes) = item.map_err(|e| corrupt(format!("bad batch: {e}")))?;
            let records =
                batch::decode_records(bytes).map_err(|e| corrupt(format!("bad batch: {e}")))?;
            for record in records {
                let at = record.offset as u64;
                // A read starts with the whole batch holding `offset`.
                if at < offset {
                    continue;
                }
                let value = record.value.as_deref().ok_or_else(|| MetaError::Corrupt {
                    offset: at,
                    reason: "record has no value".into(),
                })?;
                f(at, value)?;
                offset = at + 1;
            }
        }
        offset = offset.max(read.next_offset);
    }
}
