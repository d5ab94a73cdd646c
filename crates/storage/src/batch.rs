//! The on-disk and on-wire record batch: Kafka record batch v2 (magic 2).
//!
//! Layout (big-endian), as in the Kafka protocol guide:
//!
//! ```text
//! baseOffset: int64            -- rewritten by the log on append
//! batchLength: int32           -- bytes after this field
//! partitionLeaderEpoch: int32  -- rewritten by the log on append
//! magic: int8 (= 2)
//! crc: uint32                  -- CRC-32C of everything after this field
//! attributes: int16            -- bits 0-2 compression, 3 timestamp type,
//!                                 4 transactional, 5 control
//! lastOffsetDelta: int32
//! baseTimestamp: int64
//! maxTimestamp: int64
//! producerId: int64
//! producerEpoch: int16
//! baseSequence: int32
//! records: int32 count, then each record (varints are zig-zag):
//!   length: varint, attributes: int8, timestampDelta: varlong,
//!   offsetDelta: varint, keyLength: varint, key, valueLen: varint, value,
//!   headers count: varint, then per header keyLength: varint, key,
//!   valueLength: varint, value  (a length of -1 means null)
//! ```
//!
//! The log treats a batch as opaque bytes apart from its header, so that
//! compressed producer batches stay compressed; only [`decode_records`] looks
//! inside, and only for uncompressed batches.

use std::iter::FusedIterator;

use bytes::Bytes;

/// Bytes before the part of a batch that `batchLength` counts: baseOffset and
/// batchLength itself.
pub const LOG_OVERHEAD: usize = 12;

/// Length of the fixed batch header, up to and including the records count.
pub const HEADER_LEN: usize = 61;

/// The only batch format version Hermod reads or writes.
pub const MAGIC: i8 = 2;

/// Why some bytes are not a valid record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The buffer ends before the header or the batch does.
    #[error("record batch truncated: need {needed} bytes, have {got}")]
    TooShort {
        /// Bytes the header or batch needs.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// The magic byte is not 2.
    #[error("unsupported record batch magic {0} (only {MAGIC} is supported)")]
    BadMagic(i8),
    /// The batchLength field is too small to hold the fixed header.
    #[error("record batch length {0} is below the minimum of {min}", min = HEADER_LEN - LOG_OVERHEAD)]
    BadLength(i32),
    /// The buffer is not exactly as long as the header says.
    #[error("record batch header says {header} bytes but the buffer has {actual}")]
    LengthMismatch {
        /// Total length according to the header.
        header: usize,
        /// Length of the buffer.
        actual: usize,
    },
    /// The stored CRC-32C does not match the bytes.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The crc field.
        stored: u32,
        /// The CRC-32C of the covered bytes.
        computed: u32,
    },
    /// A header field holds an impossible value.
    #[error("invalid record batch header: {0}")]
    BadHeader(&'static str),
    /// The records section is malformed.
    #[error("invalid record in batch: {0}")]
    BadRecord(String),
    /// The compression codec bits hold a value no codec has (5 to 7).
    #[error("unknown record batch compression codec {0}")]
    UnknownCompression(u8),
    /// The batch is compressed with a codec this code does not decompress.
    #[error("cannot decode records compressed with codec {0}")]
    UnsupportedCompression(u8),
}

/// The compression codec of a batch's records (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Code 0.
    None,
    /// Code 1.
    Gzip,
    /// Code 2.
    Snappy,
    /// Code 3.
    Lz4,
    /// Code 4.
    Zstd,
}

impl Compression {
    /// The codec's number in the attributes field.
    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// The fixed header of a record batch, field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record; assigned by the log on append.
    pub base_offset: i64,
    /// Bytes after the batchLength field.
    pub batch_length: i32,
    /// Leader epoch at append; assigned by the log.
    pub partition_leader_epoch: i32,
    /// Format version; always [`MAGIC`] once parsed.
    pub magic: i8,
    /// CRC-32C of everything after the crc field.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Offset delta of the last record (also of the last sequence number).
    pub last_offset_delta: i32,
    /// Timestamp of the first record; record timestamps are deltas from it.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time, for log-append time).
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the fixed header from the first [`HEADER_LEN`] bytes of `buf`
    /// (which may be longer, e.g. a whole segment).
    ///
    /// Checks that magic is 2, that batchLength covers at least the fixed
    /// header, that lastOffsetDelta and the record count are not negative and
    /// that the last offset fits an `i64`. Does not check the CRC.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        let header = read_header(buf)?;
        header.check_covered_fields()?;
        Ok(header)
    }

    /// Length of the whole batch: [`LOG_OVERHEAD`] + batchLength.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// Offset of the last record: baseOffset + lastOffsetDelta.
    pub fn last_offset(&self) -> i64 {
        // Saturating only matters for hand-built headers; `parse` rejects overflow.
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The records' compression codec; codes 5 to 7 are an error.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        match (self.attributes & COMPRESSION_MASK) as u8 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            code => Err(BatchError::UnknownCompression(code)),
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds a transaction marker rather than user records.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Whether timestamps are log-append time (set by the broker) rather than
    /// create time (set by the producer).
    pub fn log_append_time(&self) -> bool {
        self.attributes & LOG_APPEND_TIME_BIT != 0
    }
}

