//! Golden record batches built by kafka-python, an independent encoder.
//!
//! `fixtures/make_batch_fixtures.py` wrote the `.hex` files; the records below
//! mirror the ones in that script. Each case checks that our encoder produces
//! the same bytes, that our decoder reads the same records back, and that the
//! header fields are what kafka-python put there. kafka-python always writes
//! partitionLeaderEpoch 0 and (before fixture `e`'s rewrite) baseOffset 0.

use bytes::Bytes;
use hermod_storage::batch::{
    batches, decode_records, encode, verify, BatchHeader, BatchOptions, Compression, Header, Record,
};

const A: &str = include_str!("fixtures/batch_a.hex");
const B: &str = include_str!("fixtures/batch_b.hex");
const C: &str = include_str!("fixtures/batch_c.hex");
const D: &str = include_str!("fixtures/batch_d.hex");
const E: &str = include_str!("fixtures/batch_e.hex");

#[test]
fn a_one_record_with_key_and_value() {
    let records = [record(
        0,
        1_700_000_000_000,
        Some(b"key-1"),
        Some(b"value-1"),
        vec![],
    )];
    let header = check_golden(A, &records, &kafka_python_options());
    assert_eq!(header.record_count, 1);
    assert_eq!(header.last_offset_delta, 0);
    assert_eq!(header.batch_length, 68);
}

#[test]
fn b_null_keys_headers_and_unordered_timestamps() {
    let records = [
        record(
            0,
            1_700_000_000_500,
            None,
            Some(b"first"),
            vec![header("trace", Some(b"abc")), header("nullable", None)],
        ),
        record(1, 1_700_000_000_100, None, Some(b""), vec![]),
        record(
            2,
            1_700_000_009_999,
            None,
            Some(b"third"),
            vec![
                header("k\u{e9}y", Some(b"")),
                header("x", Some(b"\x00\xff")),
            ],
        ),
    ];
    let header = check_golden(B, &records, &kafka_python_options());
    assert_eq!(header.base_timestamp, 1_700_000_000_500);
    assert_eq!(header.max_timestamp, 1_700_000_009_999);
    assert_eq!(header.record_count, 3);
    assert_eq!(header.last_offset_delta, 2);
}

#[test]
fn c_tombstone() {
    let records = [record(0, 1_700_000_000_000, Some(b"gone"), None, vec![])];
    check_golden(C, &records, &kafka_python_options());
}

#[test]
fn d_producer_state_empty_key_and_long_value() {
    let long: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    let records = [
        record(0, 1_700_000_000_000, Some(b""), Some(&long), vec![]),
        record(
            1,
            1_700_000_000_001,
            Some(b"k2"),
            Some(b"v2"),
            vec![header("h", Some(b"v"))],
        ),
    ];
    let options = BatchOptions {
        producer_id: 123_456_789_012,
        producer_epoch: 7,
        base_sequence: 42,
        ..kafka_python_options()
    };
    let header = check_golden(D, &records, &options);
    assert_eq!(header.producer_id, 123_456_789_012);
    assert_eq!(header.producer_epoch, 7);
    assert_eq!(header.base_sequence, 42);
    assert_eq!(header.max_timestamp, 1_700_000_000_001);
}

#[test]
fn e_non_zero_base_offset() {
    let records = [record(
        1_000_000,
        1_700_000_000_000,
        Some(b"key-1"),
        Some(b"value-1"),
        vec![],
    )];
    let options = BatchOptions {
        base_offset: 1_000_000,
        ..kafka_python_options()
    };
    let header = check_golden(E, &records, &options);
    assert_eq!(header.last_offset(), 1_000_000);
    // Only the uncovered baseOffset differs from `a`: same CRC.
    assert_eq!(header.crc, verify(&unhex(A)).unwrap().crc);
}

#[test]
fn fixtures_concatenated_iterate_in_order() {
    let all: Vec<Vec<u8>> = [A, B, C, D, E].iter().map(|h| unhex(h)).collect();
    let buf = all.concat();
    let found: Vec<&[u8]> = batches(&buf).map(|b| b.unwrap().1).collect();
    assert_eq!(found, all.iter().map(Vec::as_slice).collect::<Vec<_>>());
}

/// Checks one fixture against `records` both ways; returns its header.
fn check_golden(hex: &str, records: &[Record], options: &BatchOptions) -> BatchHeader {
    let golden = unhex(hex);
    let header = verify(&golden).expect("kafka-python's batch verifies");
    assert_eq!(header, BatchHeader::parse(&golden).unwrap());
    assert_eq!(header.total_len(), golden.len());
    assert_eq!(header.magic, 2);
    assert_eq!(header.partition_leader_epoch, 0);
    assert_eq!(header.attributes, 0);
    assert_eq!(header.compression(), Ok(Compression::None));
    assert_eq!(header.base_offset, options.base_offset);
    assert_eq!(header.base_timestamp, records[0].timestamp);
    assert_eq!(decode_records(&golden).unwrap(), records);
    assert_eq!(hexed(&encode(records, options)), hexed(&golden));
    header
}

fn kafka_python_options() -> BatchOptions {
    BatchOptions {
        partition_leader_epoch: 0,
        ..BatchOptions::default()
    }
}

fn record(
    offset: i64,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: Vec<Header>,
) -> Record {
    Record {
        offset,
        timestamp,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        headers,
    }
}

fn header(key: &str, value: Option<&[u8]>) -> Header {
    Header {
        key: key.to_owned(),
        value: value.map(Bytes::copy_from_slice),
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    let hex = hex.trim();
    assert!(hex.len().is_multiple_of(2), "odd-length hex fixture");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex fixture"))
        .collect()
}

/// Hex, so that a mismatch shows where the bytes differ.
fn hexed(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
