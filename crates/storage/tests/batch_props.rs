//! Property tests for the record batch codec: round trips, and no panics on
//! hostile bytes, whether random, mutated from a valid batch, or a valid
//! header and CRC wrapped around a random records section.

use bytes::Bytes;
use hermod_storage::batch::{
    batches, compute_crc, decode_records, encode, verify, BatchHeader, BatchOptions, Header,
    Record, HEADER_LEN, LOG_OVERHEAD,
};
use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #[test]
    fn encode_then_decode_round_trips(records in records(), options in options()) {
        let batch = encode(&records, &options);
        let header = verify(&batch).unwrap();
        prop_assert_eq!(header.base_offset, options.base_offset);
        prop_assert_eq!(header.partition_leader_epoch, options.partition_leader_epoch);
        prop_assert_eq!(header.producer_id, options.producer_id);
        prop_assert_eq!(header.producer_epoch, options.producer_epoch);
        prop_assert_eq!(header.base_sequence, options.base_sequence);
        prop_assert_eq!(header.log_append_time(), options.log_append_time);
        prop_assert_eq!(header.record_count as usize, records.len());
        prop_assert_eq!(header.max_timestamp, records.iter().map(|r| r.timestamp).max().unwrap());
        // With log-append time, every record reads the batch's timestamp.
        let stamp = |record: &Record| {
            if options.log_append_time { header.max_timestamp } else { record.timestamp }
        };
        let expected: Vec<Record> = records
            .iter()
            .zip(options.base_offset..)
            .map(|(record, offset)| Record { offset, timestamp: stamp(record), ..record.clone() })
            .collect();
        prop_assert_eq!(decode_records(&batch).unwrap(), expected);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        exercise(&bytes);
    }

    #[test]
    fn random_bytes_with_a_plausible_header_never_panic(
        body in vec(any::<u8>(), 0..300),
        count in prop_oneof![0..4i32, any::<i32>()],
        last_delta in prop_oneof![0..4i32, any::<i32>()],
        attributes in prop_oneof![Just(0i16), any::<i16>()],
    ) {
        let mut batch = encode(&[Record { offset: 0, timestamp: 0, key: None, value: None, headers: vec![] }], &BatchOptions::default());
        batch.truncate(HEADER_LEN);
        batch.extend_from_slice(&body);
        let length = i32::try_from(batch.len() - LOG_OVERHEAD).unwrap();
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        batch[21..23].copy_from_slice(&attributes.to_be_bytes());
        batch[23..27].copy_from_slice(&last_delta.to_be_bytes());
        batch[57..61].copy_from_slice(&count.to_be_bytes());
        reseal(&mut batch);
        exercise(&batch);
    }

    #[test]
    fn mutated_batches_never_panic(
        records in records(),
        flips in vec((any::<prop::sample::Index>(), 1..=255u8), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        fix_crc in any::<bool>(),
    ) {
        let mut batch = encode(&records, &BatchOptions::default());
        for (at, mask) in flips {
            let at = at.index(batch.len());
            batch[at] ^= mask;
        }
        if truncate {
            batch.truncate(cut.index(batch.len() + 1));
        }
        if fix_crc {
            reseal(&mut batch);
        }
        exercise(&batch);
    }

    #[test]
    fn batches_yields_each_of_a_concatenation(
        groups in vec((records(), -1000i64..1_000_000), 0..6),
        garbage in vec(any::<u8>(), 0..80),
    ) {
        let encoded: Vec<Vec<u8>> = groups
            .iter()
            .map(|(records, base_offset)| {
                encode(records, &BatchOptions { base_offset: *base_offset, ..BatchOptions::default() })
            })
            .collect();
        let mut buf = encoded.concat();
        let mut iter = batches(&buf);
        for (expected, (_, base_offset)) in encoded.iter().zip(&groups) {
            let (header, bytes) = iter.next().unwrap().unwrap();
            prop_assert_eq!(bytes, expected.as_slice());
            prop_assert_eq!(header.base_offset, *base_offset);
        }
        prop_assert!(iter.next().is_none());
        prop_assert_eq!(iter.position(), buf.len());

        // Garbage after the batches: they still come out, then at most one
        // error, then nothing.
        let valid_len = buf.len();
        buf.extend_from_slice(&garbage);
        let results: Vec<_> = batches(&buf).collect();
        let ok = results.iter().take_while(|r| r.is_ok()).count();
        prop_assert!(ok >= encoded.len());
        prop_assert!(results.len() - ok <= 1);
        if garbage.len() < HEADER_LEN && !garbage.is_empty() {
            prop_assert_eq!(ok, encoded.len());
            prop_assert_eq!(results.len(), ok + 1);
        }
        let mut iter = batches(&buf);
        iter.by_ref().for_each(drop);
        prop_assert!(iter.position() >= valid_len);
    }
}

/// Calls every decoder on `bytes`; the property is that none panics.
fn exercise(bytes: &[u8]) {
    let parsed = BatchHeader::parse(bytes);
    if let Ok(header) = &parsed {
        let _ = (
            header.total_len(),
            header.last_offset(),
            header.compression(),
        );
    }
    let verified = verify(bytes);
    if verified.is_ok() {
        assert!(parsed.is_ok());
    }
    let _ = decode_records(bytes);
    let _ = compute_crc(bytes);
    let results: Vec<_> = batches(bytes).collect();
    assert!(results.iter().filter(|r| r.is_err()).count() <= 1);
    assert!(results.iter().rev().skip(1).all(Result::is_ok));
}

fn reseal(batch: &mut [u8]) {
    if batch.len() >= HEADER_LEN {
        let crc = compute_crc(batch);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

fn records() -> impl Strategy<Value = Vec<Record>> {
    vec(record(), 1..8)
}

fn record() -> impl Strategy<Value = Record> {
    let timestamp = prop_oneof![
        (-5_000i64..5_000).prop_map(|d| 1_700_000_000_000 + d),
        any::<i64>(),
    ];
    (timestamp, nullable(), nullable(), vec(header(), 0..4)).prop_map(
        |(timestamp, key, value, headers)| Record {
            offset: 0,
            timestamp,
            key,
            value,
            headers,
        },
    )
}

fn header() -> impl Strategy<Value = Header> {
    ("\\PC{0,8}", nullable()).prop_map(|(key, value)| Header { key, value })
}

fn nullable() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop_oneof![
        vec(any::<u8>(), 0..16),
        vec(any::<u8>(), 100..300),
    ])
    .prop_map(|bytes| bytes.map(Bytes::from))
}

fn options() -> impl Strategy<Value = BatchOptions> {
    (
        i64::MIN..i64::MAX - 16,
        any::<i32>(),
        any::<i64>(),
        any::<i16>(),
        any::<i32>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                base_offset,
                partition_leader_epoch,
                producer_id,
                producer_epoch,
                base_sequence,
                log_append_time,
            )| {
                BatchOptions {
                    base_offset,
                    partition_leader_epoch,
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    log_append_time,
                }
            },
        )
}