/// Checks that `batch` is exactly one whole batch: its header parses, its
/// length is the header's [`BatchHeader::total_len`], and the CRC-32C over
/// `batch[21..]` matches the crc field. Returns the header.
///
/// The CRC is checked before the header fields it covers, so that damage
/// there is reported as [`BatchError::CrcMismatch`], not as a bad field.
pub fn verify(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = read_header(batch)?;
    check_exact_len(&header, batch)?;
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    header.check_covered_fields()?;
    Ok(header)
}

/// CRC-32C of the part of a batch the crc field covers: `batch[21..]`.
///
/// `batch` should be at least [`HEADER_LEN`] long; a buffer too short to
/// reach the attributes field yields the CRC of no bytes.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_AT..).unwrap_or_default())
}

/// Rewrites the baseOffset field in place; the CRC does not cover it.
///
/// A buffer shorter than the field is left unchanged.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    put_if_fits(batch, BASE_OFFSET_AT, &base_offset.to_be_bytes());
}

/// Rewrites the partitionLeaderEpoch field in place; the CRC does not cover it.
///
/// A buffer shorter than the field is left unchanged.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    put_if_fits(batch, LEADER_EPOCH_AT, &epoch.to_be_bytes());
}

/// A record header: a UTF-8 key and a nullable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's name.
    pub key: String,
    /// The header's value, or `None` for null.
    pub value: Option<Bytes>,
}

/// One record, with its offset and timestamp made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// baseOffset + offsetDelta. Ignored by [`encode`], which numbers records
    /// by their position.
    pub offset: i64,
    /// baseTimestamp + timestampDelta.
    pub timestamp: i64,
    /// The key, or `None` for null.
    pub key: Option<Bytes>,
    /// The value, or `None` for null (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in order.
    pub headers: Vec<Header>,
}

/// The header fields [`encode`] does not derive from the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Leader epoch; -1 when unknown.
    pub partition_leader_epoch: i32,
    /// Idempotent producer id; -1 for none.
    pub producer_id: i64,
    /// Idempotent producer epoch; -1 for none.
    pub producer_epoch: i16,
    /// Sequence number of the first record; -1 for none.
    pub base_sequence: i32,
    /// Sets the log-append-time timestamp type bit.
    pub log_append_time: bool,
}

impl Default for BatchOptions {
    fn default() -> BatchOptions {
        BatchOptions {
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            log_append_time: false,
        }
    }
}

/// Encodes `records` into one uncompressed batch with a correct CRC.
///
/// Offset deltas are 0..n in slice order (each record's `offset` is
/// ignored), baseTimestamp is the first record's timestamp and maxTimestamp
/// the largest.
///
/// # Panics
///
/// If `records` is empty, or if a length does not fit the format's `i32`
/// fields (a batch of 2 GiB or more): both are programmer errors.
pub fn encode(records: &[Record], options: &BatchOptions) -> Vec<u8> {
    assert!(
        !records.is_empty(),
        "a record batch needs at least one record"
    );
    let base_timestamp = records[0].timestamp;
    let mut out = vec![0; HEADER_LEN];
    let mut body = Vec::new();
    for (index, record) in records.iter().enumerate() {
        body.clear();
        encode_record_body(
            record,
            fit_i32(index, "record index"),
            base_timestamp,
            &mut body,
        );
        put_varint(&mut out, fit_i32(body.len(), "record length"));
        out.extend_from_slice(&body);
    }
    let header = BatchHeader {
        base_offset: options.base_offset,
        batch_length: fit_i32(out.len() - LOG_OVERHEAD, "batch length"),
        partition_leader_epoch: options.partition_leader_epoch,
        magic: MAGIC,
        crc: 0,
        attributes: if options.log_append_time {
            LOG_APPEND_TIME_BIT
        } else {
            0
        },
        last_offset_delta: fit_i32(records.len() - 1, "record count"),
        base_timestamp,
        max_timestamp: records
            .iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(base_timestamp),
        producer_id: options.producer_id,
        producer_epoch: options.producer_epoch,
        base_sequence: options.base_sequence,
        record_count: fit_i32(records.len(), "record count"),
    };
    write_header(&header, &mut out);
    let crc = compute_crc(&out);
    put_if_fits(&mut out, CRC_AT, &crc.to_be_bytes());
    out
}

