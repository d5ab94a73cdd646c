//! Delivery state for one partition of one `shared` or `ordered`
//! subscription (SQS standard / FIFO queues, AMQP queues), as a sans-IO state
//! machine: the caller feeds record offsets from the log in order when
//! [`Partition::next_to_feed`] asks for one, passes the time in as `now_ms`,
//! and reads payloads from the log itself. A received record is leased for a
//! visibility timeout; ack removes it, nack or lease expiry makes it visible
//! again, and past `max_deliveries` it is handed back for dead-lettering.
//! Memory is bounded by `max_in_flight + max_buffered` tracked records plus
//! one range per gap in the acked offsets above the ack floor, never by the
//! backlog.
//!
//! Durable restart: the caller persists a [`Snapshot`] (ack floor, acked
//! ranges above it, delivery counts of records delivered but not yet acked,
//! next lease id) and rebuilds with [`Partition::restore`]. Leases and nack
//! delays are not kept: after a restore every unacked record becomes visible
//! again once re-fed, with its delivery count intact; a lost lease counts as
//! an expiry, so a record that had used up `max_deliveries` is dead-lettered
//! when re-fed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::acked::AckedSet;

/// How records are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Any consumer may take any record, in any order.
    Shared,
    /// Like `Shared`, but records with the same key are delivered strictly in
    /// offset order, one at a time (SQS FIFO message groups). Records without
    /// a key are not ordered.
    Ordered,
}

/// Limits of one partition's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub mode: Mode,
    /// Deliveries after which a nack or expiry dead-letters the record; 0 means
    /// unlimited.
    pub max_deliveries: u32,
    /// Most records leased at once; must be at least 1.
    pub max_in_flight: usize,
    /// Most fed records not leased (new, delayed, held back or awaiting
    /// redelivery) before feeding stops; must be at least 1.
    pub max_buffered: usize,
}

/// One record as the caller reads it from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    pub offset: u64,
    /// Hash of the record key (the message group in ordered mode).
    pub key: Option<u64>,
    /// The record may not be delivered before this time.
    pub not_before_ms: i64,
}

/// Identifies one delivery of one record; a later delivery of the same offset
/// gets a new id, so a stale ack or nack is rejected. Protocol fronts encode it
/// in receipt handles via [`LeaseId::from_raw`] and [`LeaseId::raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(u64);

impl LeaseId {
    /// A lease id decoded from a receipt handle; unknown ids are rejected by
    /// the operations that take them.
    pub fn from_raw(raw: u64) -> Self {
        LeaseId(raw)
    }

    /// The id as a number, for encoding in receipt handles.
    pub fn raw(self) -> u64 {
        self.0
    }
}

/// A record handed to a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub offset: u64,
    pub lease: LeaseId,
    /// 1 on the first delivery.
    pub delivery_count: u32,
}

/// A record the caller must move to the dead-letter destination; it already
/// counts as acked here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetter {
    pub offset: u64,
    pub deliveries: u32,
}

/// What a nack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackOutcome {
    Requeued,
    DeadLettered(DeadLetter),
}

/// Why an operation on a lease was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Never issued, already acked or nacked, reclaimed by [`Partition::expire`],
    /// or issued before a restore.
    #[error("unknown or stale lease")]
    UnknownLease,
    /// The lease's visibility timeout has passed; it can no longer be extended.
    #[error("lease has expired")]
    LeaseExpired,
}

/// What the caller persists to rebuild a [`Partition`] after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every offset below is acked or dead-lettered.
    pub ack_floor: u64,
    /// Acked or dead-lettered offsets above the floor, as sorted disjoint
    /// half-open `(start, end)` ranges.
    pub acked: Vec<(u64, u64)>,
    /// Delivery counts of unacked records delivered at least once, by offset.
    pub deliveries: Vec<(u64, u32)>,
    /// First lease id not yet issued, so pre-restart leases stay stale.
    pub next_lease: u64,
}

/// Delivery state of one partition of one shared or ordered subscription.
#[derive(Debug)]
pub struct Partition {
    config: Config,
    /// Acked, dead-lettered and skipped offsets.
    acked: AckedSet,
    /// Lowest offset that may still need feeding (acked ones are skipped).
    next_feed: u64,
    /// Fed, unacked records.
    records: BTreeMap<u64, Record>,
    leases: HashMap<LeaseId, u64>,
    /// Ordered mode: unacked fed offsets per key; only the first may go out.
    keys: HashMap<u64, BTreeSet<u64>>,
    /// Delivery counts from a snapshot, applied when the offset is re-fed.
    restored: BTreeMap<u64, u32>,
    next_lease: u64,
}

