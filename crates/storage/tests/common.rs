//! Helpers shared by the storage integration tests: making batches with
//! recognisable contents and reading a log back record by record.

#![allow(dead_code)]

use bytes::Bytes;
use hermod_storage::batch::{self, BatchOptions, Header, Record};
use hermod_storage::Log;

/// A batch of `count` records whose values say which batch and record they
/// are, so a reader can check every byte it gets back.
pub fn make_batch(tag: u64, count: usize, value_len: usize, timestamp: i64) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            offset: 0,
            timestamp: timestamp + i as i64,
            key: Some(Bytes::from(format!("k{tag}-{i}"))),
            value: Some(Bytes::from(value_for(tag, i, value_len))),
            headers: vec![Header {
                key: "tag".into(),
                value: Some(Bytes::from(tag.to_string())),
            }],
        })
        .collect();
    batch::encode(&records, &BatchOptions::default())
}

/// The value of record `i` of batch `tag`.
pub fn value_for(tag: u64, i: usize, len: usize) -> Vec<u8> {
    let seed = format!("{tag}:{i}:");
    seed.bytes().cycle().take(len.max(seed.len())).collect()
}

/// Every record from `from` to the log's visible end, in order.
pub fn read_all(log: &Log, from: u64) -> Vec<Record> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let read = log.read(offset, 64 << 10).expect("read");
        if read.bytes.is_empty() {
            return out;
        }
        for b in batch::batches(&read.bytes) {
            let (_, bytes) = b.expect("valid batch");
            for r in batch::decode_records(bytes).expect("decodable") {
                if r.offset as u64 >= offset {
                    out.push(r);
                }
            }
        }
        offset = read.next_offset;
    }
}
