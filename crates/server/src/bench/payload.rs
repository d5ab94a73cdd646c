//! The benchmark's message: a sequence number and the send time, as text
//! (so it travels unchanged over the HTTP API), padded to the size asked.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// The sequence number and send time take 32 hexadecimal digits.
pub const HEADER_BYTES: usize = 32;

/// Microseconds since the epoch, the clock every worker shares.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A value of `size` bytes (at least [`HEADER_BYTES`]) carrying `seq`.
pub fn make(seq: u64, size: usize) -> Bytes {
    let mut text = format!("{seq:016x}{:016x}", now_us());
    text.extend(std::iter::repeat_n('x', size.saturating_sub(HEADER_BYTES)));
    Bytes::from(text)
}

/// The sequence number and send time of a value, if it is one of ours.
pub fn read(value: &[u8]) -> Option<(u64, u64)> {
    let head = std::str::from_utf8(value.get(..HEADER_BYTES)?).ok()?;
    let seq = u64::from_str_radix(&head[..16], 16).ok()?;
    let sent = u64::from_str_radix(&head[16..], 16).ok()?;
    Some((seq, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_carries_its_sequence_and_time_at_the_size_asked() {
        let before = now_us();
        let v = make(42, 1024);
        assert_eq!(v.len(), 1024);
        let (seq, sent) = read(&v).unwrap();
        assert_eq!(seq, 42);
        assert!(sent >= before && sent <= now_us());
        assert_eq!(make(7, 1).len(), HEADER_BYTES);
        assert_eq!(read(b"not ours"), None);
    }
}
