//! The durable state log of one subscription (all its partitions): a
//! [`hermod_storage::Log`] used as a journal. Every change to what a
//! subscription has delivered, finished or committed is appended as an
//! [`Entry`] before anyone relies on it; now and then the whole state is
//! appended as a snapshot and the segments wholly before it are deleted, so
//! the journal stays about as large as the entries since the last snapshot.
//! Opening replays the last snapshot and every entry after it.
//!
//! Format. Each append (a slice of entries, or one snapshot) is ONE record
//! in ONE Kafka batch, so an append is atomic: after a crash it is there
//! whole or not at all. The record's value is a sequence of items, each a
//! tag byte followed by LEB128 varints:
//!
//! - `1` Delivered: partition, offset, count
//! - `2` Finished: partition, start, end - start
//! - `3` Committed: partition, offset
//! - `4` Snapshot: partition count, then per partition: committed, ack
//!   floor, next lease, number of ranges, ranges as (gap after the previous end,
//!   starting from the floor; length), number of delivery counts, deliveries as
//!   (offset minus the previous one, starting from the floor; count).
//!
//! An unknown tag is corruption, so a later format adds tags rather than
//! changing these. A record, and so one append or one snapshot, must fit
//! [`BATCH_BYTES_MAX`] (16 MiB). An entry takes at most 26 bytes, so one
//! append holds over 600,000 entries. A snapshot's size is proportional to
//! the records in flight (one delivery count each, 2 to 15 bytes) and
//! the gaps in the finished offsets above each ack floor (one range each,
//! about 2 to 20 bytes), never to the backlog: with the delivery limits of
//! [`crate::delivery::Config`] (`max_in_flight + max_buffered` per
//! partition) it stays far below the bound; a state that does not fit is
//! refused with [`Error::BatchTooLarge`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hermod_storage::batch::{self, BatchOptions, Record};
use hermod_storage::{clock::Clock, io::Fs, AppendInfo, Durability, Error, Log, LogConfig};

use crate::acked::AckedSet;
use crate::delivery::Snapshot;

/// Default segment size of a journal log.
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 << 20;
/// Default number of entries after which a snapshot is due.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 50_000;
/// The largest batch a journal writes (the log's `max_batch_bytes`): one
/// append, or one snapshot, with its framing.
pub const BATCH_BYTES_MAX: usize = 16 << 20;
/// Room for the batch header and the record's framing around a value.
const BATCH_OVERHEAD_BYTES: usize = 1024;
/// The largest record value a journal writes.
pub const VALUE_BYTES_MAX: usize = BATCH_BYTES_MAX - BATCH_OVERHEAD_BYTES;
/// How much replay reads from the log at once.
const REPLAY_CHUNK_BYTES: usize = 1 << 20;

/// One change to a subscription's durable state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A record was handed out; `count` is its delivery count after this
    /// delivery. Written BEFORE the consumer sees the record.
    Delivered {
        partition: u32,
        offset: u64,
        count: u32,
    },
    /// Finished offsets [start, end): acked, dead-lettered, skipped by the
    /// filter, expired, purged, dropped. Terminal.
    Finished {
        partition: u32,
        start: u64,
        end: u64,
    },
    /// A stream subscription's committed offset (next offset to read) for a
    /// partition. Last one wins.
    Committed { partition: u32, offset: u64 },
}

impl Entry {
    /// The partition the entry is about.
    pub fn partition(&self) -> u32 {
        match *self {
            Entry::Delivered { partition, .. }
            | Entry::Finished { partition, .. }
            | Entry::Committed { partition, .. } => partition,
        }
    }
}

/// Durable state of one partition of a subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionState {
    /// Shared/ordered: ack floor, finished ranges above it, delivery counts
    /// of unfinished delivered offsets, next lease id.
    pub delivery: Snapshot,
    /// Stream: committed offset.
    pub committed: u64,
}

/// Durable state of a whole subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionState {
    pub partitions: Vec<PartitionState>,
}