impl Partition {
    /// An empty state whose first unconsumed offset is `start_offset`.
    ///
    /// Panics if `max_in_flight` or `max_buffered` is 0 (programmer error:
    /// nothing could ever be delivered).
    pub fn new(config: Config, start_offset: u64) -> Self {
        assert!(config.max_in_flight > 0, "max_in_flight must be at least 1");
        assert!(config.max_buffered > 0, "max_buffered must be at least 1");
        Partition {
            config,
            acked: AckedSet::new(start_offset),
            next_feed: start_offset,
            records: BTreeMap::new(),
            leases: HashMap::new(),
            keys: HashMap::new(),
            restored: BTreeMap::new(),
            next_lease: 0,
        }
    }

    /// Rebuilds the state saved by [`Partition::snapshot`]. No record is
    /// leased afterwards; the caller re-feeds from the ack floor (acked offsets
    /// are skipped by [`Partition::next_to_feed`]).
    pub fn restore(config: Config, snapshot: Snapshot) -> Self {
        let mut p = Partition::new(config, snapshot.ack_floor);
        p.acked = AckedSet::from_parts(snapshot.ack_floor, &snapshot.acked);
        p.next_feed = p.acked.floor();
        // Counts of offsets that are acked would never be re-fed, so never freed.
        let live = |p: &Partition, o: u64| !p.acked.contains(o);
        let deliveries = snapshot
            .deliveries
            .into_iter()
            .filter(|&(o, _)| live(&p, o))
            .collect();
        p.restored = deliveries;
        p.next_lease = snapshot.next_lease;
        p
    }

    /// The state to persist for [`Partition::restore`].
    pub fn snapshot(&self) -> Snapshot {
        let fed = self.records.iter().map(|(&o, r)| (o, r.deliveries));
        let mut deliveries: Vec<(u64, u32)> = fed
            .chain(self.restored.iter().map(|(&o, &d)| (o, d)))
            .filter(|&(_, d)| d > 0)
            .collect();
        deliveries.sort_unstable();
        Snapshot {
            ack_floor: self.acked.floor(),
            acked: self.acked.ranges(),
            deliveries,
            next_lease: self.next_lease,
        }
    }

    /// The offset the caller should read from the log and [`feed`] next, or
    /// `None` while `max_buffered` unleased records are already held.
    ///
    /// [`feed`]: Partition::feed
    pub fn next_to_feed(&self) -> Option<u64> {
        if self.records.len() - self.leases.len() >= self.config.max_buffered {
            return None;
        }
        // After a restore the cursor may sit inside an acked range, or below
        // a floor that a dead-lettered re-fed record pushed past such a range.
        Some(self.acked.next_unfinished(self.next_feed))
    }

    /// Adds the record the caller read at [`Partition::next_to_feed`].
    ///
    /// After a restore, a record that was in flight with its delivery budget
    /// spent is dead-lettered here (its lost lease counts as an expiry) and
    /// returned for the caller to move.
    ///
    /// Panics if `record.offset` is not what `next_to_feed` returned
    /// (programmer error).
    pub fn feed(&mut self, record: Fed) -> Option<DeadLetter> {
        assert_eq!(
            self.next_to_feed(),
            Some(record.offset),
            "fed an offset that was not asked for"
        );
        self.next_feed = record.offset + 1;
        let deliveries = self.restored.remove(&record.offset).unwrap_or(0);
        let max = self.config.max_deliveries;
        if max > 0 && deliveries >= max {
            self.complete(record.offset);
            return Some(DeadLetter {
                offset: record.offset,
                deliveries,
            });
        }
        let rec = Record {
            key: record.key,
            deliveries,
            visible_at: record.not_before_ms,
            lease: None,
        };
        self.records.insert(record.offset, rec);
        if let (Mode::Ordered, Some(key)) = (self.config.mode, record.key) {
            self.keys.entry(key).or_default().insert(record.offset);
        }
        None
    }

    /// Marks the offsets from the one [`Partition::next_to_feed`] asks for
    /// up to `end` as finished without delivering them: records the
    /// subscription's filter rejects, records already expired when read, or
    /// offsets the log has no readable record for. Does nothing while the
    /// buffer is full.
    pub fn skip_to(&mut self, end: u64) {
        let Some(next) = self.next_to_feed() else {
            return;
        };
        if end <= next {
            return;
        }
        self.next_feed = end;
        self.restored.retain(|&o, _| o < next || o >= end);
        self.acked.insert(next, end);
    }

    /// The offset a lease holds, if it is current.
    pub fn lease_offset(&self, lease: LeaseId) -> Option<u64> {
        self.leases.get(&lease).copied()
    }

