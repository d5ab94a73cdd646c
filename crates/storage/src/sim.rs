//! A deterministic, fault-injecting, in-memory [`Fs`] for crash tests.
//!
//! The model: every file is an inode with two contents, `current` (what reads
//! see) and `durable` (what is on the platter), plus the ordered list of writes
//! and truncations issued since its last successful [`File::sync_data`]. A
//! successful sync replays that list onto `durable`. The namespace works the
//! same way: creating, removing and renaming a file change the current view
//! only, and [`Fs::sync_dir`] copies the current entries directly inside that
//! directory into the durable view. Directories themselves are durable as soon
//! as [`Fs::create_dir_all`] returns; the log only needs file entries to be
//! crash-accurate, and modelling durable directories would add little.
//!
//! [`SimFs::crash`] is a power loss followed by a reboot: every handle opened
//! before it turns dead (any call on it fails), the namespace reverts to its
//! durable view, and each surviving inode becomes its durable content with some
//! of its unsynced operations replayed, as chosen by a [`CrashMode`]. The result
//! is then durable. Handles keep working after their file is removed or
//! renamed, as on POSIX, because they name the inode, not the path.
//!
//! A failed sync follows Linux since 4.13: the error is reported once, the
//! dirty pages are treated as clean, and the unsynced operations of that file
//! are never made durable, not even by a later successful sync. Reads still see
//! them until the next crash, which loses them. A failed [`Fs::sync_dir`] makes
//! nothing durable but forgets nothing; a later successful one persists the
//! directory as it is then.
//!
//! Faults (capacity, failing syncs and writes, bit rot) can be set at any time.
//! Capacity counts the current length of every file reachable from the current
//! namespace; a removed file stops counting at once, even while a handle to it
//! is still open. All randomness comes from a small PRNG seeded by the caller,
//! and all state lives in ordered maps, so the same seed and the same calls
//! give the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::io::{File, Fs};

/// `ENOSPC` on Linux; `libc` is only a dev-dependency of this crate.
const ENOSPC: i32 = 28;
/// `EIO` on Linux.
const EIO: i32 = 5;

/// What a crash keeps of a file's operations (writes and truncations) that
/// were not yet synced. Kept operations are always applied in issue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing unsynced survives.
    DropUnsynced,
    /// A random prefix of the operations survives, from none to all.
    KeepPrefix,
    /// A random prefix survives except the last operation, and the operation
    /// after it is torn: a random strict prefix of its bytes lands. A torn
    /// truncation does not land at all.
    TearLast,
    /// Like [`CrashMode::TearLast`], but the torn write lands as 1 to all of
    /// its length in random garbage bytes instead of its data.
    TearGarbage,
    /// Each operation independently survives or not (pages reach the disk out
    /// of order).
    Reorder,
    /// One of the modes above, drawn afresh for every file.
    Random,
}