impl SubscriptionState {
    /// A fresh state whose partitions start at these offsets (ack floor and
    /// committed offset both = start).
    pub fn starting_at(start_offsets: &[u64]) -> SubscriptionState {
        let partitions = start_offsets
            .iter()
            .map(|&start| PartitionState {
                delivery: Snapshot {
                    ack_floor: start,
                    ..Snapshot::default()
                },
                committed: start,
            })
            .collect();
        SubscriptionState { partitions }
    }

    /// Applies one entry, as replay does. Finished merges the range into
    /// the finished set (advancing the floor) and drops the delivery counts
    /// of the offsets it finishes; Delivered sets the count to the larger of
    /// the old and the new one unless the offset is already finished, and
    /// moves `next_lease` one on, because every delivery issued one lease
    /// (so a lease handed out before a crash is never issued again after
    /// the replay); Committed sets the committed offset.
    ///
    /// Returns false, changing nothing, for a partition out of range; the
    /// caller logs it. Costs time proportional to the partition's state
    /// (it is rebuilt in canonical form: ranges merged, counts of finished
    /// offsets dropped); replay of many entries in [`Journal::open`]
    /// converts each partition only once.
    pub fn apply(&mut self, entry: &Entry) -> bool {
        let Some(partition) = self.partitions.get_mut(entry.partition() as usize) else {
            return false;
        };
        let mut live = LivePartition::from_state(partition);
        live.apply(entry);
        *partition = live.into_state();
        true
    }
}

/// Tuning of a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    pub durability: Durability,
    /// Segment size of the journal log (default 4 MiB).
    pub segment_bytes: u64,
    /// Entries after which `needs_snapshot` says true (default 50_000).
    pub snapshot_every: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            durability: Durability::Fsync,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
        }
    }
}

