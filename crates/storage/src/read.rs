//! Reading a log: whole batches from an offset, and the first offset at or
//! after a timestamp.
//!
//! A read takes the state lock only to find its segment and where to start;
//! the file reads happen without it. Every batch is checked against its
//! CRC-32C right after it is read back, so damage on disk is reported as
//! corruption with the file and position, never handed to a consumer.

use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::error::{Error, Result};
use crate::io::{read_exact_at, File};
use crate::log::{Log, State};
use crate::segment::{self, ScanEnd, Segment, LOG_EXT};

/// Whole batches read from a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatches {
    /// Consecutive whole batches; empty at the end of the log. The first one
    /// contains the requested offset (it may start before it).
    pub bytes: Vec<u8>,
    /// The offset after the last returned batch: where to read next.
    pub next_offset: u64,
    /// The log's first offset when the read was made.
    pub start_offset: u64,
    /// The log's visible end when the read was made.
    pub end_offset: u64,
}

/// Where a read looks: one segment, up to a byte length, below an offset.
struct Target {
    segment: Arc<Segment>,
    file: Arc<dyn File>,
    /// Where to start looking, and the offset a batch starts with there.
    hint: (u64, u64),
    /// Bytes of whole batches in the segment.
    len: u64,
    /// Offsets at or past this are not visible (not yet durable).
    visible_end: u64,
    /// The segment after this one, if any, for reads that fall in a gap.
    next_base: Option<u64>,
}

impl Log {
    /// Reads whole batches starting with the one that contains `offset`, up
    /// to about `max_bytes` (always at least one batch, even a larger one).
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<ReadBatches> {
        let mut offset = offset;
        loop {
            let (target, start, end, generation) = {
                let st = self.state.lock().unwrap();
                let start = st.segments[0].base_offset;
                let end = self.visible_end(&st);
                if offset < start || offset > end {
                    return Err(Error::OffsetOutOfRange { offset, start, end });
                }
                if offset == end {
                    return Ok(empty_read(offset, start, end));
                }
                (self.target(&st, offset)?, start, end, st.generation)
            };
            let read = self.read_in(&target, offset, max_bytes);
            // A truncation (or rewind) during the read may have put other,
            // not yet durable, batches where these were: read again.
            if self.state.lock().unwrap().generation != generation {
                continue;
            }
            match read? {
                Some((bytes, next_offset)) => {
                    return Ok(ReadBatches {
                        bytes,
                        next_offset,
                        start_offset: start,
                        end_offset: end,
                    })
                }
                // The offset fell in a gap (a quarantined range): go on with
                // the next segment.
                None => match target.next_base {
                    Some(next) => offset = next,
                    None => return Ok(empty_read(end, start, end)),
                },
            }
        }
    }

