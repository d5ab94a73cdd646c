//! One segment of a log: a file of record batches back to back, named after
//! the offset of its first batch, with its two index files beside it.
//!
//! This module knows the file names, how to find a batch in a segment, and
//! how to scan one (the slow path shared by recovery, truncation and index
//! rebuilding). It holds no lock; the log decides who may call what.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::error::{Error, Result};
use crate::index::{self, IndexBuilder};
use crate::io::{read_exact_at, File, Fs};

/// Extension of segment data files.
pub const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub const TIME_INDEX_EXT: &str = "timeindex";

/// The bytes a full scan reads at a time.
pub const SCAN_CHUNK: usize = 1 << 20;

/// No stored batch is larger than this; a header that claims more is damage,
/// and a scan must not allocate what a damaged length field asks for.
pub const MAX_BATCH_ON_DISK: usize = 256 << 20;

/// The file name of the segment starting at `base_offset` with extension `ext`.
pub fn file_name(base_offset: u64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// The base offset named by a segment file name with extension `ext`.
pub fn parse_file_name(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// A segment the log knows of. Its data file is opened on first use so that
/// opening a log with thousands of segments touches none of them.
#[derive(Debug)]
pub struct Segment {
    /// The offset of the segment's first batch.
    pub base_offset: u64,
    dir: PathBuf,
    file: Mutex<Option<Arc<dyn File>>>,
    max_timestamp: Mutex<Option<Option<i64>>>,
    size: Mutex<Option<u64>>,
}

impl Segment {
    /// A segment of the log in `dir`, with its data file already open if
    /// `file` is given.
    pub fn new(dir: &Path, base_offset: u64, file: Option<Arc<dyn File>>) -> Segment {
        Segment {
            base_offset,
            dir: dir.to_path_buf(),
            file: Mutex::new(file),
            max_timestamp: Mutex::new(None),
            size: Mutex::new(None),
        }
    }

    /// The path of this segment's file with extension `ext`.
    pub fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(file_name(self.base_offset, ext))
    }

    /// The open data file.
    pub fn file(&self, fs: &dyn Fs) -> Result<Arc<dyn File>> {
        let mut slot = self.file.lock().unwrap();
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        let path = self.path(LOG_EXT);
        let f = fs
            .open(&path, false)
            .map_err(|e| Error::io("open segment", &path, e))?;
        *slot = Some(f.clone());
        Ok(f)
    }

    /// Remembers a sealed segment's size once known.
    pub fn set_size(&self, size: u64) {
        *self.size.lock().unwrap() = Some(size);
    }

    /// A sealed segment's size in bytes, from the file system on first use
    /// (without keeping the file open if it was not).
    pub fn size(&self, fs: &dyn Fs) -> Result<u64> {
        if let Some(size) = *self.size.lock().unwrap() {
            return Ok(size);
        }
        let path = self.path(LOG_EXT);
        let cached = self.file.lock().unwrap().clone();
        let size = match cached {
            Some(f) => f.len(),
            None => fs.open(&path, false).and_then(|f| f.len()),
        }
        .map_err(|e| Error::io("stat segment", &path, e))?;
        self.set_size(size);
        Ok(size)
    }

    /// Remembers the segment's largest timestamp once known.
    pub fn set_max_timestamp(&self, ts: Option<i64>) {
        *self.max_timestamp.lock().unwrap() = Some(ts);
    }

    /// The segment's largest timestamp, read from the end of its time index on
    /// first use (a sealed segment's index files are synced before it is).
    pub fn max_timestamp(&self, fs: &dyn Fs) -> Result<Option<i64>> {
        if let Some(ts) = *self.max_timestamp.lock().unwrap() {
            return Ok(ts);
        }
        let path = self.path(TIME_INDEX_EXT);
        let ts = fs
            .open(&path, false)
            .and_then(|f| index::file_max_timestamp(&*f))
            .map_err(|e| Error::io("read time index", &path, e))?;
        self.set_max_timestamp(ts);
        Ok(ts)
    }

    /// Where to start looking for `offset` in this sealed segment, from its
    /// offset index file: a byte position and the offset of the batch that
    /// should start there; the segment's start if the index has nothing.
    pub fn index_hint(&self, fs: &dyn Fs, offset: u64) -> (u64, u64) {
        let rel = offset.saturating_sub(self.base_offset).min(u32::MAX as u64) as u32;
        let path = self.path(INDEX_EXT);
        match fs
            .open(&path, false)
            .and_then(|f| index::file_lookup(&*f, rel))
        {
            Ok(Some(e)) => (
                e.position as u64,
                self.base_offset + e.relative_offset as u64,
            ),
            _ => (0, self.base_offset),
        }
    }

    /// The relative offset to start looking for `timestamp` from in this
    /// sealed segment, from its time index file.
    pub fn time_hint(&self, fs: &dyn Fs, timestamp: i64) -> Option<u32> {
        let path = self.path(TIME_INDEX_EXT);
        fs.open(&path, false)
            .and_then(|f| index::file_lookup_time(&*f, timestamp))
            .ok()
            .flatten()
    }
}

/// Where a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// The scan reached the end it was given; everything before is whole.
    Clean,
    /// The bytes at `position` are not a whole, valid batch continuing the
    /// segment's offsets.
    Bad {
        /// Byte position of the first bad batch.
        position: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// The outcome of scanning a segment.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Byte position just after the last whole batch.
    pub valid_len: u64,
    /// Offset after the last whole batch.
    pub next_offset: u64,
    /// Indexes rebuilt from the batches.
    pub index: IndexBuilder,
    /// Why the scan stopped.
    pub end: ScanEnd,
}

/// Reads batches from `from` (which must be a batch boundary where offset
/// `next_offset` begins) up to `end`, `chunk` bytes at a time, checking each
/// batch's checksum and that offsets continue without gaps, and calling
/// `visit` for each until it returns false. Returns the position and offset
/// where it stopped, and why.
pub fn scan(
    file: &dyn File,
    (from, next_offset): (u64, u64),
    end: u64,
    chunk: usize,
    mut visit: impl FnMut(u64, &BatchHeader, &[u8]) -> bool,
) -> std::io::Result<(u64, u64, ScanEnd)> {
    let mut pos = from;
    let mut expected = next_offset;
    let mut buf = Vec::new();
    while pos < end {
        let want = ((end - pos) as usize).min(chunk.max(HEADER_LEN));
        buf.resize(want, 0);
        read_exact_at(file, &mut buf, pos)?;
        let mut at = 0usize;
        while at < buf.len() {
            let rest = &buf[at..];
            let header = match check_header(rest, expected) {
                Ok(h) => h,
                Err(_) if rest.len() < HEADER_LEN && (want as u64) < end - pos => break,
                Err(reason) => return Ok(bad(pos + at as u64, expected, reason)),
            };
            let len = header.total_len();
            if len > MAX_BATCH_ON_DISK {
                let reason = format!("batch length {len} exceeds {MAX_BATCH_ON_DISK}");
                return Ok(bad(pos + at as u64, expected, reason));
            }
            if len > rest.len() {
                if at == 0 && pos + (len as u64) <= end {
                    // A batch larger than the chunk: read it whole.
                    buf.resize(len, 0);
                    read_exact_at(file, &mut buf, pos)?;
                    continue;
                }
                if pos + at as u64 + len as u64 > end {
                    let reason =
                        format!("batch of {len} bytes is cut short by the end of the file");
                    return Ok(bad(pos + at as u64, expected, reason));
                }
                break;
            }
            let bytes = &rest[..len];
            if let Err(e) = batch::verify(bytes) {
                return Ok(bad(pos + at as u64, expected, e.to_string()));
            }
            if !visit(pos + at as u64, &header, bytes) {
                return Ok((pos + at as u64, expected, ScanEnd::Clean));
            }
            expected = header.last_offset() as u64 + 1;
            at += len;
        }
        pos += at as u64;
    }
    Ok((pos, expected, ScanEnd::Clean))
}

/// Walks batch headers from `from` (a batch boundary where offset
/// `next_offset` begins) to the first batch whose last offset is at or past
/// `offset`, reading one header per batch and skipping the bodies: the cheap
/// way to find where a read starts. Checksums are left to whoever reads the
/// batches found.
pub fn walk(
    file: &dyn File,
    (from, next_offset): (u64, u64),
    end: u64,
    offset: u64,
) -> std::io::Result<(Option<u64>, ScanEnd)> {
    let (mut pos, mut expected) = (from, next_offset);
    let mut buf = [0u8; HEADER_LEN];
    while pos < end {
        if end - pos < HEADER_LEN as u64 {
            return Ok((None, bad_end(pos, "batch header cut short".into())));
        }
        read_exact_at(file, &mut buf, pos)?;
        let header = match check_header(&buf, expected) {
            Ok(h) => h,
            Err(reason) => return Ok((None, bad_end(pos, reason))),
        };
        let len = header.total_len() as u64;
        if pos + len > end {
            let reason = format!("batch of {len} bytes is cut short by the end of the file");
            return Ok((None, bad_end(pos, reason)));
        }
        if header.last_offset() as u64 >= offset {
            return Ok((Some(pos), ScanEnd::Clean));
        }
        pos += len;
        expected = header.last_offset() as u64 + 1;
    }
    Ok((None, ScanEnd::Clean))
}

fn bad(position: u64, expected: u64, reason: String) -> (u64, u64, ScanEnd) {
    (position, expected, bad_end(position, reason))
}

fn bad_end(position: u64, reason: String) -> ScanEnd {
    ScanEnd::Bad { position, reason }
}

/// Parses a batch header and checks that it continues the log at `expected`.
fn check_header(buf: &[u8], expected: u64) -> std::result::Result<BatchHeader, String> {
    let header = BatchHeader::parse(buf).map_err(|e| e.to_string())?;
    if header.base_offset != expected as i64 {
        return Err(format!(
            "batch starts at offset {}, expected {expected}",
            header.base_offset
        ));
    }
    Ok(header)
}

/// Scans a whole segment from its start, rebuilding its indexes.
pub fn scan_segment(
    file: &dyn File,
    base_offset: u64,
    end: u64,
    interval_bytes: u64,
) -> std::io::Result<Scan> {
    let mut index = IndexBuilder::default();
    let (valid_len, next_offset, end) =
        scan(file, (0, base_offset), end, SCAN_CHUNK, |pos, h, _| {
            index.add_header(base_offset, pos, h, interval_bytes);
            true
        })?;
    Ok(Scan {
        valid_len,
        next_offset,
        index,
        end,
    })
}
