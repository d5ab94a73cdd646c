//! What a benchmark saw: how often each sequence number was received, and
//! the end-to-end latency of each delivery (an HDR histogram), shared by
//! the workers; and the verdict at the end.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use hdrhistogram::Histogram;

use super::payload;

#[derive(Debug)]
pub struct Tally {
    /// Receipts per sequence number, per reader group (a fan-out has one
    /// group per subscription, every group must see everything).
    seen: Vec<Vec<AtomicU32>>,
    pub received: AtomicU64,
    pub foreign: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

/// Counts of the final check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub expected: u64,
    pub missing: u64,
    pub duplicated: u64,
    pub foreign: u64,
}

impl Verdict {
    pub fn ok(&self, duplicates_allowed: bool) -> bool {
        self.missing == 0 && self.foreign == 0 && (duplicates_allowed || self.duplicated == 0)
    }
}

impl Tally {
    pub fn new(groups: usize, count: u64) -> Tally {
        Tally {
            seen: (0..groups)
                .map(|_| (0..count).map(|_| AtomicU32::new(0)).collect())
                .collect(),
            received: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            // 1 µs to 1 hour, 3 significant digits.
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds"),
            ),
        }
    }

    /// Records one delivered value for `group`.
    pub fn saw(&self, group: usize, value: &[u8]) {
        self.received.fetch_add(1, Relaxed);
        let Some((seq, sent)) = payload::read(value) else {
            self.foreign.fetch_add(1, Relaxed);
            return;
        };
        match self.seen[group].get(seq as usize) {
            Some(slot) => {
                slot.fetch_add(1, Relaxed);
            }
            None => {
                self.foreign.fetch_add(1, Relaxed);
                return;
            }
        }
        self.latency(payload::now_us().saturating_sub(sent));
    }

    /// Records a latency measured elsewhere (a publish's round trip).
    pub fn latency(&self, us: u64) {
        let _ = self.latency_us.lock().unwrap().record(us.max(1));
    }

    pub fn histogram(&self) -> Histogram<u64> {
        self.latency_us.lock().unwrap().clone()
    }

    /// Checks the first `published` sequence numbers of every group.
    pub fn verdict(&self, published: u64) -> Verdict {
        let mut v = Verdict {
            expected: published * self.seen.len() as u64,
            missing: 0,
            duplicated: 0,
            foreign: self.foreign.load(Relaxed),
        };
        for group in &self.seen {
            for (seq, slot) in group.iter().enumerate() {
                let n = slot.load(Relaxed);
                if (seq as u64) < published && n == 0 {
                    v.missing += 1;
                }
                if (seq as u64) >= published && n > 0 {
                    v.foreign += n as u64;
                }
                v.duplicated += n.saturating_sub(1) as u64;
            }
        }
        v
    }
}
