//! The small file-system seam the log is written against.
//!
//! Everything the log does to a disk goes through [`Fs`] and [`File`], so that
//! tests can swap the real file system ([`StdFs`]) for one that injects faults
//! and simulates crashes ([`crate::sim::SimFs`]), and so that an io_uring
//! backend can be tried later without touching the log itself.

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Called with the duration of every `fdatasync` of the real file system;
/// set once by a server that exports it as a metric (the storage crate
/// depends on no metrics library).
static SYNC_OBSERVER: std::sync::OnceLock<fn(std::time::Duration)> = std::sync::OnceLock::new();

/// Sets the observer of sync durations; only the first call takes effect.
pub fn observe_syncs(observer: fn(std::time::Duration)) {
    let _ = SYNC_OBSERVER.set(observer);
}

/// A directory tree of files. Paths are plain paths; implementations decide
/// what they mean.
pub trait Fs: Send + Sync + std::fmt::Debug {
    /// Creates `dir` and its parents. Creating a directory is not durable until
    /// its parent is synced with [`Fs::sync_dir`].
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names (not paths) of the files directly inside `dir`, in no order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens a file for reading and writing, creating it when `create` is set
    /// (an existing file is opened as it is, never truncated).
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn File>>;
    /// Whether `path` names an existing file.
    fn exists(&self, path: &Path) -> bool;
    /// Removes a file. Not durable until the directory is synced.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Renames a file, replacing `to` if it exists. Not durable until the
    /// directory is synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, removals, renames) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file. Positioned reads and writes only, so one handle can be shared
/// between the writer and any number of readers without a seek position.
#[allow(clippy::len_without_is_empty)] // A file's emptiness is never asked.
pub trait File: Send + Sync + std::fmt::Debug {
    /// Reads into `buf` from `pos`; returns the number of bytes read, which is
    /// smaller than `buf.len()` only at the end of the file.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `pos`, extending the file if needed. On error,
    /// any prefix of `buf` may have been written.
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// Makes every byte written so far durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// Reads exactly `buf.len()` bytes at `pos`, or fails with `UnexpectedEof`.
pub fn read_exact_at(file: &dyn File, buf: &mut [u8], pos: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], pos + done as u64)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "short read: wanted {} bytes at {pos}, got {done}",
                    buf.len()
                ),
            ));
        }
        done += n;
    }
    Ok(())
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

impl StdFs {
    /// A shared handle to the real file system.
    pub fn shared() -> Arc<dyn Fs> {
        Arc::new(StdFs)
    }
}

impl Fs for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn File>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(StdFile { file }))
    }

    fn exists(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fs::File::open(dir)?.sync_all()
    }
}

#[derive(Debug)]
struct StdFile {
    file: fs::File,
}

impl File for StdFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        loop {
            match self.file.read_at(buf, pos) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.file.write_all_at(buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let result = self.file.sync_data();
        if let Some(observe) = SYNC_OBSERVER.get() {
            observe(started.elapsed());
        }
        result
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}
