//! A live subscription: a durable, named cursor on a topic. `shared` and
//! `ordered` ones keep a [`delivery::Partition`] per topic partition and
//! hand out leased records; `stream` ones keep a position and a committed
//! offset per partition. Every change that must survive a crash is written
//! to the subscription's [`Journal`] before the caller hears of it: a
//! delivery before the consumer sees the record (so delivery counts, and
//! with them dead-lettering, survive), an ack or a dead letter before the
//! ack returns, a commit before it returns.
//!
//! Payloads are read from the topic's log when fed and kept only in a small
//! read-ahead cache (bounded in bytes), so a deep backlog costs no memory.
//!
//! Locks: `gate` (read for every change, write while a snapshot is taken
//! and written, so no journaled change can slip in front of the snapshot
//! that leaves it out, and while the floors a queue deletes below are read,
//! so none is past a change not yet journaled), then one partition's mutex
//! at a time. The journal is
//! written after the partition mutex is released, so consumers of one
//! partition share group commits instead of queueing behind each other.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use hermod_storage::clock::Clock;
use hermod_storage::io::Fs;

use crate::defs::{DeliveryMode, SubscriptionDef};
use crate::delivery::{self, DeadLetter, Delivery, DeliveryError, Fed, LeaseId, NackOutcome};
use crate::error::{Error, Result};
use crate::filter::{FilterPolicy, Scope};
use crate::journal::{Entry, Journal, JournalConfig, PartitionState, SubscriptionState};
use crate::partition::murmur2;
use crate::record::{self, DeadLetterInfo, Stored};
use crate::topic::{Topic, READ_CHUNK_BYTES};
use crate::trace::{Event, Tracer};

/// Most payload bytes a partition keeps read ahead.
pub const CACHE_BYTES: usize = 4 << 20;
/// Lease ids jump by this at every open, so receipts from before a restart
/// never match a new lease.
const LEASE_EPOCH: u64 = 1 << 40;

/// Identifies one delivery: subscription, partition and lease. Its text
/// form is what protocol fronts hand out as a receipt handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    pub subscription: u64,
    pub partition: u32,
    pub lease: u64,
}

impl std::fmt::Display for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:x}.{:x}.{:x}",
            self.subscription, self.partition, self.lease
        )
    }
}

impl std::str::FromStr for Receipt {
    type Err = Error;

    fn from_str(s: &str) -> Result<Receipt> {
        let bad = || Error::BadReceipt(s.chars().take(64).collect());
        let mut parts = s.split('.');
        let mut next = || parts.next().and_then(|p| u64::from_str_radix(p, 16).ok());
        let (Some(subscription), Some(partition), Some(lease)) = (next(), next(), next()) else {
            return Err(bad());
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        let partition = u32::try_from(partition).map_err(|_| bad())?;
        Ok(Receipt {
            subscription,
            partition,
            lease,
        })
    }
}

/// A record handed to a consumer of a `shared` or `ordered` subscription.
#[derive(Debug, Clone)]
pub struct Received {
    pub message: Stored,
    pub receipt: Receipt,
    /// 1 on the first delivery.
    pub delivery_count: u32,
}

/// Counters of a subscription since the broker started.
#[derive(Debug, Default)]
pub struct SubscriptionStats {
    pub delivered: AtomicU64,
    pub acked: AtomicU64,
    pub nacked: AtomicU64,
    pub expired: AtomicU64,
    pub filtered: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Records the log deleted (retention) before they were consumed.
    pub lost_to_retention: AtomicU64,
}

/// One partition's position in a `stream` subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition {
    pub partition: u32,
    /// Next offset `poll` reads.
    pub position: u64,
    /// Durably committed offset (where a restart resumes).
    pub committed: u64,
    pub log_start: u64,
    pub log_end: u64,
}

impl StreamPosition {
    /// Records after the committed offset.
    pub fn lag(&self) -> u64 {
        self.log_end
            .saturating_sub(self.committed.max(self.log_start))
    }
}

