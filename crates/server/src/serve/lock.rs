//! The data directory's lock: `<data-dir>/LOCK`, held with an exclusive
//! advisory lock for the life of the server, so two servers never open the
//! same logs. The operating system drops the lock when the process ends,
//! however it ends, so a crash never leaves a stale lock behind. The file
//! holds the owner's process id, for people.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The lock, held until [`DataDirLock::release`] or drop.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock on `data_dir/LOCK` without waiting; fails with a
    /// message naming the directory if another process holds it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<DataDirLock> {
        let path = data_dir.join("LOCK");
        // No truncate on open: the file may be another server's, holding
        // its process id.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => anyhow::bail!(
                "another hermod server is using {} (lock held on {}); stop it or choose another --data-dir",
                data_dir.display(),
                path.display()
            ),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        let mut lock = DataDirLock { file, path };
        lock.write_pid()?;
        Ok(lock)
    }

    /// Releases the lock (dropping it does too; this reports errors).
    pub fn release(self) -> anyhow::Result<()> {
        self.file
            .unlock()
            .with_context(|| format!("cannot unlock {}", self.path.display()))
    }

    fn write_pid(&mut self) -> anyhow::Result<()> {
        self.file.set_len(0)?;
        writeln!(self.file, "{}", std::process::id())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let e = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        let shown = dir.path().display().to_string();
        assert!(
            e.starts_with(&format!("another hermod server is using {shown} ")),
            "{e}"
        );
        assert!(e.contains(&format!("{shown}/LOCK")), "{e}");
        first.release().unwrap();
        let again = DataDirLock::acquire(dir.path()).unwrap();
        drop(again);
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn lock_file_holds_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = DataDirLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("LOCK")).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
    }
}
