//! The sparse offset index and time index of one segment.
//!
//! The offset index maps the relative base offset of some batches to their
//! byte position (8 bytes an entry: `u32` relative offset, `u32` position); the
//! time index maps the running maximum timestamp to the relative base offset of
//! the batch that reached it (12 bytes: `i64` timestamp, `u32` relative offset).
//! Both are big-endian like Kafka's. An entry is added once at least
//! `index_interval_bytes` of log have been written since the previous one, so
//! an index costs a few bytes per 4 KiB of log, never a per-record entry.
//!
//! Indexes are hints, never truth: the active segment keeps its entries in
//! memory and writes them out only when it is sealed (or the log is closed);
//! after a crash they are rebuilt from the log. A lookup in a sealed segment's
//! file reads a handful of entries by binary search instead of loading the
//! file, so memory does not grow with the log; whoever uses the answer checks
//! the batch found there and falls back to a scan if it does not fit.

use crate::batch::BatchHeader;
use crate::io::{read_exact_at, File};

/// Bytes of one offset index entry.
pub const OFFSET_ENTRY_LEN: u64 = 8;
/// Bytes of one time index entry.
pub const TIME_ENTRY_LEN: u64 = 12;

/// An offset index entry: a batch starting at `relative_offset` (from the
/// segment's base offset) is at byte `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Batch base offset minus segment base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment file.
    pub position: u32,
}

/// A time index entry: no record up to and including the batch at
/// `relative_offset` has a timestamp above `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// The running maximum timestamp at that batch.
    pub timestamp: i64,
    /// Batch base offset minus segment base offset.
    pub relative_offset: u32,
}

/// The in-memory indexes of the active segment, and the builder used when a
/// segment is scanned.
#[derive(Debug, Clone, Default)]
pub struct IndexBuilder {
    /// Offset index entries, increasing.
    pub offsets: Vec<OffsetEntry>,
    /// Time index entries, timestamps strictly increasing.
    pub times: Vec<TimeEntry>,
    /// The largest timestamp seen in the segment.
    pub max_timestamp: Option<i64>,
    /// The relative offset of the batch that has it.
    max_at: u32,
    bytes_since_entry: u64,
}

impl IndexBuilder {
    /// Records a batch of `len` bytes at `position` and decides whether it gets
    /// index entries.
    pub fn add_batch(
        &mut self,
        relative_offset: u32,
        position: u32,
        len: u64,
        max_timestamp: i64,
        interval_bytes: u64,
    ) {
        let due = self.offsets.is_empty() || self.bytes_since_entry >= interval_bytes;
        if due {
            self.offsets.push(OffsetEntry {
                relative_offset,
                position,
            });
            self.bytes_since_entry = 0;
        }
        let raised = self.max_timestamp.is_none_or(|m| max_timestamp > m);
        if raised {
            self.max_timestamp = Some(max_timestamp);
            self.max_at = relative_offset;
            let last = self.times.last().map(|t| t.timestamp);
            if due || last.is_none() {
                self.times.push(TimeEntry {
                    timestamp: max_timestamp,
                    relative_offset,
                });
            }
        }
        self.bytes_since_entry += len;
    }

    /// Records a batch found by a scan of the segment starting at
    /// `segment_base`.
    pub fn add_header(
        &mut self,
        segment_base: u64,
        position: u64,
        header: &BatchHeader,
        interval_bytes: u64,
    ) {
        let relative = (header.base_offset as u64 - segment_base) as u32;
        let len = header.total_len() as u64;
        self.add_batch(
            relative,
            position as u32,
            len,
            header.max_timestamp,
            interval_bytes,
        );
    }

    /// Accounts for the batch an index loaded from files ends with (which
    /// already has its entry), so that adding batches can go on after it.
    pub fn resume_after(&mut self, relative_offset: u32, len: u64, max_timestamp: i64) {
        self.bytes_since_entry = len;
        if self.max_timestamp.is_none_or(|m| max_timestamp > m) {
            self.max_timestamp = Some(max_timestamp);
            self.max_at = relative_offset;
        }
    }