#[derive(Debug)]
pub struct Subscription {
    pub(crate) def: SubscriptionDef,
    pub(crate) topic: Arc<Topic>,
    filter: Option<(FilterPolicy, Scope)>,
    dead_letter: Option<Arc<Topic>>,
    journal: Journal,
    gate: RwLock<()>,
    parts: Vec<Mutex<Part>>,
    next_part: AtomicUsize,
    tracer: Arc<Tracer>,
    clock: Arc<dyn Clock>,
    pub(crate) stats: SubscriptionStats,
}

#[derive(Debug)]
enum Part {
    Leased(Box<LeasedPart>),
    Stream { position: u64, committed: u64 },
}

#[derive(Debug)]
struct LeasedPart {
    state: delivery::Partition,
    /// Fed records not yet delivered, by offset.
    cache: BTreeMap<u64, Stored>,
    cache_bytes: usize,
    /// Message ids of leased records, for traces.
    ids: HashMap<u64, String>,
    /// Records of the last log read that the buffer had no room for, and
    /// the offset that read ended at: the next fill starts from them
    /// instead of reading and decoding the same chunk again.
    ahead: Option<ReadAhead>,
}

/// Decoded records of one log read not fed yet (at most one read's worth,
/// [`READ_CHUNK_BYTES`]), in offset order.
#[derive(Debug)]
struct ReadAhead {
    records: VecDeque<Stored>,
    end: u64,
}

/// What moving a dead letter needs.
struct Doomed {
    partition: u32,
    dead: DeadLetter,
    reason: &'static str,
}

