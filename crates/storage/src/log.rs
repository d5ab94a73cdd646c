//! The partition log: appends with offsets assigned by the log, group commit,
//! and the shared state the other `impl Log` files (`read`, `open`,
//! `maintain`) work on.
//!
//! Locks: `state` guards the segment list and the active segment; `sync`
//! guards what is known to be durable. Lock order: `state` before `sync`;
//! nobody holds `sync` while taking `state`, and no lock is held across an
//! `fdatasync` of data, so appends keep flowing into the page cache while a
//! sync is in flight. The next sync then covers all of them: that is the
//! group commit.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::batch::{self, BatchHeader};
use crate::checkpoint::RecoveryPoint;
use crate::clock::Clock;
use crate::config::{Durability, LogConfig};
use crate::error::{Error, Result};
use crate::index::IndexBuilder;
use crate::io::{File, Fs};
use crate::segment::{Segment, LOG_EXT};

/// Where an appended batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// The offset given to the batch's first record.
    pub base_offset: u64,
    /// The offset given to the batch's last record.
    pub last_offset: u64,
}

/// A segmented, crash-safe partition log. Shareable between threads: appends
/// and reads may come from any number of them at once.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) state: Mutex<State>,
    pub(crate) sync: Mutex<SyncState>,
    /// Appends waiting for a sync, in two buckets: those the sync in flight
    /// covers, and those the next one will.
    pub(crate) buckets: [Condvar; 2],
    /// The end of what has been written (`State::next_offset`), readable
    /// without the state lock.
    pub(crate) written_end: AtomicU64,
    pub(crate) poisoned: AtomicBool,
    /// A `Flusher` keeps this `interval` log synced, so appends never sync.
    pub(crate) flushed_in_background: AtomicBool,
    /// Every offset below this is durable (in `fsync` mode, what readers see).
    pub(crate) durable_end: AtomicU64,
    pub(crate) checkpoint: Option<Arc<dyn File>>,
}

/// The segments and the active segment, under `Log::state`.
#[derive(Debug)]
pub(crate) struct State {
    /// Every segment, oldest first; the last one is the active one.
    pub segments: Vec<Arc<Segment>>,
    pub active: Active,
    /// The offset the next appended record gets.
    pub next_offset: u64,
    pub leader_epoch: i32,
    /// Bumped by every truncation, so that a sync that started before it
    /// does not publish offsets that no longer exist.
    pub generation: u64,
    pub closed: bool,
}

/// The segment appends go to, with its indexes in memory.
#[derive(Debug)]
pub(crate) struct Active {
    pub segment: Arc<Segment>,
    pub file: Arc<dyn File>,
    /// Bytes of whole batches in the file.
    pub size: u64,
    pub index: IndexBuilder,
    /// When the segment was created or the log opened (for `segment_ms`).
    pub created_ms: i64,
}

/// What is known to be durable, under `Log::sync`.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    pub synced_offset: u64,
    pub syncing: bool,
    pub generation: u64,
    /// The end offset left by the latest truncation.
    pub truncated_to: u64,
    pub last_sync_ms: i64,
    pub last_checkpoint_sync_ms: i64,
    pub sync_count: u64,
    /// The newest point known synced; a failed sync cuts the log back to it.
    pub last_point: Option<RecoveryPoint>,
    /// Syncs started since the log was opened; sync `n` wakes the waiters of
    /// bucket `n % 2`.
    pub epoch: u64,
    /// Every offset below this is covered by the sync in flight.
    pub in_flight_end: u64,
    /// Appends waiting in each bucket.
    pub waiting: [usize; 2],
}

/// How many syncs a leader does in a row while appends keep waiting.
const LEADER_ROUNDS: usize = 4;

impl Log {
    /// Appends one record batch (Kafka v2, as made by [`batch::encode`] or a
    /// producer). The log rewrites its base offset and leader epoch in place
    /// and returns the offsets it got once the append is acknowledged, which
    /// in `fsync` mode means durable.
    pub fn append(&self, batch: &mut [u8]) -> Result<AppendInfo> {
        let header = self.check_batch(batch)?;
        let (info, generation) = self.write_batch(batch, &header)?;
        match self.config.durability {
            Durability::Fsync => self.wait_durable(info.last_offset + 1, generation, info)?,
            // Without a flusher the append that finds the deadline passed
            // syncs; with one, appends never wait for a sync.
            Durability::Interval { ms } if !self.flushed_in_background.load(Ordering::Relaxed) => {
                self.sync_if_due_after(ms)?
            }
            Durability::Interval { .. } | Durability::Memory => {}
        }
        Ok(info)
    }

