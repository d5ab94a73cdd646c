//! The partition log: appends with offsets assigned by the log, group commit,
//! and the shared state the other `impl Log` files (`read`, `open`,
//! `maintain`) work on.
//!
//! Locks: `state` guards the segment list, the active segment and its
//! pending batches; `sync` guards what is known to be durable and the parked
//! appends; `sync_io` makes data syncs take turns. Lock order: `state`
//! before `sync` and before `sync_io`; `sync` and `sync_io` are never held
//! together, and nobody holds either while taking `state`. The group
//! commit's `fdatasync` runs without the state lock, so appends keep coming
//! in while it is in flight and the next sync covers all of them. (A roll
//! holds the state lock across the sync of the segment it seals.)

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::batch::{self, BatchHeader};
use crate::checkpoint::RecoveryPoint;
use crate::clock::Clock;
use crate::commit::{self, Ticket, Waiters, Wake};
use crate::config::{Durability, LogConfig};
use crate::error::{Error, Result};
use crate::index::IndexBuilder;
use crate::io::{File, Fs};
use crate::segment::{Segment, LOG_EXT};

/// Where an appended batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
    pub(crate) poisoned: AtomicBool,
    /// Held across every data sync of the log (see `sync_segment`).
    pub(crate) sync_io: Mutex<()>,
    /// A `Flusher` keeps this `interval` log synced, so appends never sync.
    pub(crate) flushed_in_background: AtomicBool,
    /// Every offset below this is durable (in `fsync` mode, what readers see).
    pub(crate) durable_end: AtomicU64,
    pub(crate) checkpoint: Option<Arc<dyn File>>,
    /// The generation of the last recovery point written: a sync that
    /// finished before a truncation must not write its (older, longer)
    /// point over the truncation's.
    pub(crate) checkpoint_generation: Mutex<u64>,
}

/// The segments and the active segment, under `Log::state`.
#[derive(Debug)]
pub(crate) struct State {
    /// Every segment, oldest first; the last one is the active one.
    pub segments: Vec<Arc<Segment>>,
    pub active: Active,
    /// The offset the next appended record gets.
    pub next_offset: u64,
    /// Offsets below this are in the file (the rest are in `pending`).
    pub written_offset: u64,
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
    /// Bytes of whole batches in the segment, `pending` included.
    pub size: u64,
    /// Batches appended in `fsync` mode but not yet written to the file:
    /// the next group commit writes them with one call before its sync.
    pub pending: Vec<u8>,
    pub index: IndexBuilder,
    /// When the segment was created or the log opened (for `segment_ms`).
    pub created_ms: i64,
}

impl State {
    /// Makes a new, empty segment the active one; the log goes on at its
    /// base offset.
    pub fn start_segment(&mut self, segment: Arc<Segment>, file: Arc<dyn File>, now_ms: i64) {
        self.next_offset = segment.base_offset;
        self.written_offset = segment.base_offset;
        self.segments.push(segment.clone());
        self.active = Active {
            segment,
            file,
            size: 0,
            pending: Vec::new(),
            index: IndexBuilder::default(),
            created_ms: now_ms,
        };
    }

    /// Whether `segment` is still one of the log's segments.
    pub fn holds(&self, segment: &Arc<Segment>) -> bool {
        let i = self
            .segments
            .partition_point(|s| s.base_offset < segment.base_offset);
        self.segments
            .get(i)
            .is_some_and(|s| Arc::ptr_eq(s, segment))
    }

    /// The end of the log as a recovery point: true once a sync covering
    /// it has returned.
    pub fn end_point(&self) -> RecoveryPoint {
        RecoveryPoint {
            segment: self.active.segment.base_offset,
            position: self.active.size,
            next_offset: self.next_offset,
        }
    }
}

impl Active {
    /// Bytes of the segment that are in the file.
    pub fn flushed(&self) -> u64 {
        self.size - self.pending.len() as u64
    }
}

