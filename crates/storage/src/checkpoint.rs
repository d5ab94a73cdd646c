//! The recovery point: a small file saying "everything before byte `position`
//! of segment `segment` (offsets below `next_offset`) is known to be synced".
//!
//! After a crash, recovery needs to tell a torn tail (unsynced bytes cut
//! short by power loss: cut them away) from corruption (damage to synced,
//! acknowledged data: refuse to open). Making that point durable on every
//! group commit would double the syncs, so the log rewrites the file after
//! each sync without syncing it, and syncs it at most once per
//! `checkpoint_interval_ms`. Whatever version survives a crash is therefore
//! a true, if possibly stale, lower bound. The file carries its own CRC-32C;
//! a torn or missing file counts as "nothing known", which only widens the
//! window treated as a possible torn tail.

use std::path::Path;

use crate::io::{read_exact_at, File};

/// The recovery point file's name inside a log directory.
pub const FILE_NAME: &str = "recovery-point";
const MAGIC: &[u8; 4] = b"HRP1";
const LEN: usize = 32;

/// A point in the log known to be synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPoint {
    /// Base offset of the segment the point is in.
    pub segment: u64,
    /// Bytes of that segment known synced.
    pub position: u64,
    /// The log's next offset at that point.
    pub next_offset: u64,
}

impl RecoveryPoint {
    /// The file's bytes.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0..4].copy_from_slice(MAGIC);
        out[4..12].copy_from_slice(&self.segment.to_be_bytes());
        out[12..20].copy_from_slice(&self.position.to_be_bytes());
        out[20..28].copy_from_slice(&self.next_offset.to_be_bytes());
        let crc = crc32c::crc32c(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses the file's bytes; `None` if they are not a whole, valid point.
    pub fn decode(buf: &[u8]) -> Option<RecoveryPoint> {
        if buf.len() < LEN || &buf[0..4] != MAGIC {
            return None;
        }
        let crc = u32::from_be_bytes(buf[28..32].try_into().ok()?);
        if crc32c::crc32c(&buf[0..28]) != crc {
            return None;
        }
        let u64_at = |p: usize| u64::from_be_bytes(buf[p..p + 8].try_into().unwrap());
        Some(RecoveryPoint {
            segment: u64_at(4),
            position: u64_at(12),
            next_offset: u64_at(20),
        })
    }

    /// Writes the point over the file's contents (not synced).
    pub fn write(&self, file: &dyn File) -> std::io::Result<()> {
        file.write_at(&self.encode(), 0)
    }

    /// Reads the point from an open file, if it holds a valid one.
    pub fn read(file: &dyn File) -> Option<RecoveryPoint> {
        let mut buf = [0u8; LEN];
        read_exact_at(file, &mut buf, 0).ok()?;
        RecoveryPoint::decode(&buf)
    }
}

/// The path of the recovery point file of the log in `dir`.
pub fn path(dir: &Path) -> std::path::PathBuf {
    dir.join(FILE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let p = RecoveryPoint {
            segment: 7,
            position: 4096,
            next_offset: 99,
        };
        let bytes = p.encode();
        assert_eq!(RecoveryPoint::decode(&bytes), Some(p));
        for i in 0..LEN {
            let mut b = bytes;
            b[i] ^= 0x10;
            assert_eq!(
                RecoveryPoint::decode(&b),
                None,
                "flip at {i} went unnoticed"
            );
        }
        assert_eq!(RecoveryPoint::decode(&bytes[..LEN - 1]), None);
    }
}