/// The simulated file system. Cheap to share: everything sits behind one
/// mutex, which keeps every interleaving of calls deterministic.
#[derive(Debug)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl SimFs {
    /// An empty file system whose random choices all derive from `seed`.
    pub fn new(seed: u64) -> Arc<SimFs> {
        SimFs::build(seed, false)
    }

    /// A plain in-memory file system for `memory`-durability logs: it keeps
    /// one copy of each file and no record of unsynced operations, so it
    /// cannot simulate a crash (`crash` forgets nothing).
    pub fn memory() -> Arc<SimFs> {
        SimFs::build(0, true)
    }

    fn build(seed: u64, volatile: bool) -> Arc<SimFs> {
        let state = State {
            volatile,
            rng: Rng(seed),
            epoch: 0,
            next_ino: 0,
            inodes: BTreeMap::new(),
            current: BTreeMap::new(),
            durable: BTreeMap::new(),
            dirs: BTreeSet::new(),
            capacity: None,
            failing_syncs: 0,
            failing_writes: 0,
            sync_count: 0,
        };
        Arc::new(SimFs {
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// Power loss and reboot, each file's unsynced operations treated by a
    /// mode drawn per file. Same as `crash_with(CrashMode::Random)`.
    pub fn crash(&self) {
        self.crash_with(CrashMode::Random);
    }

    /// Power loss and reboot, each file's unsynced operations treated by
    /// `mode`. Handles opened before this call fail from now on.
    pub fn crash_with(&self, mode: CrashMode) {
        self.lock().crash(mode);
    }

    /// Limits the total length of all files to `capacity` bytes (`None`: no
    /// limit). A write that does not fit writes the prefix that does, then
    /// fails with `ENOSPC`; a growing `set_len` that does not fit fails whole.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.lock().capacity = capacity;
    }

    /// Makes the next `n` calls to `sync_data` or `sync_dir` fail with `EIO`
    /// (replacing any count still pending).
    pub fn fail_syncs(&self, n: u32) {
        self.lock().failing_syncs = n;
    }

    /// Makes the next `n` calls to `write_at` write a random strict prefix of
    /// their buffer, then fail with `EIO` (replacing any count still pending).
    pub fn fail_writes(&self, n: u32) {
        self.lock().failing_writes = n;
    }

    /// Bit rot: XORs the byte at `pos` of the file currently at `path` with
    /// `xor`, in both its current and its durable content (where each is long
    /// enough). Fails if there is no such file or neither content reaches
    /// `pos`.
    pub fn corrupt(&self, path: &Path, pos: u64, xor: u8) -> io::Result<()> {
        let mut state = self.lock();
        let ino = state.current_ino(path)?;
        let inode = state.inode_mut(ino)?;
        let hit_current = flip(&mut inode.current, pos, xor);
        let hit_durable = flip(&mut inode.durable, pos, xor);
        if hit_current || hit_durable {
            Ok(())
        } else {
            Err(invalid(format!("{}: no byte at {pos}", path.display())))
        }
    }

    /// The length `path` would have after `crash_with(CrashMode::DropUnsynced)`,
    /// or `None` if it would not exist.
    pub fn durable_len(&self, path: &Path) -> Option<u64> {
        self.durable_content(path).map(|c| c.len() as u64)
    }

    /// The content `path` would have after `crash_with(CrashMode::DropUnsynced)`,
    /// or `None` if it would not exist.
    pub fn durable_content(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.lock();
        let ino = state.durable.get(&key(path))?;
        state.inodes.get(ino).map(|inode| inode.durable.clone())
    }

    /// The names of the files directly inside `dir` in the current view,
    /// sorted; empty if `dir` does not exist.
    pub fn file_names(&self, dir: &Path) -> Vec<String> {
        self.lock().children(&key(dir))
    }

    /// How many `sync_data` calls have succeeded so far.
    pub fn sync_count(&self) -> u64 {
        self.lock().sync_count
    }

    /// Restarts the PRNG from `seed`.
    pub fn reseed(&self, seed: u64) {
        self.lock().rng = Rng(seed);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let dir = key(dir);
        if let Some(file) = dir.ancestors().find(|a| state.current.contains_key(*a)) {
            let msg = format!("{} is a file", file.display());
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, msg));
        }
        for ancestor in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        let dir = key(dir);
        state.check_dir(&dir)?;
        Ok(state.children(&dir))
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn File>> {
        let mut state = self.lock();
        let path = key(path);
        let ino = match state.current.get(&path) {
            Some(&ino) => ino,
            None if create => state.create(&path)?,
            None => return Err(not_found(&path)),
        };
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            ino,
            epoch: state.epoch,
            path,
        }))
    }

    fn exists(&self, path: &Path) -> bool {
        self.lock().current.contains_key(&key(path))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let path = key(path);
        match self.lock().current.remove(&path) {
            Some(_) => Ok(()),
            None => Err(not_found(&path)),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let (from, to) = (key(from), key(to));
        let ino = state.current_ino(&from)?;
        state.check_new_file(&to)?;
        state.current.remove(&from);
        state.current.insert(to, ino);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let dir = key(dir);
        state.check_dir(&dir)?;
        state.take_sync_failure()?;
        state.durable.retain(|path, _| path.parent() != Some(&dir));
        let entries: Vec<_> = state
            .current
            .iter()
            .filter(|(path, _)| path.parent() == Some(&dir))
            .map(|(path, &ino)| (path.clone(), ino))
            .collect();
        state.durable.extend(entries);
        Ok(())
    }
}

/// A handle on one inode, valid until the next crash.
struct SimFile {
    state: Arc<Mutex<State>>,
    ino: u64,
    /// The crash count when the handle was opened; a mismatch means dead.
    epoch: u64,
    /// The path at open time, for error messages only.
    path: PathBuf,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("path", &self.path)
            .field("ino", &self.ino)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl SimFile {
    /// The locked state, or an error if a crash happened since the open.
    fn live(&self) -> io::Result<MutexGuard<'_, State>> {
        let state = lock(&self.state);
        if state.epoch != self.epoch {
            let msg = format!("{}: handle opened before a crash", self.path.display());
            return Err(io::Error::other(msg));
        }
        Ok(state)
    }
}

impl File for SimFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let mut state = self.live()?;
        let content = &state.inode_mut(self.ino)?.current;
        let start = usize::try_from(pos)
            .unwrap_or(usize::MAX)
            .min(content.len());
        let n = buf.len().min(content.len() - start);
        buf[..n].copy_from_slice(&content[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.live()?.write(self.ino, buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.live()?.sync_data(self.ino)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.live()?.inode_mut(self.ino)?.current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.live()?.set_len(self.ino, len)
    }
}

/// Everything the simulator knows, behind the one mutex.
#[derive(Debug)]
struct State {
    rng: Rng,
    /// Number of crashes so far; handles remember the epoch they were born in.
    epoch: u64,
    next_ino: u64,
    /// Only inodes some namespace view or some live handle may reach; the rest
    /// are dropped at the next crash.
    inodes: BTreeMap<u64, Inode>,
    /// Path to inode as seen now.
    current: BTreeMap<PathBuf, u64>,
    /// Path to inode as a crash would leave it.
    durable: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    capacity: Option<u64>,
    failing_syncs: u32,
    failing_writes: u32,
    sync_count: u64,
    /// Writes go to `current` only; see [`SimFs::memory`].
    volatile: bool,
}

/// A file's contents; see the module docs.
#[derive(Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Operations since the last sync, successful or not, in issue order.
    pending: Vec<Op>,
}