    /// Finishes every offset below `start` (the log deleted them, or the
    /// subscription was purged up to there), leased or not, and returns how
    /// many unfinished offsets that dropped. Their leases become stale.
    pub fn discard_below(&mut self, start: u64) -> u64 {
        let floor = self.acked.floor();
        if start <= floor {
            return 0;
        }
        let dropped = start - floor - self.acked.count_in(floor, start);
        let doomed: Vec<u64> = self.records.range(..start).map(|(&o, _)| o).collect();
        for offset in doomed {
            if let Some((id, _)) = self.records.get(&offset).and_then(|r| r.lease) {
                self.leases.remove(&id);
            }
            self.complete(offset);
        }
        self.restored = self.restored.split_off(&start);
        self.acked.insert(floor, start);
        self.next_feed = self.next_feed.max(start);
        dropped
    }

    /// Finishes the oldest fed record that is not leased and returns it
    /// with its delivery count (a queue over its length limit drops its
    /// head), or `None` if no fed record is waiting.
    pub fn drop_oldest_ready(&mut self) -> Option<DeadLetter> {
        let (&offset, rec) = self.records.iter().find(|(_, r)| r.lease.is_none())?;
        let deliveries = rec.deliveries;
        self.complete(offset);
        Some(DeadLetter { offset, deliveries })
    }

    /// Leases up to `max` deliverable records (bounded by `max_in_flight`) for
    /// `visibility_ms`. Due redeliveries come first, then new records, each in
    /// offset order. Expired leases are not reclaimed here: call
    /// [`Partition::expire`] first so dead letters are not lost.
    pub fn receive(&mut self, max: usize, visibility_ms: i64, now_ms: i64) -> Vec<Delivery> {
        let room = self
            .config
            .max_in_flight
            .saturating_sub(self.leases.len())
            .min(max);
        let mut picked: Vec<u64> = self.eligible(now_ms, true).take(room).collect();
        if picked.len() < room {
            let more = room - picked.len();
            picked.extend(self.eligible(now_ms, false).take(more).collect::<Vec<_>>());
        }
        let expires = now_ms.saturating_add(visibility_ms.max(0));
        picked
            .into_iter()
            .map(|offset| self.lease(offset, expires))
            .collect()
    }

    /// Acks the delivery holding `lease`, returning its offset.
    pub fn ack(&mut self, lease: LeaseId) -> Result<u64, DeliveryError> {
        let offset = self
            .leases
            .remove(&lease)
            .ok_or(DeliveryError::UnknownLease)?;
        self.complete(offset);
        Ok(offset)
    }

    /// Gives the delivery back: visible again after `delay_ms`, or dead-lettered
    /// if it has been delivered `max_deliveries` times.
    pub fn nack(
        &mut self,
        lease: LeaseId,
        delay_ms: i64,
        now_ms: i64,
    ) -> Result<NackOutcome, DeliveryError> {
        let offset = self
            .leases
            .remove(&lease)
            .ok_or(DeliveryError::UnknownLease)?;
        let visible_at = now_ms.saturating_add(delay_ms.max(0));
        Ok(match self.release(offset, visible_at) {
            Some(dead) => NackOutcome::DeadLettered(dead),
            None => NackOutcome::Requeued,
        })
    }

    /// Keeps the record leased until `now_ms + visibility_ms`. An expired
    /// lease cannot be extended, even before [`Partition::expire`] ran.
    pub fn extend(
        &mut self,
        lease: LeaseId,
        visibility_ms: i64,
        now_ms: i64,
    ) -> Result<(), DeliveryError> {
        let offset = *self.leases.get(&lease).ok_or(DeliveryError::UnknownLease)?;
        let held = self.records.get_mut(&offset).and_then(|r| r.lease.as_mut());
        let (_, expires) = held.ok_or(DeliveryError::UnknownLease)?;
        if *expires <= now_ms {
            return Err(DeliveryError::LeaseExpired);
        }
        *expires = now_ms.saturating_add(visibility_ms.max(0));
        Ok(())
    }

    /// Reclaims leases expired at `now_ms`: each record becomes visible again,
    /// or, past `max_deliveries`, is dead-lettered and returned (offset order)
    /// for the caller to move.
    pub fn expire(&mut self, now_ms: i64) -> Vec<DeadLetter> {
        let expired: Vec<(u64, LeaseId)> = self
            .records
            .iter()
            .filter_map(|(&o, r)| {
                r.lease
                    .filter(|&(_, exp)| exp <= now_ms)
                    .map(|(id, _)| (o, id))
            })
            .collect();
        let mut dead = Vec::new();
        for (offset, id) in expired {
            self.leases.remove(&id);
            dead.extend(self.release(offset, now_ms));
        }
        dead
    }