    /// Forgets the batches from byte `position` (relative offset
    /// `relative_end`) on.
    pub fn forget_from(&mut self, position: u64, relative_end: u64) {
        self.offsets.retain(|e| (e.position as u64) < position);
        self.times
            .retain(|e| (e.relative_offset as u64) < relative_end);
        if self.max_at as u64 >= relative_end {
            // The batch that had the maximum is gone; the last time entry is
            // the best known bound, and a bound is all a time index needs.
            self.max_timestamp = self.times.last().map(|t| t.timestamp);
            self.max_at = self.times.last().map_or(0, |t| t.relative_offset);
        }
    }

    /// Loads entries read back from a sealed segment's files.
    pub fn from_entries(offsets: Vec<OffsetEntry>, times: Vec<TimeEntry>) -> IndexBuilder {
        let last = times.last().copied();
        IndexBuilder {
            offsets,
            times,
            max_timestamp: last.map(|t| t.timestamp),
            max_at: last.map_or(0, |t| t.relative_offset),
            bytes_since_entry: 0,
        }
    }

    /// The entry to start a search for `relative_offset` from.
    pub fn lookup(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let i = self
            .offsets
            .partition_point(|e| e.relative_offset <= relative_offset);
        i.checked_sub(1).map(|i| self.offsets[i])
    }

    /// The relative offset to start a search for the first record at or after
    /// `timestamp` from: the last entry whose running maximum is below it.
    pub fn lookup_time(&self, timestamp: i64) -> Option<u32> {
        let i = self.times.partition_point(|e| e.timestamp < timestamp);
        i.checked_sub(1).map(|i| self.times[i].relative_offset)
    }

    /// The offset index file's bytes.
    pub fn offset_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_LEN as usize);
        for e in &self.offsets {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    /// The time index file's bytes. They end with the segment's largest
    /// timestamp, even if the batch that had it came between two entries:
    /// the last entry of a sealed segment's time index is its maximum, which
    /// retention and time lookups rely on after a reopen.
    pub fn time_bytes(&self) -> Vec<u8> {
        let mut times = self.times.clone();
        if let Some(max) = self.max_timestamp {
            if times.last().is_none_or(|t| max > t.timestamp) {
                times.push(TimeEntry {
                    timestamp: max,
                    relative_offset: self.max_at,
                });
            }
        }
        let mut out = Vec::with_capacity(times.len() * TIME_ENTRY_LEN as usize);
        for e in &times {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }
}

/// Finds the last offset entry at or before `relative_offset` in an offset
/// index file by binary search, reading one entry per step.
pub fn file_lookup(file: &dyn File, relative_offset: u32) -> std::io::Result<Option<OffsetEntry>> {
    let count = file.len()? / OFFSET_ENTRY_LEN;
    let found = partition_point(count, |i| {
        let e = read_offset_entry(file, i)?;
        Ok(e.relative_offset <= relative_offset)
    })?;
    match found.checked_sub(1) {
        Some(i) => Ok(Some(read_offset_entry(file, i)?)),
        None => Ok(None),
    }
}

/// Finds the relative offset of the last time entry whose timestamp is below
/// `timestamp` in a time index file.
pub fn file_lookup_time(file: &dyn File, timestamp: i64) -> std::io::Result<Option<u32>> {
    let count = file.len()? / TIME_ENTRY_LEN;
    let found = partition_point(count, |i| {
        Ok(read_time_entry(file, i)?.timestamp < timestamp)
    })?;
    match found.checked_sub(1) {
        Some(i) => Ok(Some(read_time_entry(file, i)?.relative_offset)),
        None => Ok(None),
    }
}

/// The largest timestamp in a time index file (its last entry), if any.
pub fn file_max_timestamp(file: &dyn File) -> std::io::Result<Option<i64>> {
    let count = file.len()? / TIME_ENTRY_LEN;
    match count.checked_sub(1) {
        Some(i) => Ok(Some(read_time_entry(file, i)?.timestamp)),
        None => Ok(None),
    }
}

/// Parses a whole offset index file; `None` if it is not whole entries.
pub fn decode_offsets(bytes: &[u8]) -> Option<Vec<OffsetEntry>> {
    let entries = bytes.chunks_exact(OFFSET_ENTRY_LEN as usize);
    entries
        .remainder()
        .is_empty()
        .then(|| entries.map(offset_entry).collect())
}

/// Parses a whole time index file; `None` if it is not whole entries.
pub fn decode_times(bytes: &[u8]) -> Option<Vec<TimeEntry>> {
    let entries = bytes.chunks_exact(TIME_ENTRY_LEN as usize);
    entries
        .remainder()
        .is_empty()
        .then(|| entries.map(time_entry).collect())
}

fn offset_entry(b: &[u8]) -> OffsetEntry {
    OffsetEntry {
        relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    }
}

fn time_entry(b: &[u8]) -> TimeEntry {
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&b[0..8]);
    TimeEntry {
        timestamp: i64::from_be_bytes(ts),
        relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
    }
}

