//! A live topic: one storage log per partition, partition choice (Kafka's
//! murmur2 on the key, round-robin without one), the de-duplication window,
//! publishing and reading records, and the doorbell its subscriptions wait
//! on. A queue's storage is a topic like any other.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use hermod_storage::clock::Clock;
use hermod_storage::io::Fs;
use hermod_storage::{batch, Durability, Flusher, Log, LogConfig};
use sha2::{Digest, Sha256};

use crate::dedup::{Dedup, Seen};
use crate::defs::{DurabilityMode, TopicDef};
use crate::doorbell::Doorbell;
use crate::error::{Error, Result};
use crate::partition::{partition_for_key, RoundRobin};
use crate::record::{self, Message, Stored};

/// Most de-duplication ids a topic remembers; past it the oldest are
/// forgotten early (and counted).
pub const MAX_DEDUP_IDS: usize = 1_000_000;
/// Bytes read from a log at a time when scanning it.
pub const READ_CHUNK_BYTES: usize = 1 << 20;

/// Where one published message ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: String,
    pub partition: u32,
    pub offset: u64,
    /// Not appended: a duplicate of the record at `partition`/`offset`.
    pub duplicate: bool,
}

/// What one partition of a topic holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    pub partition: u32,
    /// Oldest offset still kept.
    pub start: u64,
    /// The offset the next record will get.
    pub end: u64,
    pub size_bytes: u64,
}

/// Counters of a topic since the broker started.
#[derive(Debug, Default)]
pub struct TopicStats {
    pub published: AtomicU64,
    pub published_bytes: AtomicU64,
    pub duplicates: AtomicU64,
}

#[derive(Debug)]
pub struct Topic {
    pub(crate) def: TopicDef,
    logs: Vec<Arc<Log>>,
    round_robin: RoundRobin,
    dedup: Option<DedupGate>,
    pub(crate) doorbell: Doorbell,
    pub(crate) stats: TopicStats,
    clock: Arc<dyn Clock>,
}

impl Topic {
    /// Opens (or creates) the partition logs under `dir` (`dir/0`, `dir/1`,
    /// ...) and rebuilds the de-duplication window from the records
    /// published within it.
    pub(crate) fn open(
        dir: &Path,
        def: TopicDef,
        fs: Arc<dyn Fs>,
        clock: Arc<dyn Clock>,
        flusher: &Flusher,
    ) -> Result<Topic> {
        let config = log_config(&def);
        let mut logs = Vec::new();
        for p in 0..def.config.partitions {
            let log = match def.config.durability {
                DurabilityMode::Memory => Log::open_in_memory(config.clone(), clock.clone())?,
                _ => {
                    let path = dir.join(p.to_string());
                    Log::open(&path, config.clone(), fs.clone(), clock.clone())?.0
                }
            };
            let log = Arc::new(log);
            if matches!(def.config.durability, DurabilityMode::Interval { .. }) {
                flusher.register(&log);
            }
            logs.push(log);
        }
        let window = def.config.dedup_window_ms;
        let topic = Topic {
            dedup: (window > 0).then(|| DedupGate::new(window as i64)),
            def,
            logs,
            round_robin: RoundRobin::default(),
            doorbell: Doorbell::default(),
            stats: TopicStats::default(),
            clock,
        };
        topic.rebuild_dedup()?;
        Ok(topic)
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn def(&self) -> &TopicDef {
        &self.def
    }

    pub fn stats(&self) -> &TopicStats {
        &self.stats
    }

    /// Rung at every publish (and nack); long-polling receivers wait on it.
    pub fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    pub fn partitions(&self) -> u32 {
        self.logs.len() as u32
    }

    pub(crate) fn log(&self, partition: u32) -> Result<&Arc<Log>> {
        self.logs
            .get(partition as usize)
            .ok_or(Error::NoSuchPartition {
                partition,
                partitions: self.partitions(),
            })
    }

    pub(crate) fn logs(&self) -> &[Arc<Log>] {
        &self.logs
    }

    /// Checks every message, then appends each to its partition (one batch
    /// per partition) and returns where each went. Messages whose
    /// de-duplication id was seen within the window are not appended; they
    /// get the original's place with `duplicate` set. `ids` gives each
    /// message its id.
    pub(crate) fn publish(
        &self,
        messages: &[Message],
        ids: &[String],
        partition: Option<u32>,
    ) -> Result<Vec<Published>> {
        self.append_messages(messages, ids, partition, true)
    }

    /// Appends records the broker moves itself (dead letters, redriven
    /// records) WITHOUT the de-duplication check. Their publish was checked
    /// once already; checking again would drop a move as a "duplicate" of
    /// another record with the same body (content de-duplication) and lose
    /// it, since the caller then finishes the record it moved.
    pub(crate) fn publish_moved(
        &self,
        messages: &[Message],
        ids: &[String],
    ) -> Result<Vec<Published>> {
        self.append_messages(messages, ids, None, false)
    }

    fn append_messages(
        &self,
        messages: &[Message],
        ids: &[String],
        partition: Option<u32>,
        dedup: bool,
    ) -> Result<Vec<Published>> {
        let gate = self.dedup.as_ref().filter(|_| dedup);
        for m in messages {
            record::validate(m, self.def.config.max_record_bytes)?;
        }
        if let Some(p) = partition {
            self.log(p)?;
        }
        let now = self.clock.now_ms();
        let mut results: Vec<Option<Published>> = vec![None; messages.len()];
        let mut claims: Vec<(usize, String)> = Vec::new();
        // Later copies of an id within this batch: (copy, first).
        let mut copies = Vec::new();
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.logs.len()];
        for (i, m) in messages.iter().enumerate() {
            if let Some(gate) = gate {
                if let Some(dedup_id) = self.dedup_id(m) {
                    if let Some((first, _)) = claims.iter().find(|(_, id)| *id == dedup_id) {
                        copies.push((i, *first));
                        continue;
                    }
                    match gate.claim(&dedup_id, now) {
                        Claim::Duplicate(place) => {
                            self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                            results[i] = Some(duplicate(&ids[i], place));
                            continue;
                        }
                        Claim::Mine => claims.push((i, dedup_id)),
                    }
                }
            }
            let p = partition.unwrap_or_else(|| self.choose_partition(m));
            groups[p as usize].push(i);
        }
        let outcome = self.append_groups(messages, ids, &groups, now, dedup, &mut results);
        if let Some(gate) = gate {
            for (i, dedup_id) in &claims {
                let place = results[*i].as_ref().map(|r| pack(r.partition, r.offset));
                gate.settle(dedup_id, place, now);
            }
        }
        outcome?;
        for (copy, first) in copies {
            let original = results[first].as_ref().expect("placed");
            let place = pack(original.partition, original.offset);
            self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            results[copy] = Some(duplicate(&ids[copy], place));
        }
        self.doorbell.ring();
        Ok(results.into_iter().map(|r| r.expect("placed")).collect())
    }

