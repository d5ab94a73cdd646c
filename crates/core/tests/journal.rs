//! Tests of the subscription journal: replay after a clean reopen, snapshot
//! compaction, crash safety over the fault-injecting file system (every
//! append that returned Ok survives a power loss), the codec (round trips,
//! garbage never panics) and `apply` against a plain reference model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hermod_core::delivery::Snapshot;
use hermod_core::journal::{
    decode, encode_entries, encode_snapshot, Entry, Item, Journal, JournalConfig, PartitionState,
    SubscriptionState,
};
use hermod_storage::batch::{self, BatchOptions, Record};
use hermod_storage::clock::{Clock, ManualClock, SystemClock};
use hermod_storage::io::{Fs, StdFs};
use hermod_storage::sim::{CrashMode, SimFs};
use hermod_storage::{Durability, Error, Log, LogConfig};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Seeds of the randomized crash test.
const CRASH_SEEDS: u64 = 200;

fn small_config() -> JournalConfig {
    JournalConfig {
        durability: Durability::Fsync,
        segment_bytes: 4096,
        snapshot_every: 100,
    }
}

fn open_std(
    dir: &Path,
    config: JournalConfig,
    initial: SubscriptionState,
) -> (Journal, SubscriptionState) {
    Journal::open(dir, config, StdFs::shared(), SystemClock::shared(), initial).unwrap()
}

fn open_sim(
    fs: &Arc<SimFs>,
    config: JournalConfig,
    initial: SubscriptionState,
) -> (Journal, SubscriptionState) {
    let fs: Arc<dyn Fs> = fs.clone();
    let clock: Arc<dyn Clock> = ManualClock::new(1_000);
    Journal::open(Path::new("/journal"), config, fs, clock, initial).unwrap()
}

fn delivered(partition: u32, offset: u64, count: u32) -> Entry {
    Entry::Delivered {
        partition,
        offset,
        count,
    }
}

fn finished(partition: u32, start: u64, end: u64) -> Entry {
    Entry::Finished {
        partition,
        start,
        end,
    }
}

fn committed(partition: u32, offset: u64) -> Entry {
    Entry::Committed { partition, offset }
}

fn applied(mut state: SubscriptionState, entries: &[Entry]) -> SubscriptionState {
    for entry in entries {
        state.apply(entry);
    }
    state
}

#[test]
fn a_new_journal_returns_its_initial_state_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let initial = SubscriptionState::starting_at(&[10, 20]);
    let (journal, state) = open_std(dir.path(), small_config(), initial.clone());
    assert_eq!(state, initial);
    assert_eq!(state.partitions[1].delivery.ack_floor, 20);
    assert_eq!(state.partitions[1].committed, 20);
    journal.close().unwrap();
    let other = SubscriptionState::starting_at(&[0]);
    let (_, state) = open_std(dir.path(), small_config(), other);
    assert_eq!(state, initial, "an existing journal ignores `initial`");
}

#[test]
fn entries_survive_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let initial = SubscriptionState::starting_at(&[0, 100]);
    let (journal, _) = open_std(dir.path(), small_config(), initial.clone());
    let entries = [
        delivered(0, 0, 1),
        delivered(0, 1, 1),
        delivered(0, 3, 1),
        delivered(0, 3, 2),
        delivered(0, 1, 1),
        finished(0, 2, 3),
        finished(0, 4, 6),
        committed(1, 150),
        committed(1, 140),
    ];
    journal.append(&entries[..5]).unwrap();
    journal.append(&entries[5..]).unwrap();
    journal.append(&[]).unwrap();
    journal.close().unwrap();

    let (journal, state) = open_std(dir.path(), small_config(), SubscriptionState::default());
    let p0 = &state.partitions[0].delivery;
    assert_eq!(p0.ack_floor, 0);
    assert_eq!(p0.acked, vec![(2, 3), (4, 6)]);
    assert_eq!(
        p0.deliveries,
        vec![(0, 1), (1, 1), (3, 2)],
        "max count wins"
    );
    assert_eq!(p0.next_lease, 5, "one lease per delivery");
    assert_eq!(state.partitions[1].committed, 140, "the last commit wins");
    assert_eq!(state, applied(initial, &entries));

    // Finishing the gaps moves the floor over every merged range.
    journal
        .append(&[finished(0, 0, 2), finished(0, 3, 4)])
        .unwrap();
    journal.close().unwrap();
    let (_, state) = open_std(dir.path(), small_config(), SubscriptionState::default());
    let p0 = &state.partitions[0].delivery;
    assert_eq!(
        (p0.ack_floor, p0.acked.len(), p0.deliveries.len()),
        (6, 0, 0)
    );
}