/// Decodes the records of one whole batch. Does not check the CRC (call
/// [`verify`] for that).
///
/// Only uncompressed batches can be decoded; others give
/// [`BatchError::UnsupportedCompression`]. The buffer must be exactly the
/// batch, the records must number the header's count and end exactly at the
/// batch's end, and offset deltas must increase and stay within
/// lastOffsetDelta (compaction may leave gaps, so they need not be 0..n).
/// Timestamps are baseTimestamp + delta even for log-append-time batches.
pub fn decode_records(batch: &[u8]) -> Result<Vec<Record>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    check_exact_len(&header, batch)?;
    let compression = header.compression()?;
    if compression != Compression::None {
        return Err(BatchError::UnsupportedCompression(compression.code()));
    }
    let mut reader = Reader::new(batch.get(HEADER_LEN..).unwrap_or_default());
    let count = usize::try_from(header.record_count).unwrap_or(0);
    // A hostile count must not size the allocation: bound it by the bytes.
    let mut records = Vec::with_capacity(count.min(reader.remaining() / MIN_RECORD_LEN));
    let mut last_delta = None;
    for index in 0..count {
        let at = batch.len() - reader.remaining();
        let record = decode_record(&mut reader, &header, &mut last_delta).map_err(|problem| {
            BatchError::BadRecord(format!("record {index} at byte {at}: {problem}"))
        })?;
        records.push(record);
    }
    if reader.remaining() != 0 {
        return Err(BatchError::BadRecord(format!(
            "{} bytes after the last of {count} records",
            reader.remaining()
        )));
    }
    Ok(records)
}

/// Iterates over the consecutive whole batches at the start of `buf`,
/// yielding each [`verify`]d batch's header and bytes.
///
/// Stops at the first invalid batch, yielding its error once and then
/// `None`; a trailing partial batch is an error ([`BatchError::TooShort`])
/// too. [`Batches::position`] then tells where the valid prefix ends.
pub fn batches(buf: &[u8]) -> Batches<'_> {
    Batches {
        rest: buf,
        position: 0,
        failed: false,
    }
}

/// Iterator returned by [`batches`].
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    rest: &'a [u8],
    position: usize,
    failed: bool,
}

impl Batches<'_> {
    /// Byte position in the original buffer of the next batch to be read;
    /// after an error, the length of the valid prefix.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = self.next_batch();
        self.failed = result.is_err();
        Some(result)
    }
}

impl FusedIterator for Batches<'_> {}

// Field positions in the fixed header.
const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// The CRC covers everything from here on.
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const LOG_APPEND_TIME_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// The smallest record: one byte each for length, attributes, timestamp
/// delta, offset delta, key length, value length and header count.
const MIN_RECORD_LEN: usize = 7;
/// The smallest header: one byte each for key length and value length.
const MIN_HEADER_LEN: usize = 2;

impl BatchHeader {
    /// Checks the fields the CRC covers, which `verify` must only judge after
    /// the CRC has matched.
    fn check_covered_fields(&self) -> Result<(), BatchError> {
        if self.last_offset_delta < 0 {
            return Err(BatchError::BadHeader("negative last offset delta"));
        }
        if self.record_count < 0 {
            return Err(BatchError::BadHeader("negative record count"));
        }
        if self
            .base_offset
            .checked_add(i64::from(self.last_offset_delta))
            .is_none()
        {
            return Err(BatchError::BadHeader("last offset overflows an i64"));
        }
        Ok(())
    }
}

impl<'a> Batches<'a> {
    fn next_batch(&mut self) -> Result<(BatchHeader, &'a [u8]), BatchError> {
        let len = read_header(self.rest)?.total_len();
        let (batch, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(BatchError::TooShort {
                needed: len,
                got: self.rest.len(),
            })?;
        let header = verify(batch)?;
        self.rest = rest;
        self.position += len;
        Ok((header, batch))
    }
}

/// Reads the header fields, checking only those outside the CRC.
fn read_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let h: &[u8; HEADER_LEN] = buf
        .get(..HEADER_LEN)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(BatchError::TooShort {
            needed: HEADER_LEN,
            got: buf.len(),
        })?;
    let header = BatchHeader {
        base_offset: i64::from_be_bytes(field(h, BASE_OFFSET_AT)),
        batch_length: i32::from_be_bytes(field(h, BATCH_LENGTH_AT)),
        partition_leader_epoch: i32::from_be_bytes(field(h, LEADER_EPOCH_AT)),
        magic: i8::from_be_bytes(field(h, MAGIC_AT)),
        crc: u32::from_be_bytes(field(h, CRC_AT)),
        attributes: i16::from_be_bytes(field(h, ATTRIBUTES_AT)),
        last_offset_delta: i32::from_be_bytes(field(h, LAST_OFFSET_DELTA_AT)),
        base_timestamp: i64::from_be_bytes(field(h, BASE_TIMESTAMP_AT)),
        max_timestamp: i64::from_be_bytes(field(h, MAX_TIMESTAMP_AT)),
        producer_id: i64::from_be_bytes(field(h, PRODUCER_ID_AT)),
        producer_epoch: i16::from_be_bytes(field(h, PRODUCER_EPOCH_AT)),
        base_sequence: i32::from_be_bytes(field(h, BASE_SEQUENCE_AT)),
        record_count: i32::from_be_bytes(field(h, RECORD_COUNT_AT)),
    };
    if header.magic != MAGIC {
        return Err(BatchError::BadMagic(header.magic));
    }
    if header.total_len() < HEADER_LEN {
        return Err(BatchError::BadLength(header.batch_length));
    }
    Ok(header)
}

