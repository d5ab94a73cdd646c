//! Kafka's default partitioner, bit for bit, so that a Kafka client and
//! Hermod agree on which partition holds a given key.
//!
//! A keyed record goes to `toPositive(murmur2(key)) % partitions`, where
//! `murmur2` is Kafka's `Utils.murmur2` (a MurmurHash2 variant with a fixed
//! seed, computed in Java `int` arithmetic) and `toPositive` clears the sign
//! bit. Records without a key are spread by a [`RoundRobin`] counter.

use std::sync::atomic::{AtomicU32, Ordering};

const SEED: u32 = 0x9747_b28c;
const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// Kafka's `Utils.murmur2` of `data`, as the signed value Java returns.
///
/// Java `int` arithmetic is reproduced with wrapping `u32` operations and
/// logical shifts (Java's `>>>`). Java arrays cannot exceed `i32::MAX` bytes;
/// longer slices hash with their length truncated to 32 bits, without panic.
pub fn murmur2(data: &[u8]) -> i32 {
    // Truncation is deliberate: Java mixes in the length as an `int`.
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        h = h.wrapping_mul(M) ^ mix(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
    }
    h = mix_tail(h, chunks.remainder());
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition in `0..partitions` that Kafka's default partitioner picks
/// for a record with this key.
///
/// `partitions` must be at least 1. Zero is a caller bug: debug builds
/// assert, release builds return 0 rather than dividing by zero.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    debug_assert!(partitions >= 1, "a topic has at least one partition");
    let hash = to_positive(murmur2(key));
    hash.checked_rem(partitions).unwrap_or(0)
}

/// Round-robin placement for records without a key: each call returns the
/// next partition, shared safely between threads.
///
/// The counter wraps at 2^32, which briefly skews the rotation only when
/// `partitions` does not divide 2^32; Kafka's counter wraps at 2^31 likewise.
#[derive(Debug, Default)]
pub struct RoundRobin {
    counter: AtomicU32,
}

impl RoundRobin {
    /// The next partition in `0..partitions`.
    ///
    /// As with [`partition_for_key`], `partitions` must be at least 1; zero
    /// asserts in debug builds and yields 0 in release builds.
    pub fn next(&self, partitions: u32) -> u32 {
        debug_assert!(partitions >= 1, "a topic has at least one partition");
        // Relaxed: only the counter's own atomicity matters, not ordering
        // relative to other memory.
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        n.checked_rem(partitions).unwrap_or(0)
    }
}

/// Scrambles one 4-byte block before it is folded into the hash.
fn mix(mut k: u32) -> u32 {
    k = k.wrapping_mul(M);
    k ^= k >> R;
    k.wrapping_mul(M)
}

/// Folds the last 0–3 bytes into the hash, as the fall-through `switch` in
/// Kafka does: byte `i` of the tail lands at bit `8 * i`.
fn mix_tail(h: u32, tail: &[u8]) -> u32 {
    if tail.is_empty() {
        return h;
    }
    let folded = tail
        .iter()
        .enumerate()
        .fold(h, |acc, (i, &b)| acc ^ (u32::from(b) << (8 * i)));
    folded.wrapping_mul(M)
}

/// Kafka's `Utils.toPositive`: clears the sign bit instead of taking `abs`,
/// so that `i32::MIN` has a defined, non-negative image.
fn to_positive(n: i32) -> u32 {
    (n as u32) & 0x7fff_ffff
}
