//! Tests of the metadata log: a reopen rebuilds the same catalog, snapshots
//! compact the log, ids stay unique, a power loss never loses a change whose
//! append returned, and a damaged log is refused with the offset named.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hermod_core::catalog::Catalog;
use hermod_core::defs::{
    BindingDef, Change, ExchangeConfig, ExchangeDef, QueueConfig, SubscriptionConfig,
    SubscriptionDef, TopicConfig, TopicDef,
};
use hermod_core::meta::{MetaConfig, MetaError, MetaLog};
use hermod_core::routing::ExchangeKind;
use hermod_storage::batch::{self, BatchOptions, Record};
use hermod_storage::clock::{ManualClock, SystemClock};
use hermod_storage::io::{Fs, StdFs};
use hermod_storage::sim::SimFs;
use hermod_storage::{Durability, Log, LogConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn open_std(dir: &Path, config: MetaConfig) -> Result<(MetaLog, Catalog), MetaError> {
    MetaLog::open(dir, config, StdFs::shared(), SystemClock::shared())
}

/// Checks, appends and applies a change, and snapshots when due: the
/// broker's sequence.
fn commit(meta: &MetaLog, catalog: &mut Catalog, change: Change) {
    catalog
        .check(&change)
        .unwrap_or_else(|e| panic!("{change:?} refused: {e}"));
    meta.append(&change).unwrap();
    catalog.apply(&change).unwrap();
    if meta.needs_snapshot() {
        meta.snapshot(catalog).unwrap();
    }
}

fn topic(catalog: &mut Catalog, name: &str, partitions: u32) -> Change {
    Change::CreateTopic(TopicDef {
        id: catalog.allocate_id(),
        name: name.into(),
        config: TopicConfig {
            partitions,
            ..TopicConfig::default()
        },
        queue: None,
    })
}

fn subscription(
    catalog: &mut Catalog,
    topic: &str,
    name: &str,
    config: SubscriptionConfig,
) -> Change {
    let partitions = catalog.topics[topic].config.partitions as usize;
    Change::CreateSubscription(SubscriptionDef {
        id: catalog.allocate_id(),
        topic: topic.into(),
        name: name.into(),
        config,
        start_offsets: vec![0; partitions],
    })
}

/// The two changes that make a queue.
fn queue(catalog: &mut Catalog, name: &str, q: QueueConfig) -> [Change; 2] {
    let topic = Change::CreateTopic(TopicDef {
        id: catalog.allocate_id(),
        name: name.into(),
        config: q.topic_config(),
        queue: Some(q.clone()),
    });
    let subscription = Change::CreateSubscription(SubscriptionDef {
        id: catalog.allocate_id(),
        topic: name.into(),
        name: name.into(),
        config: q.subscription_config(),
        start_offsets: vec![0; q.partitions as usize],
    });
    [topic, subscription]
}

fn exchange(name: &str, kind: ExchangeKind, alternate: Option<&str>) -> Change {
    Change::CreateExchange(ExchangeDef {
        name: name.into(),
        config: ExchangeConfig {
            kind,
            alternate: alternate.map(Into::into),
        },
    })
}

fn binding(exchange: &str, destination: &str, key: &str) -> BindingDef {
    BindingDef {
        exchange: exchange.into(),
        destination: destination.into(),
        key: Some(key.into()),
        filter: None,
    }
}

/// Something of every kind, some of it deleted again.
fn populate(meta: &MetaLog, c: &mut Catalog) {
    let mut changes = vec![
        topic(c, "orders", 3),
        topic(c, "dlq", 1),
        topic(c, "scratch", 1),
    ];
    for change in changes.drain(..) {
        commit(meta, c, change);
    }
    let dead_lettering = SubscriptionConfig {
        dead_letter: Some("dlq".into()),
        max_deliveries: 5,
        ..SubscriptionConfig::default()
    };
    changes.push(subscription(c, "orders", "billing", dead_lettering));
    changes.push(subscription(
        c,
        "orders",
        "audit",
        SubscriptionConfig::default(),
    ));
    changes.push(subscription(
        c,
        "scratch",
        "tmp",
        SubscriptionConfig::default(),
    ));
    let fifo = QueueConfig {
        fifo: true,
        partitions: 2,
        ..QueueConfig::default()
    };
    changes.extend(queue(c, "jobs.fifo", fifo));
    changes.extend(queue(c, "mail", QueueConfig::default()));
    changes.push(exchange("events", ExchangeKind::Topic, Some("dlq")));
    changes.push(exchange("fan", ExchangeKind::Fanout, None));
    changes.push(Change::Bind(binding("events", "mail", "order.*")));
    changes.push(Change::Bind(binding("events", "jobs.fifo", "#")));
    changes.push(Change::Bind(binding("events", "scratch", "x")));
    changes.push(Change::Bind(binding("fan", "mail", "")));
    changes.push(Change::Unbind(binding("events", "jobs.fifo", "#")));
    changes.push(Change::DeleteTopic {
        name: "scratch".into(),
    });
    changes.push(Change::DeleteSubscription {
        topic: "orders".into(),
        name: "audit".into(),
    });
    for change in changes {
        commit(meta, c, change);
    }
}

#[test]
fn a_reopen_rebuilds_the_same_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, mut catalog) = open_std(dir.path(), MetaConfig::default()).unwrap();
    assert_eq!(catalog, Catalog::default());
    populate(&meta, &mut catalog);
    assert_eq!(catalog.subscriptions.len(), 3);
    assert_eq!(catalog.bindings.len(), 2);
    meta.close().unwrap();
    drop(meta);
    let (meta, reopened) = open_std(dir.path(), MetaConfig::default()).unwrap();
    assert_eq!(reopened, catalog);
    assert!(!meta.needs_snapshot());
    // Dropped without a close: opened as after a crash.
    drop(meta);
    let (_, reopened) = open_std(dir.path(), MetaConfig::default()).unwrap();
    assert_eq!(reopened, catalog);
}

