//! How a log behaves: durability, segment sizes, indexing, retention and what
//! to do about corruption. Defaults are the safe choice: `fsync` durability
//! and refusing to open a corrupt log.

use crate::error::{Error, Result};

/// When an append counts as acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// An append returns only after an `fdatasync` covering it has returned.
    /// Concurrent appends share one sync (group commit).
    Fsync,
    /// An append returns after the write; the log is synced at most this many
    /// milliseconds later (by the next append past the deadline, or by a
    /// [`crate::Flusher`]).
    Interval {
        /// The longest time written data may stay unsynced.
        ms: u64,
    },
    /// Nothing is ever synced; meant for a log over an in-memory file system.
    Memory,
}

/// What opening a log does when it finds a bad checksum in data that was
/// already synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptionPolicy {
    /// Refuse to open, with an error naming the file and byte position.
    Refuse,
    /// Copy the damaged segment aside into `quarantine/`, cut the log at the
    /// damage, report it and open.
    Quarantine,
}

/// A log's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// When an append is acknowledged.
    pub durability: Durability,
    /// A segment is rolled before it would grow past this size.
    pub segment_bytes: u64,
    /// A non-empty segment is rolled once it is this old (by the log's clock).
    pub segment_ms: Option<u64>,
    /// Bytes of log between two entries of the sparse indexes.
    pub index_interval_bytes: u64,
    /// Segments whose newest record is older than this are deleted.
    pub retention_ms: Option<u64>,
    /// Oldest segments are deleted while the log is larger than this.
    pub retention_bytes: Option<u64>,
    /// The largest batch `append` accepts.
    pub max_batch_bytes: usize,
    /// What to do with corruption found at open.
    pub on_corruption: CorruptionPolicy,
    /// How often the recovery point is made durable (milliseconds).
    pub checkpoint_interval_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            durability: Durability::Fsync,
            segment_bytes: 1 << 30,
            segment_ms: Some(7 * 24 * 3600 * 1000),
            index_interval_bytes: 4096,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            max_batch_bytes: 16 << 20,
            on_corruption: CorruptionPolicy::Refuse,
            checkpoint_interval_ms: 1000,
        }
    }
}

impl LogConfig {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: &str| Err(Error::InvalidConfig(msg.to_string()));
        if self.segment_bytes < 1024 || self.segment_bytes > u32::MAX as u64 {
            return fail("segment_bytes must be between 1 KiB and 4 GiB");
        }
        if self.index_interval_bytes == 0 {
            return fail("index_interval_bytes must be positive");
        }
        if self.max_batch_bytes < crate::batch::HEADER_LEN {
            return fail("max_batch_bytes is smaller than a batch header");
        }
        if let Durability::Interval { ms: 0 } = self.durability {
            return fail("an interval of 0 ms is fsync durability; say Fsync");
        }
        if self.segment_ms == Some(0) {
            return fail("segment_ms must be positive");
        }
        Ok(())
    }

    pub(crate) fn syncs(&self) -> bool {
        self.durability != Durability::Memory
    }
}