#[test]
fn a_snapshot_deletes_old_segments_and_replays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, mut model) = open_std(
        dir.path(),
        small_config(),
        SubscriptionState::starting_at(&[0, 0]),
    );
    for i in 0..300u64 {
        let entries = [
            delivered((i % 2) as u32, i, 1),
            finished((i % 2) as u32, i.saturating_sub(3), i.saturating_sub(2)),
            committed(1, i),
        ];
        journal.append(&entries).unwrap();
        model = applied(model, &entries);
    }
    assert!(journal.needs_snapshot());
    let before = journal.segment_count();
    assert!(before > 3, "the test needs several segments, got {before}");
    journal.write_snapshot(&model).unwrap();
    assert!(!journal.needs_snapshot());
    assert!(
        journal.segment_count() <= 2,
        "{} segments left",
        journal.segment_count()
    );
    journal.close().unwrap();

    let (journal, state) = open_std(dir.path(), small_config(), SubscriptionState::default());
    assert_eq!(state, model);
    assert!(!journal.needs_snapshot());
    // Entries replayed at open count towards the next snapshot.
    let entries: Vec<Entry> = (0..100).map(|i| committed(0, i)).collect();
    journal.append(&entries).unwrap();
    drop(journal);
    let (journal, _) = open_std(dir.path(), small_config(), SubscriptionState::default());
    assert!(journal.needs_snapshot());
}

#[test]
fn only_entries_after_the_last_snapshot_are_applied_on_top_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, state) = open_std(
        dir.path(),
        small_config(),
        SubscriptionState::starting_at(&[0]),
    );
    journal
        .append(&[delivered(0, 5, 3), delivered(0, 7, 2)])
        .unwrap();
    journal.append(&[committed(0, 100)]).unwrap();

    // The snapshot says offset 5 is finished and 7 was never delivered (the
    // caller's word is final): earlier entries must not come back over it.
    let mut snapshot = state;
    snapshot.partitions[0].delivery = Snapshot {
        ack_floor: 0,
        acked: vec![(5, 6)],
        deliveries: vec![],
        next_lease: 2,
    };
    snapshot.partitions[0].committed = 50;
    journal.write_snapshot(&snapshot).unwrap();
    let after = [delivered(0, 9, 1), finished(0, 0, 5)];
    journal.append(&after).unwrap();
    journal.close().unwrap();

    let (_, state) = open_std(dir.path(), small_config(), SubscriptionState::default());
    let expected = applied(snapshot, &after);
    assert_eq!(state, expected);
    let p0 = &state.partitions[0];
    assert_eq!(p0.delivery.ack_floor, 6);
    assert_eq!(p0.delivery.deliveries, vec![(9, 1)]);
    assert_eq!(p0.delivery.next_lease, 3);
    assert_eq!(p0.committed, 50);
}

#[test]
fn entries_for_partitions_out_of_range_are_ignored() {
    let mut state = SubscriptionState::starting_at(&[0, 0]);
    let before = state.clone();
    assert!(!state.apply(&delivered(2, 0, 1)));
    assert!(!state.apply(&finished(7, 0, 10)));
    assert!(!state.apply(&committed(u32::MAX, 3)));
    assert_eq!(state, before);
    assert!(state.apply(&committed(1, 3)));

    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open_std(dir.path(), small_config(), before.clone());
    journal
        .append(&[delivered(2, 0, 1), committed(1, 3), finished(9, 0, 4)])
        .unwrap();
    journal.close().unwrap();
    let (_, replayed) = open_std(dir.path(), small_config(), SubscriptionState::default());
    assert_eq!(replayed, state);
}