/// Copies the `N` bytes at `at` out of a header; `at + N` is always within it.
fn field<const N: usize>(h: &[u8; HEADER_LEN], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&h[at..at + N]);
    out
}

fn write_header(header: &BatchHeader, out: &mut [u8]) {
    put_if_fits(out, BASE_OFFSET_AT, &header.base_offset.to_be_bytes());
    put_if_fits(out, BATCH_LENGTH_AT, &header.batch_length.to_be_bytes());
    put_if_fits(
        out,
        LEADER_EPOCH_AT,
        &header.partition_leader_epoch.to_be_bytes(),
    );
    put_if_fits(out, MAGIC_AT, &header.magic.to_be_bytes());
    put_if_fits(out, CRC_AT, &header.crc.to_be_bytes());
    put_if_fits(out, ATTRIBUTES_AT, &header.attributes.to_be_bytes());
    put_if_fits(
        out,
        LAST_OFFSET_DELTA_AT,
        &header.last_offset_delta.to_be_bytes(),
    );
    put_if_fits(out, BASE_TIMESTAMP_AT, &header.base_timestamp.to_be_bytes());
    put_if_fits(out, MAX_TIMESTAMP_AT, &header.max_timestamp.to_be_bytes());
    put_if_fits(out, PRODUCER_ID_AT, &header.producer_id.to_be_bytes());
    put_if_fits(out, PRODUCER_EPOCH_AT, &header.producer_epoch.to_be_bytes());
    put_if_fits(out, BASE_SEQUENCE_AT, &header.base_sequence.to_be_bytes());
    put_if_fits(out, RECORD_COUNT_AT, &header.record_count.to_be_bytes());
}

fn put_if_fits(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn check_exact_len(header: &BatchHeader, batch: &[u8]) -> Result<(), BatchError> {
    if header.total_len() != batch.len() {
        return Err(BatchError::LengthMismatch {
            header: header.total_len(),
            actual: batch.len(),
        });
    }
    Ok(())
}

fn fit_i32(n: usize, what: &str) -> i32 {
    i32::try_from(n).unwrap_or_else(|_| panic!("{what} {n} does not fit a record batch"))
}

fn encode_record_body(record: &Record, offset_delta: i32, base_timestamp: i64, out: &mut Vec<u8>) {
    out.push(0); // record attributes: unused in v2
                 // Wrapping, like Kafka's own long arithmetic; decoding wraps back.
    put_varlong(out, record.timestamp.wrapping_sub(base_timestamp));
    put_varint(out, offset_delta);
    put_nullable(out, record.key.as_deref());
    put_nullable(out, record.value.as_deref());
    put_varint(out, fit_i32(record.headers.len(), "header count"));
    for header in &record.headers {
        put_nullable(out, Some(header.key.as_bytes()));
        put_nullable(out, header.value.as_deref());
    }
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, fit_i32(bytes.len(), "field length"));
            out.extend_from_slice(bytes);
        }
    }
}

fn put_varint(out: &mut Vec<u8>, n: i32) {
    put_unsigned(out, u64::from(((n << 1) ^ (n >> 31)) as u32));
}

