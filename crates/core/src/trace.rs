//! Delivery traces: for a message id, where the message went (destinations
//! it was appended to, bindings that did not take it), each delivery, and
//! how it ended (acked, expired, dead-lettered, dropped). Kept in memory for
//! the most recent `capacity` messages, split in shards so publishers and
//! consumers rarely meet on one lock; the oldest traces are forgotten first.
//! Traces do not survive a restart (the records and subscription state do).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;

use serde::Serialize;

const SHARDS: usize = 16;
/// Most events kept per message (a record redelivered forever stops growing
/// its trace; the last event is replaced instead).
pub const MAX_EVENTS: usize = 64;

/// One thing that happened to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// Appended to a topic or queue.
    Published {
        topic: String,
        partition: u32,
        offset: u64,
    },
    /// Not appended: a record with the same de-duplication id is at this offset.
    Duplicate {
        topic: String,
        partition: u32,
        offset: u64,
    },
    /// An exchange binding did not take it.
    NotRouted {
        exchange: String,
        destination: String,
        reason: String,
    },
    /// No binding of the exchange took it.
    Unroutable {
        exchange: String,
    },
    /// Handed to a consumer of a subscription.
    Delivered {
        topic: String,
        subscription: String,
        delivery: u32,
    },
    Acked {
        topic: String,
        subscription: String,
    },
    /// Given back by the consumer.
    Nacked {
        topic: String,
        subscription: String,
    },
    /// Skipped by a subscription's filter.
    Filtered {
        topic: String,
        subscription: String,
    },
    /// Its expiry passed before it was delivered.
    Expired {
        topic: String,
        subscription: String,
    },
    /// Moved to a dead-letter destination (or dropped, without one).
    DeadLettered {
        topic: String,
        subscription: String,
        reason: String,
        to: Option<String>,
    },
}

/// An event with its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Traced {
    pub time_ms: i64,
    #[serde(flatten)]
    pub event: Event,
}

/// Traces of the most recent messages.
#[derive(Debug)]
pub struct Tracer {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Debug, Default)]
struct Shard {
    traces: HashMap<String, Vec<Traced>>,
    /// Message ids in the order their traces began.
    order: VecDeque<String>,
}

impl Tracer {
    /// Keeps the traces of about `capacity` messages; 0 turns tracing off.
    pub fn new(capacity: usize) -> Tracer {
        Tracer {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hasher: Default::default(),
        }
    }

    /// Adds an event to a message's trace.
    pub fn record(&self, id: &str, time_ms: i64, event: Event) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(id).lock().unwrap();
        let traced = Traced { time_ms, event };
        if let Some(events) = shard.traces.get_mut(id) {
            if events.len() >= MAX_EVENTS {
                events.pop();
            }
            events.push(traced);
            return;
        }
        while shard.order.len() >= self.per_shard {
            let Some(old) = shard.order.pop_front() else {
                break;
            };
            shard.traces.remove(&old);
        }
        shard.order.push_back(id.to_owned());
        shard.traces.insert(id.to_owned(), vec![traced]);
    }

    /// A message's trace, oldest event first, if it is still kept.
    pub fn get(&self, id: &str) -> Option<Vec<Traced>> {
        self.shard(id).lock().unwrap().traces.get(id).cloned()
    }

    fn shard(&self, id: &str) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(id) as usize % SHARDS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked() -> Event {
        Event::Acked {
            topic: "t".into(),
            subscription: "s".into(),
        }
    }

    #[test]
    fn keeps_events_in_order_and_forgets_the_oldest_messages() {
        let tracer = Tracer::new(SHARDS);
        for i in 0..1000 {
            tracer.record(&format!("m{i}"), i, acked());
        }
        tracer.record(
            "m999",
            5000,
            Event::Unroutable {
                exchange: "x".into(),
            },
        );
        let kept = (0..1000).filter(|i| tracer.get(&format!("m{i}")).is_some());
        assert!(kept.count() <= SHARDS);
        let trace = tracer.get("m999").unwrap();
        assert_eq!(trace.len(), 2);
        assert_eq!(trace[1].time_ms, 5000);
    }

    #[test]
    fn a_trace_stops_growing_at_its_limit() {
        let tracer = Tracer::new(10);
        for i in 0..1000 {
            tracer.record("m", i, acked());
        }
        let trace = tracer.get("m").unwrap();
        assert_eq!(trace.len(), MAX_EVENTS);
        assert_eq!(trace.last().unwrap().time_ms, 999);
        assert!(Tracer::new(0).get("m").is_none());
    }
}
