//! Model-based test: random operation sequences against `Partition` and a
//! reference model that keeps one plain state per log offset.

use hermod_core::delivery::{
    Config, DeadLetter, Delivery, DeliveryError, Fed, LeaseId, Mode, NackOutcome, Partition,
};
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Op {
    Feed(u8),
    Receive { max: usize, vis: i64 },
    Ack(usize),
    Nack { pick: usize, delay: i64 },
    Extend { pick: usize, vis: i64 },
    Advance(i64),
    Expire,
    Restore,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum S {
    Unfed {
        d: u32,
    },
    Ready {
        d: u32,
        visible_at: i64,
    },
    Leased {
        d: u32,
        lease: LeaseId,
        expires: i64,
    },
    Acked,
    Dead {
        d: u32,
    },
}

struct Model {
    cfg: Config,
    log: Vec<(Option<u64>, i64)>,
    st: Vec<S>,
}

impl Model {
    fn done(&self, o: usize) -> bool {
        matches!(self.st[o], S::Acked | S::Dead { .. })
    }
    fn leased(&self) -> usize {
        self.st
            .iter()
            .filter(|s| matches!(s, S::Leased { .. }))
            .count()
    }
    fn ready(&self) -> usize {
        self.st
            .iter()
            .filter(|s| matches!(s, S::Ready { .. }))
            .count()
    }
    fn next_to_feed(&self) -> Option<usize> {
        if self.ready() >= self.cfg.max_buffered {
            return None;
        }
        Some(
            self.st
                .iter()
                .position(|s| matches!(s, S::Unfed { .. }))
                .unwrap_or(self.st.len()),
        )
    }
    fn floor(&self) -> u64 {
        (0..self.st.len())
            .position(|o| !self.done(o))
            .unwrap_or(self.st.len()) as u64
    }
    /// No earlier unfinished record of the same key (ordered mode).
    fn unblocked(&self, o: usize) -> bool {
        match (self.cfg.mode, self.log[o].0) {
            (Mode::Ordered, Some(k)) => (0..o).all(|e| self.done(e) || self.log[e].0 != Some(k)),
            _ => true,
        }
    }
    fn expected_receive(&self, max: usize, now: i64) -> Vec<(u64, u32)> {
        let room = self
            .cfg
            .max_in_flight
            .saturating_sub(self.leased())
            .min(max);
        let due = |redelivery: bool| {
            (0..self.st.len()).filter_map(move |o| match self.st[o] {
                S::Ready { d, visible_at }
                    if (d > 0) == redelivery && visible_at <= now && self.unblocked(o) =>
                {
                    Some((o as u64, d + 1))
                }
                _ => None,
            })
        };
        due(true).chain(due(false)).take(room).collect()
    }
    fn find(&self, lease: LeaseId) -> Option<usize> {
        self.st
            .iter()
            .position(|s| matches!(s, S::Leased { lease: l, .. } if *l == lease))
    }
    /// End of a lease: requeue or dead-letter.
    fn release(&mut self, o: usize, visible_at: i64) -> Option<DeadLetter> {
        let S::Leased { d, .. } = self.st[o] else {
            unreachable!()
        };
        let max = self.cfg.max_deliveries;
        if max > 0 && d >= max {
            self.st[o] = S::Dead { d };
            return Some(DeadLetter {
                offset: o as u64,
                deliveries: d,
            });
        }
        self.st[o] = S::Ready { d, visible_at };
        None
    }
    fn next_deadline(&self) -> Option<i64> {
        (0..self.st.len())
            .filter_map(|o| match self.st[o] {
                S::Leased { expires, .. } => Some(expires),
                S::Ready { visible_at, .. } if self.unblocked(o) => Some(visible_at),
                _ => None,
            })
            .min()
    }
}

struct Harness {
    p: Partition,
    m: Model,
    now: i64,
    leases: Vec<LeaseId>,
    /// Ordered mode: last offset delivered per key.
    last_per_key: HashMap<u64, u64>,
}

impl Harness {
    fn feed(&mut self) {
        let got = self.p.next_to_feed();
        let want = self.m.next_to_feed();
        assert_eq!(got, want.map(|o| o as u64), "next_to_feed");
        let Some(o) = want.filter(|&o| o < self.m.log.len()) else {
            return;
        };
        let (key, not_before_ms) = self.m.log[o];
        let dead = self.p.feed(Fed {
            offset: o as u64,
            key,
            not_before_ms,
        });
        let S::Unfed { d } = self.m.st[o] else {
            unreachable!()
        };
        let max = self.m.cfg.max_deliveries;
        if max > 0 && d >= max {
            // In flight at restore with its budget spent: the lost lease expired.
            assert_eq!(
                dead,
                Some(DeadLetter {
                    offset: o as u64,
                    deliveries: d
                })
            );
            self.check_dead(&[DeadLetter {
                offset: o as u64,
                deliveries: d,
            }]);
            self.m.st[o] = S::Dead { d };
            return;
        }
        assert_eq!(dead, None);
        self.m.st[o] = S::Ready {
            d,
            visible_at: not_before_ms,
        };
    }

    fn receive(&mut self, max: usize, vis: i64) {
        let want = self.m.expected_receive(max, self.now);
        let got: Vec<Delivery> = self.p.receive(max, vis, self.now);
        let pairs: Vec<(u64, u32)> = got.iter().map(|d| (d.offset, d.delivery_count)).collect();
        assert_eq!(pairs, want, "receive at {}", self.now);
        for d in got {
            let o = d.offset as usize;
            assert!(
                matches!(self.m.st[o], S::Ready { .. }),
                "done record {o} redelivered"
            );
            self.check_key_order(o);
            let expires = self.now.saturating_add(vis.max(0));
            self.m.st[o] = S::Leased {
                d: d.delivery_count,
                lease: d.lease,
                expires,
            };
            self.leases.push(d.lease);
        }
    }

    fn check_key_order(&mut self, o: usize) {
        let (Mode::Ordered, Some(k)) = (self.m.cfg.mode, self.m.log[o].0) else {
            return;
        };
        let in_flight = (0..self.m.st.len())
            .any(|e| self.m.log[e].0 == Some(k) && matches!(self.m.st[e], S::Leased { .. }));
        assert!(!in_flight, "two in-flight records of key {k}");
        let last = self.last_per_key.insert(k, o as u64);
        assert!(
            last.is_none_or(|l| l <= o as u64),
            "key {k} went back from {last:?} to {o}"
        );
    }

    fn pick(&self, i: usize) -> LeaseId {
        if self.leases.is_empty() {
            LeaseId::from_raw(i as u64)
        } else {
            self.leases[i % self.leases.len()]
        }
    }

    fn ack(&mut self, i: usize) {
        let lease = self.pick(i);
        let want = self.m.find(lease).ok_or(DeliveryError::UnknownLease);
        assert_eq!(self.p.ack(lease), want.map(|o| o as u64));
        if let Ok(o) = want {
            self.m.st[o] = S::Acked;
        }
    }

    fn nack(&mut self, i: usize, delay: i64) {
        let lease = self.pick(i);
        let got = self.p.nack(lease, delay, self.now);
        let Some(o) = self.m.find(lease) else {
            return assert_eq!(got, Err(DeliveryError::UnknownLease));
        };
        let want = match self.m.release(o, self.now + delay.max(0)) {
            Some(dead) => NackOutcome::DeadLettered(dead),
            None => NackOutcome::Requeued,
        };
        assert_eq!(got, Ok(want));
        self.check_dead(
            &[want]
                .iter()
                .filter_map(|w| match w {
                    NackOutcome::DeadLettered(d) => Some(*d),
                    NackOutcome::Requeued => None,
                })
                .collect::<Vec<_>>(),
        );
    }

    fn extend(&mut self, i: usize, vis: i64) {
        let lease = self.pick(i);
        let got = self.p.extend(lease, vis, self.now);
        let Some(o) = self.m.find(lease) else {
            return assert_eq!(got, Err(DeliveryError::UnknownLease));
        };
        let S::Leased { d, expires, .. } = self.m.st[o] else {
            unreachable!()
        };
        if expires <= self.now {
            return assert_eq!(got, Err(DeliveryError::LeaseExpired));
        }
        assert_eq!(got, Ok(()));
        self.m.st[o] = S::Leased {
            d,
            lease,
            expires: self.now + vis.max(0),
        };
    }

    fn expire(&mut self) {
        let got = self.p.expire(self.now);
        let mut want = Vec::new();
        for o in 0..self.m.st.len() {
            if let S::Leased { expires, .. } = self.m.st[o] {
                if expires <= self.now {
                    want.extend(self.m.release(o, self.now));
                }
            }
        }
        assert_eq!(got, want, "expire at {}", self.now);
        self.check_dead(&got);
    }

    fn check_dead(&self, dead: &[DeadLetter]) {
        for d in dead {
            assert_eq!(
                d.deliveries, self.m.cfg.max_deliveries,
                "dead-lettered too early or late"
            );
        }
    }

    fn restore(&mut self) {
        let snap = self.p.snapshot();
        self.p = Partition::restore(self.m.cfg, snap);
        for s in &mut self.m.st {
            *s = match *s {
                S::Ready { d, .. } | S::Leased { d, .. } => S::Unfed { d },
                other => other,
            };
        }
    }

    fn check(&self) {
        let cfg = self.m.cfg;
        assert_eq!(self.p.ack_floor(), self.m.floor());
        assert_eq!(self.p.in_flight(), self.m.leased());
        let end = self.m.log.len();
        let depth = (0..end).filter(|&o| !self.m.done(o)).count() as u64;
        assert_eq!(self.p.backlog_hint(end as u64), depth);
        assert_eq!(self.p.next_deadline(), self.m.next_deadline());
        assert!(
            self.p.tracked() <= cfg.max_in_flight + cfg.max_buffered,
            "memory bound"
        );
        // One range per run of unfinished offsets below the last finished one.
        let last_done = (0..end).rev().find(|&o| self.m.done(o)).unwrap_or(0);
        let gaps = (0..last_done)
            .filter(|&o| !self.m.done(o) && (o + 1 == end || self.m.done(o + 1)))
            .count();
        assert!(self.p.acked_ranges() <= gaps, "ranges bounded by gaps");
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Feed(n) => (0..n).for_each(|_| self.feed()),
            Op::Receive { max, vis } => self.receive(max, vis),
            Op::Ack(i) => self.ack(i),
            Op::Nack { pick, delay } => self.nack(pick, delay),
            Op::Extend { pick, vis } => self.extend(pick, vis),
            Op::Advance(dt) => self.now += dt,
            Op::Expire => self.expire(),
            Op::Restore => self.restore(),
        }
        self.check();
    }

    /// Time moves far ahead; everything left must come out and be acked.
    fn drain(&mut self) {
        self.now += 1_000_000;
        let end = self.m.log.len() as u64;
        for _ in 0..(4 * end + 10) {
            if self.p.ack_floor() == end {
                break;
            }
            self.expire();
            while self.p.next_to_feed().is_some_and(|o| o < end) {
                self.feed();
            }
            let before = self.leases.len();
            self.receive(usize::MAX, 10);
            for i in before..self.leases.len() {
                let lease = self.leases[i];
                assert!(self.p.ack(lease).is_ok());
                let o = self.m.find(lease).unwrap();
                self.m.st[o] = S::Acked;
            }
            self.check();
        }
        assert_eq!(self.p.ack_floor(), end, "not drained");
        assert!((0..end as usize).all(|o| self.m.done(o)));
        assert_eq!(self.p.tracked(), 0);
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..4).prop_map(Op::Feed),
        3 => (0usize..4, 0i64..60).prop_map(|(max, vis)| Op::Receive { max, vis }),
        2 => any::<usize>().prop_map(Op::Ack),
        2 => (any::<usize>(), 0i64..40).prop_map(|(pick, delay)| Op::Nack { pick, delay }),
        1 => (any::<usize>(), 0i64..60).prop_map(|(pick, vis)| Op::Extend { pick, vis }),
        2 => (0i64..40).prop_map(Op::Advance),
        2 => Just(Op::Expire),
        1 => Just(Op::Restore),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (any::<bool>(), 0u32..4, 1usize..5, 1usize..6).prop_map(|(ordered, md, fl, buf)| Config {
        mode: if ordered { Mode::Ordered } else { Mode::Shared },
        max_deliveries: md,
        max_in_flight: fl,
        max_buffered: buf,
    })
}

fn log() -> impl Strategy<Value = Vec<(Option<u64>, i64)>> {
    let key = prop_oneof![1 => Just(None), 4 => (0u64..3).prop_map(Some)];
    let not_before = prop_oneof![3 => Just(0i64), 1 => 0i64..200];
    prop::collection::vec((key, not_before), 0..25)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn partition_matches_model(cfg in config(), log in log(), ops in prop::collection::vec(op(), 0..80)) {
        let n = log.len();
        let m = Model { cfg, log, st: vec![S::Unfed { d: 0 }; n] };
        let p = Partition::new(cfg, 0);
        let mut h = Harness { p, m, now: 0, leases: Vec::new(), last_per_key: HashMap::new() };
        for op in ops {
            h.apply(op);
        }
        h.drain();
    }
}