#[test]
fn delivered_after_finished_is_ignored_and_finished_drops_counts() {
    let mut state = SubscriptionState::starting_at(&[10]);
    state.apply(&delivered(0, 12, 1));
    state.apply(&delivered(0, 15, 4));
    state.apply(&delivered(0, 15, 2));
    state.apply(&finished(0, 11, 14));
    state.apply(&delivered(0, 12, 5));
    state.apply(&delivered(0, 3, 1));
    let p0 = &state.partitions[0].delivery;
    assert_eq!(p0.deliveries, vec![(15, 4)]);
    assert_eq!(p0.acked, vec![(11, 14)]);
    state.apply(&finished(0, 10, 11));
    state.apply(&finished(0, 14, 14));
    state.apply(&finished(0, 16, 14));
    let p0 = &state.partitions[0].delivery;
    assert_eq!((p0.ack_floor, p0.acked.clone()), (14, vec![]));
}

#[test]
fn a_snapshot_is_durable_even_when_appends_are_not_synced() {
    let fs = SimFs::new(7);
    let config = JournalConfig {
        durability: Durability::Interval { ms: 1_000_000 },
        ..small_config()
    };
    let (journal, mut model) = open_sim(&fs, config, SubscriptionState::starting_at(&[0]));
    for i in 0..200 {
        let entries = [delivered(0, i, 1), finished(0, i, i + 1)];
        journal.append(&entries).unwrap();
        model = applied(model, &entries);
    }
    journal.write_snapshot(&model).unwrap();
    drop(journal);
    fs.crash_with(CrashMode::DropUnsynced);
    let (_, state) = open_sim(&fs, config, SubscriptionState::default());
    assert_eq!(state, model);
}

#[test]
fn the_initial_snapshot_survives_a_crash() {
    let fs = SimFs::new(3);
    let initial = SubscriptionState::starting_at(&[4, 5, 6]);
    let (journal, _) = open_sim(&fs, small_config(), initial.clone());
    drop(journal);
    fs.crash_with(CrashMode::DropUnsynced);
    let (_, state) = open_sim(&fs, small_config(), SubscriptionState::default());
    assert_eq!(state, initial);
}

/// Writes one raw record with `value` into the journal's log, behind the
/// journal's back.
fn append_raw(dir: &Path, value: Vec<u8>) {
    let config = LogConfig {
        segment_bytes: 4096,
        retention_ms: None,
        segment_ms: None,
        ..LogConfig::default()
    };
    let (log, _) = Log::open(dir, config, StdFs::shared(), SystemClock::shared()).unwrap();
    let record = Record {
        offset: 0,
        timestamp: 0,
        key: None,
        value: Some(Bytes::from(value)),
        headers: vec![],
    };
    log.append(&mut batch::encode(&[record], &BatchOptions::default()))
        .unwrap();
    log.close().unwrap();
}

#[test]
fn a_record_that_does_not_decode_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open_std(
        dir.path(),
        small_config(),
        SubscriptionState::starting_at(&[0]),
    );
    journal.append(&[committed(0, 1)]).unwrap();
    journal.close().unwrap();
    append_raw(dir.path(), vec![0xee, 1, 2]);
    let err = Journal::open(
        dir.path(),
        small_config(),
        StdFs::shared(),
        SystemClock::shared(),
        SubscriptionState::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Corruption { position: 2, .. }),
        "{err}"
    );
}

#[test]
fn a_journal_without_a_snapshot_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    append_raw(dir.path(), encode_entries(&[committed(0, 1)]));
    let err = Journal::open(
        dir.path(),
        small_config(),
        StdFs::shared(),
        SystemClock::shared(),
        SubscriptionState::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
}

/// A few random entries around the current floors, some of them for a
/// partition the state does not have.
fn random_entries(rng: &mut StdRng, state: &SubscriptionState) -> Vec<Entry> {
    let parts = state.partitions.len() as u32;
    (0..rng.random_range(1..6))
        .map(|_| {
            let partition = rng.random_range(0..parts + 1);
            let floor = state
                .partitions
                .get(partition as usize)
                .map_or(0, |p| p.delivery.ack_floor);
            let offset = floor + rng.random_range(0..24);
            match rng.random_range(0..10) {
                0..=4 => delivered(partition, offset, rng.random_range(1..5)),
                5..=8 => finished(
                    partition,
                    offset.saturating_sub(2),
                    offset + rng.random_range(0..4),
                ),
                _ => committed(partition, offset),
            }
        })
        .collect()
}