    /// Reads decoded records of `partition` from `offset` (up to about
    /// `max_bytes`), and the offset to read next. Compressed batches (from
    /// Kafka producers) cannot be decoded here yet and are passed over.
    pub fn read(
        &self,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<(Vec<Stored>, u64)> {
        self.read_up_to(partition, offset, max_bytes, usize::MAX)
    }

    /// `read`, but decoding stops once `max_records` records are out (the
    /// offset to read next is then the one after the last), so a caller
    /// that wants a few records does not decode a whole chunk.
    pub fn read_up_to(
        &self,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        max_records: usize,
    ) -> Result<(Vec<Stored>, u64)> {
        let log = self.log(partition)?;
        let (start, end) = (log.start_offset(), log.end_offset());
        if offset < start || offset > end {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        let read = log.read(offset, max_bytes.max(1))?;
        let mut out = Vec::new();
        for item in batch::batches(&read.bytes) {
            let (_, bytes) = item.map_err(|e| Error::Invalid(format!("bad batch: {e}")))?;
            let Ok(records) = batch::decode_records(bytes) else {
                tracing::warn!(topic = %self.def.name, partition, "skipping a batch that cannot be decoded (compressed)");
                continue;
            };
            for r in records.into_iter().filter(|r| r.offset as u64 >= offset) {
                out.push(record::from_record(r, self.def.id, partition));
            }
            if out.len() >= max_records {
                out.truncate(max_records);
                let next = out.last().map_or(offset, |r| r.offset + 1);
                return Ok((out, next));
            }
        }
        Ok((out, read.next_offset.max(offset)))
    }

    /// Where `partition` starts and ends (the next offset to be written),
    /// and the bytes it holds on disk.
    pub fn partition_range(&self, partition: u32) -> Result<PartitionRange> {
        let log = self.log(partition)?;
        Ok(PartitionRange {
            partition,
            start: log.start_offset(),
            end: log.end_offset(),
            size_bytes: log.size_bytes()?,
        })
    }

    /// The record at `offset`, if it is still kept (retention may have
    /// deleted it since it was fed).
    pub(crate) fn read_one(&self, partition: u32, offset: u64) -> Result<Option<Stored>> {
        match self.read_up_to(partition, offset, 1, 1) {
            Ok((records, _)) => Ok(records.into_iter().find(|r| r.offset == offset)),
            Err(Error::OffsetOutOfRange { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Syncs, for a clean close.
    pub(crate) fn close(&self) -> Result<()> {
        for log in &self.logs {
            log.close()?;
        }
        Ok(())
    }

    fn choose_partition(&self, m: &Message) -> u32 {
        match &m.key {
            Some(key) => partition_for_key(key, self.partitions()),
            None => self.round_robin.next(self.partitions()),
        }
    }

    fn dedup_id(&self, m: &Message) -> Option<String> {
        match &m.dedup_id {
            Some(id) => Some(id.clone()),
            None if self.def.config.content_dedup => Some(content_id(&m.value)),
            None => None,
        }
    }

    fn append_groups(
        &self,
        messages: &[Message],
        ids: &[String],
        groups: &[Vec<usize>],
        now: i64,
        dedup: bool,
        results: &mut [Option<Published>],
    ) -> Result<()> {
        for (p, group) in groups.iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let records: Vec<_> = group
                .iter()
                .map(|&i| {
                    let mut m = messages[i].clone();
                    // A moved record carries no de-duplication id, so that a
                    // restart does not put it in the window either.
                    if m.dedup_id.is_none() && self.dedup.is_some() && dedup {
                        m.dedup_id = self.dedup_id(&m);
                    }
                    record::to_record(&m, &ids[i], now)
                })
                .collect();
            let mut bytes = record::encode_batch(&records);
            let info = self.logs[p].append(&mut bytes)?;
            for (k, &i) in group.iter().enumerate() {
                results[i] = Some(Published {
                    id: ids[i].clone(),
                    partition: p as u32,
                    offset: info.base_offset + k as u64,
                    duplicate: false,
                });
                let size = messages[i].value.len() as u64;
                self.stats
                    .published_bytes
                    .fetch_add(size, Ordering::Relaxed);
            }
            let count = group.len() as u64;
            self.stats.published.fetch_add(count, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Reads the records of the last window to remember their ids again
    /// after a restart.
    fn rebuild_dedup(&self) -> Result<()> {
        let Some(gate) = &self.dedup else {
            return Ok(());
        };
        let since = self.clock.now_ms() - gate.window_ms;
        let mut seen = Vec::new();
        for p in 0..self.partitions() {
            let log = &self.logs[p as usize];
            let Some(mut offset) = log.offset_for_timestamp(since)? else {
                continue;
            };
            while offset < log.end_offset() {
                let (records, next) = self.read(p, offset, READ_CHUNK_BYTES)?;
                for r in records.into_iter().filter(|r| r.timestamp_ms >= since) {
                    if let Some(id) = r.dedup_id {
                        seen.push((r.timestamp_ms, id, pack(p, r.offset)));
                    }
                }
                offset = next.max(offset + 1);
            }
        }
        // The window expires ids in the order they were recorded.
        seen.sort_unstable();
        for (at, id, place) in seen {
            gate.remember(&id, place, at);
        }
        Ok(())
    }
}

/// The SHA-256 of a body, as SQS's content-based de-duplication uses.
pub fn content_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn log_config(def: &TopicDef) -> LogConfig {
    let c = &def.config;
    LogConfig {
        durability: match c.durability {
            DurabilityMode::Fsync => Durability::Fsync,
            DurabilityMode::Interval { ms } => Durability::Interval { ms },
            DurabilityMode::Memory => Durability::Memory,
        },
        segment_bytes: c.segment_bytes,
        retention_ms: c.retention_ms,
        retention_bytes: c.retention_bytes,
        // Room for a full batch of maximal records plus framing.
        max_batch_bytes: (c.max_record_bytes * 16).clamp(1 << 20, 64 << 20),
        ..LogConfig::default()
    }
}

/// A de-duplication place: partition in the top 16 bits, offset below
/// (offsets stay below 2^48).
fn pack(partition: u32, offset: u64) -> u64 {
    (u64::from(partition) << 48) | (offset & ((1 << 48) - 1))
}

fn duplicate(id: &str, place: u64) -> Published {
    Published {
        id: id.to_owned(),
        partition: (place >> 48) as u32,
        offset: place & ((1 << 48) - 1),
        duplicate: true,
    }
}

enum Claim {
    Duplicate(u64),
    Mine,
}

/// The window plus ids being appended right now: a second publish with the
/// same id waits for the first to finish, then gets its place (or appends
/// itself if the first failed).
#[derive(Debug)]
struct DedupGate {
    window_ms: i64,
    state: Mutex<(Dedup, HashSet<String>)>,
    settled: Condvar,
}

impl DedupGate {
    fn new(window_ms: i64) -> DedupGate {
        DedupGate {
            window_ms,
            state: Mutex::new((Dedup::new(window_ms, MAX_DEDUP_IDS), HashSet::new())),
            settled: Condvar::new(),
        }
    }

    fn claim(&self, id: &str, now: i64) -> Claim {
        let mut st = self.state.lock().unwrap();
        loop {
            if let Seen::Duplicate(place) = st.0.check(id, now) {
                return Claim::Duplicate(place);
            }
            if !st.1.contains(id) {
                st.1.insert(id.to_owned());
                return Claim::Mine;
            }
            st = self.settled.wait(st).unwrap();
        }
    }

    fn settle(&self, id: &str, place: Option<u64>, now: i64) {
        let mut st = self.state.lock().unwrap();
        st.1.remove(id);
        if let Some(place) = place {
            st.0.record(id, place, now);
        }
        drop(st);
        self.settled.notify_all();
    }

    fn remember(&self, id: &str, place: u64, at: i64) {
        self.state.lock().unwrap().0.record(id, place, at);
    }
}