impl fmt::Debug for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lengths only: contents would drown any test failure message.
        f.debug_struct("Inode")
            .field("current_len", &self.current.len())
            .field("durable_len", &self.durable.len())
            .field("pending_ops", &self.pending.len())
            .finish()
    }
}

/// An unsynced operation. Positions were checked to fit in `usize` when the
/// operation was issued.
#[derive(Debug, Clone)]
enum Op {
    Write { pos: u64, data: Vec<u8> },
    SetLen(u64),
}

impl State {
    fn crash(&mut self, mode: CrashMode) {
        if self.volatile {
            return;
        }
        self.epoch += 1;
        self.current = self.durable.clone();
        let live: BTreeSet<u64> = self.durable.values().copied().collect();
        self.inodes.retain(|ino, _| live.contains(ino));
        for inode in self.inodes.values_mut() {
            let ops = std::mem::take(&mut inode.pending);
            for op in surviving_ops(mode, &ops, &mut self.rng) {
                apply(&mut inode.durable, &op);
            }
            inode.current = inode.durable.clone();
        }
    }

    fn write(&mut self, ino: u64, buf: &[u8], pos: u64) -> io::Result<()> {
        end_of(pos, buf.len() as u64)?;
        let mut data = buf;
        let mut injected = None;
        if self.failing_writes > 0 {
            self.failing_writes -= 1;
            data = &buf[..self.rng.below(buf.len())];
            injected = Some(io::Error::from_raw_os_error(EIO));
        }
        let fits = self.fitting_len(ino, data.len(), pos)?;
        if self.volatile {
            write_into(&mut self.inode_mut(ino)?.current, pos, &data[..fits]);
        } else if fits > 0 {
            let op = Op::Write {
                pos,
                data: data[..fits].to_vec(),
            };
            let inode = self.inode_mut(ino)?;
            apply(&mut inode.current, &op);
            inode.pending.push(op);
        }
        if fits < data.len() {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        injected.map_or(Ok(()), Err)
    }

    fn set_len(&mut self, ino: u64, len: u64) -> io::Result<()> {
        end_of(len, 0)?;
        let old = self.inode_mut(ino)?.current.len() as u64;
        if len > old && self.room() < len - old {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        let volatile = self.volatile;
        let inode = self.inode_mut(ino)?;
        let op = Op::SetLen(len);
        apply(&mut inode.current, &op);
        if !volatile {
            inode.pending.push(op);
        }
        Ok(())
    }

    fn sync_data(&mut self, ino: u64) -> io::Result<()> {
        let failure = self.take_sync_failure();
        let inode = self.inode_mut(ino)?;
        let ops = std::mem::take(&mut inode.pending);
        // On failure the operations are dropped unapplied: see the module docs.
        failure?;
        for op in &ops {
            apply(&mut inode.durable, op);
        }
        self.sync_count += 1;
        Ok(())
    }

    /// Consumes one injected sync failure, if any is pending.
    fn take_sync_failure(&mut self) -> io::Result<()> {
        if self.failing_syncs == 0 {
            return Ok(());
        }
        self.failing_syncs -= 1;
        Err(io::Error::from_raw_os_error(EIO))
    }

    /// How many of `len` bytes written at `pos` fit within the capacity.
    fn fitting_len(&mut self, ino: u64, len: usize, pos: u64) -> io::Result<usize> {
        let old = self.inode_mut(ino)?.current.len() as u64;
        let end = pos + len as u64;
        if end <= old || end - old <= self.room() {
            return Ok(len);
        }
        let fitting_end = old.saturating_add(self.room());
        Ok(fitting_end.saturating_sub(pos) as usize)
    }

    /// Bytes the files may still grow by in total.
    fn room(&self) -> u64 {
        let Some(capacity) = self.capacity else {
            return u64::MAX;
        };
        let reachable: BTreeSet<u64> = self.current.values().copied().collect();
        let used: u64 = reachable
            .iter()
            .filter_map(|ino| self.inodes.get(ino))
            .map(|inode| inode.current.len() as u64)
            .sum();
        capacity.saturating_sub(used)
    }

    /// Adds an empty file at `path` to the current view.
    fn create(&mut self, path: &Path) -> io::Result<u64> {
        self.check_new_file(path)?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::default());
        self.current.insert(path.to_path_buf(), ino);
        Ok(ino)
    }

    /// Whether a file may be put at `path`: its directory exists and `path`
    /// itself is not a directory.
    fn check_new_file(&self, path: &Path) -> io::Result<()> {
        if self.dirs.contains(path) {
            let msg = format!("{} is a directory", path.display());
            return Err(io::Error::new(io::ErrorKind::IsADirectory, msg));
        }
        self.check_dir(path.parent().unwrap_or(Path::new("")))
    }

    fn check_dir(&self, dir: &Path) -> io::Result<()> {
        // The empty path is the working directory, which always exists.
        if dir.as_os_str().is_empty() || dir == Path::new("/") || self.dirs.contains(dir) {
            Ok(())
        } else {
            Err(not_found(dir))
        }
    }

    fn current_ino(&self, path: &Path) -> io::Result<u64> {
        let path = key(path);
        self.current
            .get(&path)
            .copied()
            .ok_or_else(|| not_found(&path))
    }

    fn inode_mut(&mut self, ino: u64) -> io::Result<&mut Inode> {
        // Unreachable for live handles: inodes are only dropped by a crash,
        // which also kills every handle.
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other(format!("inode {ino} is gone")))
    }