    /// Every offset below is acked or dead-lettered: what the caller commits,
    /// and how far retention may delete.
    pub fn ack_floor(&self) -> u64 {
        self.acked.floor()
    }

    /// Records currently leased.
    pub fn in_flight(&self) -> usize {
        self.leases.len()
    }

    /// Unacked records below `log_end` (the subscription's depth).
    pub fn backlog_hint(&self, log_end: u64) -> u64 {
        let floor = self.acked.floor();
        log_end.saturating_sub(floor) - self.acked.count_in(floor, log_end.max(floor))
    }

    /// Earliest lease expiry or visibility time of a record that is otherwise
    /// deliverable, so a long-polling caller knows when to call
    /// [`Partition::expire`] / [`Partition::receive`] again. A time in the past
    /// means something is deliverable now (unless `max_in_flight` is reached).
    pub fn next_deadline(&self) -> Option<i64> {
        let leases = self
            .records
            .values()
            .filter_map(|r| r.lease.map(|(_, exp)| exp));
        let visible = self
            .records
            .iter()
            .filter(|(&o, r)| r.lease.is_none() && self.is_head(o, r))
            .map(|(_, r)| r.visible_at);
        leases.chain(visible).min()
    }

    /// Records held in memory (fed and unacked, plus restored delivery counts
    /// not yet re-fed); never above `max_in_flight + max_buffered`.
    pub fn tracked(&self) -> usize {
        self.records.len() + self.restored.len()
    }

    /// Acked ranges held above the ack floor: at most one per run of unacked
    /// offsets below the highest acked one.
    pub fn acked_ranges(&self) -> usize {
        self.acked.range_count()
    }
}

/// One fed, unacked record.
#[derive(Debug, Clone, Copy)]
struct Record {
    key: Option<u64>,
    deliveries: u32,
    /// Not deliverable before this (not-before time, or nack delay).
    visible_at: i64,
    lease: Option<(LeaseId, i64)>,
}

impl Partition {
    /// Unleased, due, unblocked offsets in order: redeliveries if `redelivery`,
    /// else never-delivered records.
    fn eligible(&self, now_ms: i64, redelivery: bool) -> impl Iterator<Item = u64> + '_ {
        self.records
            .iter()
            .filter(move |(&o, r)| {
                r.lease.is_none()
                    && (r.deliveries > 0) == redelivery
                    && r.visible_at <= now_ms
                    && self.is_head(o, r)
            })
            .map(|(&o, _)| o)
    }

    /// Whether no earlier unacked record of the same key holds this one back.
    fn is_head(&self, offset: u64, record: &Record) -> bool {
        match (self.config.mode, record.key) {
            (Mode::Ordered, Some(key)) => {
                self.keys.get(&key).and_then(|set| set.first()) == Some(&offset)
            }
            _ => true,
        }
    }

    fn lease(&mut self, offset: u64, expires: i64) -> Delivery {
        let id = LeaseId(self.next_lease);
        self.next_lease += 1;
        self.leases.insert(id, offset);
        // Only offsets from `records` are ever leased.
        let rec = self
            .records
            .get_mut(&offset)
            .expect("eligible offset is tracked");
        rec.deliveries = rec.deliveries.saturating_add(1);
        rec.lease = Some((id, expires));
        Delivery {
            offset,
            lease: id,
            delivery_count: rec.deliveries,
        }
    }

    /// Ends a lease (already removed from `leases`): requeue, or dead-letter
    /// when the delivery budget is spent.
    fn release(&mut self, offset: u64, visible_at: i64) -> Option<DeadLetter> {
        let max = self.config.max_deliveries;
        let rec = self.records.get_mut(&offset)?;
        rec.lease = None;
        if max > 0 && rec.deliveries >= max {
            let deliveries = rec.deliveries;
            self.complete(offset);
            return Some(DeadLetter { offset, deliveries });
        }
        rec.visible_at = visible_at;
        None
    }

    /// Forgets a finished (acked or dead-lettered) record.
    fn complete(&mut self, offset: u64) {
        if let Some(rec) = self.records.remove(&offset) {
            self.unblock_key(offset, rec.key);
        }
        self.acked.insert(offset, offset + 1);
    }

    fn unblock_key(&mut self, offset: u64, key: Option<u64>) {
        let Some(key) = key else { return };
        if let Some(set) = self.keys.get_mut(&key) {
            set.remove(&offset);
            if set.is_empty() {
                self.keys.remove(&key);
            }
        }
    }
}
