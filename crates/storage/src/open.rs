//! Opening a log (with crash recovery) and closing it cleanly.
//!
//! Opening reads the directory listing and the last segment only. Sealed
//! segments were synced, with their indexes, before the next one was created,
//! so they are trusted as they are and read lazily. The last segment is
//! where a crash can leave a torn tail: after a clean close (marked by the
//! `clean-shutdown` file) its tail is checked from the last index entry;
//! after a crash it is scanned whole, checking every checksum. Damage past the
//! recovery point is a torn tail and is cut; damage before it was synced,
//! acknowledged data, and is corruption: the log refuses to open (or, if so
//! configured, quarantines the segment), and says which file and byte.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use crate::checkpoint::{self, RecoveryPoint};
use crate::clock::Clock;
use crate::config::{CorruptionPolicy, LogConfig};
use crate::error::{Error, Result};
use crate::index::{self, IndexBuilder};
use crate::io::{read_exact_at, File, Fs};
use crate::log::{Active, Log, State, SyncState};
use crate::segment::{self, Scan, ScanEnd, Segment, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};

/// The name of the file that marks a clean close.
pub const CLEAN_SHUTDOWN: &str = "clean-shutdown";
/// The directory damaged segments are copied to under `Quarantine`.
pub const QUARANTINE_DIR: &str = "quarantine";

/// What opening a log found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The log had been closed cleanly.
    pub clean: bool,
    /// Segments in the log.
    pub segments: usize,
    /// Bytes read to check the last segment.
    pub scanned_bytes: u64,
    /// Bytes cut from a torn tail, and where.
    pub torn_tail: Option<(PathBuf, u64, u64)>,
    /// Segments copied aside because of corruption (with `Quarantine`).
    pub quarantined: Vec<PathBuf>,
    /// Sealed segments whose missing indexes were rebuilt.
    pub rebuilt_indexes: usize,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering from a crash if
    /// it was not closed cleanly.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        fs: Arc<dyn Fs>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Log, RecoveryReport)> {
        config.validate()?;
        fs.create_dir_all(dir)
            .map_err(|e| Error::io("create log directory", dir, e))?;
        let opener = Opener {
            dir,
            config: &config,
            fs: &*fs,
            now_ms: clock.now_ms(),
        };
        let (state, report) = opener.open()?;
        let checkpoint = opener.checkpoint_file()?;
        let next = state.next_offset;
        let sync = SyncState {
            synced_offset: next,
            last_point: Some(state.end_point()),
            last_sync_ms: opener.now_ms,
            last_checkpoint_sync_ms: opener.now_ms,
            ..SyncState::default()
        };
        let log = Log {
            dir: dir.to_path_buf(),
            config,
            fs,
            clock,
            state: Mutex::new(state),
            sync: Mutex::new(sync),
            poisoned: AtomicBool::new(false),
            sync_io: Mutex::new(()),
            flushed_in_background: AtomicBool::new(false),
            durable_end: AtomicU64::new(next),
            checkpoint,
            checkpoint_generation: Mutex::new(0),
        };
        log.mark_open()?;
        Ok((log, report))
    }

    /// Opens a log that lives in memory only (`memory` durability over an
    /// in-memory file system).
    pub fn open_in_memory(mut config: LogConfig, clock: Arc<dyn Clock>) -> Result<Log> {
        config.durability = crate::config::Durability::Memory;
        let fs = crate::sim::SimFs::memory();
        Ok(Log::open(Path::new("/memory"), config, fs, clock)?.0)
    }

    /// Syncs everything, writes the active segment's indexes and marks the
    /// log as cleanly closed, so that the next open need not scan. Appends
    /// fail with `Closed` afterwards. Dropping a log without closing it is
    /// safe; the next open then recovers as after a crash.
    pub fn close(&self) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        if st.closed {
            return Ok(());
        }
        self.check_writable(&st)?;
        st.closed = true;
        if !self.config.syncs() {
            return Ok(());
        }
        self.flush_pending(&mut st)?;
        let seg_path = st.active.segment.path(LOG_EXT);
        let file = st.active.file.clone();
        let synced = file
            .set_len(st.active.size)
            .map_err(|e| Error::io("cut", &seg_path, e))
            .and_then(|_| self.sync_segment(&*file, &seg_path));
        if let Err(e) = synced {
            return Err(self.poison(&mut st, e));
        }
        write_indexes(&*self.fs, &st.active.segment, &st.active.index)?;
        let point = st.end_point();
        self.write_checkpoint(&point, true, st.generation)?;
        let marker = self.dir.join(CLEAN_SHUTDOWN);
        self.fs
            .open(&marker, true)
            .and_then(|f| f.sync_data())
            .and_then(|_| self.fs.sync_dir(&self.dir))
            .map_err(|e| Error::io("mark clean shutdown", &marker, e))
    }

    /// Makes the recovered state the synced starting point and removes the
    /// clean-shutdown marker before the first write can happen.
    fn mark_open(&self) -> Result<()> {
        if !self.config.syncs() {
            return Ok(());
        }
        let st = self.state.lock().unwrap();
        let seg_path = st.active.segment.path(LOG_EXT);
        st.active
            .file
            .sync_data()
            .map_err(|e| Error::io("sync", &seg_path, e))?;
        let point = st.end_point();
        self.write_checkpoint(&point, true, st.generation)?;
        let marker = self.dir.join(CLEAN_SHUTDOWN);
        if self.fs.exists(&marker) {
            self.fs
                .remove(&marker)
                .and_then(|_| self.fs.sync_dir(&self.dir))
                .map_err(|e| Error::io("remove clean-shutdown marker", &marker, e))?;
        }
        Ok(())
    }
}