    fn children(&self, dir: &Path) -> Vec<String> {
        self.current
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }
}

/// The operations of `ops` that a crash under `mode` lets reach the disk, in
/// order, possibly with the last one torn.
fn surviving_ops(mode: CrashMode, ops: &[Op], rng: &mut Rng) -> Vec<Op> {
    match mode {
        CrashMode::DropUnsynced => Vec::new(),
        CrashMode::KeepPrefix => ops[..rng.below(ops.len() + 1)].to_vec(),
        CrashMode::TearLast | CrashMode::TearGarbage if ops.is_empty() => Vec::new(),
        CrashMode::TearLast | CrashMode::TearGarbage => {
            let whole = rng.below(ops.len());
            let garbage = mode == CrashMode::TearGarbage;
            let mut kept = ops[..whole].to_vec();
            kept.extend(torn(&ops[whole], garbage, rng));
            kept
        }
        CrashMode::Reorder => ops.iter().filter(|_| rng.coin()).cloned().collect(),
        CrashMode::Random => {
            const MODES: [CrashMode; 5] = [
                CrashMode::DropUnsynced,
                CrashMode::KeepPrefix,
                CrashMode::TearLast,
                CrashMode::TearGarbage,
                CrashMode::Reorder,
            ];
            surviving_ops(MODES[rng.below(MODES.len())], ops, rng)
        }
    }
}

/// What lands of an operation cut short by power loss, if anything.
fn torn(op: &Op, garbage: bool, rng: &mut Rng) -> Option<Op> {
    let Op::Write { pos, data } = op else {
        return None; // A truncation is one metadata update: all or nothing.
    };
    let data = if garbage {
        let mut junk = vec![0; 1 + rng.below(data.len())];
        rng.fill(&mut junk);
        junk
    } else {
        data[..rng.below(data.len())].to_vec()
    };
    (!data.is_empty()).then_some(Op::Write { pos: *pos, data })
}

/// Applies `op` to `content`; a write past the end zero-fills the gap.
fn apply(content: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { pos, data } => write_into(content, *pos, data),
        Op::SetLen(len) => content.resize(*len as usize, 0),
    }
}

/// Writes `data` at `pos`, zero-filling any gap past the end.
fn write_into(content: &mut Vec<u8>, pos: u64, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let start = pos as usize;
    let end = start + data.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    content[start..end].copy_from_slice(data);
}

/// XORs `content[pos]` if it exists; returns whether it did.
fn flip(content: &mut [u8], pos: u64, xor: u8) -> bool {
    match usize::try_from(pos).ok().and_then(|p| content.get_mut(p)) {
        Some(byte) => {
            *byte ^= xor;
            true
        }
        None => false,
    }
}

/// Checks that `pos + len` is addressable in memory, so later `as usize`
/// conversions of positions cannot truncate.
fn end_of(pos: u64, len: u64) -> io::Result<usize> {
    pos.checked_add(len)
        .and_then(|end| usize::try_from(end).ok())
        .ok_or_else(|| invalid(format!("position {pos} + {len} is out of range")))
}