/// The largest `Active::pending` may grow before an append writes it out.
const PENDING_MAX: usize = 1 << 20;

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
    /// Why the latest rewind happened, if the latest change of generation
    /// was a failed group write rather than a truncation.
    pub rewind_cause: Option<String>,
    /// Appends parked until a sync covers them. Invariant: while any is
    /// parked, a group commit is in flight or an append has been told to
    /// lead one.
    pub waiters: Waiters,
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
        let base = st.active.segment.base_offset;
        let (cut, next) = match point {
            Some(p) if p.segment == base => (p.position, p.next_offset),
            _ => (0, base),
        };
        self.rewind_to(st, cut, next);
        if let Err(e) = st.active.file.set_len(cut) {
            tracing::error!(dir = %self.dir.display(), %e, "could not cut unsynced data after a failed sync");
        }
        self.wake_all();
        Error::Poisoned {
            dir: self.dir.clone(),
            cause: error.to_string(),
        }
    }

    /// Forgets everything in the active segment from byte `cut` (offset
    /// `next`) on, in memory only.
    fn rewind_to(&self, st: &mut State, cut: u64, next: u64) {
        let active = &mut st.active;
        active.pending.clear();
        if cut < active.size {
            active.size = cut;
            let rel_end = next.saturating_sub(active.segment.base_offset);
            active.index.forget_from(cut, rel_end);
        }
        st.next_offset = st.next_offset.min(next);
        st.written_offset = st.next_offset;
    }

    /// Syncs a segment file. A log's data syncs take turns, and a failed
    /// one marks the log poisoned before the next may start: after a failed
    /// `fdatasync`, a later one on the same file can report success although
    /// the data of the failed one never reached the disk, so no sync that
    /// comes after a failure can be trusted.
    pub(crate) fn sync_segment(&self, file: &dyn File, path: &Path) -> Result<()> {
        let _turn = self.sync_io.lock().unwrap();
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.poisoned_error());
        }
        file.sync_data().map_err(|e| {
            self.poisoned.store(true, Ordering::Release);
            Error::io("sync", path, e)
        })
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
        if self.config.durability == Durability::Fsync {
            // The group commit's leader writes it, with the others, at once.
            st.active.pending.extend_from_slice(batch);
        } else if let Err(e) = st.active.file.write_at(batch, position) {
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
        if st.active.pending.is_empty() {
            st.written_offset = st.next_offset;
        } else if st.active.pending.len() >= PENDING_MAX {
            self.flush_pending(&mut st)?;
        }
        let info = AppendInfo {
            base_offset,
            last_offset: base_offset + count - 1,
        };
        Ok((info, st.generation))
    }

    /// Waits until every offset below `target` is durable, syncing if nobody
    /// else is (the leader of the next group commit), else parked until the
    /// leader's sync covers it.
    fn wait_durable(&self, target: u64, generation: u64, info: AppendInfo) -> Result<()> {
        let mut ticket = None;
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
                s = self.lead_for(s, generation, target)?;
                continue;
            }
            let mine = ticket.get_or_insert_with(Ticket::new).clone();
            s.waiters.push(target, mine.clone());
            drop(s);
            match mine.park() {
                // Safe without the lock: any change of generation takes every
                // parked append out of the list first (to recheck), so the
                // sync that marked this one done was of its generation.
                Wake::Done => return Ok(()),
                // Told to lead: lead even if already covered, since others
                // are parked behind this one.
                Wake::Lead => {
                    s = self.sync.lock().unwrap();
                    if !s.syncing {
                        s = self.lead_for(s, generation, target)?;
                    }
                }
                Wake::Recheck => s = self.sync.lock().unwrap(),
            }
        }
    }

    /// Leads on behalf of an append waiting for `target`. If leading fails
    /// but an earlier round already made the append durable, the append
    /// succeeded: telling its caller otherwise would make it retry, and
    /// write the records twice.
    fn lead_for<'a>(
        &'a self,
        s: MutexGuard<'a, SyncState>,
        generation: u64,
        target: u64,
    ) -> Result<MutexGuard<'a, SyncState>> {
        match self.lead(s, generation) {
            Ok(s) => Ok(s),
            Err(e) => {
                let s = self.sync.lock().unwrap();
                let durable = match s.generation {
                    g if g == generation => target <= s.synced_offset,
                    _ => after_truncation(&s, generation, target, AppendInfo::default()).is_ok(),
                };
                if durable {
                    Ok(s)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Syncs, and goes on syncing while appends are parked (up to
    /// `LEADER_ROUNDS` syncs, so the leader's own caller is not kept waiting
    /// long), waking each once its data is durable; then tells a parked
    /// append, if any, to lead.
    fn lead<'a>(
        &'a self,
        mut s: MutexGuard<'a, SyncState>,
        generation: u64,
    ) -> Result<MutexGuard<'a, SyncState>> {
        s.syncing = true;
        for _ in 0..LEADER_ROUNDS {
            drop(s);
            let outcome = self.sync_once(generation);
            s = self.sync.lock().unwrap();
            match outcome {
                Ok(()) => {}
                Err(SyncFailure::Write(e)) => {
                    // Appends that parked after the rewind woke the others
                    // have no leader: let them look again.
                    s.syncing = false;
                    s.waiters.recheck_all();
                    return Err(e);
                }
                Err(SyncFailure::Sync(e)) => {
                    s.syncing = false;
                    drop(s);
                    let mut st = self.state.lock().unwrap();
                    return Err(self.poison(&mut st, e));
                }
            }
            let synced = s.synced_offset;
            let covered = s.waiters.take_covered(synced);
            let more = !s.waiters.is_empty() && s.generation == generation;
            drop(s);
            commit::wake_done(covered);
            s = self.sync.lock().unwrap();
            if !more {
                break;
            }
        }
        s.syncing = false;
        if let Some(next) = s.waiters.take_leader() {
            commit::wake_leader(next);
        }
        Ok(s)
    }

    /// Wakes every parked append to look again: after a failure or a
    /// truncation each must see what happened.
    pub(crate) fn wake_all(&self) {
        self.sync.lock().unwrap().waiters.recheck_all();
    }

    /// Writes the batches appended but not yet written, with one call. If
    /// the write fails (a full disk, say) they are all forgotten, and the
    /// appends waiting for them fail: none was acknowledged, and the log
    /// goes on from the last written offset.
    pub(crate) fn flush_pending(&self, st: &mut State) -> Result<()> {
        if st.active.pending.is_empty() {
            return Ok(());
        }
        let position = st.active.flushed();
        if let Err(e) = st.active.file.write_at(&st.active.pending, position) {
            let _ = st.active.file.set_len(position);
            let error = Error::io("write", st.active.segment.path(LOG_EXT), e);
            let end = st.written_offset;
            self.rewind_to(st, position, end);
            st.generation += 1;
            let mut s = self.sync.lock().unwrap();
            s.generation = st.generation;
            // Unlike a truncation, a rewind synced nothing: only what was
            // already synced below the cut is durable.
            s.truncated_to = s.synced_offset.min(end);
            s.rewind_cause = Some(error.to_string());
            s.waiters.recheck_all();
            return Err(error);
        }
        st.active.pending.clear();
        st.written_offset = st.next_offset;
        Ok(())
    }

    /// One group commit: syncs the active segment as it is now, then
    /// publishes the new durable end and refreshes the recovery point.
    fn sync_once(&self, generation: u64) -> Result<(), SyncFailure> {
        let (file, point) = {
            let mut st = self.state.lock().unwrap();
            if st.generation != generation {
                return Ok(());
            }
            self.flush_pending(&mut st).map_err(SyncFailure::Write)?;
            let point = st.end_point();
            (st.active.file.clone(), point)
        };
        let path = self
            .dir
            .join(crate::segment::file_name(point.segment, LOG_EXT));
        self.sync_segment(&*file, &path)
            .map_err(SyncFailure::Sync)?;
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
        if let Err(error) = self.write_checkpoint(&point, sync_checkpoint, generation) {
            tracing::warn!(dir = %self.dir.display(), %error, "could not refresh the recovery point");
        }
        Ok(())
    }

    /// Records a recovery point; syncs the file only when asked, since an
    /// unsynced point is still a true (if stale) lower bound after a crash.
    pub(crate) fn write_checkpoint(
        &self,
        point: &RecoveryPoint,
        sync: bool,
        generation: u64,
    ) -> Result<()> {
        let Some(file) = &self.checkpoint else {
            return Ok(());
        };
        let mut written = self.checkpoint_generation.lock().unwrap();
        if generation < *written {
            return Ok(());
        }
        *written = generation;
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
        return Ok(());
    }
    let offset = info.base_offset;
    Err(match &s.rewind_cause {
        Some(cause) => Error::Unwritten {
            offset,
            cause: cause.clone(),
        },
        None => Error::Truncated { offset },
    })
}

/// Why a group commit failed.
#[derive(Debug)]
enum SyncFailure {
    /// Writing the pending batches failed: they were forgotten, the appends
    /// waiting for them fail, and the log goes on.
    Write(Error),
    /// The sync failed: the log is poisoned.
    Sync(Error),
}