/// What the crash runs did, so the test can tell that it exercised
/// something.
#[derive(Debug, Default)]
struct Coverage {
    appends: u64,
    snapshots: u64,
    segments_deleted: u64,
    failed_appends: u64,
}

/// One seed: rounds of random appends and snapshots, each ended by a power
/// loss (sometimes with a failing sync first), then a reopen that must
/// return exactly the acknowledged state (or, after a failed append, that
/// state with or without it).
fn crash_run(seed: u64, seen: &mut Coverage) {
    let mut rng = StdRng::seed_from_u64(seed);
    let fs = SimFs::new(seed);
    let config = JournalConfig {
        durability: Durability::Fsync,
        segment_bytes: rng.random_range(1024..4096),
        snapshot_every: rng.random_range(5..60),
    };
    let starts: Vec<u64> = (0..rng.random_range(1..4))
        .map(|_| rng.random_range(0..1000))
        .collect();
    let (mut journal, mut model) = open_sim(&fs, config, SubscriptionState::starting_at(&starts));
    for round in 0..3 {
        for _ in 0..rng.random_range(0..50) {
            if journal.needs_snapshot() && rng.random_bool(0.8) {
                let before = journal.segment_count();
                journal.write_snapshot(&model).unwrap();
                seen.snapshots += 1;
                seen.segments_deleted +=
                    (before + 1).saturating_sub(journal.segment_count()) as u64;
            }
            let entries = random_entries(&mut rng, &model);
            journal.append(&entries).unwrap();
            seen.appends += 1;
            model = applied(model, &entries);
        }
        let mut unacknowledged = None;
        if rng.random_bool(0.3) {
            fs.fail_syncs(1);
            let entries = random_entries(&mut rng, &model);
            let with = applied(model.clone(), &entries);
            match journal.append(&entries) {
                Ok(()) => model = with,
                Err(_) => {
                    seen.failed_appends += 1;
                    unacknowledged = Some(with);
                }
            }
        }
        drop(journal);
        fs.crash();
        let (reopened, state) = open_sim(&fs, config, SubscriptionState::default());
        assert!(
            state == model || Some(&state) == unacknowledged.as_ref(),
            "seed {seed} round {round}: recovered {state:?}\nexpected {model:?}"
        );
        model = state;
        journal = reopened;
    }
}

#[test]
fn every_acknowledged_append_survives_a_crash() {
    let mut seen = Coverage::default();
    for seed in 0..CRASH_SEEDS {
        crash_run(seed, &mut seen);
    }
    assert!(seen.appends > 10_000, "{seen:?}");
    assert!(
        seen.snapshots > 200 && seen.segments_deleted > 50,
        "{seen:?}"
    );
    assert!(seen.failed_appends > 20, "{seen:?}");
}

fn entry_strategy() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(p, o, c)| delivered(p, o, c)),
        (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(p, a, b)| finished(
            p,
            a.min(b),
            a.max(b)
        )),
        (any::<u32>(), any::<u64>()).prop_map(|(p, o)| committed(p, o)),
    ]
}

/// Entries over a small offset space, so ranges collide and merge.
fn small_entry_strategy(parts: u32) -> impl Strategy<Value = Entry> {
    prop_oneof![
        (0..parts + 1, 0..64u64, 1..6u32).prop_map(|(p, o, c)| delivered(p, o, c)),
        (0..parts + 1, 0..64u64, 0..6u64).prop_map(|(p, s, l)| finished(p, s, s + l)),
        (0..parts + 1, 0..64u64).prop_map(|(p, o)| committed(p, o)),
    ]
}

/// The plain reference for one partition: finished offsets as a set.
#[derive(Debug, Clone)]
struct ModelPartition {
    start: u64,
    finished: BTreeSet<u64>,
    deliveries: BTreeMap<u64, u32>,
    next_lease: u64,
    committed: u64,
}

