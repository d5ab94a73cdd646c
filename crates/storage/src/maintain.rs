//! Changing a log's shape: rolling to a new segment, deleting old segments
//! for retention, and truncating the log from an offset (for replication).
//!
//! Every change that creates or deletes a segment file syncs the directory,
//! and a segment is synced, with its indexes, before the next one is created,
//! so that after a crash only the last segment can have a torn tail.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::checkpoint::RecoveryPoint;
use crate::error::{Error, Result};
use crate::index::IndexBuilder;
use crate::log::{Active, Log, State};
use crate::open::write_indexes;
use crate::segment::{self, ScanEnd, Segment, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};

/// What the retention hook is told about a segment that retention would
/// delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment's first offset.
    pub base_offset: u64,
    /// The offset after its last record (the next segment's first offset).
    pub end_offset: u64,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Its largest record timestamp.
    pub max_timestamp: Option<i64>,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes freed.
    pub deleted_bytes: u64,
    /// The log's first offset afterwards.
    pub start_offset: u64,
}

impl Log {
    /// Deletes the oldest sealed segments that are past `retention_ms` or
    /// beyond `retention_bytes`, oldest first, as long as `may_delete` agrees
    /// (a subscription that still needs a segment can hold it, and with it
    /// every newer one). The active segment is never deleted.
    pub fn apply_retention(
        &self,
        may_delete: &dyn Fn(&SegmentInfo) -> bool,
    ) -> Result<RetentionReport> {
        let now = self.clock.now_ms();
        self.delete_oldest(&|info, total| self.expired(info, total, now) && may_delete(info))
    }

    /// Bytes the log holds on disk (segment files, without indexes).
    pub fn size_bytes(&self) -> Result<u64> {
        let st = self.state.lock().unwrap();
        Ok(self.segment_sizes(&st)?.iter().sum())
    }

    /// Deletes the oldest sealed segments whose records all lie below
    /// `offset`, whatever the retention settings say: what a compacted
    /// journal or a consumed queue no longer needs. The active segment is
    /// never deleted.
    pub fn delete_before(&self, offset: u64) -> Result<RetentionReport> {
        self.delete_oldest(&|info, _| info.end_offset <= offset)
    }

    /// Deletes sealed segments from the oldest while `doomed(info, bytes of
    /// the log still kept)` says so.
    fn delete_oldest(&self, doomed: &dyn Fn(&SegmentInfo, u64) -> bool) -> Result<RetentionReport> {
        let (segments, deleted_bytes, start_offset) = {
            let mut st = self.state.lock().unwrap();
            let sizes = self.segment_sizes(&st)?;
            let mut total: u64 = sizes.iter().sum();
            let mut count = 0;
            while count + 1 < st.segments.len() {
                let seg = &st.segments[count];
                let info = SegmentInfo {
                    base_offset: seg.base_offset,
                    end_offset: st.segments[count + 1].base_offset,
                    size_bytes: sizes[count],
                    max_timestamp: seg.max_timestamp(&*self.fs)?,
                };
                if !doomed(&info, total) {
                    break;
                }
                total -= info.size_bytes;
                count += 1;
            }
            let doomed: Vec<_> = st.segments.drain(..count).collect();
            let freed = sizes[..count].iter().sum::<u64>();
            (doomed, freed, st.segments[0].base_offset)
        };
        self.delete_segment_files(&segments)?;
        Ok(RetentionReport {
            deleted_segments: segments.len(),
            deleted_bytes,
            start_offset,
        })
    }

    /// Removes every record at or after `offset`, cutting at the start of the
    /// batch that contains it, and returns the new end offset. Unacknowledged
    /// appends that were cut fail with `Truncated`. A truncation that fails
    /// part way may already have removed some of those records; it poisons
    /// the log, and the reopened log ends somewhere at or after the cut.
    pub fn truncate(&self, offset: u64) -> Result<u64> {
        let mut st = self.state.lock().unwrap();
        self.check_writable(&st)?;
        let start = st.segments[0].base_offset;
        if offset >= st.next_offset {
            return Ok(st.next_offset);
        }
        if offset < start {
            return Err(Error::OffsetOutOfRange {
                offset,
                start,
                end: st.next_offset,
            });
        }
        self.flush_pending(&mut st)?;
        let i = st.segments.partition_point(|s| s.base_offset <= offset) - 1;
        let segment = st.segments[i].clone();
        let is_active = i + 1 == st.segments.len();
        let file = if is_active {
            st.active.file.clone()
        } else {
            segment.file(&*self.fs)?
        };
        let (cut, new_end, index) = self.cut_point(&segment, &*file, offset)?;
        // From here on a failure leaves the files in an order a reopen can
        // recover from, but not the in-memory state: it poisons the log.
        if let Err(e) = self.cut_files(&mut st, i, &*file, cut, new_end) {
            return Err(self.poison(&mut st, e));
        }
        segment.set_max_timestamp(index.max_timestamp);
        st.active = Active {
            segment,
            file,
            size: cut,
            pending: Vec::new(),
            index,
            created_ms: self.clock.now_ms(),
        };
        st.next_offset = new_end;
        st.written_offset = new_end;
        st.generation += 1;
        self.publish_truncation(&st, new_end);
        Ok(new_end)
    }