/// The map key for `path`: "a//b/./c/" and "a/b/c" must name the same file.
fn key(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide the state from the others.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_found(path: &Path) -> io::Error {
    let msg = format!("{}: no such file or directory", path.display());
    io::Error::new(io::ErrorKind::NotFound, msg)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// splitmix64: tiny, seedable, and good enough to pick crash outcomes.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`, or 0 when `n` is 0.
    fn below(&mut self, n: usize) -> usize {
        // Multiply-shift instead of `%`: no modulo bias, no division.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            *byte = self.next_u64() as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::read_exact_at;

    const DIR: &str = "/data";
    const BASE: &[u8] = b"base";
    const FILES: usize = 32;
    const WRITES: usize = 4;
    const W: usize = 8;

    fn fs_with_dir(seed: u64) -> Arc<SimFs> {
        let fs = SimFs::new(seed);
        fs.create_dir_all(Path::new(DIR)).unwrap();
        fs
    }

    fn path(name: &str) -> PathBuf {
        Path::new(DIR).join(name)
    }

    fn read_all(fs: &SimFs, p: &Path) -> Vec<u8> {
        let file = fs.open(p, false).unwrap();
        let mut buf = vec![0; file.len().unwrap() as usize];
        read_exact_at(&*file, &mut buf, 0).unwrap();
        buf
    }

    /// A file holding `content`, synced, with its directory entry synced.
    fn durable_file(fs: &SimFs, name: &str, content: &[u8]) -> Arc<dyn File> {
        let file = fs.open(&path(name), true).unwrap();
        file.write_at(content, 0).unwrap();
        file.sync_data().unwrap();
        fs.sync_dir(Path::new(DIR)).unwrap();
        file
    }

    /// The `i`th unsynced write of the mode tests: `W` copies of one byte.
    fn data(i: usize) -> Vec<u8> {
        vec![b'a' + i as u8; W]
    }

    /// `FILES` files each holding BASE durably plus `WRITES` unsynced appends,
    /// crashed under `mode`; returns each file's content after BASE.
    fn crashed_tails(mode: CrashMode) -> Vec<Vec<u8>> {
        let fs = fs_with_dir(42);
        for f in 0..FILES {
            let file = durable_file(&fs, &f.to_string(), BASE);
            for i in 0..WRITES {
                file.write_at(&data(i), (BASE.len() + i * W) as u64)
                    .unwrap();
            }
        }
        fs.crash_with(mode);
        (0..FILES)
            .map(|f| {
                let content = read_all(&fs, &path(&f.to_string()));
                assert_eq!(&content[..BASE.len()], BASE, "durable prefix lost");
                content[BASE.len()..].to_vec()
            })
            .collect()
    }

    fn whole_writes(n: usize) -> Vec<u8> {
        (0..n).flat_map(data).collect()
    }

    fn raw(err: &io::Error) -> Option<i32> {
        err.raw_os_error()
    }

    #[test]
    fn synced_data_survives_any_crash() {
        for seed in 0..16 {
            let fs = fs_with_dir(seed);
            let file = durable_file(&fs, "log", b"hello");
            file.write_at(b" world", 5).unwrap();
            file.sync_data().unwrap();
            fs.crash();
            assert_eq!(read_all(&fs, &path("log")), b"hello world");
        }
    }

    #[test]
    fn drop_unsynced_keeps_exactly_the_durable_content() {
        let tails = crashed_tails(CrashMode::DropUnsynced);
        assert!(tails.iter().all(Vec::is_empty), "{tails:?}");
    }

    #[test]
    fn keep_prefix_keeps_whole_writes_in_order() {
        let mut kept = BTreeSet::new();
        for tail in crashed_tails(CrashMode::KeepPrefix) {
            assert_eq!(tail.len() % W, 0, "torn write: {tail:?}");
            let n = tail.len() / W;
            assert!(n <= WRITES);
            assert_eq!(tail, whole_writes(n));
            kept.insert(n);
        }
        assert!(kept.len() >= 3, "prefix lengths not random: {kept:?}");
        assert!(kept.iter().any(|&n| n > 0 && n < WRITES), "{kept:?}");
    }

    #[test]
    fn tear_last_keeps_whole_writes_then_a_strict_prefix_of_one() {
        let mut torn_bytes = 0;
        let mut whole = BTreeSet::new();
        for tail in crashed_tails(CrashMode::TearLast) {
            let (n, part) = (tail.len() / W, tail.len() % W);
            assert!(n < WRITES, "no write was torn: {tail:?}");
            assert_eq!(tail[..n * W], whole_writes(n));
            assert_eq!(tail[n * W..], data(n)[..part]);
            torn_bytes += part;
            whole.insert(n);
        }
        assert!(torn_bytes > 0, "no torn write landed any byte");
        assert!(whole.len() >= 3, "torn write not random: {whole:?}");
    }

    #[test]
    fn tear_garbage_keeps_whole_writes_then_junk() {
        let mut whole = BTreeSet::new();
        for tail in crashed_tails(CrashMode::TearGarbage) {
            assert!(!tail.is_empty(), "garbage tear always lands a byte");
            let n = (tail.len() - 1) / W;
            whole.insert(n);
            assert!(n < WRITES, "no write was torn: {tail:?}");
            assert_eq!(tail[..n * W], whole_writes(n));
            let junk = &tail[n * W..];
            assert_ne!(junk, &data(n)[..junk.len()], "torn part is the data");
        }
        assert!(whole.len() >= 3, "torn write not random: {whole:?}");
    }

    #[test]
    fn reorder_keeps_any_subset_of_writes() {
        let mut holes = 0;
        for tail in crashed_tails(CrashMode::Reorder) {
            assert_eq!(tail.len() % W, 0, "torn write: {tail:?}");
            let chunks: Vec<&[u8]> = tail.chunks(W).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                assert!(
                    *chunk == data(i) || *chunk == [0; W],
                    "chunk {i}: {chunk:?}"
                );
            }
            assert_ne!(
                chunks.last(),
                Some(&&[0; W][..]),
                "file grew by a lost write"
            );
            holes += chunks.iter().filter(|c| **c == [0; W]).count();
        }
        assert!(holes > 0, "no later write outlived an earlier lost one");
    }

    #[test]
    fn random_mode_keeps_the_durable_prefix_and_varies() {
        let tails = crashed_tails(CrashMode::Random);
        let distinct: BTreeSet<_> = tails.iter().collect();
        assert!(distinct.len() > 3, "{tails:?}");
    }

    #[test]
    fn unsynced_truncation_is_undone_by_a_crash() {
        let fs = fs_with_dir(1);
        let file = durable_file(&fs, "log", b"0123456789abcdef");
        file.set_len(4).unwrap();
        file.write_at(b"XY", 4).unwrap();
        assert_eq!(read_all(&fs, &path("log")), b"0123XY");
        fs.crash_with(CrashMode::DropUnsynced);
        assert_eq!(read_all(&fs, &path("log")), b"0123456789abcdef");
    }

    #[test]
    fn synced_truncation_survives() {
        let fs = fs_with_dir(1);
        let file = durable_file(&fs, "log", b"0123456789");
        file.set_len(3).unwrap();
        file.sync_data().unwrap();
        fs.crash_with(CrashMode::DropUnsynced);
        assert_eq!(read_all(&fs, &path("log")), b"012");
    }

    #[test]
    fn a_crash_leaves_its_result_durable() {
        let fs = fs_with_dir(3);
        let file = durable_file(&fs, "log", BASE);
        file.write_at(b"more", 4).unwrap();
        fs.crash_with(CrashMode::KeepPrefix);
        let after_first = read_all(&fs, &path("log"));
        assert_eq!(fs.durable_content(&path("log")), Some(after_first.clone()));
        fs.crash_with(CrashMode::DropUnsynced);
        assert_eq!(read_all(&fs, &path("log")), after_first);
    }

    #[test]
    fn created_file_without_dir_sync_vanishes() {
        let fs = fs_with_dir(5);
        let file = fs.open(&path("new"), true).unwrap();
        file.write_at(b"data", 0).unwrap();
        file.sync_data().unwrap();
        assert!(fs.exists(&path("new")));
        assert_eq!(fs.durable_len(&path("new")), None);
        fs.crash();
        assert!(!fs.exists(&path("new")));
        assert!(fs.file_names(Path::new(DIR)).is_empty());
    }

    #[test]
    fn removed_file_without_dir_sync_reappears() {
        let fs = fs_with_dir(5);
        durable_file(&fs, "old", b"kept");
        fs.remove(&path("old")).unwrap();
        assert!(!fs.exists(&path("old")));
        fs.crash();
        assert_eq!(read_all(&fs, &path("old")), b"kept");
    }

    #[test]
    fn removal_with_dir_sync_is_durable() {
        let fs = fs_with_dir(5);
        durable_file(&fs, "old", b"gone");
        fs.remove(&path("old")).unwrap();
        fs.sync_dir(Path::new(DIR)).unwrap();
        fs.crash();
        assert!(!fs.exists(&path("old")));
    }

    #[test]
    fn rename_without_dir_sync_is_undone() {
        let fs = fs_with_dir(5);
        durable_file(&fs, "a", b"content");
        fs.rename(&path("a"), &path("b")).unwrap();
        assert_eq!(fs.file_names(Path::new(DIR)), ["b"]);
        fs.crash();
        assert_eq!(fs.file_names(Path::new(DIR)), ["a"]);
        assert_eq!(read_all(&fs, &path("a")), b"content");
    }

    #[test]
    fn rename_with_dir_sync_replaces_the_target() {
        let fs = fs_with_dir(5);
        durable_file(&fs, "a", b"new");
        durable_file(&fs, "b", b"old");
        fs.rename(&path("a"), &path("b")).unwrap();
        fs.sync_dir(Path::new(DIR)).unwrap();
        fs.crash();
        assert_eq!(fs.file_names(Path::new(DIR)), ["b"]);
        assert_eq!(read_all(&fs, &path("b")), b"new");
    }

    #[test]
    fn sync_dir_covers_only_direct_children() {
        let fs = fs_with_dir(5);
        let sub = path("sub");
        fs.create_dir_all(&sub).unwrap();
        fs.open(&sub.join("inner"), true).unwrap();
        fs.open(&path("outer"), true).unwrap();
        fs.sync_dir(Path::new(DIR)).unwrap();
        assert_eq!(fs.list(Path::new(DIR)).unwrap(), ["outer"]);
        fs.crash();
        assert!(fs.exists(&path("outer")));
        assert!(!fs.exists(&sub.join("inner")));
        assert!(fs.list(&sub).unwrap().is_empty(), "directories are durable");
    }

    #[test]
    fn handles_outlive_remove_and_rename() {
        let fs = fs_with_dir(5);
        let file = fs.open(&path("a"), true).unwrap();
        fs.rename(&path("a"), &path("b")).unwrap();
        file.write_at(b"xy", 0).unwrap();
        assert_eq!(read_all(&fs, &path("b")), b"xy");
        fs.remove(&path("b")).unwrap();
        file.write_at(b"z", 2).unwrap();
        let mut buf = [0; 3];
        read_exact_at(&*file, &mut buf, 0).unwrap();
        assert_eq!(&buf, b"xyz");
    }

    #[test]
    fn handles_from_before_a_crash_are_dead() {
        let fs = fs_with_dir(5);
        let old = durable_file(&fs, "log", b"abc");
        fs.crash();
        assert!(old.read_at(&mut [0; 3], 0).is_err());
        assert!(old.write_at(b"x", 0).is_err());
        assert!(old.sync_data().is_err());
        assert!(old.len().is_err());
        assert!(old.set_len(0).is_err());
        let new = fs.open(&path("log"), false).unwrap();
        assert_eq!(new.len().unwrap(), 3);
        assert_eq!(read_all(&fs, &path("log")), b"abc", "dead handle wrote");
    }

    #[test]
    fn missing_files_and_directories_are_not_found() {
        let fs = fs_with_dir(5);
        let kind = |r: io::Result<Arc<dyn File>>| r.unwrap_err().kind();
        assert_eq!(kind(fs.open(&path("nope"), false)), io::ErrorKind::NotFound);
        let orphan = Path::new("/nodir/file");
        assert_eq!(kind(fs.open(orphan, true)), io::ErrorKind::NotFound);
        let list = fs.list(Path::new("/nodir"));
        assert_eq!(list.unwrap_err().kind(), io::ErrorKind::NotFound);
        let removed = fs.remove(&path("nope"));
        assert_eq!(removed.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(fs.open(Path::new(DIR), true).is_err(), "opened a directory");
    }

    #[test]
    fn equivalent_paths_name_the_same_file() {
        let fs = fs_with_dir(5);
        fs.open(Path::new("/data/./x"), true).unwrap();
        assert!(fs.exists(Path::new("/data//x")));
        assert_eq!(fs.file_names(Path::new("/data/")), ["x"]);
    }

    #[test]
    fn reads_past_the_end_are_empty_and_gaps_are_zero() {
        let fs = fs_with_dir(5);
        let file = fs.open(&path("f"), true).unwrap();
        file.write_at(b"ab", 4).unwrap();
        assert_eq!(read_all(&fs, &path("f")), b"\0\0\0\0ab");
        assert_eq!(file.read_at(&mut [0; 4], 6).unwrap(), 0);
        assert_eq!(file.read_at(&mut [0; 4], 100).unwrap(), 0);
        let mut buf = [0; 4];
        assert_eq!(file.read_at(&mut buf, 4).unwrap(), 2);
        assert_eq!(&buf[..2], b"ab");
    }

    #[test]
    fn a_full_disk_writes_what_fits_then_fails_with_enospc() {
        let fs = fs_with_dir(5);
        fs.set_capacity(Some(10));
        let a = fs.open(&path("a"), true).unwrap();
        a.write_at(b"012345", 0).unwrap();
        let err = a.write_at(b"abcdefgh", 6).unwrap_err();
        assert_eq!(raw(&err), Some(ENOSPC));
        assert_eq!(read_all(&fs, &path("a")), b"012345abcd");
        a.write_at(b"XY", 0).unwrap(); // Overwriting needs no room.
        assert_eq!(raw(&a.set_len(11).unwrap_err()), Some(ENOSPC));
        let b = fs.open(&path("b"), true).unwrap();
        assert_eq!(raw(&b.write_at(b"z", 0).unwrap_err()), Some(ENOSPC));
        assert_eq!(b.len().unwrap(), 0);
        a.set_len(8).unwrap();
        b.write_at(b"zzzz", 0).unwrap_err();
        assert_eq!(b.len().unwrap(), 2, "freed room not reused");
        fs.set_capacity(None);
        b.write_at(b"zzzz", 0).unwrap();
        a.set_len(100).unwrap();
    }

    #[test]
    fn removed_files_free_their_room() {
        let fs = fs_with_dir(5);
        fs.set_capacity(Some(4));
        fs.open(&path("a"), true)
            .unwrap()
            .write_at(b"full", 0)
            .unwrap();
        let b = fs.open(&path("b"), true).unwrap();
        assert_eq!(raw(&b.write_at(b"x", 0).unwrap_err()), Some(ENOSPC));
        fs.remove(&path("a")).unwrap();
        b.write_at(b"x", 0).unwrap();
    }

    #[test]
    fn a_failed_sync_reports_eio_and_loses_the_writes() {
        let fs = fs_with_dir(5);
        let file = durable_file(&fs, "log", BASE);
        let synced = fs.sync_count();
        file.write_at(b"lost", 4).unwrap();
        fs.fail_syncs(1);
        assert_eq!(raw(&file.sync_data().unwrap_err()), Some(EIO));
        assert_eq!(read_all(&fs, &path("log")), b"baselost", "page cache kept");
        file.sync_data().unwrap();
        assert_eq!(fs.sync_count(), synced + 1);
        assert_eq!(fs.durable_content(&path("log")).unwrap(), BASE);
        file.write_at(b"kept", 8).unwrap();
        file.sync_data().unwrap();
        fs.crash_with(CrashMode::DropUnsynced);
        assert_eq!(read_all(&fs, &path("log")), b"base\0\0\0\0kept");
    }

    #[test]
    fn a_failed_dir_sync_makes_nothing_durable() {
        let fs = fs_with_dir(5);
        fs.open(&path("new"), true).unwrap();
        fs.fail_syncs(1);
        let err = fs.sync_dir(Path::new(DIR)).unwrap_err();
        assert_eq!(raw(&err), Some(EIO));
        fs.crash();
        assert!(!fs.exists(&path("new")));
    }

    #[test]
    fn failed_writes_land_a_strict_prefix_and_report_eio() {
        let fs = fs_with_dir(9);
        let file = fs.open(&path("f"), true).unwrap();
        let payload: Vec<u8> = (1..=100).collect();
        fs.fail_writes(2);
        let mut lengths = Vec::new();
        for _ in 0..2 {
            file.set_len(0).unwrap();
            let err = file.write_at(&payload, 0).unwrap_err();
            assert_eq!(raw(&err), Some(EIO));
            let landed = read_all(&fs, &path("f"));
            assert!(landed.len() < payload.len());
            assert_eq!(landed, payload[..landed.len()]);
            lengths.push(landed.len());
        }
        assert_ne!(lengths[0], lengths[1], "prefix length not random");
        file.write_at(&payload, 0).unwrap();
        assert_eq!(read_all(&fs, &path("f")), payload);
    }

    #[test]
    fn corrupt_flips_bits_in_durable_content() {
        let fs = fs_with_dir(5);
        durable_file(&fs, "log", b"abcd");
        fs.corrupt(&path("log"), 2, 0x20).unwrap();
        assert_eq!(read_all(&fs, &path("log")), b"abCd");
        assert_eq!(fs.durable_content(&path("log")).unwrap(), b"abCd");
        fs.crash();
        assert_eq!(read_all(&fs, &path("log")), b"abCd");
        assert!(fs.corrupt(&path("log"), 4, 1).is_err());
        assert!(fs.corrupt(&path("nope"), 0, 1).is_err());
    }

    /// A busy workload under one seed: the bytes of every file after a crash.
    fn workload(seed: u64) -> Vec<(String, Vec<u8>)> {
        let fs = fs_with_dir(seed);
        for f in 0..8 {
            let file = durable_file(&fs, &format!("f{f}"), BASE);
            for i in 0..6u8 {
                if i == 3 {
                    fs.fail_writes(1);
                }
                let _ = file.write_at(&[i + 1; 5], 4 + 5 * u64::from(i));
            }
        }
        fs.crash();
        let names = fs.file_names(Path::new(DIR));
        let contents = names.iter().map(|n| read_all(&fs, &path(n)));
        names.iter().cloned().zip(contents).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        assert_eq!(workload(7), workload(7));
        let outcomes: BTreeSet<_> = (0..8).map(workload).collect();
        assert!(outcomes.len() > 1, "the seed changes nothing");
    }

    #[test]
    fn reseeding_replays_the_same_choices() {
        let fs = fs_with_dir(0);
        let run = |seed: u64| {
            fs.reseed(seed);
            crash_all_unsynced(&fs)
        };
        let first = run(11);
        assert_eq!(run(11), first);
        assert_ne!(run(12), first, "reseeding changed nothing");
    }

    /// Gives each of 8 files in DIR fresh unsynced writes, crashes, and
    /// returns every file's content; creates the files on first use.
    fn crash_all_unsynced(fs: &SimFs) -> Vec<Vec<u8>> {
        let names: Vec<String> = (0..8).map(|f| f.to_string()).collect();
        for name in &names {
            let file = durable_file(fs, name, BASE);
            file.set_len(BASE.len() as u64).unwrap();
            file.sync_data().unwrap();
            for i in 0..8 {
                file.write_at(&data(i), (BASE.len() + i * W) as u64)
                    .unwrap();
            }
        }
        fs.crash();
        names.iter().map(|n| read_all(fs, &path(n))).collect()
    }
}