#[test]
fn snapshots_compact_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = MetaConfig {
        segment_bytes: 1024,
        snapshot_every: 10,
        ..MetaConfig::default()
    };
    let (meta, mut catalog) = open_std(dir.path(), config).unwrap();
    populate(&meta, &mut catalog);
    for round in 0..40 {
        let name = format!("t{}", round % 4);
        if catalog.topics.contains_key(&name) {
            commit(&meta, &mut catalog, Change::DeleteTopic { name });
        } else {
            let change = topic(&mut catalog, &name, 1);
            commit(&meta, &mut catalog, change);
        }
    }
    // About 60 changes of a few hundred bytes each would fill dozens of
    // 1 KiB segments; what is left is the last snapshot and what follows.
    let segments = log_files(dir.path());
    assert!(segments.len() <= 6, "{segments:?}");
    assert!(
        !segments.contains(&format!("{:020}.log", 0)),
        "{segments:?}"
    );
    assert_eq!(meta.segment_count(), segments.len());
    meta.close().unwrap();
    drop(meta);
    let (meta, reopened) = open_std(dir.path(), config).unwrap();
    assert_eq!(reopened, catalog);
    meta.snapshot(&reopened).unwrap();
    drop(meta);
    let (_, again) = open_std(dir.path(), MetaConfig::default()).unwrap();
    assert_eq!(again, catalog);
}

#[test]
fn replayed_changes_count_towards_the_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let config = MetaConfig {
        snapshot_every: 3,
        ..MetaConfig::default()
    };
    let (meta, mut catalog) = open_std(dir.path(), config).unwrap();
    for name in ["a", "b"] {
        let change = topic(&mut catalog, name, 1);
        meta.append(&change).unwrap();
        catalog.apply(&change).unwrap();
    }
    assert!(!meta.needs_snapshot());
    drop(meta);
    let (meta, mut catalog) = open_std(dir.path(), config).unwrap();
    assert!(!meta.needs_snapshot());
    let change = topic(&mut catalog, "c", 1);
    meta.append(&change).unwrap();
    assert!(meta.needs_snapshot());
    catalog.apply(&change).unwrap();
    meta.snapshot(&catalog).unwrap();
    assert!(!meta.needs_snapshot());
}

#[test]
fn ids_stay_unique_across_delete_recreate_and_reopen() {
    for snapshot_every in [0, 1] {
        let dir = tempfile::tempdir().unwrap();
        let config = MetaConfig {
            snapshot_every,
            segment_bytes: 1024,
            ..MetaConfig::default()
        };
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (meta, mut catalog) = open_std(dir.path(), config).unwrap();
            if catalog.topics.contains_key("t") {
                commit(
                    &meta,
                    &mut catalog,
                    Change::DeleteTopic { name: "t".into() },
                );
                meta.close().unwrap();
                drop(meta);
                let (meta, mut catalog) = open_std(dir.path(), config).unwrap();
                let change = topic(&mut catalog, "t", 1);
                commit(&meta, &mut catalog, change);
            } else {
                let change = topic(&mut catalog, "t", 1);
                commit(&meta, &mut catalog, change);
            }
            let (_, catalog) = open_std(dir.path(), config).unwrap();
            let t = &catalog.topics["t"];
            assert!(
                !seen.contains(&t.id),
                "id {} handed out twice: {seen:?}",
                t.id
            );
            seen.push(t.id);
            assert!(catalog.next_id > t.id);
        }
    }
}

