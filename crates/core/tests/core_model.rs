//! Model-based test of the whole broker: random sequences of publishes,
//! receives, acks (valid and stale), nacks, extends, clock moves, purges,
//! ticks, crashes (the broker dropped without `close`, over fsync durability
//! on the real file system: a kill -9) and clean restarts, on a standard
//! queue, a FIFO queue and their dead-letter queue. A small reference model
//! predicts every answer, and after the run the queues are drained.
//!
//! Invariants checked (besides the model's exact answers):
//! - no acked record is delivered again;
//! - every published, unacked record is eventually delivered (the final
//!   drain empties every queue, and every record ends acked, purged or
//!   dead-lettered with its dead-letter copy acked or purged);
//! - in ordered mode no two records of a key are in flight at once, and a
//!   key's records are delivered in publish order;
//! - a record is dead-lettered after exactly `max_deliveries` deliveries,
//!   counting those before a crash (delivery counts are durable);
//! - no duplicate is appended within the de-duplication window, and after
//!   the window the same id is appended again;
//! - receipts from before a restart are rejected, and records leased before
//!   it are deliverable again at once, with their delivery counts kept.
//!
//! The standard and FIFO queues have one or two partitions. The model
//! follows the broker's fair receive across partitions: each receive starts
//! one partition further (counting from the first after an open) and stops
//! visiting partitions once it has `max` records, so a partition it does not
//! visit keeps its expired leases until later.
//!
//! `PROPTEST_CASES=n` runs more cases than the default.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use hermod_core::defs::QueueConfig;
use hermod_core::partition::partition_for_key;
use hermod_core::{Broker, BrokerConfig, Error, Message, Receipt, Received};
use hermod_storage::clock::{Clock, ManualClock};
use proptest::prelude::*;

const CASES: u32 = 128;
const MAX_OPS: usize = 60;
const MAX_DELIVERIES: u32 = 3;
/// A FIFO queue's default window.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// A queue's default visibility timeout.
const DEFAULT_VISIBILITY_MS: i64 = 30_000;
/// Message groups; with two partitions the first and last share one.
const KEYS: [&str; 3] = ["g0", "g1", "g2"];
const VISIBILITIES: [Option<u64>; 5] = [None, Some(0), Some(1_000), Some(5_000), Some(30_000)];
const NACK_DELAYS: [u64; 3] = [0, 500, 10_000];
const EXTENSIONS: [u64; 2] = [1_000, 20_000];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Q {
    Plain,
    Fifo,
    Dlq,
}

const QUEUES: [Q; 3] = [Q::Plain, Q::Fifo, Q::Dlq];

