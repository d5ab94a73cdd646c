//! The de-duplication window of a topic or queue: a publish whose
//! de-duplication id was seen within the window is not appended again, and
//! the publisher gets the original offset back (SQS FIFO's
//! `MessageDeduplicationId`, five minutes by default).
//!
//! Time is passed in. Memory is bounded by `max_ids`: when the table is full
//! the oldest id is forgotten early, and [`Dedup::evicted_early`] counts how
//! often, so an operator can see that the window is shorter than configured
//! under that load. Ids seen at the same millisecond expire in insertion
//! order.

use std::collections::{HashMap, VecDeque};

/// What a publish with a de-duplication id should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time within the window: append, then [`Dedup::record`] the offset.
    New,
    /// A duplicate of the record appended at this offset: do not append.
    Duplicate(u64),
}

/// One topic's (or partition's) window of de-duplication ids.
#[derive(Debug, Clone)]
pub struct Dedup {
    window_ms: i64,
    max_ids: usize,
    offsets: HashMap<String, (u64, i64)>,
    /// Ids by the time they were recorded, oldest first.
    order: VecDeque<(i64, String)>,
    evicted_early: u64,
}

impl Dedup {
    /// A window of `window_ms` holding at most `max_ids` ids (at least 1).
    pub fn new(window_ms: i64, max_ids: usize) -> Dedup {
        assert!(max_ids > 0, "a de-duplication window needs room for one id");
        Dedup {
            window_ms,
            max_ids,
            offsets: HashMap::new(),
            order: VecDeque::new(),
            evicted_early: 0,
        }
    }

    /// Whether `id` was recorded within the window before `now_ms`.
    pub fn check(&mut self, id: &str, now_ms: i64) -> Seen {
        self.expire(now_ms);
        match self.offsets.get(id) {
            Some(&(offset, _)) => Seen::Duplicate(offset),
            None => Seen::New,
        }
    }

    /// Records that `id` was appended at `offset` at `now_ms`. Recording an
    /// id again (a publish that raced another with the same id) keeps the
    /// first offset.
    pub fn record(&mut self, id: &str, offset: u64, now_ms: i64) {
        self.expire(now_ms);
        if self.offsets.contains_key(id) {
            return;
        }
        if self.offsets.len() == self.max_ids {
            self.evict_oldest();
            self.evicted_early += 1;
        }
        self.offsets.insert(id.to_owned(), (offset, now_ms));
        self.order.push_back((now_ms, id.to_owned()));
    }

    /// Ids held now.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// How many ids were forgotten before their window ended, for lack of room.
    pub fn evicted_early(&self) -> u64 {
        self.evicted_early
    }

    fn expire(&mut self, now_ms: i64) {
        while let Some(&(at, _)) = self.order.front() {
            if now_ms - at < self.window_ms {
                break;
            }
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((_, id)) = self.order.pop_front() {
            self.offsets.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_within_the_window_gets_the_original_offset() {
        let mut d = Dedup::new(300_000, 100);
        assert_eq!(d.check("a", 0), Seen::New);
        d.record("a", 7, 0);
        assert_eq!(d.check("a", 299_999), Seen::Duplicate(7));
        assert_eq!(d.check("b", 299_999), Seen::New);
        assert_eq!(d.check("a", 300_000), Seen::New, "the window has passed");
        assert!(d.is_empty());
    }

    #[test]
    fn recording_twice_keeps_the_first_offset() {
        let mut d = Dedup::new(1_000, 10);
        d.record("a", 1, 0);
        d.record("a", 2, 5);
        assert_eq!(d.check("a", 10), Seen::Duplicate(1));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn a_full_table_forgets_the_oldest_and_counts_it() {
        let mut d = Dedup::new(1_000_000, 3);
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            d.record(id, i as u64, i as i64);
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.evicted_early(), 1);
        assert_eq!(d.check("a", 10), Seen::New);
        assert_eq!(d.check("d", 10), Seen::Duplicate(3));
    }

    #[test]
    fn ids_expire_in_the_order_they_came() {
        let mut d = Dedup::new(100, 10);
        d.record("a", 0, 0);
        d.record("b", 1, 50);
        assert_eq!(d.check("a", 100), Seen::New);
        assert_eq!(d.check("b", 100), Seen::Duplicate(1));
        assert_eq!(d.check("b", 150), Seen::New);
    }
}