impl Subscription {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        dir: &Path,
        def: SubscriptionDef,
        topic: Arc<Topic>,
        dead_letter: Option<Arc<Topic>>,
        journal_config: JournalConfig,
        fs: Arc<dyn Fs>,
        clock: Arc<dyn Clock>,
        tracer: Arc<Tracer>,
    ) -> Result<Subscription> {
        let filter = match &def.config.filter {
            Some(spec) => Some((
                FilterPolicy::parse_for(&spec.policy, spec.scope)
                    .map_err(|e| Error::Invalid(format!("stored filter policy: {e}")))?,
                spec.scope,
            )),
            None => None,
        };
        let initial = SubscriptionState::starting_at(&def.start_offsets);
        let (journal, state) = Journal::open(dir, journal_config, fs, clock.clone(), initial)?;
        let parts = (0..topic.partitions() as usize)
            .map(|p| {
                let saved = state.partitions.get(p).cloned().unwrap_or_default();
                Mutex::new(restore_part(&def, saved))
            })
            .collect();
        let sub = Subscription {
            def,
            topic,
            filter,
            dead_letter,
            journal,
            gate: RwLock::new(()),
            parts,
            next_part: AtomicUsize::new(0),
            tracer,
            clock,
            stats: SubscriptionStats::default(),
        };
        // Persist the new lease epoch before any receipt of it is handed out.
        sub.snapshot()?;
        Ok(sub)
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn def(&self) -> &SubscriptionDef {
        &self.def
    }

    pub fn topic(&self) -> &Arc<Topic> {
        &self.topic
    }

    pub fn stats(&self) -> &SubscriptionStats {
        &self.stats
    }

    /// Leases up to `max` records for `visibility_ms` (the subscription's
    /// default when `None`), fairly across partitions. Returns at once;
    /// long-polling callers wait on the topic's doorbell and call again.
    pub fn receive(&self, max: usize, visibility_ms: Option<u64>) -> Result<Vec<Received>> {
        self.need_leased("receive")?;
        let now = self.clock.now_ms();
        let visibility = visibility_ms.unwrap_or(self.def.config.visibility_timeout_ms) as i64;
        let _gate = self.gate.read().unwrap();
        let mut out = Vec::new();
        let mut entries = Vec::new();
        let mut doomed = Vec::new();
        let n = self.parts.len();
        let first = self.next_part.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            if out.len() >= max {
                break;
            }
            let p = ((first + k) % n) as u32;
            let mut guard = self.parts[p as usize].lock().unwrap();
            let Part::Leased(part) = &mut *guard else {
                unreachable!("checked by need_leased")
            };
            let want = max - out.len();
            self.take(
                p,
                part,
                want,
                visibility,
                now,
                &mut out,
                &mut entries,
                &mut doomed,
            )?;
        }
        self.journal.append(&entries)?;
        for r in &out {
            self.tracer.record(
                &r.message.id,
                now,
                Event::Delivered {
                    topic: self.topic.name().to_owned(),
                    subscription: self.def.name.clone(),
                    delivery: r.delivery_count,
                },
            );
        }
        self.stats
            .delivered
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        self.bury(doomed, now)?;
        Ok(out)
    }

    /// Acks deliveries; each result says whether that receipt was still
    /// valid. Returns once the acks are durable.
    pub fn ack(&self, receipts: &[Receipt]) -> Result<Vec<Result<()>>> {
        self.need_leased("ack")?;
        let now = self.clock.now_ms();
        let _gate = self.gate.read().unwrap();
        let mut entries = Vec::new();
        let mut results = Vec::with_capacity(receipts.len());
        let mut acked_ids = Vec::new();
        for r in receipts {
            let outcome = self.with_part(r, |p, part| {
                let offset = part
                    .state
                    .ack(LeaseId::from_raw(r.lease))
                    .map_err(lease_error)?;
                push_finished(&mut entries, p, offset);
                acked_ids.extend(part.ids.remove(&offset));
                Ok(())
            });
            results.push(outcome);
        }
        self.journal.append(&entries)?;
        self.stats
            .acked
            .fetch_add(acked_ids.len() as u64, Ordering::Relaxed);
        for id in acked_ids {
            self.tracer.record(
                &id,
                now,
                self.event(|topic, subscription| Event::Acked {
                    topic,
                    subscription,
                }),
            );
        }
        Ok(results)
    }

    /// Gives a delivery back: visible again after `delay_ms`, or moved to
    /// the dead-letter destination if its deliveries are used up.
    pub fn nack(&self, receipt: &Receipt, delay_ms: u64) -> Result<()> {
        self.need_leased("nack")?;
        let now = self.clock.now_ms();
        let _gate = self.gate.read().unwrap();
        let mut doomed = Vec::new();
        let id = self.with_part(receipt, |p, part| {
            let lease = LeaseId::from_raw(receipt.lease);
            let offset = part.state.lease_offset(lease);
            let outcome = part.state.nack(lease, delay_ms as i64, now);
            let id = match outcome.map_err(lease_error)? {
                NackOutcome::Requeued => offset.and_then(|o| part.ids.remove(&o)),
                NackOutcome::DeadLettered(dead) => {
                    doomed.push(Doomed {
                        partition: p,
                        dead,
                        reason: "max_deliveries",
                    });
                    None
                }
            };
            Ok(id)
        })?;
        self.stats.nacked.fetch_add(1, Ordering::Relaxed);
        if let Some(id) = id {
            self.tracer.record(
                &id,
                now,
                self.event(|topic, subscription| Event::Nacked {
                    topic,
                    subscription,
                }),
            );
        }
        self.bury(doomed, now)?;
        self.topic.doorbell.ring();
        Ok(())
    }

    /// Keeps a delivery leased for `visibility_ms` from now.
    pub fn extend(&self, receipt: &Receipt, visibility_ms: u64) -> Result<()> {
        self.need_leased("extend")?;
        let now = self.clock.now_ms();
        self.with_part(receipt, |_, part| {
            let lease = LeaseId::from_raw(receipt.lease);
            part.state
                .extend(lease, visibility_ms as i64, now)
                .map_err(lease_error)
        })
    }

    /// Reclaims expired leases (dead-lettering records past their delivery
    /// budget) and rings the doorbell if any record became visible. The
    /// broker calls it periodically, so dead letters move even with no
    /// consumer polling.
    pub fn expire_leases(&self) -> Result<()> {
        if self.def.config.mode == DeliveryMode::Stream {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let _gate = self.gate.read().unwrap();
        let mut doomed = Vec::new();
        let mut released = false;
        for (p, m) in self.parts.iter().enumerate() {
            let mut guard = m.lock().unwrap();
            if let Part::Leased(part) = &mut *guard {
                let before = part.state.in_flight();
                for dead in part.state.expire(now) {
                    doomed.push(Doomed {
                        partition: p as u32,
                        dead,
                        reason: "max_deliveries",
                    });
                }
                released |= part.state.in_flight() < before;
            }
        }
        self.bury(doomed, now)?;
        if released {
            self.topic.doorbell.ring();
        }
        Ok(())
    }

    /// Finishes every record published so far (a queue purge).
    pub fn purge(&self) -> Result<u64> {
        self.need_leased("purge")?;
        let _gate = self.gate.read().unwrap();
        let mut entries = Vec::new();
        let mut dropped = 0;
        for (p, m) in self.parts.iter().enumerate() {
            let end = self.topic.log(p as u32)?.end_offset();
            let mut guard = m.lock().unwrap();
            if let Part::Leased(part) = &mut *guard {
                let floor = part.state.ack_floor();
                dropped += part.state.discard_below(end);
                part.cache.clear();
                part.ahead = None;
                part.cache_bytes = 0;
                part.ids.clear();
                if end > floor {
                    entries.push(Entry::Finished {
                        partition: p as u32,
                        start: floor,
                        end,
                    });
                }
            }
        }
        self.journal.append(&entries)?;
        Ok(dropped)
    }

    /// Drops the oldest ready record (a queue over its length limit), to
    /// the dead-letter destination if there is one. False if none was ready.
    pub(crate) fn drop_oldest(&self) -> Result<bool> {
        self.need_leased("drop")?;
        let now = self.clock.now_ms();
        let _gate = self.gate.read().unwrap();
        let mut doomed = Vec::new();
        for (p, m) in self.parts.iter().enumerate() {
            let mut guard = m.lock().unwrap();
            let Part::Leased(part) = &mut *guard else {
                continue;
            };
            self.fill(p as u32, part, now, &mut doomed)?;
            if let Some(dead) = part.state.drop_oldest_ready() {
                if let Some(s) = part.cache.remove(&dead.offset) {
                    part.cache_bytes -= s.size();
                }
                doomed.push(Doomed {
                    partition: p as u32,
                    dead,
                    reason: "overflow",
                });
                break;
            }
        }
        let any = !doomed.is_empty();
        self.bury(doomed, now)?;
        Ok(any)
    }

    /// Unfinished records (ready, delayed and in flight).
    pub fn depth(&self) -> u64 {
        self.parts
            .iter()
            .enumerate()
            .map(|(p, m)| {
                let end = self.topic.logs()[p].end_offset();
                match &*m.lock().unwrap() {
                    Part::Leased(part) => part.state.backlog_hint(end),
                    Part::Stream { committed, .. } => end.saturating_sub(*committed),
                }
            })
            .sum()
    }

    /// Records leased right now.
    pub fn in_flight(&self) -> u64 {
        self.parts
            .iter()
            .map(|m| match &*m.lock().unwrap() {
                Part::Leased(part) => part.state.in_flight() as u64,
                Part::Stream { .. } => 0,
            })
            .sum()
    }

    /// The lowest offset per partition this subscription still needs: every
    /// offset below is finished AND journaled, so a queue may delete it.
    pub(crate) fn floors(&self) -> Vec<u64> {
        // The gate, for writing: every change finishes offsets in memory
        // first and journals them (after moving dead letters) later, all
        // under the gate for reading. Without it, a floor read in between
        // let a queue's `delete_before` remove a dead letter's record
        // before `bury` read it (it was then dropped, never moved to the
        // dead-letter topic), or an ack's record before the ack was durable.
        let _gate = self.gate.write().unwrap();
        self.parts
            .iter()
            .map(|m| match &*m.lock().unwrap() {
                Part::Leased(part) => part.state.ack_floor(),
                Part::Stream { committed, .. } => *committed,
            })
            .collect()
    }

    /// Reads up to `max` records from the stream positions, fairly across
    /// partitions, skipping records the filter rejects or that expired, and
    /// moves the positions past them. Nothing is committed.
    pub fn poll(&self, max: usize, max_bytes: usize) -> Result<Vec<Stored>> {
        self.need_stream("poll")?;
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        let n = self.parts.len();
        let first = self.next_part.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            if out.len() >= max {
                break;
            }
            let p = ((first + k) % n) as u32;
            let mut guard = self.parts[p as usize].lock().unwrap();
            let Part::Stream { position, .. } = &mut *guard else {
                unreachable!("checked by need_stream")
            };
            let log = self.topic.log(p)?;
            *position = (*position).max(log.start_offset());
            while out.len() < max && *position < log.end_offset() {
                let want = max - out.len();
                let (records, next) = self.topic.read_up_to(p, *position, max_bytes, want)?;
                let mut last = *position;
                for r in records {
                    if out.len() >= max {
                        break;
                    }
                    last = r.offset + 1;
                    if self.passes(&r, now) {
                        out.push(r);
                    }
                }
                *position = if out.len() >= max {
                    last
                } else {
                    next.max(last)
                };
            }
        }
        Ok(out)
    }

    /// Durably commits `offset` (the next one to read) for a partition.
    pub fn commit(&self, partition: u32, offset: u64) -> Result<()> {
        self.need_stream("commit")?;
        let log_end = self.topic.log(partition)?.end_offset();
        if offset > log_end {
            return Err(Error::OffsetOutOfRange {
                offset,
                start: self.topic.log(partition)?.start_offset(),
                end: log_end,
            });
        }
        let _gate = self.gate.read().unwrap();
        self.journal
            .append(&[Entry::Committed { partition, offset }])?;
        if let Part::Stream { committed, .. } = &mut *self.parts[partition as usize].lock().unwrap()
        {
            *committed = offset;
        }
        Ok(())
    }

    /// Commits every partition's current position.
    pub fn commit_positions(&self) -> Result<()> {
        for p in self.positions()? {
            if p.position != p.committed {
                self.commit(p.partition, p.position)?;
            }
        }
        Ok(())
    }

    /// Moves a partition's position (not the committed offset).
    pub fn seek(&self, partition: u32, offset: u64) -> Result<()> {
        self.need_stream("seek")?;
        let log = self.topic.log(partition)?;
        let (start, end) = (log.start_offset(), log.end_offset());
        if offset < start || offset > end {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        if let Part::Stream { position, .. } = &mut *self.parts[partition as usize].lock().unwrap()
        {
            *position = offset;
        }
        Ok(())
    }

    /// Positions, committed offsets and lag per partition.
    pub fn positions(&self) -> Result<Vec<StreamPosition>> {
        self.need_stream("positions")?;
        let mut out = Vec::new();
        for (p, m) in self.parts.iter().enumerate() {
            let log = &self.topic.logs()[p];
            if let Part::Stream {
                position,
                committed,
            } = *m.lock().unwrap()
            {
                out.push(StreamPosition {
                    partition: p as u32,
                    position,
                    committed,
                    log_start: log.start_offset(),
                    log_end: log.end_offset(),
                });
            }
        }
        Ok(out)
    }

    /// Records the log deleted before this subscription finished them are
    /// dropped from its state (and counted).
    pub(crate) fn follow_log_start(&self) {
        let _gate = self.gate.read().unwrap();
        for (p, m) in self.parts.iter().enumerate() {
            let start = self.topic.logs()[p].start_offset();
            if let Part::Leased(part) = &mut *m.lock().unwrap() {
                let lost = part.state.discard_below(start);
                part.cache = part.cache.split_off(&start);
                part.cache_bytes = part.cache.values().map(Stored::size).sum();
                self.stats
                    .lost_to_retention
                    .fetch_add(lost, Ordering::Relaxed);
            }
        }
    }

    /// Writes a snapshot if enough has been journaled since the last one.
    pub(crate) fn maybe_snapshot(&self) -> Result<()> {
        if self.journal.needs_snapshot() {
            self.snapshot()?;
        }
        Ok(())
    }

    pub(crate) fn close(&self) -> Result<()> {
        self.snapshot()?;
        self.journal.close()?;
        Ok(())
    }

    fn snapshot(&self) -> Result<()> {
        let _gate = self.gate.write().unwrap();
        let partitions = self
            .parts
            .iter()
            .map(|m| match &*m.lock().unwrap() {
                Part::Leased(part) => PartitionState {
                    delivery: part.state.snapshot(),
                    committed: 0,
                },
                Part::Stream { committed, .. } => PartitionState {
                    committed: *committed,
                    ..PartitionState::default()
                },
            })
            .collect();
        self.journal
            .write_snapshot(&SubscriptionState { partitions })?;
        Ok(())
    }

    /// Feeds partition `p` and leases up to `want` of its records.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &self,
        p: u32,
        part: &mut LeasedPart,
        want: usize,
        visibility: i64,
        now: i64,
        out: &mut Vec<Received>,
        entries: &mut Vec<Entry>,
        doomed: &mut Vec<Doomed>,
    ) -> Result<()> {
        for dead in part.state.expire(now) {
            doomed.push(Doomed {
                partition: p,
                dead,
                reason: "max_deliveries",
            });
        }
        self.fill(p, part, now, doomed)?;
        let mut want = want;
        while want > 0 {
            let leased = part.state.receive(want, visibility, now);
            if leased.is_empty() {
                break;
            }
            for d in leased {
                let message = match part.cache.remove(&d.offset) {
                    Some(m) => {
                        part.cache_bytes -= m.size();
                        Some(m)
                    }
                    None => self.topic.read_one(p, d.offset)?,
                };
                match message {
                    Some(m) if !is_expired(&m, now) => {
                        entries.push(Entry::Delivered {
                            partition: p,
                            offset: d.offset,
                            count: d.delivery_count,
                        });
                        part.ids.insert(d.offset, m.id.clone());
                        out.push(received(self.def.id, p, d, m));
                        want -= 1;
                    }
                    gone => {
                        // Expired while waiting, or deleted by retention.
                        part.state.ack(d.lease).expect("just leased");
                        push_finished(entries, p, d.offset);
                        self.stats.expired.fetch_add(1, Ordering::Relaxed);
                        if let Some(m) = gone {
                            self.tracer.record(
                                &m.id,
                                now,
                                self.event(|topic, subscription| Event::Expired {
                                    topic,
                                    subscription,
                                }),
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads records from the log into the delivery state until its buffer
    /// is full or the log ends, skipping what the filter rejects and what
    /// has expired.
    fn fill(
        &self,
        p: u32,
        part: &mut LeasedPart,
        now: i64,
        doomed: &mut Vec<Doomed>,
    ) -> Result<()> {
        let log = self.topic.log(p)?.clone();
        while let Some(next) = part.state.next_to_feed() {
            if next >= log.end_offset() {
                break;
            }
            if next < log.start_offset() {
                let lost = part.state.discard_below(log.start_offset());
                self.stats
                    .lost_to_retention
                    .fetch_add(lost, Ordering::Relaxed);
                continue;
            }
            // The rest of the previous read, if it reaches `next`: with a
            // deep backlog the buffer has room for only the few records just
            // leased, and reading (and decoding) a whole chunk for each of
            // them cost far more than the delivery itself.
            let (mut records, read_end) = match part.ahead.take() {
                Some(ahead) if next < ahead.end => (ahead.records, ahead.end),
                _ => {
                    let (records, end) = self.topic.read(p, next, READ_CHUNK_BYTES)?;
                    (VecDeque::from(records), end)
                }
            };
            while let Some(want) = part.state.next_to_feed() {
                let Some(r) = records.pop_front() else {
                    break;
                };
                if r.offset < want {
                    continue;
                }
                if r.offset > want {
                    part.state.skip_to(r.offset);
                }
                self.feed_one(p, part, r, now, doomed);
            }
            match part.state.next_to_feed() {
                Some(want) if want < read_end => {
                    // Offsets the read passed over (undecodable batches).
                    part.state.skip_to(read_end);
                }
                Some(_) => {}
                None if !records.is_empty() => {
                    // The buffer is full: keep the rest for the next fill.
                    part.ahead = Some(ReadAhead {
                        records,
                        end: read_end,
                    });
                }
                None => {}
            }
        }
        Ok(())
    }

    fn feed_one(
        &self,
        p: u32,
        part: &mut LeasedPart,
        r: Stored,
        now: i64,
        doomed: &mut Vec<Doomed>,
    ) {
        if is_expired(&r, now) {
            part.state.skip_to(r.offset + 1);
            self.stats.expired.fetch_add(1, Ordering::Relaxed);
            self.tracer.record(
                &r.id,
                now,
                self.event(|topic, subscription| Event::Expired {
                    topic,
                    subscription,
                }),
            );
            return;
        }
        if !self.matches_filter(&r) {
            part.state.skip_to(r.offset + 1);
            self.stats.filtered.fetch_add(1, Ordering::Relaxed);
            self.tracer.record(
                &r.id,
                now,
                self.event(|topic, subscription| Event::Filtered {
                    topic,
                    subscription,
                }),
            );
            return;
        }
        let fed = Fed {
            offset: r.offset,
            key: r.key.as_ref().map(|k| murmur2(k) as u32 as u64),
            not_before_ms: r.not_before_ms.unwrap_or(i64::MIN),
        };
        if let Some(dead) = part.state.feed(fed) {
            doomed.push(Doomed {
                partition: p,
                dead,
                reason: "max_deliveries",
            });
            return;
        }
        if part.cache_bytes + r.size() <= CACHE_BYTES {
            part.cache_bytes += r.size();
            part.cache.insert(r.offset, r);
        }
    }

    /// Moves dead letters to the dead-letter destination (or drops them),
    /// then journals them as finished. A crash in between may move one
    /// twice, never lose it.
    fn bury(&self, doomed: Vec<Doomed>, now: i64) -> Result<()> {
        if doomed.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::new();
        for d in doomed {
            let p = d.partition;
            let offset = d.dead.offset;
            if let Some(m) = self.topic.read_one(p, offset)? {
                let to = self.dead_letter.as_ref().map(|t| t.name().to_owned());
                if let Some(dlq) = &self.dead_letter {
                    let copy = self.dead_letter_copy(&m, &d);
                    // Not de-duplicated: see `Topic::publish_moved`.
                    dlq.publish_moved(&[copy], std::slice::from_ref(&m.id))?;
                }
                let event = Event::DeadLettered {
                    topic: self.topic.name().to_owned(),
                    subscription: self.def.name.clone(),
                    reason: d.reason.to_owned(),
                    to,
                };
                self.tracer.record(&m.id, now, event);
            }
            if let Part::Leased(part) = &mut *self.parts[p as usize].lock().unwrap() {
                part.ids.remove(&offset);
            }
            push_finished(&mut entries, p, offset);
            self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        }
        self.journal.append(&entries)?;
        Ok(())
    }

    fn dead_letter_copy(&self, m: &Stored, d: &Doomed) -> record::Message {
        let mut copy = m.to_message();
        copy.dead_letter = Some(DeadLetterInfo {
            topic: self.topic.name().to_owned(),
            subscription: self.def.name.clone(),
            partition: d.partition,
            offset: d.dead.offset,
            reason: d.reason.to_owned(),
            deliveries: d.dead.deliveries,
        });
        copy
    }

    fn passes(&self, r: &Stored, now: i64) -> bool {
        !is_expired(r, now) && self.matches_filter(r)
    }

    fn matches_filter(&self, r: &Stored) -> bool {
        match &self.filter {
            None => true,
            Some((policy, Scope::Attributes)) => policy.matches_attributes(&r.attributes()),
            Some((policy, Scope::Body)) => policy.matches_body(&r.value),
        }
    }

    fn with_part<T>(
        &self,
        receipt: &Receipt,
        f: impl FnOnce(u32, &mut LeasedPart) -> Result<T>,
    ) -> Result<T> {
        if receipt.subscription != self.def.id {
            return Err(Error::UnknownReceipt);
        }
        let m = self
            .parts
            .get(receipt.partition as usize)
            .ok_or(Error::UnknownReceipt)?;
        match &mut *m.lock().unwrap() {
            Part::Leased(part) => f(receipt.partition, part),
            Part::Stream { .. } => Err(Error::UnknownReceipt),
        }
    }

    fn need_leased(&self, what: &'static str) -> Result<()> {
        match self.def.config.mode {
            DeliveryMode::Stream => Err(self.wrong_mode(what, "shared or ordered")),
            _ => Ok(()),
        }
    }

    fn need_stream(&self, what: &'static str) -> Result<()> {
        match self.def.config.mode {
            DeliveryMode::Stream => Ok(()),
            _ => Err(self.wrong_mode(what, "stream")),
        }
    }

    fn wrong_mode(&self, what: &'static str, needs: &'static str) -> Error {
        Error::WrongMode {
            subscription: self.def.name.clone(),
            mode: mode_name(self.def.config.mode),
            needs,
            what,
        }
    }

    /// A trace event about this subscription, built by one of the
    /// `Event` variants that name a topic and a subscription.
    fn event(&self, variant: fn(String, String) -> Event) -> Event {
        variant(self.topic.name().to_owned(), self.def.name.clone())
    }
}

pub fn mode_name(mode: DeliveryMode) -> &'static str {
    match mode {
        DeliveryMode::Stream => "stream",
        DeliveryMode::Shared => "shared",
        DeliveryMode::Ordered => "ordered",
    }
}

fn restore_part(def: &SubscriptionDef, saved: PartitionState) -> Part {
    let c = &def.config;
    let config = delivery::Config {
        mode: match c.mode {
            DeliveryMode::Ordered => delivery::Mode::Ordered,
            _ => delivery::Mode::Shared,
        },
        max_deliveries: c.max_deliveries,
        max_in_flight: c.max_in_flight,
        max_buffered: c.max_buffered,
    };
    match c.mode {
        DeliveryMode::Stream => Part::Stream {
            position: saved.committed,
            committed: saved.committed,
        },
        _ => {
            let mut snapshot = saved.delivery;
            snapshot.next_lease = snapshot.next_lease.saturating_add(LEASE_EPOCH);
            Part::Leased(Box::new(LeasedPart {
                state: delivery::Partition::restore(config, snapshot),
                cache: BTreeMap::new(),
                cache_bytes: 0,
                ahead: None,
                ids: HashMap::new(),
            }))
        }
    }
}

fn received(subscription: u64, partition: u32, d: Delivery, message: Stored) -> Received {
    Received {
        message,
        receipt: Receipt {
            subscription,
            partition,
            lease: d.lease.raw(),
        },
        delivery_count: d.delivery_count,
    }
}

fn is_expired(r: &Stored, now: i64) -> bool {
    r.expires_ms.is_some_and(|t| t <= now)
}

fn lease_error(e: DeliveryError) -> Error {
    match e {
        DeliveryError::UnknownLease => Error::UnknownReceipt,
        DeliveryError::LeaseExpired => Error::LeaseExpired,
    }
}

/// Adds a finished offset, extending the previous entry when contiguous.
fn push_finished(entries: &mut Vec<Entry>, partition: u32, offset: u64) {
    if let Some(Entry::Finished {
        partition: p, end, ..
    }) = entries.last_mut()
    {
        if *p == partition && *end == offset {
            *end = offset + 1;
            return;
        }
    }
    entries.push(Entry::Finished {
        partition,
        start: offset,
        end: offset + 1,
    });
}