/// The journal of one subscription. Shareable between threads: concurrent
/// appends share syncs through the log's group commit.
#[derive(Debug)]
pub struct Journal {
    log: Log,
    clock: Arc<dyn Clock>,
    config: JournalConfig,
    /// Entries appended (or replayed) since the last snapshot.
    since_snapshot: AtomicU64,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`. A new journal (empty log)
    /// gets `initial` written as its first snapshot, so it is durable. An
    /// existing one is replayed: the LAST snapshot record, then every entry
    /// after it (entries before the last snapshot are ignored, they are
    /// included in it). Returns the state, in canonical form (as a reopen
    /// would return it).
    ///
    /// A record that does not decode, or a journal with no snapshot at
    /// all, is [`Error::Corruption`] naming the journal directory, with the
    /// LOG OFFSET of the bad record as `position` (not a byte position).
    pub fn open(
        dir: &Path,
        config: JournalConfig,
        fs: Arc<dyn Fs>,
        clock: Arc<dyn Clock>,
        initial: SubscriptionState,
    ) -> Result<(Journal, SubscriptionState), Error> {
        let (log, _report) = Log::open(dir, log_config(&config), fs, clock.clone())?;
        let journal = Journal {
            log,
            clock,
            config,
            since_snapshot: AtomicU64::new(0),
        };
        if journal.log.start_offset() == journal.log.end_offset() {
            journal.append_snapshot(&initial)?;
            let state = Replay::from_state(&initial).into_state();
            return Ok((journal, state));
        }
        let replay = journal.replay()?;
        journal
            .since_snapshot
            .store(replay.entries_since_snapshot, Ordering::Relaxed);
        Ok((journal, replay.into_state()))
    }

    /// Appends entries as ONE batch (one record); returns when durable per
    /// the durability (fsync: after fdatasync; group commit across threads
    /// is done by Log). Empty slice: no-op.
    pub fn append(&self, entries: &[Entry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        self.append_value(encode_entries(entries))?;
        self.since_snapshot
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// True once `snapshot_every` entries were appended since the last
    /// snapshot (entries replayed at open count too).
    pub fn needs_snapshot(&self) -> bool {
        self.since_snapshot.load(Ordering::Relaxed) >= self.config.snapshot_every
    }

    /// Appends a snapshot of `state` (durable, whatever the durability),
    /// then deletes journal segments wholly before it (Log::delete_before).
    /// The caller guarantees that no append of an entry not included in
    /// `state` is in progress (it holds a write lock around capture + this
    /// call).
    pub fn write_snapshot(&self, state: &SubscriptionState) -> Result<(), Error> {
        let info = self.append_snapshot(state)?;
        self.since_snapshot.store(0, Ordering::Relaxed);
        self.log.delete_before(info.base_offset)?;
        Ok(())
    }

    /// Makes every append so far durable.
    pub fn sync(&self) -> Result<(), Error> {
        self.log.sync()
    }

    /// Syncs and closes the journal's log; appends fail afterwards.
    pub fn close(&self) -> Result<(), Error> {
        self.log.close()
    }

    /// Segments on disk, for metrics and tests.
    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }
}

/// What one journal record holds, item by item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Entry(Entry),
    /// The whole state, replacing everything before it.
    Snapshot(SubscriptionState),
}

/// Why a journal record did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {position}: {reason}")]
pub struct DecodeError {
    /// Byte position in the record value.
    pub position: usize,
    pub reason: &'static str,
}

/// Encodes entries as one record value.
pub fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 12);
    for entry in entries {
        encode_entry(entry, &mut out);
    }
    out
}

/// Encodes a snapshot as one record value, in canonical form (ranges
/// merged, delivery counts of finished offsets dropped).
pub fn encode_snapshot(state: &SubscriptionState) -> Vec<u8> {
    let mut out = vec![TAG_SNAPSHOT];
    put_varint(&mut out, state.partitions.len() as u64);
    for partition in &state.partitions {
        LivePartition::from_state(partition).encode(&mut out);
    }
    out
}

/// Decodes one record value. Never panics, and never allocates more than
/// the input's size justifies, whatever the bytes.
pub fn decode(value: &[u8]) -> Result<Vec<Item>, DecodeError> {
    let mut reader = Reader { buf: value, pos: 0 };
    if value.is_empty() {
        return Err(reader.error("empty journal record"));
    }
    let mut items = Vec::new();
    while reader.remaining() > 0 {
        items.push(reader.item()?);
    }
    Ok(items)
}

const TAG_DELIVERED: u8 = 1;
const TAG_FINISHED: u8 = 2;
const TAG_COMMITTED: u8 = 3;
const TAG_SNAPSHOT: u8 = 4;
/// The fewest bytes one encoded partition of a snapshot takes (five
/// one-byte varints), to bound allocations when decoding garbage.
const PARTITION_BYTES_MIN: usize = 5;
/// The fewest bytes one range or one delivery count takes (two varints).
const PAIR_BYTES_MIN: usize = 2;
/// A LEB128 u64 takes at most this many bytes.
const VARINT_BYTES_MAX: usize = 10;

/// The log settings of a journal: no retention and no rolling by age, since
/// only snapshots decide what may go.
fn log_config(config: &JournalConfig) -> LogConfig {
    LogConfig {
        durability: config.durability,
        segment_bytes: config.segment_bytes,
        segment_ms: None,
        retention_ms: None,
        retention_bytes: None,
        max_batch_bytes: BATCH_BYTES_MAX,
        ..LogConfig::default()
    }
}

impl Journal {
    /// Writes one record with `value` as one batch.
    fn append_value(&self, value: Vec<u8>) -> Result<AppendInfo, Error> {
        // Checked here, before `batch::encode`, which panics on values past
        // 2 GiB.
        if value.len() > VALUE_BYTES_MAX {
            return Err(Error::BatchTooLarge {
                size: value.len(),
                max: VALUE_BYTES_MAX,
            });
        }
        let record = Record {
            offset: 0,
            timestamp: self.clock.now_ms(),
            key: None,
            value: Some(Bytes::from(value)),
            headers: vec![],
        };
        let mut batch = batch::encode(&[record], &BatchOptions::default());
        self.log.append(&mut batch)
    }

    /// Appends a snapshot and makes it durable even when appends are not
    /// synced one by one: segments before it are about to be deleted, and
    /// losing it in a crash would leave entries with nothing to apply them to.
    fn append_snapshot(&self, state: &SubscriptionState) -> Result<AppendInfo, Error> {
        let info = self.append_value(encode_snapshot(state))?;
        if self.config.durability != Durability::Fsync {
            self.log.sync()?;
        }
        Ok(info)
    }

    /// Reads the whole log: each snapshot replaces the state, each entry
    /// after one is applied on top.
    fn replay(&self) -> Result<Replay, Error> {
        let start = self.log.start_offset();
        let end = self.log.end_offset();
        let mut replay: Option<Replay> = None;
        let mut ignored = 0u64;
        let mut offset = start;
        while offset < end {
            let read = self.log.read(offset, REPLAY_CHUNK_BYTES)?;
            ignored += self.replay_chunk(&read.bytes, offset, &mut replay)?;
            if read.next_offset <= offset {
                break;
            }
            offset = read.next_offset;
        }
        if ignored > 0 {
            tracing::warn!(dir = %self.log.dir().display(), ignored,
                "journal entries for partitions the subscription does not have were ignored");
        }
        replay.ok_or_else(|| self.corruption(start, "the journal holds no snapshot".into()))
    }

    /// Replays the whole batches of one read made at `offset`; returns how
    /// many entries were for partitions out of range.
    fn replay_chunk(
        &self,
        bytes: &[u8],
        offset: u64,
        replay: &mut Option<Replay>,
    ) -> Result<u64, Error> {
        let mut ignored = 0;
        for found in batch::batches(bytes) {
            let (header, bytes) = found.map_err(|e| self.corruption(offset, e.to_string()))?;
            let base = header.base_offset as u64;
            let records =
                batch::decode_records(bytes).map_err(|e| self.corruption(base, e.to_string()))?;
            for record in records {
                let at = record.offset as u64;
                let value = record.value.unwrap_or_default();
                let items = decode(&value).map_err(|e| self.corruption(at, e.to_string()))?;
                for item in items {
                    ignored += replay_item(replay, item);
                }
            }
        }
        Ok(ignored)
    }

    fn corruption(&self, offset: u64, reason: String) -> Error {
        Error::Corruption {
            file: self.log.dir().to_path_buf(),
            position: offset,
            reason: format!("journal record at log offset {offset}: {reason}"),
        }
    }
}

/// Applies one replayed item; returns 1 if it was an entry for a partition
/// out of range. Entries before the first snapshot in the log are skipped:
/// they share a segment with a later snapshot that includes them, while the
/// snapshot they were written after went with an older, deleted segment.
fn replay_item(replay: &mut Option<Replay>, item: Item) -> u64 {
    match (item, replay.as_mut()) {
        (Item::Snapshot(state), _) => {
            *replay = Some(Replay::from_state(&state));
            0
        }
        (Item::Entry(entry), Some(r)) => u64::from(!r.apply(&entry)),
        (Item::Entry(_), None) => 0,
    }
}

/// The state being replayed, in a form cheap to apply entries to.
#[derive(Debug)]
struct Replay {
    partitions: Vec<LivePartition>,
    entries_since_snapshot: u64,
}

impl Replay {
    fn from_state(state: &SubscriptionState) -> Replay {
        Replay {
            partitions: state
                .partitions
                .iter()
                .map(LivePartition::from_state)
                .collect(),
            entries_since_snapshot: 0,
        }
    }

    fn apply(&mut self, entry: &Entry) -> bool {
        self.entries_since_snapshot += 1;
        match self.partitions.get_mut(entry.partition() as usize) {
            Some(partition) => {
                partition.apply(entry);
                true
            }
            None => false,
        }
    }

    fn into_state(self) -> SubscriptionState {
        SubscriptionState {
            partitions: self
                .partitions
                .into_iter()
                .map(LivePartition::into_state)
                .collect(),
        }
    }
}

/// One partition's state with the finished offsets as an [`AckedSet`] and
/// the delivery counts in a map, so that an entry applies in log time.
#[derive(Debug, Clone, Default)]
struct LivePartition {
    finished: AckedSet,
    deliveries: BTreeMap<u64, u32>,
    next_lease: u64,
    committed: u64,
}

impl LivePartition {
    /// Takes a partition state in, merging its ranges and dropping delivery
    /// counts of finished offsets (keeping the larger of duplicates).
    fn from_state(state: &PartitionState) -> LivePartition {
        let snapshot = &state.delivery;
        let mut live = LivePartition {
            finished: AckedSet::from_parts(snapshot.ack_floor, &snapshot.acked),
            next_lease: snapshot.next_lease,
            committed: state.committed,
            ..LivePartition::default()
        };
        for &(offset, count) in &snapshot.deliveries {
            live.deliver(offset, count);
        }
        live
    }

    fn into_state(self) -> PartitionState {
        PartitionState {
            delivery: Snapshot {
                ack_floor: self.finished.floor(),
                acked: self.finished.ranges(),
                deliveries: self.deliveries.into_iter().collect(),
                next_lease: self.next_lease,
            },
            committed: self.committed,
        }
    }

    fn apply(&mut self, entry: &Entry) {
        match *entry {
            Entry::Delivered { offset, count, .. } => {
                self.next_lease = self.next_lease.saturating_add(1);
                self.deliver(offset, count);
            }
            Entry::Finished { start, end, .. } => self.finish(start, end),
            Entry::Committed { offset, .. } => self.committed = offset,
        }
    }

    fn deliver(&mut self, offset: u64, count: u32) {
        if self.finished.contains(offset) {
            return;
        }
        let held = self.deliveries.entry(offset).or_insert(count);
        *held = (*held).max(count);
    }

    fn finish(&mut self, start: u64, end: u64) {
        // `BTreeMap::range` panics on an inverted range.
        if start >= end {
            return;
        }
        self.finished.insert(start, end);
        let doomed: Vec<u64> = self.deliveries.range(start..end).map(|(&o, _)| o).collect();
        for offset in doomed {
            self.deliveries.remove(&offset);
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let floor = self.finished.floor();
        put_varint(out, self.committed);
        put_varint(out, floor);
        put_varint(out, self.next_lease);
        let ranges = self.finished.ranges();
        put_varint(out, ranges.len() as u64);
        let mut previous_end = floor;
        for (start, end) in ranges {
            put_varint(out, start - previous_end);
            put_varint(out, end - start);
            previous_end = end;
        }
        put_varint(out, self.deliveries.len() as u64);
        let mut previous = floor;
        for (&offset, &count) in &self.deliveries {
            // Counts of finished offsets were dropped, so none is below the floor.
            debug_assert!(offset >= previous, "delivery below the ack floor");
            put_varint(out, offset - previous);
            put_varint(out, u64::from(count));
            previous = offset;
        }
    }
}

fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    match *entry {
        Entry::Delivered {
            partition,
            offset,
            count,
        } => {
            out.push(TAG_DELIVERED);
            put_varint(out, u64::from(partition));
            put_varint(out, offset);
            put_varint(out, u64::from(count));
        }
        Entry::Finished {
            partition,
            start,
            end,
        } => {
            // An inverted range finishes nothing, like the empty one it
            // is stored as.
            out.push(TAG_FINISHED);
            put_varint(out, u64::from(partition));
            put_varint(out, start);
            put_varint(out, end.saturating_sub(start));
        }
        Entry::Committed { partition, offset } => {
            out.push(TAG_COMMITTED);
            put_varint(out, u64::from(partition));
            put_varint(out, offset);
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A cursor over a record value; every read is checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            position: self.pos,
            reason,
        }
    }

    fn item(&mut self) -> Result<Item, DecodeError> {
        let tag = self.byte()?;
        Ok(match tag {
            TAG_DELIVERED => Item::Entry(Entry::Delivered {
                partition: self.varint_u32()?,
                offset: self.varint()?,
                count: self.varint_u32()?,
            }),
            TAG_FINISHED => {
                let partition = self.varint_u32()?;
                let start = self.varint()?;
                let len = self.varint()?;
                let end = start
                    .checked_add(len)
                    .ok_or_else(|| self.error("finished range overflows"))?;
                Item::Entry(Entry::Finished {
                    partition,
                    start,
                    end,
                })
            }
            TAG_COMMITTED => Item::Entry(Entry::Committed {
                partition: self.varint_u32()?,
                offset: self.varint()?,
            }),
            TAG_SNAPSHOT => Item::Snapshot(self.snapshot()?),
            _ => {
                self.pos -= 1;
                return Err(self.error("unknown item tag"));
            }
        })
    }

    fn snapshot(&mut self) -> Result<SubscriptionState, DecodeError> {
        let count = self.count(PARTITION_BYTES_MIN)?;
        if count as u64 > u64::from(u32::MAX) + 1 {
            return Err(self.error("more partitions than a u32 numbers"));
        }
        let mut partitions = Vec::with_capacity(count);
        for _ in 0..count {
            partitions.push(self.partition()?.into_state());
        }
        Ok(SubscriptionState { partitions })
    }

    fn partition(&mut self) -> Result<LivePartition, DecodeError> {
        let committed = self.varint()?;
        let floor = self.varint()?;
        let next_lease = self.varint()?;
        let range_count = self.count(PAIR_BYTES_MIN)?;
        let mut ranges = Vec::with_capacity(range_count);
        let mut previous_end = floor;
        for _ in 0..range_count {
            let start = self.offset_after(previous_end)?;
            let end = self.offset_after(start)?;
            ranges.push((start, end));
            previous_end = end;
        }
        let mut live = LivePartition {
            finished: AckedSet::from_parts(floor, &ranges),
            next_lease,
            committed,
            ..LivePartition::default()
        };
        let deliveries = self.count(PAIR_BYTES_MIN)?;
        let mut previous = floor;
        for _ in 0..deliveries {
            let offset = self.offset_after(previous)?;
            live.deliver(offset, self.varint_u32()?);
            previous = offset;
        }
        Ok(live)
    }

    /// Reads a delta and adds it to `base`.
    fn offset_after(&mut self, base: u64) -> Result<u64, DecodeError> {
        let delta = self.varint()?;
        base.checked_add(delta)
            .ok_or_else(|| self.error("offset overflows"))
    }

    /// Reads an element count, refusing one the remaining bytes cannot hold
    /// (each element takes at least `min_bytes`), so garbage cannot size an
    /// allocation.
    fn count(&mut self, min_bytes: usize) -> Result<usize, DecodeError> {
        let count = self.varint()?;
        match usize::try_from(count) {
            Ok(n) if n <= self.remaining() / min_bytes => Ok(n),
            _ => Err(self.error("count exceeds the bytes left")),
        }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.error("record ends early"))?;
        self.pos += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..VARINT_BYTES_MAX {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte holds only the top bit of a u64.
            if i == VARINT_BYTES_MAX - 1 && bits > 1 {
                return Err(self.error("varint overflows a u64"));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    fn varint_u32(&mut self) -> Result<u32, DecodeError> {
        let value = self.varint()?;
        u32::try_from(value).map_err(|_| self.error("value overflows a u32"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_round_trip(value: u64) -> u64 {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        let mut reader = Reader { buf: &out, pos: 0 };
        let back = reader.varint().unwrap();
        assert_eq!(reader.remaining(), 0);
        back
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            assert_eq!(varint_round_trip(value), value);
        }
    }

    #[test]
    fn overlong_and_overflowing_varints_are_refused() {
        let eleven = [0x80u8; 10].iter().chain(&[0]).copied().collect::<Vec<_>>();
        let mut reader = Reader {
            buf: &eleven,
            pos: 0,
        };
        assert!(reader.varint().is_err());
        let overflow = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        let mut reader = Reader {
            buf: &overflow,
            pos: 0,
        };
        assert_eq!(
            reader.varint().unwrap_err().reason,
            "varint overflows a u64"
        );
    }

    #[test]
    fn a_hostile_count_is_refused_before_allocating() {
        let mut value = vec![TAG_SNAPSHOT];
        put_varint(&mut value, u64::MAX);
        assert_eq!(
            decode(&value).unwrap_err().reason,
            "count exceeds the bytes left"
        );
    }

    #[test]
    fn entries_are_compact() {
        let entry = Entry::Finished {
            partition: 3,
            start: 1_000_000,
            end: 1_000_001,
        };
        assert_eq!(encode_entries(&[entry]).len(), 1 + 1 + 3 + 1);
    }
}