    /// The file changes of a truncation, in crash-safe order: make the kept
    /// data durable, delete later segments (and sync the directory, so they
    /// cannot come back), record the cut as the recovery point, and only then
    /// cut the segment, so that no crash in between looks like lost data.
    fn cut_files(
        &self,
        st: &mut State,
        i: usize,
        file: &dyn crate::io::File,
        cut: u64,
        new_end: u64,
    ) -> Result<()> {
        let segment = st.segments[i].clone();
        let path = segment.path(LOG_EXT);
        if self.config.syncs() {
            let active_path = st.active.segment.path(LOG_EXT);
            self.sync_segment(&*st.active.file, &active_path)?;
        }
        let later: Vec<_> = st.segments.drain(i + 1..).collect();
        self.delete_segment_files(&later)?;
        let point = RecoveryPoint {
            segment: segment.base_offset,
            position: cut,
            next_offset: new_end,
        };
        // The truncation's generation, so no sync from before it can
        // overwrite this point.
        self.write_checkpoint(&point, true, st.generation + 1)?;
        file.set_len(cut)
            .map_err(|e| Error::io("truncate", &path, e))?;
        if self.config.syncs() {
            self.sync_segment(file, &path)?;
        }
        Ok(())
    }

    /// Whether the next append of `len` bytes and `count` records must go to
    /// a new segment.
    pub(crate) fn roll_due(&self, st: &State, len: u64, count: u64) -> bool {
        if st.active.size == 0 {
            return false;
        }
        let full = st.active.size + len > self.config.segment_bytes;
        let relative_end = st.next_offset - st.active.segment.base_offset + count;
        let offsets_full = relative_end > u32::MAX as u64;
        let old = self
            .config
            .segment_ms
            .is_some_and(|ms| self.clock.now_ms() - st.active.created_ms >= ms as i64);
        full || offsets_full || old
    }

    /// Seals the active segment (synced, with its indexes) and starts a new
    /// one at the next offset.
    pub(crate) fn roll(&self, st: &mut State) -> Result<()> {
        self.flush_pending(st)?;
        let old = &st.active;
        if self.config.syncs() {
            let path = old.segment.path(LOG_EXT);
            if let Err(e) = self.sync_segment(&*old.file, &path) {
                return Err(self.poison(st, e));
            }
        }
        write_indexes(&*self.fs, &old.segment, &old.index)?;
        old.segment.set_size(old.size);
        let base = st.next_offset;
        let segment = Arc::new(Segment::new(&self.dir, base, None));
        let path = segment.path(LOG_EXT);
        let file = self
            .fs
            .open(&path, true)
            .map_err(|e| Error::io("create segment", &path, e))?;
        if self.config.syncs() {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("sync directory", &self.dir, e))?;
        }
        st.start_segment(segment, file, self.clock.now_ms());
        let mut s = self.lock_sync();
        if base > s.synced_offset && s.generation == st.generation {
            s.synced_offset = base;
            self.durable_end.store(base, Ordering::Release);
        }
        s.last_point = Some(RecoveryPoint {
            segment: base,
            position: 0,
            next_offset: base,
        });
        Ok(())
    }

    fn expired(&self, info: &SegmentInfo, total: u64, now: i64) -> bool {
        let too_old = self.config.retention_ms.is_some_and(|ms| {
            info.max_timestamp
                .is_none_or(|ts| ts < now.saturating_sub(ms as i64))
        });
        let too_big = self
            .config
            .retention_bytes
            .is_some_and(|max| total - info.size_bytes >= max);
        too_old || too_big
    }

    fn segment_sizes(&self, st: &State) -> Result<Vec<u64>> {
        let last = st.segments.len() - 1;
        let mut sizes = Vec::with_capacity(st.segments.len());
        for seg in &st.segments[..last] {
            sizes.push(seg.size(&*self.fs)?);
        }
        sizes.push(st.active.size);
        Ok(sizes)
    }

    /// Finds where to cut a segment so that `offset` and everything after it
    /// go, rebuilding the indexes of what stays.
    fn cut_point(
        &self,
        segment: &Segment,
        file: &dyn crate::io::File,
        offset: u64,
    ) -> Result<(u64, u64, IndexBuilder)> {
        let path = segment.path(LOG_EXT);
        let len = file
            .len()
            .map_err(|e| Error::io("stat segment", &path, e))?;
        let interval = self.config.index_interval_bytes;
        let mut index = IndexBuilder::default();
        let base = segment.base_offset;
        let (cut, new_end, end) =
            segment::scan(file, (0, base), len, segment::SCAN_CHUNK, |pos, h, _| {
                if h.last_offset() as u64 >= offset {
                    return false;
                }
                index.add_header(base, pos, h, interval);
                true
            })
            .map_err(|e| Error::io("scan segment", &path, e))?;
        if let ScanEnd::Bad { position, reason } = end {
            if position < len {
                return Err(Error::Corruption {
                    file: path,
                    position,
                    reason,
                });
            }
        }
        Ok((cut, new_end, index))
    }

    /// Makes the truncation point the durable end, and tells appends that
    /// were waiting for a sync that the ground moved.
    fn publish_truncation(&self, st: &State, new_end: u64) {
        let mut s = self.lock_sync();
        s.generation = st.generation;
        s.synced_offset = new_end;
        s.truncated_to = new_end;
        s.rewind_cause = None;
        s.last_point = Some(st.end_point());
        self.durable_end.store(new_end, Ordering::Release);
        s.waiters.recheck_all();
    }

    /// Deletes segments' files (already out of the segment list) and syncs
    /// the directory. Readers holding one keep their open handle.
    fn delete_segment_files(&self, segments: &[Arc<Segment>]) -> Result<()> {
        if segments.is_empty() {
            return Ok(());
        }
        for seg in segments {
            for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
                let path = seg.path(ext);
                match self.fs.remove(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("delete segment", &path, e)),
                }
            }
        }
        if self.config.syncs() {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("sync directory", &self.dir, e))?;
        }
        Ok(())
    }
}