fn read_offset_entry(file: &dyn File, i: u64) -> std::io::Result<OffsetEntry> {
    let mut buf = [0u8; OFFSET_ENTRY_LEN as usize];
    read_exact_at(file, &mut buf, i * OFFSET_ENTRY_LEN)?;
    Ok(offset_entry(&buf))
}

fn read_time_entry(file: &dyn File, i: u64) -> std::io::Result<TimeEntry> {
    let mut buf = [0u8; TIME_ENTRY_LEN as usize];
    read_exact_at(file, &mut buf, i * TIME_ENTRY_LEN)?;
    Ok(time_entry(&buf))
}

/// The first index in `0..count` for which `pred` is false, assuming `pred`
/// is true for a prefix (a fallible `slice::partition_point`).
fn partition_point(
    count: u64,
    mut pred: impl FnMut(u64) -> std::io::Result<bool>,
) -> std::io::Result<u64> {
    let (mut lo, mut hi) = (0u64, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Fs;
    use crate::sim::SimFs;
    use std::path::Path;

    fn builder() -> IndexBuilder {
        let mut b = IndexBuilder::default();
        // Ten batches of 1000 bytes, one index entry every 4000 bytes.
        for i in 0..10u32 {
            b.add_batch(i * 5, i * 1000, 1000, 100 + i as i64 * 10, 4000);
        }
        b
    }

    #[test]
    fn entries_are_sparse() {
        let b = builder();
        let rel: Vec<u32> = b.offsets.iter().map(|e| e.relative_offset).collect();
        assert_eq!(rel, vec![0, 20, 40]);
        assert_eq!(b.max_timestamp, Some(190));
        assert_eq!(b.times.first().unwrap().timestamp, 100);
    }

    #[test]
    fn memory_and_file_lookups_agree() {
        let b = builder();
        let fs = SimFs::new(1);
        let idx = fs.open(Path::new("/i"), true).unwrap();
        idx.write_at(&b.offset_bytes(), 0).unwrap();
        let tix = fs.open(Path::new("/t"), true).unwrap();
        tix.write_at(&b.time_bytes(), 0).unwrap();
        for target in 0..60 {
            assert_eq!(file_lookup(&*idx, target).unwrap(), b.lookup(target));
        }
        // The file ends with the segment's maximum, which the in-memory
        // entries (added only every interval) may not have.
        let loaded = IndexBuilder::from_entries(
            decode_offsets(&b.offset_bytes()).unwrap(),
            decode_times(&b.time_bytes()).unwrap(),
        );
        assert_eq!(loaded.max_timestamp, b.max_timestamp);
        assert_eq!(file_max_timestamp(&*tix).unwrap(), Some(190));
        assert!(b.times.last().unwrap().timestamp < 190);
        for ts in 90..200 {
            assert_eq!(file_lookup_time(&*tix, ts).unwrap(), loaded.lookup_time(ts));
            // Never a later start than the in-memory index would give.
            assert!(loaded.lookup_time(ts) >= b.lookup_time(ts));
        }
        assert_eq!(
            b.lookup(27),
            Some(OffsetEntry {
                relative_offset: 20,
                position: 4000
            })
        );
    }
}