    /// The first offset whose record has a timestamp at or after `timestamp`,
    /// if any record has.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<u64>> {
        let segments = self.state.lock().unwrap().segments.clone();
        for seg in &segments {
            if let Some(found) = self.find_timestamp(seg, timestamp)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn target(&self, st: &State, offset: u64) -> Result<Target> {
        let i = st.segments.partition_point(|s| s.base_offset <= offset) - 1;
        let segment = st.segments[i].clone();
        let next_base = st.segments.get(i + 1).map(|s| s.base_offset);
        let visible_end = self.visible_end(st);
        if i == st.segments.len() - 1 {
            let rel = (offset - segment.base_offset).min(u32::MAX as u64) as u32;
            let hint = st
                .active
                .index
                .lookup(rel)
                .map_or((0, segment.base_offset), |e| {
                    (
                        e.position as u64,
                        segment.base_offset + e.relative_offset as u64,
                    )
                });
            return Ok(Target {
                segment,
                file: st.active.file.clone(),
                hint,
                len: st.active.flushed(),
                visible_end,
                next_base,
            });
        }
        let file = segment.file(&*self.fs)?;
        let len = segment.size(&*self.fs)?;
        let hint = segment.index_hint(&*self.fs, offset);
        Ok(Target {
            segment,
            file,
            hint,
            len,
            visible_end,
            next_base,
        })
    }

    /// Reads from the batch containing `offset` in one segment; `None` if the
    /// segment has no batch at or past it.
    fn read_in(&self, t: &Target, offset: u64, max_bytes: usize) -> Result<Option<(Vec<u8>, u64)>> {
        let Some(position) = self.locate(t, offset)? else {
            return Ok(None);
        };
        let want = (max_bytes as u64).min(t.len - position) as usize;
        let mut buf = vec![0u8; want.max(HEADER_LEN.min((t.len - position) as usize))];
        self.read_exact(t, &mut buf, position)?;
        let first = self.header_at(t, &buf, position)?;
        if first.total_len() > buf.len() {
            buf.resize(first.total_len(), 0);
            self.read_exact(t, &mut buf, position)?;
        }
        let (kept, next_offset) = self.whole_visible_batches(t, &buf, position)?;
        buf.truncate(kept);
        if buf.is_empty() {
            return Ok(None);
        }
        Ok(Some((buf, next_offset)))
    }

    /// The byte position of the batch containing `offset` (or the first one
    /// after it), starting from the index hint and falling back to a scan of
    /// the whole segment if the hint does not hold.
    fn locate(&self, t: &Target, offset: u64) -> Result<Option<u64>> {
        let path = t.segment.path(LOG_EXT);
        let (found, end) = segment::walk(&*t.file, t.hint, t.len, offset)
            .map_err(|e| Error::io("read", &path, e))?;
        let (found, end) = match end {
            ScanEnd::Bad { position, reason }
                if found.is_none() && position == t.hint.0 && position != 0 =>
            {
                // The index pointed somewhere wrong: an index is only a hint.
                tracing::warn!(file = %path.display(), position, %reason, "index hint was wrong; scanning");
                let start = (0, t.segment.base_offset);
                segment::walk(&*t.file, start, t.len, offset)
                    .map_err(|e| Error::io("read", &path, e))?
            }
            other => (found, other),
        };
        match (found, end) {
            (Some(pos), _) => Ok(Some(pos)),
            (None, ScanEnd::Clean) => Ok(None),
            (None, ScanEnd::Bad { position, reason }) => Err(corruption(&path, position, reason)),
        }
    }

    /// The length of the whole, checked, visible batches at the start of
    /// `buf`, and the offset after the last of them.
    fn whole_visible_batches(&self, t: &Target, buf: &[u8], position: u64) -> Result<(usize, u64)> {
        let mut at = 0usize;
        let mut next_offset = 0;
        while buf.len() - at >= HEADER_LEN {
            let header = self.header_at(t, &buf[at..], position + at as u64)?;
            let len = header.total_len();
            if len > buf.len() - at || header.last_offset() as u64 >= t.visible_end {
                break;
            }
            batch::verify(&buf[at..at + len]).map_err(|e| {
                corruption(
                    &t.segment.path(LOG_EXT),
                    position + at as u64,
                    e.to_string(),
                )
            })?;
            next_offset = header.last_offset() as u64 + 1;
            at += len;
        }
        Ok((at, next_offset))
    }

    fn header_at(&self, t: &Target, buf: &[u8], position: u64) -> Result<BatchHeader> {
        BatchHeader::parse(buf)
            .map_err(|e| corruption(&t.segment.path(LOG_EXT), position, e.to_string()))
    }

    fn read_exact(&self, t: &Target, buf: &mut [u8], position: u64) -> Result<()> {
        read_exact_at(&*t.file, buf, position)
            .map_err(|e| Error::io("read", t.segment.path(LOG_EXT), e))
    }

    /// Searches one segment for the first record at or after `timestamp`.
    fn find_timestamp(&self, seg: &Arc<Segment>, timestamp: i64) -> Result<Option<u64>> {
        let (target, end) = {
            let st = self.state.lock().unwrap();
            // The segment may have been deleted, or rolled from active to
            // sealed, since the list was copied: decide now, under the lock.
            if !st.holds(seg) {
                return Ok(None);
            }
            let active = Arc::ptr_eq(seg, &st.active.segment);
            let max = match active {
                true => st.active.index.max_timestamp,
                false => seg.max_timestamp(&*self.fs)?,
            };
            if max.is_none_or(|m| m < timestamp) {
                return Ok(None);
            }
            let rel = match active {
                true => st.active.index.lookup_time(timestamp),
                false => seg.time_hint(&*self.fs, timestamp),
            };
            let from = seg.base_offset + rel.unwrap_or(0) as u64;
            (self.target(&st, from)?, self.visible_end(&st))
        };
        let mut found = None;
        let mut decode_error = None;
        let path = seg.path(LOG_EXT);
        let chunk = segment::SCAN_CHUNK;
        let (_, _, scan_end) = segment::scan(
            &*target.file,
            target.hint,
            target.len,
            chunk,
            |_, h, bytes| {
                if h.max_timestamp < timestamp {
                    return true;
                }
                match first_record_at_or_after(h, bytes, timestamp) {
                    Ok(offset) => found = offset,
                    Err(e) => decode_error = Some(e),
                }
                found.is_none() && decode_error.is_none()
            },
        )
        .map_err(|e| Error::io("read", &path, e))?;
        if let Some(e) = decode_error {
            return Err(e);
        }
        if let ScanEnd::Bad { position, reason } = scan_end {
            if found.is_none() {
                return Err(corruption(&path, position, reason));
            }
        }
        Ok(found.filter(|&o| o < end))
    }
}

/// The offset of the first record at or after `timestamp` in one batch. For
/// a compressed batch (whose records the log does not decode) it is the
/// batch's base offset, as close as the batch header can tell.
fn first_record_at_or_after(h: &BatchHeader, bytes: &[u8], timestamp: i64) -> Result<Option<u64>> {
    if !matches!(h.compression(), Ok(batch::Compression::None)) {
        return Ok(Some(h.base_offset as u64));
    }
    let records = batch::decode_records(bytes)?;
    Ok(records
        .iter()
        .find(|r| r.timestamp >= timestamp)
        .map(|r| r.offset as u64))
}

fn empty_read(offset: u64, start: u64, end: u64) -> ReadBatches {
    ReadBatches {
        bytes: Vec::new(),
        next_offset: offset,
        start_offset: start,
        end_offset: end,
    }
}

fn corruption(path: &std::path::Path, position: u64, reason: String) -> Error {
    Error::Corruption {
        file: path.to_path_buf(),
        position,
        reason,
    }
}