impl Q {
    fn name(self) -> &'static str {
        match self {
            Q::Plain => "plain",
            Q::Fifo => "orders.fifo",
            Q::Dlq => "dead-letters",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which receipt an operation uses: one the model holds valid (by index,
/// wrapped), or one it knows is stale.
#[derive(Debug, Clone, Copy)]
enum Target {
    Valid(usize),
    Stale(usize),
}

#[derive(Debug, Clone)]
enum Op {
    /// To the FIFO queue (with keys and de-duplication ids) or the plain one.
    /// Each message: key index (or none), de-duplication id index (or none).
    Publish {
        fifo: bool,
        messages: Vec<(Option<u8>, Option<u8>)>,
    },
    Receive {
        q: Q,
        max: usize,
        visibility: usize,
    },
    Ack {
        q: Q,
        targets: Vec<Target>,
    },
    Nack {
        q: Q,
        target: Target,
        delay: usize,
    },
    Extend {
        q: Q,
        target: Target,
        visibility: usize,
    },
    Advance(i64),
    Purge(Q),
    Tick,
    /// Drop the broker without closing it, and open it again.
    Crash,
    /// Close the broker cleanly, and open it again.
    Reopen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready {
        visible_at: i64,
    },
    Leased {
        receipt: Receipt,
        expires: i64,
    },
    /// Delivery budget spent and its lease lost in a restart: dead-lettered
    /// when the queue next reads its log (a receive).
    Doomed,
    Acked,
    /// Moved to the dead-letter queue.
    Dead,
    Purged,
}

impl State {
    fn finished(self) -> bool {
        matches!(self, State::Acked | State::Dead | State::Purged)
    }
}

#[derive(Debug)]
struct Rec {
    value: String,
    id: String,
    key: Option<&'static str>,
    /// Partition and offset in its queue; `None` for dead-letter copies,
    /// whose order in the (one-partition) dead-letter queue is the broker's
    /// choice.
    place: Option<(u32, u64)>,
    deliveries: u32,
    state: State,
    /// For a dead-letter copy: the original's queue, place and deliveries.
    origin: Option<(Q, (u32, u64), u32)>,
}

impl Rec {
    fn partition(&self) -> u32 {
        self.place.map_or(0, |(p, _)| p)
    }
}

#[derive(Debug)]
struct QueueModel {
    q: Q,
    ordered: bool,
    max_deliveries: u32,
    partitions: u32,
    /// Next offset per partition.
    ends: Vec<u64>,
    /// Receives since the broker opened (where the next one starts).
    receives: usize,
    recs: Vec<Rec>,
    by_value: HashMap<String, usize>,
    /// Every receipt handed out, valid or not.
    issued: Vec<Receipt>,
}

impl QueueModel {
    fn new(q: Q, ordered: bool, max_deliveries: u32, partitions: u32) -> QueueModel {
        QueueModel {
            q,
            ordered,
            max_deliveries,
            partitions,
            ends: vec![0; partitions as usize],
            receives: 0,
            recs: Vec::new(),
            by_value: HashMap::new(),
            issued: Vec::new(),
        }
    }

    fn push(&mut self, rec: Rec) {
        self.by_value.insert(rec.value.clone(), self.recs.len());
        self.recs.push(rec);
    }

    fn unfinished(&self) -> u64 {
        self.recs.iter().filter(|r| !r.state.finished()).count() as u64
    }

    fn leased(&self) -> u64 {
        let leased = |r: &&Rec| matches!(r.state, State::Leased { .. });
        self.recs.iter().filter(leased).count() as u64
    }

    fn valid_receipts(&self) -> Vec<Receipt> {
        self.recs
            .iter()
            .filter_map(|r| match r.state {
                State::Leased { receipt, .. } => Some(receipt),
                _ => None,
            })
            .collect()
    }

    fn holder(&self, receipt: &Receipt) -> Option<usize> {
        self.recs.iter().position(
            |r| matches!(r.state, State::Leased { receipt: held, .. } if held == *receipt),
        )
    }

    fn spent(&self, rec: &Rec) -> bool {
        self.max_deliveries > 0 && rec.deliveries >= self.max_deliveries
    }

    /// Records of a partition a receive may hand out now, by index.
    fn deliverable(&self, partition: u32, now: i64) -> Vec<usize> {
        let mut blocked: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for (i, r) in self.recs.iter().enumerate() {
            if r.state.finished() || r.partition() != partition {
                continue;
            }
            // Ordered: only the oldest unfinished record of a key may go.
            let head = match (self.ordered, r.key) {
                (true, Some(k)) => blocked.insert(k),
                _ => true,
            };
            let ready = matches!(r.state, State::Ready { visible_at } if visible_at <= now);
            if head && ready {
                out.push(i);
            }
        }
        out
    }
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    broker: Option<Broker>,
    models: Vec<QueueModel>,
    /// De-duplication id -> (place in the FIFO queue, time recorded).
    dedup: HashMap<String, ((u32, u64), i64)>,
    next_value: u64,
    acked: HashSet<(Q, String)>,
    /// FIFO: the offset of the last record delivered per key.
    last_delivered: HashMap<&'static str, u64>,
}

impl Harness {
    fn new(plain_max_deliveries: u32, plain_partitions: u32, fifo_partitions: u32) -> Harness {
        let mut h = Harness {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::new(1_000_000),
            broker: None,
            models: vec![
                QueueModel::new(Q::Plain, false, plain_max_deliveries, plain_partitions),
                QueueModel::new(Q::Fifo, true, MAX_DELIVERIES, fifo_partitions),
                QueueModel::new(Q::Dlq, false, 0, 1),
            ],
            dedup: HashMap::new(),
            next_value: 0,
            acked: HashSet::new(),
            last_delivered: HashMap::new(),
        };
        h.open();
        let broker = h.broker();
        broker
            .create_queue(Q::Dlq.name(), QueueConfig::default())
            .unwrap();
        let dead_letter = |max: u32| (max > 0).then(|| Q::Dlq.name().to_owned());
        let plain = QueueConfig {
            partitions: plain_partitions,
            max_deliveries: plain_max_deliveries,
            dead_letter: dead_letter(plain_max_deliveries),
            ..QueueConfig::default()
        };
        broker.create_queue(Q::Plain.name(), plain).unwrap();
        let fifo = QueueConfig {
            fifo: true,
            partitions: fifo_partitions,
            max_deliveries: MAX_DELIVERIES,
            dead_letter: dead_letter(MAX_DELIVERIES),
            ..QueueConfig::default()
        };
        broker.create_queue(Q::Fifo.name(), fifo).unwrap();
        h
    }

    fn open(&mut self) {
        assert!(self.broker.is_none());
        let mut config = BrokerConfig::new(self.dir.path());
        config.clock = self.clock.clone();
        config.trace_capacity = 1_000;
        // Small, so that snapshots (at ticks) and replays after them happen.
        config.journal_snapshot_every = 8;
        self.broker = Some(Broker::open(config).unwrap());
    }

    fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("open")
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn model(&mut self, q: Q) -> &mut QueueModel {
        &mut self.models[q.index()]
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Publish { fifo, messages } => self.publish(*fifo, messages),
            Op::Receive { q, max, visibility } => {
                self.receive(*q, *max, VISIBILITIES[*visibility]);
            }
            Op::Ack { q, targets } => {
                let receipts: Vec<Receipt> =
                    targets.iter().filter_map(|t| self.pick(*q, *t)).collect();
                self.ack(*q, &receipts);
            }
            Op::Nack { q, target, delay } => self.nack(*q, *target, NACK_DELAYS[*delay]),
            Op::Extend {
                q,
                target,
                visibility,
            } => self.extend(*q, *target, EXTENSIONS[*visibility]),
            Op::Advance(ms) => self.clock.advance(*ms),
            Op::Purge(q) => self.purge(*q),
            Op::Tick => {
                self.broker().tick().unwrap();
                let now = self.now();
                for q in QUEUES {
                    for p in 0..self.model(q).partitions {
                        self.reclaim(q, p, now, false);
                    }
                }
            }
            Op::Crash => self.restart(false),
            Op::Reopen => self.restart(true),
        }
        self.check();
    }

    fn publish(&mut self, fifo: bool, spec: &[(Option<u8>, Option<u8>)]) {
        let q = if fifo { Q::Fifo } else { Q::Plain };
        let now = self.now();
        let mut messages = Vec::new();
        let mut planned = Vec::new();
        for &(key, dedup) in spec {
            let value = format!("{}{}", if fifo { "f" } else { "p" }, self.next_value);
            self.next_value += 1;
            let key = key.map(|k| KEYS[k as usize]);
            let dedup = dedup.filter(|_| fifo).map(|d| format!("d{d}"));
            messages.push(Message {
                key: key.map(|k| Bytes::from_static(k.as_bytes())),
                value: Bytes::from(value.clone()),
                dedup_id: dedup.clone(),
                ..Message::default()
            });
            planned.push((value, key, dedup));
        }
        let published = self.broker().publish(q.name(), messages, None).unwrap();
        assert_eq!(published.len(), planned.len());
        for ((value, key, dedup), p) in planned.into_iter().zip(&published) {
            if let Some(d) = &dedup {
                if let Some(&(original, at)) = self.dedup.get(d) {
                    if now - at < DEDUP_WINDOW_MS {
                        assert!(p.duplicate, "{value} (id {d}) is a duplicate: {p:?}");
                        assert_eq!(
                            (p.partition, p.offset),
                            original,
                            "a duplicate gets the original's place"
                        );
                        continue;
                    }
                }
            }
            assert!(!p.duplicate, "{value} ({dedup:?}) is new: {p:?}");
            let m = self.model(q);
            if let Some(key) = key {
                let expected = partition_for_key(key.as_bytes(), m.partitions);
                assert_eq!(p.partition, expected, "{value}: partition of key {key}");
            }
            let end = &mut m.ends[p.partition as usize];
            assert_eq!(p.offset, *end, "{value}");
            *end += 1;
            let place = (p.partition, p.offset);
            m.push(Rec {
                value,
                id: p.id.clone(),
                key,
                place: Some(place),
                deliveries: 0,
                state: State::Ready {
                    visible_at: i64::MIN,
                },
                origin: None,
            });
            if let Some(d) = dedup {
                self.dedup.insert(d, (place, now));
            }
        }
    }

    /// What the queue does to a partition before it hands anything out:
    /// reclaim expired leases (dead-lettering records out of deliveries)
    /// and, if it reads its log (`feed`), dead-letter the doomed records of
    /// a restart.
    fn reclaim(&mut self, q: Q, partition: u32, now: i64, feed: bool) {
        let m = self.model(q);
        let mut doomed = Vec::new();
        for i in 0..m.recs.len() {
            if m.recs[i].partition() != partition {
                continue;
            }
            match m.recs[i].state {
                State::Leased { expires, .. } if expires <= now => {
                    if m.spent(&m.recs[i]) {
                        doomed.push(i);
                    } else {
                        m.recs[i].state = State::Ready { visible_at: now };
                    }
                }
                State::Doomed if feed => doomed.push(i),
                _ => {}
            }
        }
        for i in doomed {
            self.bury(q, i);
        }
    }

    fn bury(&mut self, q: Q, i: usize) {
        let m = self.model(q);
        assert!(m.spent(&m.recs[i]));
        let rec = &mut m.recs[i];
        assert_eq!(rec.deliveries, MAX_DELIVERIES);
        rec.state = State::Dead;
        let copy = Rec {
            value: rec.value.clone(),
            id: rec.id.clone(),
            key: rec.key,
            place: None,
            deliveries: 0,
            state: State::Ready {
                visible_at: i64::MIN,
            },
            origin: Some((q, rec.place.expect("an original"), rec.deliveries)),
        };
        self.model(Q::Dlq).push(copy);
    }

    fn receive(&mut self, q: Q, max: usize, visibility: Option<u64>) -> Vec<Received> {
        let now = self.now();
        // The partitions the receive visits, what each may hand out, and
        // how many it takes from each.
        let (n, start) = {
            let m = self.model(q);
            m.receives += 1;
            (m.partitions as usize, m.receives - 1)
        };
        let mut plan = HashMap::new();
        let mut planned = 0;
        for k in 0..n {
            if planned >= max {
                break;
            }
            let p = ((start + k) % n) as u32;
            self.reclaim(q, p, now, true);
            let deliverable = self.model(q).deliverable(p, now);
            let take = (max - planned).min(deliverable.len());
            planned += take;
            plan.insert(p, (take, deliverable));
        }
        let sub = self.broker().queue(q.name()).unwrap();
        let got = sub.receive(max, visibility).unwrap();
        let values: Vec<String> = got.iter().map(value_of).collect();
        let expected: Vec<(u32, usize, Vec<&str>)> = plan
            .iter()
            .map(|(p, (take, d))| {
                let m = &self.models[q.index()];
                let names = d.iter().map(|&i| m.recs[i].value.as_str()).collect();
                (*p, *take, names)
            })
            .collect();
        assert_eq!(
            got.len(),
            planned,
            "{}: receive({max}) got {values:?}; expected (partition, count, deliverable) {expected:?}",
            q.name(),
        );
        for (p, (take, _)) in &plan {
            let from_p = got.iter().filter(|r| r.receipt.partition == *p).count();
            assert_eq!(
                from_p,
                *take,
                "{}: receive({max}) got {values:?}; expected (partition, count, deliverable) {expected:?}",
                q.name(),
            );
        }
        let expires = now + visibility.map_or(DEFAULT_VISIBILITY_MS, |v| v as i64);
        for (r, value) in got.iter().zip(values) {
            assert!(
                !self.acked.contains(&(q, value.clone())),
                "{}: acked record {value} delivered again",
                q.name()
            );
            let m = &mut self.models[q.index()];
            let i = *m
                .by_value
                .get(&value)
                .unwrap_or_else(|| panic!("{}: unknown record {value}", q.name()));
            let deliverable = plan.get(&r.receipt.partition).map(|(_, d)| d);
            assert!(
                deliverable.is_some_and(|d| d.contains(&i)),
                "{}: {value} delivered while {:?}",
                q.name(),
                m.recs[i].state
            );
            let rec = &mut m.recs[i];
            assert_eq!(r.message.partition, rec.partition(), "{value}");
            assert_eq!(r.receipt.partition, rec.partition(), "{value}");
            assert_eq!(r.message.id, rec.id, "{value} keeps its id");
            let key = r.message.key.as_ref().map(|k| k.to_vec());
            assert_eq!(key, rec.key.map(|k| k.as_bytes().to_vec()), "{value}");
            if let Some((_, offset)) = rec.place {
                assert_eq!(r.message.offset, offset, "{value}");
            }
            assert_eq!(
                r.delivery_count,
                rec.deliveries + 1,
                "{}: delivery count of {value}",
                q.name()
            );
            match rec.origin {
                Some((from, (partition, offset), deliveries)) => {
                    let dead = r.message.dead_letter.as_ref().expect("a dead letter");
                    assert_eq!(dead.topic, from.name(), "{value}");
                    assert_eq!(dead.subscription, from.name(), "{value}");
                    assert_eq!(dead.partition, partition, "{value}");
                    assert_eq!(dead.offset, offset, "{value}");
                    assert_eq!(dead.reason, "max_deliveries", "{value}");
                    assert_eq!(dead.deliveries, MAX_DELIVERIES, "{value}");
                    assert_eq!(deliveries, MAX_DELIVERIES, "{value}");
                }
                None => assert!(r.message.dead_letter.is_none(), "{value}"),
            }
            rec.deliveries += 1;
            rec.state = State::Leased {
                receipt: r.receipt,
                expires,
            };
            m.issued.push(r.receipt);
            if let (true, Some(key), Some((_, offset))) = (m.ordered, rec.key, rec.place) {
                let last = self.last_delivered.entry(key).or_insert(offset);
                assert!(
                    offset >= *last,
                    "key {key}: offset {offset} delivered after {last}"
                );
                *last = offset;
            }
        }
        got
    }

    fn pick(&self, q: Q, target: Target) -> Option<Receipt> {
        let m = &self.models[q.index()];
        match target {
            Target::Valid(n) => {
                let valid = m.valid_receipts();
                (!valid.is_empty()).then(|| valid[n % valid.len()])
            }
            Target::Stale(n) => {
                // Stale receipts of this queue, and any of another queue.
                let mut stale: Vec<Receipt> = m
                    .issued
                    .iter()
                    .filter(|r| m.holder(r).is_none())
                    .copied()
                    .collect();
                for other in QUEUES.iter().filter(|o| **o != q) {
                    stale.extend(self.models[other.index()].issued.iter().copied());
                }
                (!stale.is_empty()).then(|| stale[n % stale.len()])
            }
        }
    }

    fn ack(&mut self, q: Q, receipts: &[Receipt]) {
        if receipts.is_empty() {
            return;
        }
        let sub = self.broker().queue(q.name()).unwrap();
        let results = sub.ack(receipts).unwrap();
        assert_eq!(results.len(), receipts.len());
        for (receipt, result) in receipts.iter().zip(results) {
            let m = self.model(q);
            match m.holder(receipt) {
                Some(i) => {
                    result.unwrap_or_else(|e| panic!("ack of {}: {e}", m.recs[i].value));
                    m.recs[i].state = State::Acked;
                    let value = m.recs[i].value.clone();
                    self.acked.insert((q, value));
                }
                None => assert!(
                    matches!(result, Err(Error::UnknownReceipt)),
                    "stale ack {receipt}: {result:?}"
                ),
            }
        }
    }

    fn nack(&mut self, q: Q, target: Target, delay: u64) {
        let Some(receipt) = self.pick(q, target) else {
            return;
        };
        let now = self.now();
        let result = self.broker().queue(q.name()).unwrap().nack(&receipt, delay);
        match self.model(q).holder(&receipt) {
            Some(i) => {
                result.unwrap();
                let m = self.model(q);
                if m.spent(&m.recs[i]) {
                    self.bury(q, i);
                } else {
                    m.recs[i].state = State::Ready {
                        visible_at: now + delay as i64,
                    };
                }
            }
            None => assert!(
                matches!(result, Err(Error::UnknownReceipt)),
                "stale nack {receipt}: {result:?}"
            ),
        }
    }

    fn extend(&mut self, q: Q, target: Target, visibility: u64) {
        let Some(receipt) = self.pick(q, target) else {
            return;
        };
        let now = self.now();
        let result = self
            .broker()
            .queue(q.name())
            .unwrap()
            .extend(&receipt, visibility);
        let m = self.model(q);
        match m.holder(&receipt) {
            Some(i) => match &mut m.recs[i].state {
                State::Leased { expires, .. } if *expires <= now => {
                    assert!(matches!(result, Err(Error::LeaseExpired)), "{result:?}");
                }
                State::Leased { expires, .. } => {
                    result.unwrap();
                    *expires = now + visibility as i64;
                }
                _ => unreachable!(),
            },
            None => assert!(
                matches!(result, Err(Error::UnknownReceipt)),
                "stale extend {receipt}: {result:?}"
            ),
        }
    }

    fn purge(&mut self, q: Q) {
        let dropped = self.broker().queue(q.name()).unwrap().purge().unwrap();
        let m = self.model(q);
        assert_eq!(dropped, m.unfinished(), "{}: purged", q.name());
        for rec in &mut m.recs {
            if !rec.state.finished() {
                rec.state = State::Purged;
            }
        }
    }

    /// Drops the broker (after `close` if `clean`) and opens it again.
    /// Leases and nack delays are not kept; delivery counts are.
    fn restart(&mut self, clean: bool) {
        let broker = self.broker.take().expect("open");
        if clean {
            broker.close().unwrap();
        }
        drop(broker);
        self.open();
        let held: Vec<(Q, Vec<Receipt>)> = self
            .models
            .iter()
            .map(|m| (m.q, m.valid_receipts()))
            .collect();
        for m in &mut self.models {
            m.receives = 0;
            for i in 0..m.recs.len() {
                match m.recs[i].state {
                    State::Leased { .. } if m.spent(&m.recs[i]) => {
                        m.recs[i].state = State::Doomed;
                    }
                    State::Leased { .. } | State::Ready { .. } => {
                        m.recs[i].state = State::Ready {
                            visible_at: i64::MIN,
                        };
                    }
                    _ => {}
                }
            }
        }
        // Every lease from before is gone.
        for (q, receipts) in held {
            let results = self.broker().queue(q.name()).unwrap().ack(&receipts);
            for result in results.unwrap() {
                assert!(matches!(result, Err(Error::UnknownReceipt)), "{result:?}");
            }
        }
    }

    /// The broker's counts agree with the model, and the FIFO queue has at
    /// most one record of a key in flight.
    fn check(&self) {
        for m in &self.models {
            let sub = self.broker().queue(m.q.name()).unwrap();
            assert_eq!(sub.depth(), m.unfinished(), "{}: depth", m.q.name());
            assert_eq!(sub.in_flight(), m.leased(), "{}: in flight", m.q.name());
        }
        let mut in_flight = HashSet::new();
        for rec in &self.models[Q::Fifo.index()].recs {
            if let (State::Leased { .. }, Some(key)) = (rec.state, rec.key) {
                assert!(in_flight.insert(key), "two records of key {key} in flight");
            }
        }
    }

    /// Moves past every lease and delay, then receives and acks until every
    /// queue is empty (the FIFO queue before the dead-letter queue, which it
    /// feeds); every record must have ended acked, dead-lettered or purged.
    /// A crash after that loses none of the acks.
    fn drain(&mut self) {
        self.clock.advance(3_600_000);
        for q in QUEUES {
            loop {
                let got = self.receive(q, 4, Some(60_000));
                if got.is_empty() {
                    break;
                }
                let receipts: Vec<Receipt> = got.iter().map(|r| r.receipt).collect();
                self.ack(q, &receipts);
                self.check();
            }
        }
        for m in &self.models {
            for rec in &m.recs {
                assert!(
                    rec.state.finished(),
                    "{}: {} never delivered: {:?}",
                    m.q.name(),
                    rec.value,
                    rec.state
                );
            }
        }
        self.restart(false);
        self.check();
        for q in QUEUES {
            assert!(self.receive(q, 10, None).is_empty());
        }
    }
}

fn value_of(r: &Received) -> String {
    String::from_utf8(r.message.value.to_vec()).unwrap()
}

fn queue() -> impl Strategy<Value = Q> {
    prop_oneof![3 => Just(Q::Plain), 4 => Just(Q::Fifo), 2 => Just(Q::Dlq)]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => any::<usize>().prop_map(Target::Valid),
        1 => any::<usize>().prop_map(Target::Stale),
    ]
}

fn message() -> impl Strategy<Value = (Option<u8>, Option<u8>)> {
    let key = prop_oneof![5 => (0..KEYS.len() as u8).prop_map(Some), 1 => Just(None)];
    let dedup = prop_oneof![2 => Just(None), 1 => (0..4u8).prop_map(Some)];
    (key, dedup)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (any::<bool>(), prop::collection::vec(message(), 1..=3))
            .prop_map(|(fifo, messages)| Op::Publish { fifo, messages }),
        12 => (queue(), 1..=4usize, 0..VISIBILITIES.len())
            .prop_map(|(q, max, visibility)| Op::Receive { q, max, visibility }),
        7 => (queue(), prop::collection::vec(target(), 1..=2))
            .prop_map(|(q, targets)| Op::Ack { q, targets }),
        6 => (queue(), target(), 0..NACK_DELAYS.len())
            .prop_map(|(q, target, delay)| Op::Nack { q, target, delay }),
        2 => (queue(), target(), 0..EXTENSIONS.len())
            .prop_map(|(q, target, visibility)| Op::Extend { q, target, visibility }),
        4 => (1i64..=3_000i64).prop_map(Op::Advance),
        2 => (30_000i64..=400_000i64).prop_map(Op::Advance),
        1 => queue().prop_map(Op::Purge),
        2 => Just(Op::Tick),
        3 => Just(Op::Crash),
        1 => Just(Op::Reopen),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_broker_agrees_with_the_model(
        plain_dead_letters in any::<bool>(),
        plain_partitions in 1..=2u32,
        fifo_partitions in 1..=2u32,
        ops in prop::collection::vec(op(), 10..=MAX_OPS),
    ) {
        let plain_max = if plain_dead_letters { MAX_DELIVERIES } else { 0 };
        let mut h = Harness::new(plain_max, plain_partitions, fifo_partitions);
        for op in &ops {
            h.run(op);
        }
        h.drain();
    }
}