fn put_varlong(out: &mut Vec<u8>, n: i64) {
    put_unsigned(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn put_unsigned(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Decodes one record. `last_delta` carries the previous record's offset
/// delta, to check that deltas increase.
fn decode_record(
    reader: &mut Reader<'_>,
    header: &BatchHeader,
    last_delta: &mut Option<i32>,
) -> Result<Record, &'static str> {
    let len = usize::try_from(reader.varint()?).map_err(|_| "negative record length")?;
    let mut body = Reader::new(
        reader
            .take(len)
            .map_err(|_| "record runs past the batch end")?,
    );
    body.byte()?; // record attributes: unused in v2
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    check_offset_delta(offset_delta, header.last_offset_delta, *last_delta)?;
    *last_delta = Some(offset_delta);
    let record = Record {
        offset: header
            .base_offset
            .checked_add(i64::from(offset_delta))
            .ok_or("offset overflows an i64")?,
        // With log-append time the broker's time, stamped on the batch,
        // is every record's timestamp, as Kafka clients read it.
        timestamp: if header.log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(timestamp_delta)
        },
        key: body.nullable_bytes()?,
        value: body.nullable_bytes()?,
        headers: decode_headers(&mut body)?,
    };
    if body.remaining() != 0 {
        return Err("record length exceeds its fields");
    }
    Ok(record)
}

fn check_offset_delta(delta: i32, max: i32, previous: Option<i32>) -> Result<(), &'static str> {
    if delta < 0 || delta > max {
        return Err("offset delta outside 0..=lastOffsetDelta");
    }
    if previous.is_some_and(|previous| delta <= previous) {
        return Err("offset delta does not increase");
    }
    Ok(())
}