#[test]
fn garbage_is_corruption_naming_its_offset() {
    let bad_values: [(&[u8], &str); 4] = [
        (b"not json", "not a change or a snapshot"),
        (br#"{"other":{}}"#, "not a change or a snapshot"),
        (
            br#"{"change":{"op":"delete_topic","name":"ghost"}}"#,
            "does not apply",
        ),
        (
            br#"{"change":{"op":"create_topic","id":0,"name":"a"}}"#,
            "not a change",
        ),
    ];
    for (value, reason) in bad_values {
        let dir = tempfile::tempdir().unwrap();
        let (meta, mut catalog) = open_std(dir.path(), MetaConfig::default()).unwrap();
        for name in ["a", "b", "c"] {
            let change = topic(&mut catalog, name, 1);
            commit(&meta, &mut catalog, change);
        }
        meta.close().unwrap();
        drop(meta);
        append_raw(dir.path(), Some(value));
        match open_std(dir.path(), MetaConfig::default()) {
            Err(MetaError::Corrupt {
                offset,
                reason: why,
            }) => {
                assert_eq!(offset, 3, "{why}");
                assert!(why.contains(reason), "{why}");
            }
            other => panic!(
                "expected corruption at offset 3, got {:?}",
                other.map(|r| r.1)
            ),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    append_raw(dir.path(), None);
    let err = open_std(dir.path(), MetaConfig::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "metadata log is corrupt at offset 0: record has no value"
    );
}

#[test]
fn a_damaged_segment_is_refused_without_panic() {
    let fs = SimFs::new(7);
    let dir = Path::new("/meta");
    let clock = ManualClock::new(1_000);
    let open = || MetaLog::open(dir, MetaConfig::default(), fs.clone(), clock.clone());
    let (meta, mut catalog) = open().unwrap();
    populate(&meta, &mut catalog);
    meta.close().unwrap();
    drop(meta);
    let segment = dir.join(format!("{:020}.log", 0));
    fs.corrupt(&segment, 100, 0x40).unwrap();
    match open() {
        Err(MetaError::Storage(e)) => assert!(e.to_string().contains("corruption"), "{e}"),
        Err(e) => panic!("expected a storage corruption error, got {e}"),
        Ok(_) => panic!("a damaged metadata log was opened"),
    }
}

#[test]
fn a_power_loss_never_loses_a_change_whose_append_returned() {
    let mut crashes = 0;
    let mut maybes = 0;
    for seed in 0..100 {
        let mut run = CrashRun::new(seed);
        run.run(60);
        crashes += run.crashes;
        maybes += run.maybes;
    }
    assert!(crashes > 200, "only {crashes} crashes");
    assert!(maybes > 5, "only {maybes} failed appends");
}

/// One seed of the crash test: random changes, snapshots, injected sync
/// failures, clean closes and power losses over `SimFs`, checking after
/// every reopen that the catalog is exactly what the returned appends built.
struct CrashRun {
    fs: Arc<SimFs>,
    clock: Arc<ManualClock>,
    config: MetaConfig,
    rng: StdRng,
    model: Catalog,
    crashes: u64,
    maybes: u64,
}

impl CrashRun {
    fn new(seed: u64) -> CrashRun {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = MetaConfig {
            durability: Durability::Fsync,
            segment_bytes: rng.random_range(1024..4096),
            snapshot_every: rng.random_range(1..12),
        };
        CrashRun {
            fs: SimFs::new(seed),
            clock: ManualClock::new(1_000_000),
            config,
            rng,
            model: Catalog::default(),
            crashes: 0,
            maybes: 0,
        }
    }

    fn open(&self) -> (MetaLog, Catalog) {
        self.fs.fail_syncs(0);
        MetaLog::open(
            Path::new("/meta"),
            self.config,
            self.fs.clone() as Arc<dyn Fs>,
            self.clock.clone(),
        )
        .unwrap_or_else(|e| panic!("open failed: {e}"))
    }

    fn reopen_exact(&mut self) -> MetaLog {
        let (meta, catalog) = self.open();
        assert_eq!(catalog, self.model, "the log lost or invented a change");
        meta
    }

    fn crash(&mut self, meta: MetaLog) -> MetaLog {
        drop(meta);
        self.fs.crash();
        self.crashes += 1;
        self.reopen_exact()
    }

    fn run(&mut self, steps: usize) {
        let mut meta = self.reopen_exact();
        for _ in 0..steps {
            self.clock.advance(1);
            meta = match self.rng.random_range(0..100) {
                0..=79 => self.change(meta),
                80..=91 => self.crash(meta),
                _ => {
                    meta.close().unwrap();
                    drop(meta);
                    self.reopen_exact()
                }
            };
        }
        self.crash(meta);
    }

    /// Appends a random valid change, sometimes with a sync set to fail.
    fn change(&mut self, meta: MetaLog) -> MetaLog {
        let Some(change) = random_change(&mut self.rng, &mut self.model.clone()) else {
            return meta;
        };
        self.model.check(&change).unwrap();
        if self.rng.random_bool(0.05) {
            self.fs.fail_syncs(1);
        }
        if meta.append(&change).is_err() {
            return self.after_failed_append(meta, &change);
        }
        self.model.apply(&change).unwrap();
        if meta.needs_snapshot() {
            if self.rng.random_bool(0.1) {
                self.fs.fail_syncs(1);
            }
            if meta.snapshot(&self.model).is_err() {
                // Whether or not the snapshot landed, the catalog is the same.
                return self.crash(meta);
            }
        }
        meta
    }

    /// An append that failed was never acknowledged: after a power loss
    /// the change may be there or not, but nothing else may differ.
    fn after_failed_append(&mut self, meta: MetaLog, change: &Change) -> MetaLog {
        self.maybes += 1;
        drop(meta);
        self.fs.crash();
        self.crashes += 1;
        let (meta, catalog) = self.open();
        let mut with = self.model.clone();
        with.apply(change).unwrap();
        assert!(
            catalog == self.model || catalog == with,
            "after a failed append of {change:?} the catalog is neither without nor with it"
        );
        self.model = catalog;
        meta
    }
}

/// A random change that `model` accepts, if the draw finds one. Ids come
/// from `model` (a scratch copy: only applied changes move the real one).
fn random_change(rng: &mut StdRng, model: &mut Catalog) -> Option<Change> {
    let unfinished = model.queues_without_subscription().next().cloned();
    if let Some(q) = unfinished {
        return queue(model, &q.name, q.queue.unwrap()).into_iter().nth(1);
    }
    let change = match rng.random_range(0..10) {
        0 | 1 => topic(
            model,
            &format!("t{}", rng.random_range(0..6)),
            rng.random_range(1..4),
        ),
        2 => {
            let name = format!("q{}", rng.random_range(0..3));
            let fifo = rng.random_bool(0.5);
            let [topic, _] = queue(
                model,
                &name,
                QueueConfig {
                    fifo,
                    ..QueueConfig::default()
                },
            );
            topic
        }
        3 | 4 => {
            let topic = pick(rng, model.topics.keys())?;
            let dead_letter = pick(rng, model.topics.keys()).filter(|_| rng.random_bool(0.3));
            let config = SubscriptionConfig {
                max_deliveries: if dead_letter.is_some() { 3 } else { 0 },
                dead_letter,
                ..SubscriptionConfig::default()
            };
            subscription(
                model,
                &topic,
                &format!("s{}", rng.random_range(0..4)),
                config,
            )
        }
        5 => Change::DeleteTopic {
            name: pick(rng, model.topics.keys())?,
        },
        6 => {
            let (topic, name) = pick(rng, model.subscriptions.keys())?;
            Change::DeleteSubscription { topic, name }
        }
        7 => {
            let kinds = [
                ExchangeKind::Fanout,
                ExchangeKind::Direct,
                ExchangeKind::Topic,
            ];
            let kind = kinds[rng.random_range(0..kinds.len())];
            let alternate = pick(rng, model.topics.keys()).filter(|_| rng.random_bool(0.3));
            exchange(
                &format!("x{}", rng.random_range(0..3)),
                kind,
                alternate.as_deref(),
            )
        }
        8 => {
            let x = pick(rng, model.exchanges.keys())?;
            let destination = pick(rng, model.topics.keys())?;
            Change::Bind(binding(
                &x,
                &destination,
                &format!("k{}", rng.random_range(0..3)),
            ))
        }
        _ => match rng.random_range(0..2) {
            0 => Change::Unbind(pick(rng, model.bindings.iter())?),
            _ => Change::DeleteExchange {
                name: pick(rng, model.exchanges.keys())?,
            },
        },
    };
    model.check(&change).is_ok().then_some(change)
}

fn pick<'a, T: Clone + 'a>(
    rng: &mut StdRng,
    items: impl ExactSizeIterator<Item = &'a T>,
) -> Option<T> {
    let len = items.len();
    if len == 0 {
        return None;
    }
    let mut items = items;
    items.nth(rng.random_range(0..len)).cloned()
}

/// The names of the segment files in `dir`, sorted.
fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

/// Appends one record with `value` to the log in `dir`, bypassing `MetaLog`.
fn append_raw(dir: &Path, value: Option<&[u8]>) {
    let config = LogConfig {
        segment_ms: None,
        retention_ms: None,
        ..LogConfig::default()
    };
    let (log, _) = Log::open(dir, config, StdFs::shared(), SystemClock::shared()).unwrap();
    let record = Record {
        offset: 0,
        timestamp: 0,
        key: None,
        value: value.map(Bytes::copy_from_slice),
        headers: Vec::new(),
    };
    log.append(&mut batch::encode(&[record], &BatchOptions::default()))
        .unwrap();
    log.close().unwrap();
}