    /// Makes everything appended so far durable (a no-op in `memory` mode).
    pub fn sync(&self) -> Result<()> {
        let (target, generation) = {
            let st = self.state.lock().unwrap();
            self.check_writable(&st)?;
            (st.next_offset, st.generation)
        };
        if !self.config.syncs() {
            return Ok(());
        }
        let info = AppendInfo {
            base_offset: target,
            last_offset: target,
        };
        self.wait_durable(target, generation, info)
    }

    /// In `interval` mode, syncs if the interval has passed since the last
    /// sync and nobody is syncing; otherwise does nothing. Meant for a timer.
    pub fn sync_if_due(&self) -> Result<()> {
        match self.config.durability {
            Durability::Interval { ms } => self.sync_if_due_after(ms),
            _ => Ok(()),
        }
    }

    /// The first offset in the log.
    pub fn start_offset(&self) -> u64 {
        self.state.lock().unwrap().segments[0].base_offset
    }

    /// The offset after the last record readers can see: in `fsync` mode the
    /// durable end, otherwise the written end.
    pub fn end_offset(&self) -> u64 {
        let st = self.state.lock().unwrap();
        self.visible_end(&st)
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log's settings.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// How many data syncs have completed since the log was opened.
    pub fn sync_count(&self) -> u64 {
        self.sync.lock().unwrap().sync_count
    }

    /// The number of segments.
    pub fn segment_count(&self) -> usize {
        self.state.lock().unwrap().segments.len()
    }

    /// Sets the leader epoch stamped on batches appended from now on.
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.state.lock().unwrap().leader_epoch = epoch;
    }

    pub(crate) fn visible_end(&self, st: &State) -> u64 {
        match self.config.durability {
            Durability::Fsync => self.durable_end.load(Ordering::Acquire).min(st.next_offset),
            _ => st.next_offset,
        }
    }