/// Whether a sealed segment lacks one of its index files (a crash during
/// its roll can leave them unnamed).
fn needs_index_rebuild(names: &HashSet<&str>, base: u64) -> bool {
    [INDEX_EXT, TIME_INDEX_EXT]
        .iter()
        .any(|ext| !names.contains(segment::file_name(base, ext).as_str()))
}

/// Writes a segment's indexes to their files and syncs them.
pub(crate) fn write_indexes(fs: &dyn Fs, segment: &Segment, index: &IndexBuilder) -> Result<()> {
    for (ext, bytes) in [
        (INDEX_EXT, index.offset_bytes()),
        (TIME_INDEX_EXT, index.time_bytes()),
    ] {
        let path = segment.path(ext);
        fs.open(&path, true)
            .and_then(|f| {
                f.write_at(&bytes, 0)?;
                f.set_len(bytes.len() as u64)?;
                f.sync_data()
            })
            .map_err(|e| Error::io("write index", &path, e))?;
    }
    segment.set_max_timestamp(index.max_timestamp);
    Ok(())
}

/// How much of the last segment the recovery point says was synced.
#[derive(Debug, Clone, Copy)]
enum Synced {
    /// This many bytes from its start.
    Upto(u64),
    /// All of it: it was sealed.
    Whole,
}

/// The work of opening one log directory.
struct Opener<'a> {
    dir: &'a Path,
    config: &'a LogConfig,
    fs: &'a dyn Fs,
    now_ms: i64,
}

