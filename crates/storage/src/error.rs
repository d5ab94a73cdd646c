//! The storage crate's one error type.
//!
//! [`Error::is_fatal`] separates "this request failed" from "this log must be
//! reopened": after a failed sync the log is poisoned and refuses every
//! further write, because the kernel may have dropped the dirty pages it
//! failed to write and a retry could falsely report them durable.

use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;

/// Everything that can go wrong in the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the log was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A sync (or a truncation) failed; the log refuses writes until it is
    /// reopened.
    #[error("log {dir} refuses writes until reopened: {cause}")]
    Poisoned {
        /// The log's directory.
        dir: PathBuf,
        /// The failure that poisoned it.
        cause: String,
    },
    /// Stored data failed its checksum or is malformed where it should be whole.
    #[error("corruption in {file} at byte {position}: {reason}")]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte position of the damaged batch in that file.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The batch handed to `append` is not a valid record batch.
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// The batch handed to `append` is larger than the log accepts.
    #[error("batch of {size} bytes exceeds the limit of {max} bytes")]
    BatchTooLarge {
        /// The batch's size.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The requested offset is outside the log.
    #[error("offset {offset} is out of range [{start}, {end})")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: u64,
        /// The first offset in the log.
        start: u64,
        /// The next offset to be written.
        end: u64,
    },
    /// The log was closed.
    #[error("log {dir} is closed")]
    Closed {
        /// The log's directory.
        dir: PathBuf,
    },
    /// The append was written, but a truncation removed it before it was
    /// durable; it was never acknowledged.
    #[error("append at offset {offset} was truncated away before it became durable")]
    Truncated {
        /// The first offset the append was given.
        offset: u64,
    },
    /// The append was part of a group write that failed (a full disk, say);
    /// it was never acknowledged, and the log goes on without it.
    #[error("append at offset {offset} was not written: {cause}")]
    Unwritten {
        /// The first offset the append was given.
        offset: u64,
        /// Why the group write failed.
        cause: String,
    },
    /// The configuration is not usable.
    #[error("invalid log configuration: {0}")]
    InvalidConfig(String),
}

impl Error {
    /// Whether the log must be reopened before it can write again.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Poisoned { .. } | Error::Corruption { .. })
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// The storage crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