    pub(crate) fn check_writable(&self, st: &State) -> Result<()> {
        if st.closed {
            return Err(Error::Closed {
                dir: self.dir.clone(),
            });
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.poisoned_error());
        }
        Ok(())
    }

    /// Marks the log as refusing writes after a failed sync, and cuts the
    /// active segment back to the last synced point. After a failed
    /// `fdatasync` the kernel may have dropped the dirty pages while reads
    /// still see them; a later open must not take them for data on disk.
    /// They were never acknowledged (in `fsync` mode), so they may go.
    pub(crate) fn poison(&self, st: &mut State, error: Error) -> Error {
        tracing::error!(dir = %self.dir.display(), %error, "sync failed; log refuses writes until reopened");
        self.poisoned.store(true, Ordering::Release);
        let point = self.sync.lock().unwrap().last_point;
        let active = &mut st.active;
        let (cut, next) = match point {
            Some(p) if p.segment == active.segment.base_offset => (p.position, p.next_offset),
            _ => (0, active.segment.base_offset),
        };
        if cut < active.size {
            if let Err(e) = active.file.set_len(cut) {
                tracing::error!(dir = %self.dir.display(), %e, "could not cut unsynced data after a failed sync");
            }
            active.size = cut;
            active.index.offsets.retain(|e| (e.position as u64) < cut);
            st.next_offset = next;
            self.written_end.store(next, Ordering::Release);
        }
        self.wake_all();
        Error::Poisoned {
            dir: self.dir.clone(),
            cause: error.to_string(),
        }
    }

    fn poisoned_error(&self) -> Error {
        Error::Poisoned {
            dir: self.dir.clone(),
            cause: "an earlier sync failed".into(),
        }
    }

    fn check_batch(&self, batch: &[u8]) -> Result<BatchHeader> {
        if batch.len() > self.config.max_batch_bytes {
            return Err(Error::BatchTooLarge {
                size: batch.len(),
                max: self.config.max_batch_bytes,
            });
        }
        let header = batch::verify(batch)?;
        header.compression()?;
        if header.record_count < 1 {
            return Err(Error::InvalidBatch(batch::BatchError::BadHeader(
                "a batch must hold at least one record",
            )));
        }
        Ok(header)
    }

    /// Writes the batch at the end of the active segment, under the state
    /// lock so that offsets and file order agree.
    fn write_batch(&self, batch: &mut [u8], header: &BatchHeader) -> Result<(AppendInfo, u64)> {
        let mut st = self.state.lock().unwrap();
        self.check_writable(&st)?;
        let count = header.last_offset_delta as u64 + 1;
        if self.roll_due(&st, batch.len() as u64, count) {
            self.roll(&mut st)?;
        }
        let base_offset = st.next_offset;
        batch::set_base_offset(batch, base_offset as i64);
        batch::set_partition_leader_epoch(batch, st.leader_epoch);
        let position = st.active.size;
        debug_assert!(
            batch::verify(batch).is_ok(),
            "offset rewrite broke the batch"
        );
        if let Err(e) = st.active.file.write_at(batch, position) {
            // Cut whatever part was written, so that a later sync cannot make
            // half a batch durable past the end; the next write overwrites it
            // anyway if this fails too.
            let _ = st.active.file.set_len(position);
            return Err(Error::io("write", st.active.segment.path(LOG_EXT), e));
        }
        let relative = (base_offset - st.active.segment.base_offset) as u32;
        let interval = self.config.index_interval_bytes;
        let len = batch.len() as u64;
        st.active.index.add_batch(
            relative,
            position as u32,
            len,
            header.max_timestamp,
            interval,
        );
        st.active.size += len;
        st.next_offset = base_offset + count;
        self.written_end.store(st.next_offset, Ordering::Release);
        let info = AppendInfo {
            base_offset,
            last_offset: base_offset + count - 1,
        };
        Ok((info, st.generation))
    }

    /// Waits until every offset below `target` is durable, syncing if nobody
    /// else is (the leader of the next group commit).
    ///
    /// A waiter sleeps in the bucket of the sync that will cover it: the one
    /// in flight if its data was written before that sync began, else the
    /// next. Each finished sync wakes exactly its bucket, with one call. (One
    /// condition variable for all, woken after every sync, spent most of the
    /// CPU of a 64-writer load in the scheduler while the disk sat idle.)
    fn wait_durable(&self, target: u64, generation: u64, info: AppendInfo) -> Result<()> {
        let mut s = self.sync.lock().unwrap();
        loop {
            if s.generation != generation {
                return after_truncation(&s, generation, target, info);
            }
            if s.synced_offset >= target {
                return Ok(());
            }
            if self.poisoned.load(Ordering::Acquire) {
                return Err(self.poisoned_error());
            }
            if !s.syncing {
                s = self.lead(s, generation)?;
                continue;
            }
            let next = u64::from(target > s.in_flight_end);
            let bucket = ((s.epoch + next) % 2) as usize;
            s.waiting[bucket] += 1;
            s = self.buckets[bucket].wait(s).unwrap();
            s.waiting[bucket] -= 1;
        }
    }

    /// Syncs, and goes on syncing while appends wait for the next sync (up to
    /// `LEADER_ROUNDS` syncs, so the leader's own caller is not kept waiting
    /// long), then hands leadership to a waiting append, if any.
    fn lead<'a>(
        &'a self,
        mut s: MutexGuard<'a, SyncState>,
        generation: u64,
    ) -> Result<MutexGuard<'a, SyncState>> {
        s.syncing = true;
        for _ in 0..LEADER_ROUNDS {
            s.epoch += 1;
            // A lower bound of what the sync will cover: it captures the
            // written end after this.
            s.in_flight_end = self.written_end.load(Ordering::Acquire);
            let bucket = (s.epoch % 2) as usize;
            drop(s);
            let outcome = self.sync_once(generation);
            s = self.sync.lock().unwrap();
            if let Err(e) = outcome {
                s.syncing = false;
                drop(s);
                let mut st = self.state.lock().unwrap();
                return Err(self.poison(&mut st, e));
            }
            self.buckets[bucket].notify_all();
            if s.waiting[1 - bucket] == 0 || s.generation != generation {
                s.syncing = false;
                return Ok(s);
            }
        }
        // Hand over to the waiters of the next sync. All of them: the bucket
        // was chosen from a lower bound of what a sync covers, so a single
        // woken waiter may find itself covered already and leave without
        // leading, stranding the rest.
        s.syncing = false;
        self.buckets[((s.epoch + 1) % 2) as usize].notify_all();
        Ok(s)
    }

    /// Wakes every waiting append: after a failure or a truncation each
    /// must look again at what happened.
    pub(crate) fn wake_all(&self) {
        for bucket in &self.buckets {
            bucket.notify_all();
        }
    }

    /// One group commit: syncs the active segment as it is now, then
    /// publishes the new durable end and refreshes the recovery point.
    fn sync_once(&self, generation: u64) -> Result<()> {
        let (file, point) = {
            let st = self.state.lock().unwrap();
            let point = RecoveryPoint {
                segment: st.active.segment.base_offset,
                position: st.active.size,
                next_offset: st.next_offset,
            };
            (st.active.file.clone(), point)
        };
        file.sync_data().map_err(|e| {
            Error::io(
                "sync",
                self.dir
                    .join(crate::segment::file_name(point.segment, LOG_EXT)),
                e,
            )
        })?;
        let now = self.clock.now_ms();
        let sync_checkpoint = {
            let mut s = self.sync.lock().unwrap();
            s.sync_count += 1;
            s.last_sync_ms = now;
            if s.generation != generation {
                return Ok(());
            }
            if point.next_offset > s.synced_offset {
                s.synced_offset = point.next_offset;
                self.durable_end.store(point.next_offset, Ordering::Release);
            }
            s.last_point = Some(point);
            let due = now - s.last_checkpoint_sync_ms >= self.config.checkpoint_interval_ms as i64;
            if due {
                s.last_checkpoint_sync_ms = now;
            }
            due
        };
        // The data is durable whatever happens to the recovery point, which
        // only ever lags; a failure here is worth a warning, not an error.
        if let Err(error) = self.write_checkpoint(&point, sync_checkpoint) {
            tracing::warn!(dir = %self.dir.display(), %error, "could not refresh the recovery point");
        }
        Ok(())
    }

    /// Records a recovery point; syncs the file only when asked, since an
    /// unsynced point is still a true (if stale) lower bound after a crash.
    pub(crate) fn write_checkpoint(&self, point: &RecoveryPoint, sync: bool) -> Result<()> {
        let Some(file) = &self.checkpoint else {
            return Ok(());
        };
        let path = crate::checkpoint::path(&self.dir);
        point
            .write(&**file)
            .map_err(|e| Error::io("write recovery point", &path, e))?;
        if sync {
            file.sync_data()
                .map_err(|e| Error::io("sync recovery point", &path, e))?;
        }
        Ok(())
    }

    fn sync_if_due_after(&self, interval_ms: u64) -> Result<()> {
        let (target, generation) = {
            let st = self.state.lock().unwrap();
            (st.next_offset, st.generation)
        };
        {
            let s = self.sync.lock().unwrap();
            let fresh = self.clock.now_ms() - s.last_sync_ms < interval_ms as i64;
            if s.syncing || fresh || s.synced_offset >= target {
                return Ok(());
            }
        }
        let info = AppendInfo {
            base_offset: target,
            last_offset: target,
        };
        self.wait_durable(target, generation, info)
    }

    pub(crate) fn lock_sync(&self) -> MutexGuard<'_, SyncState> {
        self.sync.lock().unwrap()
    }
}

/// An append whose wait spans one truncation is durable only if it lies below
/// the truncation point, which the truncation synced. Across more than one
/// truncation the log cannot tell, so it says the append was lost (it never
/// was acknowledged, so that is safe).
fn after_truncation(s: &SyncState, generation: u64, target: u64, info: AppendInfo) -> Result<()> {
    if s.generation == generation + 1 && target <= s.truncated_to {
        Ok(())
    } else {
        Err(Error::Truncated {
            offset: info.base_offset,
        })
    }
}