impl Opener<'_> {
    fn open(&self) -> Result<(State, RecoveryReport)> {
        let names = self
            .fs
            .list(self.dir)
            .map_err(|e| Error::io("list", self.dir, e))?;
        let mut bases: Vec<u64> = names
            .iter()
            .filter_map(|n| segment::parse_file_name(n, LOG_EXT))
            .collect();
        bases.sort_unstable();
        let mut report = RecoveryReport {
            clean: names.iter().any(|n| n == CLEAN_SHUTDOWN),
            ..RecoveryReport::default()
        };
        if bases.is_empty() {
            bases.push(self.create_segment_file(0)?);
        }
        let last = *bases.last().unwrap();
        let mut segments = Vec::with_capacity(bases.len());
        let names: HashSet<&str> = names.iter().map(String::as_str).collect();
        for &base in &bases[..bases.len() - 1] {
            let seg = Arc::new(Segment::new(self.dir, base, None));
            if needs_index_rebuild(&names, base) {
                self.rebuild_indexes(&seg)?;
                report.rebuilt_indexes += 1;
            }
            segments.push(seg);
        }
        let (active, next_offset) = self.open_active(last, report.clean, &mut report)?;
        segments.push(active.segment.clone());
        let mut state = State {
            segments,
            active,
            next_offset,
            written_offset: next_offset,
            leader_epoch: 0,
            generation: 0,
            closed: false,
        };
        self.skip_reused_offsets(&mut state, &report)?;
        report.segments = state.segments.len();
        Ok((state, report))
    }

    /// Opens the last segment, checking its tail (clean) or all of it (crash).
    fn open_active(
        &self,
        base: u64,
        clean: bool,
        report: &mut RecoveryReport,
    ) -> Result<(Active, u64)> {
        let segment = Arc::new(Segment::new(self.dir, base, None));
        let path = segment.path(LOG_EXT);
        let file = self
            .fs
            .open(&path, false)
            .map_err(|e| Error::io("open segment", &path, e))?;
        let len = file
            .len()
            .map_err(|e| Error::io("stat segment", &path, e))?;
        let scan = match clean
            .then(|| self.check_clean_tail(&segment, &*file, len))
            .flatten()
        {
            Some(scan) => scan,
            None => {
                report.clean = false;
                self.recover(&segment, &file, len, report)?
            }
        };
        segment.set_max_timestamp(scan.index.max_timestamp);
        let active = Active {
            segment,
            file,
            size: scan.valid_len,
            pending: Vec::new(),
            index: scan.index,
            created_ms: self.now_ms,
        };
        Ok((active, scan.next_offset))
    }

    /// After a clean close: loads the indexes written at close and checks the
    /// batches after the last index entry. `None` if anything does not fit,
    /// in which case the segment is recovered as after a crash.
    fn check_clean_tail(&self, segment: &Segment, file: &dyn File, len: u64) -> Option<Scan> {
        let mut index = self.load_indexes(segment)?;
        let from = index.offsets.last().map_or((0, segment.base_offset), |e| {
            (
                e.position as u64,
                segment.base_offset + e.relative_offset as u64,
            )
        });
        let interval = self.config.index_interval_bytes;
        let (valid_len, next_offset, end) =
            segment::scan(file, from, len, segment::SCAN_CHUNK, |pos, h, bytes| {
                if pos == from.0 && !index.offsets.is_empty() {
                    let rel = (h.base_offset as u64 - segment.base_offset) as u32;
                    index.resume_after(rel, bytes.len() as u64, h.max_timestamp);
                } else {
                    index.add_header(segment.base_offset, pos, h, interval);
                }
                true
            })
            .ok()?;
        (end == ScanEnd::Clean && valid_len == len).then_some(Scan {
            valid_len,
            next_offset,
            index,
            end,
        })
    }

    /// After a crash: scans the whole last segment, cuts a torn tail past the
    /// recovery point, and treats damage before it as corruption.
    fn recover(
        &self,
        segment: &Segment,
        file: &Arc<dyn File>,
        len: u64,
        report: &mut RecoveryReport,
    ) -> Result<Scan> {
        let path = segment.path(LOG_EXT);
        let interval = self.config.index_interval_bytes;
        let scan = segment::scan_segment(&**file, segment.base_offset, len, interval)
            .map_err(|e| Error::io("scan segment", &path, e))?;
        report.scanned_bytes += len;
        let synced = self.synced_in(segment.base_offset);
        let (position, reason) = match &scan.end {
            ScanEnd::Bad { position, reason } => (*position, reason.clone()),
            ScanEnd::Clean => match synced {
                Synced::Upto(upto) if scan.valid_len < upto => {
                    let reason = format!(
                        "segment ends at byte {} but {upto} bytes of it were synced",
                        scan.valid_len
                    );
                    self.handle_corruption(&path, scan.valid_len, &reason, report)?;
                    return Ok(scan);
                }
                _ => return Ok(scan),
            },
        };
        let torn = match synced {
            Synced::Upto(upto) => position >= upto,
            Synced::Whole => false,
        };
        if torn {
            tracing::warn!(file = %path.display(), position, cut = len - position, %reason,
                "cutting torn tail after unclean shutdown");
            report.torn_tail = Some((path.clone(), position, len - position));
        } else {
            self.handle_corruption(&path, position, &reason, report)?;
        }
        file.set_len(position)
            .map_err(|e| Error::io("cut torn tail", &path, e))?;
        Ok(scan)
    }

    fn handle_corruption(
        &self,
        path: &Path,
        position: u64,
        reason: &str,
        report: &mut RecoveryReport,
    ) -> Result<()> {
        let error = Error::Corruption {
            file: path.to_path_buf(),
            position,
            reason: reason.to_string(),
        };
        if self.config.on_corruption == CorruptionPolicy::Refuse {
            return Err(error);
        }
        tracing::error!(%error, "quarantining damaged segment and cutting the log at the damage");
        let copy = self.quarantine(path)?;
        report.quarantined.push(copy);
        Ok(())
    }

    /// Copies a damaged segment file into `quarantine/` and syncs the copy.
    fn quarantine(&self, path: &Path) -> Result<PathBuf> {
        let qdir = self.dir.join(QUARANTINE_DIR);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let copy = qdir.join(format!("{name}.{}", self.now_ms));
        let io = |e| Error::io("quarantine segment", path, e);
        self.fs.create_dir_all(&qdir).map_err(io)?;
        let src = self.fs.open(path, false).map_err(io)?;
        let dst = self.fs.open(&copy, true).map_err(io)?;
        let len = src.len().map_err(io)?;
        let mut pos = 0;
        let mut buf = vec![0u8; 1 << 20];
        while pos < len {
            let n = ((len - pos) as usize).min(buf.len());
            read_exact_at(&*src, &mut buf[..n], pos).map_err(io)?;
            dst.write_at(&buf[..n], pos).map_err(io)?;
            pos += n as u64;
        }
        dst.sync_data().map_err(io)?;
        self.fs.sync_dir(&qdir).map_err(io)?;
        self.fs.sync_dir(self.dir).map_err(io)?;
        Ok(copy)
    }

    /// How much of the segment at `base` is known synced, from the recovery
    /// point. Segments before the one the point names were sealed, hence
    /// synced whole; of a later one nothing is known.
    fn synced_in(&self, base: u64) -> Synced {
        match self.read_recovery_point() {
            Some(p) if p.segment == base => Synced::Upto(p.position),
            Some(p) if p.segment > base => Synced::Whole,
            _ => Synced::Upto(0),
        }
    }

    fn read_recovery_point(&self) -> Option<RecoveryPoint> {
        let file = self.fs.open(&checkpoint::path(self.dir), false).ok()?;
        RecoveryPoint::read(&*file)
    }

    /// After a quarantine cut, offsets the log had already handed out must
    /// not be handed out again: start a fresh segment past them.
    fn skip_reused_offsets(&self, state: &mut State, report: &RecoveryReport) -> Result<()> {
        if report.quarantined.is_empty() {
            return Ok(());
        }
        let Some(point) = self.read_recovery_point() else {
            return Ok(());
        };
        if point.next_offset <= state.next_offset {
            return Ok(());
        }
        // Seal the cut segment as a roll would (synced, with its indexes):
        // only the last segment may have a torn tail.
        let old = &state.active;
        let path = old.segment.path(LOG_EXT);
        if self.config.syncs() {
            old.file
                .sync_data()
                .map_err(|e| Error::io("sync", &path, e))?;
        }
        write_indexes(self.fs, &old.segment, &old.index)?;
        old.segment.set_size(old.size);
        let base = self.create_segment_file(point.next_offset)?;
        let segment = Arc::new(Segment::new(self.dir, base, None));
        let file = segment.file(self.fs)?;
        state.start_segment(segment, file, self.now_ms);
        Ok(())
    }

    /// Rebuilds a sealed segment's missing index files from its data.
    fn rebuild_indexes(&self, seg: &Segment) -> Result<()> {
        let path = seg.path(LOG_EXT);
        let file = seg.file(self.fs)?;
        let len = file
            .len()
            .map_err(|e| Error::io("stat segment", &path, e))?;
        let scan = segment::scan_segment(
            &*file,
            seg.base_offset,
            len,
            self.config.index_interval_bytes,
        )
        .map_err(|e| Error::io("scan segment", &path, e))?;
        if let ScanEnd::Bad { position, reason } = scan.end {
            return Err(Error::Corruption {
                file: path,
                position,
                reason,
            });
        }
        write_indexes(self.fs, seg, &scan.index)
    }

    /// Reads a segment's index files whole (only done for the last segment,
    /// whose indexes are bounded by the segment size).
    fn load_indexes(&self, segment: &Segment) -> Option<IndexBuilder> {
        let read = |ext| -> Option<Vec<u8>> {
            let f = self.fs.open(&segment.path(ext), false).ok()?;
            let mut buf = vec![0u8; f.len().ok()? as usize];
            read_exact_at(&*f, &mut buf, 0).ok()?;
            Some(buf)
        };
        let offsets = index::decode_offsets(&read(INDEX_EXT)?)?;
        let times = index::decode_times(&read(TIME_INDEX_EXT)?)?;
        Some(IndexBuilder::from_entries(offsets, times))
    }

    /// Creates an empty segment file and makes its name durable.
    fn create_segment_file(&self, base: u64) -> Result<u64> {
        let path = self.dir.join(segment::file_name(base, LOG_EXT));
        self.fs
            .open(&path, true)
            .map_err(|e| Error::io("create segment", &path, e))?;
        if self.config.syncs() {
            self.fs
                .sync_dir(self.dir)
                .map_err(|e| Error::io("sync directory", self.dir, e))?;
        }
        Ok(base)
    }

    fn checkpoint_file(&self) -> Result<Option<Arc<dyn File>>> {
        if !self.config.syncs() {
            return Ok(None);
        }
        let path = checkpoint::path(self.dir);
        let existed = self.fs.exists(&path);
        let file = self
            .fs
            .open(&path, true)
            .map_err(|e| Error::io("open recovery point", &path, e))?;
        if !existed {
            self.fs
                .sync_dir(self.dir)
                .map_err(|e| Error::io("sync directory", self.dir, e))?;
        }
        Ok(Some(file))
    }
}