impl ModelPartition {
    fn is_finished(&self, offset: u64) -> bool {
        offset < self.start || self.finished.contains(&offset)
    }

    fn apply(&mut self, entry: &Entry) {
        match *entry {
            Entry::Delivered { offset, count, .. } => {
                self.next_lease += 1;
                if !self.is_finished(offset) {
                    let held = self.deliveries.entry(offset).or_insert(0);
                    *held = (*held).max(count);
                }
            }
            Entry::Finished { start, end, .. } => {
                for offset in start..end {
                    self.finished.insert(offset);
                    self.deliveries.remove(&offset);
                }
            }
            Entry::Committed { offset, .. } => self.committed = offset,
        }
    }

    fn state(&self) -> PartitionState {
        let mut floor = self.start;
        while self.finished.contains(&floor) {
            floor += 1;
        }
        let mut acked: Vec<(u64, u64)> = Vec::new();
        for &offset in self.finished.range(floor..) {
            match acked.last_mut() {
                Some((_, end)) if *end == offset => *end += 1,
                _ => acked.push((offset, offset + 1)),
            }
        }
        PartitionState {
            delivery: Snapshot {
                ack_floor: floor,
                acked,
                deliveries: self.deliveries.iter().map(|(&o, &c)| (o, c)).collect(),
                next_lease: self.next_lease,
            },
            committed: self.committed,
        }
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn damaged_records_never_panic_the_decoder(
        entries in proptest::collection::vec(small_entry_strategy(3), 1..20),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let state = applied(SubscriptionState::starting_at(&[0, 5, 9]), &entries);
        for mut value in [encode_entries(&entries), encode_snapshot(&state)] {
            for (at, xor) in &flips {
                let i = at.index(value.len());
                value[i] ^= xor;
            }
            let _ = decode(&value);
            let _ = decode(&value[..cut.index(value.len())]);
        }
    }

    #[test]
    fn entries_round_trip(entries in proptest::collection::vec(entry_strategy(), 1..50)) {
        let items: Vec<Item> = entries.iter().copied().map(Item::Entry).collect();
        prop_assert_eq!(decode(&encode_entries(&entries)).unwrap(), items);
    }

    #[test]
    fn snapshots_round_trip(
        starts in proptest::collection::vec(0..1u64 << 40, 0..5),
        entries in proptest::collection::vec(small_entry_strategy(5), 0..80),
    ) {
        let shifted: Vec<Entry> = entries
            .iter()
            .map(|e| shift(e, starts.get(e.partition() as usize).copied().unwrap_or(0)))
            .collect();
        let state = applied(SubscriptionState::starting_at(&starts), &shifted);
        let decoded = decode(&encode_snapshot(&state)).unwrap();
        prop_assert_eq!(decoded, vec![Item::Snapshot(state)]);
    }

    #[test]
    fn apply_matches_a_plain_model(
        starts in proptest::collection::vec(0..8u64, 1..4),
        entries in proptest::collection::vec(small_entry_strategy(3), 0..120),
    ) {
        let mut state = SubscriptionState::starting_at(&starts);
        let mut model: Vec<ModelPartition> = starts
            .iter()
            .map(|&start| ModelPartition {
                start,
                finished: BTreeSet::new(),
                deliveries: BTreeMap::new(),
                next_lease: 0,
                committed: start,
            })
            .collect();
        for entry in &entries {
            let index = entry.partition() as usize;
            prop_assert_eq!(state.apply(entry), index < model.len());
            if let Some(partition) = model.get_mut(index) {
                partition.apply(entry);
            }
            let expected: Vec<PartitionState> = model.iter().map(ModelPartition::state).collect();
            prop_assert_eq!(&state.partitions, &expected);
        }
    }
}

/// Moves an entry's offsets up by `by`.
fn shift(entry: &Entry, by: u64) -> Entry {
    match *entry {
        Entry::Delivered {
            partition,
            offset,
            count,
        } => delivered(partition, offset + by, count),
        Entry::Finished {
            partition,
            start,
            end,
        } => finished(partition, start + by, end + by),
        Entry::Committed { partition, offset } => committed(partition, offset + by),
    }
}