fn decode_headers(body: &mut Reader<'_>) -> Result<Vec<Header>, &'static str> {
    let count = usize::try_from(body.varint()?).map_err(|_| "negative header count")?;
    let mut headers = Vec::with_capacity(count.min(body.remaining() / MIN_HEADER_LEN));
    for _ in 0..count {
        let key_len = usize::try_from(body.varint()?).map_err(|_| "null header key")?;
        let key =
            std::str::from_utf8(body.take(key_len)?).map_err(|_| "header key is not UTF-8")?;
        headers.push(Header {
            key: key.to_owned(),
            value: body.nullable_bytes()?,
        });
    }
    Ok(headers)
}

/// A cursor over untrusted bytes whose every read is bounds-checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(rest: &'a [u8]) -> Reader<'a> {
        Reader { rest }
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let (taken, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or("field runs past the record end")?;
        self.rest = rest;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        let (&byte, rest) = self.rest.split_first().ok_or("record truncated")?;
        self.rest = rest;
        Ok(byte)
    }

    /// A length-prefixed field; length -1 means null.
    fn nullable_bytes(&mut self) -> Result<Option<Bytes>, &'static str> {
        match self.varint()? {
            -1 => Ok(None),
            len => {
                let len = usize::try_from(len).map_err(|_| "length below -1")?;
                Ok(Some(Bytes::copy_from_slice(self.take(len)?)))
            }
        }
    }

    /// A zig-zag varint that must fit an `i32`.
    fn varint(&mut self) -> Result<i32, &'static str> {
        let zigzag = self.unsigned(32)? as u32;
        Ok((zigzag >> 1) as i32 ^ -((zigzag & 1) as i32))
    }

    /// A zig-zag varlong that must fit an `i64`.
    fn varlong(&mut self) -> Result<i64, &'static str> {
        let zigzag = self.unsigned(64)?;
        Ok((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64))
    }

    /// An unsigned LEB128 value of at most `bits` bits. Redundant trailing
    /// zero groups are accepted, as Kafka's reader does; overflow is not.
    fn unsigned(&mut self, bits: u32) -> Result<u64, &'static str> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let byte = self.byte().map_err(|_| "varint truncated")?;
            let group = u64::from(byte & 0x7f);
            if group != 0 && shift + (u64::BITS - group.leading_zeros()) > bits {
                return Err("varint overflows");
            }
            value |= group << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift >= bits {
                return Err("varint too long");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(timestamp: i64, key: Option<&str>, value: Option<&str>) -> Record {
        Record {
            offset: 0,
            timestamp,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            headers: vec![Header {
                key: "h".into(),
                value: None,
            }],
        }
    }

    fn sample() -> Vec<u8> {
        let records = [
            record(1_000, Some("k"), Some("v")),
            record(900, None, Some("w")),
        ];
        encode(&records, &BatchOptions::default())
    }

    /// A batch with a valid header and CRC around an arbitrary records section.
    fn raw_batch(record_count: i32, last_offset_delta: i32, records: &[u8]) -> Vec<u8> {
        let mut batch = sample()[..HEADER_LEN].to_vec();
        batch.extend_from_slice(records);
        let length = i32::try_from(batch.len() - LOG_OVERHEAD).unwrap();
        batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&last_offset_delta.to_be_bytes());
        batch[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&record_count.to_be_bytes());
        reseal(&mut batch);
        batch
    }

    fn reseal(batch: &mut [u8]) {
        let crc = compute_crc(batch);
        batch[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    }

    fn bad_record(batch: &[u8]) -> String {
        match decode_records(batch) {
            Err(BatchError::BadRecord(message)) => message,
            other => panic!("expected BadRecord, got {other:?}"),
        }
    }

    fn varint_bytes(n: i32) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, n);
        out
    }

    #[test]
    fn varints_match_the_zigzag_encoding() {
        let cases: [(i32, &[u8]); 8] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (n, bytes) in cases {
            assert_eq!(varint_bytes(n), bytes, "{n}");
            assert_eq!(Reader::new(bytes).varint(), Ok(n));
        }
    }

    #[test]
    fn varlongs_round_trip_at_the_extremes() {
        for n in [0, -1, i64::MIN, i64::MAX, i64::from(i32::MIN) - 1] {
            let mut out = Vec::new();
            put_varlong(&mut out, n);
            assert!(out.len() <= 10);
            let mut reader = Reader::new(&out);
            assert_eq!(reader.varlong(), Ok(n));
            assert_eq!(reader.remaining(), 0);
        }
    }

    #[test]
    fn malformed_varints_are_errors() {
        // Too long, 33 bits, a 65th bit, and truncated.
        assert!(Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00])
            .varint()
            .is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f])
            .varint()
            .is_err());
        let mut long = [0xff; 10];
        long[9] = 0x02;
        assert!(Reader::new(&long).varlong().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
        // A redundant zero group is accepted, as Kafka accepts it.
        assert_eq!(Reader::new(&[0x82, 0x00]).varint(), Ok(1));
    }

    #[test]
    fn crc_is_crc32c_over_bytes_21_onwards() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let mut buf = vec![0xAA; ATTRIBUTES_AT];
        buf.extend_from_slice(b"123456789");
        assert_eq!(compute_crc(&buf), 0xE306_9283);
    }

    #[test]
    fn any_flipped_bit_after_the_crc_field_is_a_crc_mismatch() {
        let batch = sample();
        assert!(verify(&batch).is_ok());
        for byte in ATTRIBUTES_AT..batch.len() {
            for bit in 0..8 {
                let mut damaged = batch.clone();
                damaged[byte] ^= 1 << bit;
                assert!(
                    matches!(verify(&damaged), Err(BatchError::CrcMismatch { .. })),
                    "byte {byte} bit {bit}: {:?}",
                    verify(&damaged)
                );
            }
        }
    }

    #[test]
    fn a_flipped_bit_in_the_crc_field_is_a_crc_mismatch() {
        let batch = sample();
        for byte in CRC_AT..ATTRIBUTES_AT {
            let mut damaged = batch.clone();
            damaged[byte] ^= 0x10;
            assert!(matches!(
                verify(&damaged),
                Err(BatchError::CrcMismatch { .. })
            ));
        }
    }

    #[test]
    fn base_offset_and_leader_epoch_are_outside_the_crc() {
        let mut batch = sample();
        set_base_offset(&mut batch, 1 << 40);
        set_partition_leader_epoch(&mut batch, 17);
        let header = verify(&batch).unwrap();
        assert_eq!(header.base_offset, 1 << 40);
        assert_eq!(header.partition_leader_epoch, 17);
        assert_eq!(header.last_offset(), (1 << 40) + 1);
        let records = decode_records(&batch).unwrap();
        assert_eq!(records[1].offset, (1 << 40) + 1);
    }

    #[test]
    fn setters_leave_short_buffers_alone() {
        let mut short = [0u8; 10];
        set_base_offset(&mut short, -1);
        set_partition_leader_epoch(&mut short, -1);
        assert_eq!(short[..8], (-1i64).to_be_bytes());
        assert_eq!(short[8..], [0, 0]);
        assert_eq!(compute_crc(&short), crc32c::crc32c(&[]));
    }

    #[test]
    fn encode_fills_the_header() {
        let options = BatchOptions {
            base_offset: 5,
            partition_leader_epoch: 3,
            producer_id: 77,
            producer_epoch: 2,
            base_sequence: 9,
            log_append_time: true,
        };
        let records = [
            record(10, None, None),
            record(30, None, None),
            record(20, None, None),
        ];
        let batch = encode(&records, &options);
        let header = verify(&batch).unwrap();
        assert_eq!(header.total_len(), batch.len());
        assert_eq!((header.base_offset, header.partition_leader_epoch), (5, 3));
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (77, 2, 9)
        );
        assert_eq!((header.base_timestamp, header.max_timestamp), (10, 30));
        assert_eq!((header.last_offset_delta, header.record_count), (2, 3));
        assert_eq!(header.last_offset(), 7);
        assert_eq!(header.compression(), Ok(Compression::None));
        assert!(header.log_append_time());
        assert!(!header.is_transactional() && !header.is_control());
    }

    #[test]
    #[should_panic(expected = "at least one record")]
    fn encode_refuses_an_empty_batch() {
        encode(&[], &BatchOptions::default());
    }

    #[test]
    fn attribute_bits_are_read() {
        let mut header = BatchHeader::parse(&sample()).unwrap();
        for (code, codec) in [
            (1, Compression::Gzip),
            (2, Compression::Snappy),
            (3, Compression::Lz4),
            (4, Compression::Zstd),
        ] {
            header.attributes = code;
            assert_eq!(header.compression(), Ok(codec));
            assert_eq!(codec.code(), code as u8);
        }
        for code in 5..8 {
            header.attributes = code;
            assert_eq!(
                header.compression(),
                Err(BatchError::UnknownCompression(code as u8))
            );
        }
        header.attributes = TRANSACTIONAL_BIT | CONTROL_BIT;
        assert!(header.is_transactional() && header.is_control() && !header.log_append_time());
    }

    #[test]
    fn parse_rejects_impossible_headers() {
        let batch = sample();
        let got = batch.len() - 1;
        assert_eq!(
            BatchHeader::parse(&batch[..HEADER_LEN - 1]),
            Err(BatchError::TooShort {
                needed: HEADER_LEN,
                got: HEADER_LEN - 1
            })
        );
        let mut bad = batch.clone();
        bad[MAGIC_AT] = 1;
        assert_eq!(BatchHeader::parse(&bad), Err(BatchError::BadMagic(1)));
        let mut bad = batch.clone();
        bad[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&48i32.to_be_bytes());
        assert_eq!(BatchHeader::parse(&bad), Err(BatchError::BadLength(48)));
        let mut bad = batch.clone();
        bad[RECORD_COUNT_AT] = 0x80;
        assert!(matches!(
            BatchHeader::parse(&bad),
            Err(BatchError::BadHeader(_))
        ));
        let mut bad = batch.clone();
        bad[LAST_OFFSET_DELTA_AT] = 0x80;
        assert!(matches!(
            BatchHeader::parse(&bad),
            Err(BatchError::BadHeader(_))
        ));
        let mut bad = batch.clone();
        set_base_offset(&mut bad, i64::MAX);
        assert!(matches!(
            BatchHeader::parse(&bad),
            Err(BatchError::BadHeader(_))
        ));
        assert_eq!(
            verify(&batch[..got]),
            Err(BatchError::LengthMismatch {
                header: batch.len(),
                actual: got
            })
        );
    }

    #[test]
    fn parse_accepts_a_longer_buffer() {
        let mut buf = sample();
        let header = BatchHeader::parse(&buf).unwrap();
        buf.extend_from_slice(&[0xEE; 100]);
        assert_eq!(BatchHeader::parse(&buf), Ok(header));
        assert!(matches!(
            verify(&buf),
            Err(BatchError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn decode_rejects_compressed_batches() {
        let mut batch = sample();
        batch[ATTRIBUTES_AT + 1] |= 1;
        assert_eq!(
            decode_records(&batch),
            Err(BatchError::UnsupportedCompression(1))
        );
        batch[ATTRIBUTES_AT + 1] |= 7;
        assert_eq!(
            decode_records(&batch),
            Err(BatchError::UnknownCompression(7))
        );
    }

    #[test]
    fn decode_checks_the_record_count_and_the_batch_end() {
        let body = sample()[HEADER_LEN..].to_vec();
        assert_eq!(decode_records(&raw_batch(2, 1, &body)).unwrap().len(), 2);
        assert!(bad_record(&raw_batch(3, 2, &body)).contains("record 2"));
        assert!(bad_record(&raw_batch(1, 1, &body)).contains("after the last of 1"));
        let mut longer = body.clone();
        longer.push(0);
        assert!(bad_record(&raw_batch(2, 1, &longer)).contains("1 bytes after"));
        // An empty batch is what compaction can leave behind.
        assert_eq!(decode_records(&raw_batch(0, 5, &[])), Ok(vec![]));
    }

    #[test]
    fn decode_survives_a_hostile_record_count() {
        let body = sample()[HEADER_LEN..].to_vec();
        assert!(bad_record(&raw_batch(i32::MAX, i32::MAX, &body)).contains("record 2"));
    }

    /// Prefixes a record body with its (zig-zag) length.
    fn with_len(body: &[u8]) -> Vec<u8> {
        let mut out = varint_bytes(i32::try_from(body.len()).unwrap());
        out.extend_from_slice(body);
        out
    }

    // Record bodies below are written out by hand, in zig-zag: 0x01 is -1,
    // 0x02 is 1. Fields: attributes, timestamp delta, offset delta, key,
    // value, header count, headers.

    #[test]
    fn decode_rejects_bad_lengths_inside_a_record() {
        let ok = with_len(&[0, 0, 0, 2, b'k', 1, 0]);
        assert_eq!(decode_records(&raw_batch(1, 0, &ok)).unwrap().len(), 1);
        let runs_past = [0x7e, 0, 0, 0, 1, 1, 0];
        assert!(bad_record(&raw_batch(1, 0, &runs_past)).contains("past the batch end"));
        let negative = [0x01, 0, 0, 0, 1, 1, 0];
        assert!(bad_record(&raw_batch(1, 0, &negative)).contains("negative record length"));
        let key_too_long = with_len(&[0, 0, 0, 0x7e, b'k', 1, 0]);
        assert!(bad_record(&raw_batch(1, 0, &key_too_long)).contains("past the record end"));
        let key_below_null = with_len(&[0, 0, 0, 3, 1, 0]);
        assert!(bad_record(&raw_batch(1, 0, &key_below_null)).contains("below -1"));
        let slack = with_len(&[0, 0, 0, 1, 1, 0, 0]);
        assert!(bad_record(&raw_batch(1, 0, &slack)).contains("exceeds its fields"));
    }

    #[test]
    fn decode_rejects_bad_headers_inside_a_record() {
        let utf8 = with_len(&[0, 0, 0, 1, 1, 2, 2, 0xff, 1]);
        assert!(bad_record(&raw_batch(1, 0, &utf8)).contains("UTF-8"));
        let null_key = with_len(&[0, 0, 0, 1, 1, 2, 1, 1]);
        assert!(bad_record(&raw_batch(1, 0, &null_key)).contains("null header key"));
        let negative_count = with_len(&[0, 0, 0, 1, 1, 1]);
        assert!(bad_record(&raw_batch(1, 0, &negative_count)).contains("negative header count"));
        let huge_count = with_len(&[0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert!(bad_record(&raw_batch(1, 0, &huge_count)).contains("record 0"));
    }

    #[test]
    fn decode_checks_offset_deltas() {
        let two = |a: u8, b: u8| {
            [
                with_len(&[0, 0, 2 * a, 1, 1, 0]),
                with_len(&[0, 0, 2 * b, 1, 1, 0]),
            ]
            .concat()
        };
        // Compaction leaves gaps; that is fine.
        let records = decode_records(&raw_batch(2, 8, &two(2, 8))).unwrap();
        assert_eq!((records[0].offset, records[1].offset), (2, 8));
        assert!(bad_record(&raw_batch(2, 8, &two(4, 4))).contains("does not increase"));
        assert!(bad_record(&raw_batch(2, 8, &two(1, 0))).contains("does not increase"));
        assert!(bad_record(&raw_batch(2, 8, &two(0, 10))).contains("outside"));
    }

    #[test]
    fn timestamps_wrap_like_kafka_longs() {
        let records = [record(i64::MAX, None, None), record(i64::MIN, None, None)];
        let batch = encode(&records, &BatchOptions::default());
        let decoded = decode_records(&batch).unwrap();
        assert_eq!(decoded[0].timestamp, i64::MAX);
        assert_eq!(decoded[1].timestamp, i64::MIN);
    }

    #[test]
    fn batches_stops_at_a_partial_tail() {
        let one = sample();
        let mut buf = [one.as_slice(), one.as_slice(), &one[..one.len() - 3]].concat();
        let mut iter = batches(&buf);
        assert_eq!(iter.next().unwrap().unwrap().1, one.as_slice());
        assert_eq!(iter.position(), one.len());
        assert!(iter.next().unwrap().is_ok());
        let tail = one.len() - 3;
        assert_eq!(
            iter.next(),
            Some(Err(BatchError::TooShort {
                needed: one.len(),
                got: tail
            }))
        );
        assert_eq!(iter.next(), None);
        assert_eq!(iter.position(), 2 * one.len());

        buf.truncate(2 * one.len() + 20);
        let errors: Vec<_> = batches(&buf).filter_map(Result::err).collect();
        assert_eq!(
            errors,
            [BatchError::TooShort {
                needed: HEADER_LEN,
                got: 20
            }]
        );
        assert_eq!(batches(&[]).next(), None);
    }

    #[test]
    fn batches_stops_at_a_corrupt_batch() {
        let one = sample();
        let mut buf = [one.as_slice(), one.as_slice(), one.as_slice()].concat();
        buf[one.len() + 40] ^= 1;
        let results: Vec<_> = batches(&buf).collect();
        assert_eq!(results.len(), 2);
        assert!(matches!(results[1], Err(BatchError::CrcMismatch { .. })));
    }

    #[test]
    fn errors_read_well() {
        let error = BatchError::CrcMismatch {
            stored: 1,
            computed: 0xE306_9283,
        };
        assert_eq!(
            error.to_string(),
            "record batch CRC mismatch: stored 0x00000001, computed 0xe3069283"
        );
        assert_eq!(
            BatchError::BadLength(3).to_string(),
            "record batch length 3 is below the minimum of 49"
        );
    }
}
