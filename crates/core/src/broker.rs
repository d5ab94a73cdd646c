//! The broker: one data directory holding the metadata log, the topics'
//! partition logs and the subscriptions' journals, and the live objects
//! built from them. Every protocol front talks to this.
//!
//! Layout: `meta/` (the metadata log), `topics/{id}/{partition}/`,
//! `subscriptions/{id}/` (journals). Ids, not names, name directories, so a
//! topic deleted and created again never meets its old files; directories
//! the catalog does not know (a crash between a delete's log record and its
//! removal) are removed at open.
//!
//! A definition change is checked against the catalog, its files are
//! created, it is appended to the metadata log (durable), and only then
//! applied and made live. Lock order: `meta`, then `live`; a topic's or
//! subscription's own locks are taken only after `live` is released.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hermod_storage::clock::Clock;
use hermod_storage::io::Fs;
use hermod_storage::sim::SimFs;
use hermod_storage::{Durability, Flusher};

use crate::catalog::{Catalog, CatalogError};
use crate::defs::{
    BindingDef, Change, DurabilityMode, ExchangeConfig, ExchangeDef, Overflow, QueueConfig,
    StartPosition, SubscriptionConfig, SubscriptionDef, TopicConfig, TopicDef,
};
use crate::error::{Error, Result};
use crate::journal::JournalConfig;
use crate::meta::{MetaConfig, MetaLog};
use crate::record::{self, IdGenerator, Message};
use crate::routing::{self, Exchange, Miss};
use crate::subscription::{Received, Subscription};
use crate::topic::{Published, Topic};
use crate::trace::{Event, Traced, Tracer};

/// How a broker is set up.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    pub fs: Arc<dyn Fs>,
    pub clock: Arc<dyn Clock>,
    /// Messages whose traces are kept in memory.
    pub trace_capacity: usize,
    /// Entries between two snapshots of a subscription journal.
    pub journal_snapshot_every: u64,
    pub meta: MetaConfig,
}

impl BrokerConfig {
    /// Defaults over the real file system and clock.
    pub fn new(data_dir: impl Into<PathBuf>) -> BrokerConfig {
        BrokerConfig {
            data_dir: data_dir.into(),
            fs: hermod_storage::io::StdFs::shared(),
            clock: hermod_storage::clock::SystemClock::shared(),
            trace_capacity: 100_000,
            journal_snapshot_every: JournalConfig::default().snapshot_every,
            meta: MetaConfig::default(),
        }
    }
}

/// What publishing to an exchange did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub id: String,
    /// Each destination the message was appended to, and where.
    pub published: Vec<(String, Published)>,
    /// Bindings that did not take it, and why.
    pub missed: Vec<(String, Miss)>,
    /// No binding took it (it went to the alternate destination, if any).
    pub unroutable: bool,
}

#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    meta: Mutex<(MetaLog, Catalog)>,
    live: RwLock<Live>,
    tracer: Arc<Tracer>,
    ids: IdGenerator,
    flusher: Flusher,
    memory_fs: Arc<dyn Fs>,
}

#[derive(Debug, Default)]
struct Live {
    topics: HashMap<String, Arc<Topic>>,
    subscriptions: HashMap<(String, String), Arc<Subscription>>,
    exchanges: HashMap<String, Arc<(ExchangeDef, Exchange)>>,
}

impl Broker {
    /// Opens (or creates) the broker's data directory and everything in it.
    pub fn open(config: BrokerConfig) -> Result<Broker> {
        let dir = config.data_dir.clone();
        let fs = config.fs.clone();
        let (meta, catalog) = MetaLog::open(
            &dir.join("meta"),
            config.meta,
            fs.clone(),
            config.clock.clone(),
        )?;
        let broker = Broker {
            tracer: Arc::new(Tracer::new(config.trace_capacity)),
            ids: IdGenerator::new(),
            flusher: Flusher::start(Duration::from_millis(10)),
            memory_fs: SimFs::memory(),
            meta: Mutex::new((meta, Catalog::default())),
            live: RwLock::new(Live::default()),
            config,
        };
        broker.load(catalog)?;
        broker.remove_orphans()?;
        broker.repair_queues()?;
        Ok(broker)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// A copy of the catalog of definitions.
    pub fn catalog(&self) -> Catalog {
        self.meta.lock().unwrap().1.clone()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.config.clock
    }

    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<TopicDef> {
        let mut meta = self.meta.lock().unwrap();
        let def = TopicDef {
            id: meta.1.allocate_id(),
            name: name.to_owned(),
            config,
            queue: None,
        };
        self.add_topic(&mut meta, def.clone())?;
        Ok(def)
    }

    /// Creates a queue: a topic and its one subscription, both named `name`.
    pub fn create_queue(&self, name: &str, config: QueueConfig) -> Result<TopicDef> {
        let mut meta = self.meta.lock().unwrap();
        let def = TopicDef {
            id: meta.1.allocate_id(),
            name: name.to_owned(),
            config: config.topic_config(),
            queue: Some(config.clone()),
        };
        // Checking the queue's topic checks every setting its subscription
        // takes from the queue, so the second change cannot be refused.
        let sub = self.queue_subscription(&mut meta.1, &def);
        self.add_topic(&mut meta, def.clone())?;
        self.add_subscription(&mut meta, sub)?;
        Ok(def)
    }

    /// Deletes a topic (or queue) with its subscriptions and bindings.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let mut meta = self.meta.lock().unwrap();
        let change = Change::DeleteTopic {
            name: name.to_owned(),
        };
        self.commit_change(&mut meta, &change)?;
        let (topic, subs) = {
            let mut live = self.live.write().unwrap();
            let topic = live.topics.remove(name);
            let keys: Vec<_> = live
                .subscriptions
                .keys()
                .filter(|(t, _)| t == name)
                .cloned()
                .collect();
            let subs: Vec<_> = keys
                .iter()
                .filter_map(|k| live.subscriptions.remove(k))
                .collect();
            (topic, subs)
        };
        self.rebuild_exchanges(&meta.1)?;
        for sub in subs {
            self.remove_dir(&self.subscription_dir(sub.def.id));
        }
        if let Some(topic) = topic {
            topic.doorbell.ring();
            self.remove_dir(&self.topic_dir(topic.def.id));
        }
        Ok(())
    }

    /// Deletes a queue: its topic and subscription.
    pub fn delete_queue(&self, name: &str) -> Result<()> {
        self.queue(name)?;
        self.delete_topic(name)
    }

    pub fn create_subscription(
        &self,
        topic: &str,
        name: &str,
        config: SubscriptionConfig,
    ) -> Result<SubscriptionDef> {
        let mut meta = self.meta.lock().unwrap();
        let live_topic = self.topic(topic)?;
        let start_offsets = live_topic
            .logs()
            .iter()
            .map(|log| start_offset(log, config.start))
            .collect::<Result<Vec<_>>>()?;
        let def = SubscriptionDef {
            id: meta.1.allocate_id(),
            topic: topic.to_owned(),
            name: name.to_owned(),
            config,
            start_offsets,
        };
        self.add_subscription(&mut meta, def.clone())?;
        Ok(def)
    }

    pub fn delete_subscription(&self, topic: &str, name: &str) -> Result<()> {
        let mut meta = self.meta.lock().unwrap();
        let change = Change::DeleteSubscription {
            topic: topic.to_owned(),
            name: name.to_owned(),
        };
        self.commit_change(&mut meta, &change)?;
        let key = (topic.to_owned(), name.to_owned());
        let sub = self.live.write().unwrap().subscriptions.remove(&key);
        if let Some(sub) = sub {
            self.remove_dir(&self.subscription_dir(sub.def.id));
        }
        Ok(())
    }

    pub fn create_exchange(&self, name: &str, config: ExchangeConfig) -> Result<ExchangeDef> {
        let mut meta = self.meta.lock().unwrap();
        let def = ExchangeDef {
            name: name.to_owned(),
            config,
        };
        self.commit_change(&mut meta, &Change::CreateExchange(def.clone()))?;
        self.rebuild_exchanges(&meta.1)?;
        Ok(def)
    }

    pub fn delete_exchange(&self, name: &str) -> Result<()> {
        let mut meta = self.meta.lock().unwrap();
        let change = Change::DeleteExchange {
            name: name.to_owned(),
        };
        self.commit_change(&mut meta, &change)?;
        self.rebuild_exchanges(&meta.1)
    }

    pub fn bind(&self, binding: BindingDef) -> Result<()> {
        let mut meta = self.meta.lock().unwrap();
        self.commit_change(&mut meta, &Change::Bind(binding))?;
        self.rebuild_exchanges(&meta.1)
    }

    pub fn unbind(&self, binding: BindingDef) -> Result<()> {
        let mut meta = self.meta.lock().unwrap();
        self.commit_change(&mut meta, &Change::Unbind(binding))?;
        self.rebuild_exchanges(&meta.1)
    }

    /// A live topic (or a queue's topic) by name.
    pub fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        let live = self.live.read().unwrap();
        live.topics
            .get(name)
            .cloned()
            .ok_or_else(|| not_found("topic", name))
    }

    /// A live subscription by topic and name.
    pub fn subscription(&self, topic: &str, name: &str) -> Result<Arc<Subscription>> {
        let live = self.live.read().unwrap();
        let key = (topic.to_owned(), name.to_owned());
        live.subscriptions
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found("subscription", &format!("{topic}/{name}")))
    }

    /// A queue's subscription.
    pub fn queue(&self, name: &str) -> Result<Arc<Subscription>> {
        let topic = self.topic(name).map_err(|_| not_found("queue", name))?;
        if topic.def.queue.is_none() {
            return Err(not_found("queue", name));
        }
        self.subscription(name, name)
    }

    /// Publishes messages to a topic or queue (to `partition`, or by key /
    /// round-robin), applying a queue's defaults (delay, time to live) and
    /// length limit. Returns when every message is durable per the topic's
    /// durability.
    pub fn publish(
        &self,
        topic: &str,
        mut messages: Vec<Message>,
        partition: Option<u32>,
    ) -> Result<Vec<Published>> {
        let topic = self.topic(topic)?;
        let now = self.config.clock.now_ms();
        let queue = match &topic.def.queue {
            Some(q) => {
                apply_queue_defaults(q, &mut messages, now);
                Some((q, self.subscription(topic.name(), topic.name())?))
            }
            None => None,
        };
        if let Some((q, sub)) = &queue {
            self.check_room(&topic, q, sub, messages.len())?;
        }
        let ids: Vec<String> = messages.iter().map(|_| self.ids.next()).collect();
        let mut published = topic.publish(&messages, &ids, partition)?;
        original_ids(&topic, &mut published)?;
        for p in &published {
            let event = if p.duplicate {
                Event::Duplicate {
                    topic: topic.name().to_owned(),
                    partition: p.partition,
                    offset: p.offset,
                }
            } else {
                Event::Published {
                    topic: topic.name().to_owned(),
                    partition: p.partition,
                    offset: p.offset,
                }
            };
            self.tracer.record(&p.id, now, event);
        }
        if let Some((q, sub)) = &queue {
            self.drop_over_limit(&topic, q, sub)?;
        }
        Ok(published)
    }

    /// Publishes one message to an exchange: it is appended to every
    /// destination whose binding matches (or to the exchange's alternate
    /// destination when none does). Destinations are appended one after the
    /// other; a failure part way leaves the earlier appends in place.
    pub fn publish_to_exchange(&self, exchange: &str, message: Message) -> Result<Routed> {
        let ex = {
            let live = self.live.read().unwrap();
            live.exchanges
                .get(exchange)
                .cloned()
                .ok_or_else(|| not_found("exchange", exchange))?
        };
        let (def, router) = &*ex;
        let now = self.config.clock.now_ms();
        let id = self.ids.next();
        let typed = record::typed_attributes(&message.headers, &message.header_types);
        let routing_message = routing::Message {
            routing_key: message.routing_key.as_deref().unwrap_or(""),
            attributes: &typed,
            body: &message.value,
        };
        let routed = router.route(&routing_message);
        let mut destinations: Vec<String> =
            routed.destinations.iter().map(|d| d.to_string()).collect();
        let unroutable = destinations.is_empty();
        let missed: Vec<(String, Miss)> = routed
            .missed
            .iter()
            .map(|(d, m)| (d.to_string(), *m))
            .collect();
        for (dest, why) in &missed {
            let event = Event::NotRouted {
                exchange: exchange.to_owned(),
                destination: dest.clone(),
                reason: format!("{why:?}").to_lowercase(),
            };
            self.tracer.record(&id, now, event);
        }
        if unroutable {
            self.tracer.record(
                &id,
                now,
                Event::Unroutable {
                    exchange: exchange.to_owned(),
                },
            );
            destinations.extend(def.config.alternate.clone());
        }
        let mut published = Vec::new();
        for dest in destinations {
            let topic = self.topic(&dest)?;
            let mut messages = vec![message.clone()];
            if let Some(q) = &topic.def.queue {
                apply_queue_defaults(q, &mut messages, now);
                let sub = self.subscription(&dest, &dest)?;
                self.check_room(&topic, q, &sub, 1)?;
            }
            let mut placed = topic.publish(&messages, std::slice::from_ref(&id), None)?;
            let p = placed.pop().expect("one message, one place");
            self.tracer.record(
                &id,
                now,
                Event::Published {
                    topic: dest.clone(),
                    partition: p.partition,
                    offset: p.offset,
                },
            );
            published.push((dest, p));
        }
        Ok(Routed {
            id,
            published,
            missed,
            unroutable,
        })
    }

    /// Receives from a queue, waiting up to `wait` for a record to arrive
    /// (blocking the calling thread; async callers use the topic's doorbell).
    pub fn receive_wait(
        &self,
        sub: &Subscription,
        max: usize,
        visibility_ms: Option<u64>,
        wait: Duration,
    ) -> Result<Vec<Received>> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let seen = sub.topic().doorbell.rings();
            let got = sub.receive(max, visibility_ms)?;
            let now = std::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            // Wake at a ring, or soon anyway: a delayed record or an expiring
            // lease becomes visible without one.
            let nap = (deadline - now).min(Duration::from_millis(100));
            sub.topic().doorbell.wait(seen, nap);
        }
    }

    /// Moves up to `max` records from a dead-letter queue back to the
    /// topics they came from; returns how many moved. Records without a
    /// known origin stay. The record is appended to its source topic again,
    /// so when that topic is not a queue every subscription of it sees the
    /// record again, not only the one that dead-lettered it.
    pub fn redrive(&self, dead_letter_queue: &str, max: usize) -> Result<usize> {
        let dlq = self.queue(dead_letter_queue)?;
        let mut moved = 0;
        while moved < max {
            let batch = dlq.receive((max - moved).min(100), Some(60_000))?;
            if batch.is_empty() {
                break;
            }
            let mut done = Vec::new();
            for r in batch {
                let Some(origin) = r.message.dead_letter.clone() else {
                    dlq.nack(&r.receipt, 0)?;
                    continue;
                };
                let Ok(topic) = self.topic(&origin.topic) else {
                    dlq.nack(&r.receipt, 0)?;
                    continue;
                };
                let message = r.message.to_message();
                // Not de-duplicated: see `Topic::publish_moved`.
                topic.publish_moved(&[message], std::slice::from_ref(&r.message.id))?;
                done.push(r.receipt);
            }
            moved += done.len();
            dlq.ack(&done)?;
            if done.is_empty() {
                break;
            }
        }
        Ok(moved)
    }

    /// A message's trace, if it is still kept.
    pub fn trace(&self, id: &str) -> Option<Vec<Traced>> {
        self.tracer.get(id)
    }

    /// Periodic upkeep: retention (and, for queues, deleting what every
    /// subscription has finished), expired leases, journal and metadata
    /// snapshots. The server calls it every second or so; tests call it
    /// after moving the clock.
    pub fn tick(&self) -> Result<()> {
        let (topics, subs) = {
            let live = self.live.read().unwrap();
            let topics: Vec<_> = live.topics.values().cloned().collect();
            let subs: Vec<_> = live.subscriptions.values().cloned().collect();
            (topics, subs)
        };
        for topic in &topics {
            let floors = self.floors_of(topic, &subs);
            for (p, log) in topic.logs().iter().enumerate() {
                log.apply_retention(&|_| true)?;
                if topic.def.queue.is_some() {
                    log.delete_before(floors[p])?;
                }
            }
        }
        for sub in &subs {
            sub.follow_log_start();
            sub.expire_leases()?;
            sub.maybe_snapshot()?;
        }
        let meta = self.meta.lock().unwrap();
        if meta.0.needs_snapshot() {
            meta.0.snapshot(&meta.1)?;
        }
        Ok(())
    }

    /// Snapshots every journal and closes every log cleanly.
    pub fn close(&self) -> Result<()> {
        let live = std::mem::take(&mut *self.live.write().unwrap());
        for sub in live.subscriptions.values() {
            sub.close()?;
        }
        for topic in live.topics.values() {
            topic.doorbell.ring();
            topic.close()?;
        }
        let meta = self.meta.lock().unwrap();
        meta.0.close()?;
        Ok(())
    }

    fn load(&self, catalog: Catalog) -> Result<()> {
        let mut live = Live::default();
        for def in catalog.topics.values() {
            let topic = self.open_topic(def.clone())?;
            live.topics.insert(def.name.clone(), Arc::new(topic));
        }
        for def in catalog.subscriptions.values() {
            let sub = self.open_subscription(&live, def.clone())?;
            let key = (def.topic.clone(), def.name.clone());
            live.subscriptions.insert(key, Arc::new(sub));
        }
        *self.live.write().unwrap() = live;
        let mut meta = self.meta.lock().unwrap();
        meta.1 = catalog;
        self.rebuild_exchanges(&meta.1)
    }

    fn add_topic(&self, meta: &mut (MetaLog, Catalog), def: TopicDef) -> Result<()> {
        let change = Change::CreateTopic(def.clone());
        meta.1.check(&change)?;
        let topic = self.open_topic(def.clone())?;
        if let Err(e) = meta.0.append(&change) {
            self.remove_dir(&self.topic_dir(def.id));
            return Err(e.into());
        }
        meta.1.apply(&change)?;
        let mut live = self.live.write().unwrap();
        live.topics.insert(def.name.clone(), Arc::new(topic));
        Ok(())
    }

    fn add_subscription(&self, meta: &mut (MetaLog, Catalog), def: SubscriptionDef) -> Result<()> {
        let change = Change::CreateSubscription(def.clone());
        meta.1.check(&change)?;
        let sub = self.open_subscription(&self.live.read().unwrap(), def.clone())?;
        if let Err(e) = meta.0.append(&change) {
            self.remove_dir(&self.subscription_dir(def.id));
            return Err(e.into());
        }
        meta.1.apply(&change)?;
        let mut live = self.live.write().unwrap();
        live.subscriptions
            .insert((def.topic.clone(), def.name.clone()), Arc::new(sub));
        Ok(())
    }

    /// Checks, appends and applies a change that creates no files.
    fn commit_change(&self, meta: &mut (MetaLog, Catalog), change: &Change) -> Result<()> {
        meta.1.check(change)?;
        meta.0.append(change)?;
        meta.1.apply(change)?;
        Ok(())
    }

    fn open_topic(&self, def: TopicDef) -> Result<Topic> {
        let dir = self.topic_dir(def.id);
        let fs = self.fs_for(def.config.durability);
        Topic::open(&dir, def, fs, self.config.clock.clone(), &self.flusher)
    }

    fn open_subscription(&self, live: &Live, def: SubscriptionDef) -> Result<Subscription> {
        let topic = live
            .topics
            .get(&def.topic)
            .cloned()
            .ok_or_else(|| not_found("topic", &def.topic))?;
        let dead_letter = match &def.config.dead_letter {
            Some(name) => Some(
                live.topics
                    .get(name)
                    .cloned()
                    .ok_or_else(|| not_found("topic", name))?,
            ),
            None => None,
        };
        let durability = topic.def.config.durability;
        let journal = JournalConfig {
            durability: match durability {
                DurabilityMode::Fsync => Durability::Fsync,
                DurabilityMode::Interval { ms } => Durability::Interval { ms },
                DurabilityMode::Memory => Durability::Memory,
            },
            snapshot_every: self.config.journal_snapshot_every,
            ..JournalConfig::default()
        };
        Subscription::open(
            &self.subscription_dir(def.id),
            def,
            topic,
            dead_letter,
            journal,
            self.fs_for(durability),
            self.config.clock.clone(),
            self.tracer.clone(),
        )
    }

    fn queue_subscription(&self, catalog: &mut Catalog, topic: &TopicDef) -> SubscriptionDef {
        let queue = topic.queue.as_ref().expect("a queue's topic");
        SubscriptionDef {
            id: catalog.allocate_id(),
            topic: topic.name.clone(),
            name: topic.name.clone(),
            config: queue.subscription_config(),
            start_offsets: vec![0; topic.config.partitions as usize],
        }
    }

    /// A crash between a queue's two metadata records leaves its topic
    /// without its subscription; add it.
    fn repair_queues(&self) -> Result<()> {
        let mut meta = self.meta.lock().unwrap();
        let missing: Vec<TopicDef> = meta.1.queues_without_subscription().cloned().collect();
        for topic in missing {
            let sub = self.queue_subscription(&mut meta.1, &topic);
            self.add_subscription(&mut meta, sub)?;
        }
        Ok(())
    }

    fn rebuild_exchanges(&self, catalog: &Catalog) -> Result<()> {
        let mut exchanges = HashMap::new();
        for def in catalog.exchanges.values() {
            let mut router = Exchange::new(def.config.kind);
            for b in catalog.bindings_of(&def.name) {
                let filter = b.filter.as_ref().map(|f| (f.policy.as_str(), f.scope));
                router
                    .bind(&b.destination, b.key.as_deref().unwrap_or(""), filter)
                    .map_err(|e| CatalogError::Binding(e.to_string()))?;
            }
            exchanges.insert(def.name.clone(), Arc::new((def.clone(), router)));
        }
        self.live.write().unwrap().exchanges = exchanges;
        Ok(())
    }

    /// Queue length limits: refuse a publish that would pass them.
    fn check_room(
        &self,
        topic: &Topic,
        queue: &QueueConfig,
        sub: &Subscription,
        adding: usize,
    ) -> Result<()> {
        let limited = queue.max_length.is_some() || queue.max_length_bytes.is_some();
        if queue.overflow != Overflow::RejectPublish || !limited {
            return Ok(());
        }
        // Only with a limit: the depth takes every partition's lock, which
        // every publish would otherwise contend for with the consumers.
        let depth = sub.depth();
        if let Some(max) = queue.max_length {
            if depth + adding as u64 > max {
                return Err(Error::QueueFull {
                    queue: topic.name().to_owned(),
                    reason: format!("{depth} messages, limit {max}"),
                });
            }
        }
        if let Some(max) = queue.max_length_bytes {
            let bytes = backlog_bytes(topic, depth)?;
            if bytes > max {
                return Err(Error::QueueFull {
                    queue: topic.name().to_owned(),
                    reason: format!("about {bytes} bytes, limit {max}"),
                });
            }
        }
        Ok(())
    }

    /// Queue length limits with `drop_oldest`: drop from the head until
    /// under them.
    fn drop_over_limit(
        &self,
        topic: &Topic,
        queue: &QueueConfig,
        sub: &Subscription,
    ) -> Result<()> {
        if queue.overflow != Overflow::DropOldest {
            return Ok(());
        }
        loop {
            let depth = sub.depth();
            let over_count = queue.max_length.is_some_and(|m| depth > m);
            let over_bytes = match queue.max_length_bytes {
                Some(m) => backlog_bytes(topic, depth)? > m,
                None => false,
            };
            if !(over_count || over_bytes) || !sub.drop_oldest()? {
                return Ok(());
            }
        }
    }

    fn floors_of(&self, topic: &Topic, subs: &[Arc<Subscription>]) -> Vec<u64> {
        let mut floors: Vec<u64> = topic.logs().iter().map(|l| l.end_offset()).collect();
        for sub in subs.iter().filter(|s| s.topic.def.id == topic.def.id) {
            for (p, f) in sub.floors().into_iter().enumerate() {
                floors[p] = floors[p].min(f);
            }
        }
        floors
    }

    fn fs_for(&self, durability: DurabilityMode) -> Arc<dyn Fs> {
        match durability {
            DurabilityMode::Memory => self.memory_fs.clone(),
            _ => self.config.fs.clone(),
        }
    }

    fn topic_dir(&self, id: u64) -> PathBuf {
        self.config.data_dir.join("topics").join(id.to_string())
    }

    fn subscription_dir(&self, id: u64) -> PathBuf {
        self.config
            .data_dir
            .join("subscriptions")
            .join(id.to_string())
    }

    /// Removes directories of topics and subscriptions the catalog does not
    /// know (left by a crash in the middle of a create or delete).
    fn remove_orphans(&self) -> Result<()> {
        let meta = self.meta.lock().unwrap();
        let topics: Vec<u64> = meta.1.topics.values().map(|t| t.id).collect();
        let subs: Vec<u64> = meta.1.subscriptions.values().map(|s| s.id).collect();
        drop(meta);
        for (kind, known) in [("topics", topics), ("subscriptions", subs)] {
            let dir = self.config.data_dir.join(kind);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().parse::<u64>();
                if id.is_ok_and(|id| !known.contains(&id)) {
                    self.remove_dir(&entry.path());
                }
            }
        }
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted resource's files");
            }
        }
    }
}

fn not_found(kind: &'static str, name: &str) -> Error {
    Error::Catalog(CatalogError::NotFound {
        kind,
        name: name.to_owned(),
    })
}

/// The offset a new subscription starts at in one partition.
fn start_offset(log: &hermod_storage::Log, start: StartPosition) -> Result<u64> {
    let (first, end) = (log.start_offset(), log.end_offset());
    Ok(match start {
        StartPosition::Earliest => first,
        StartPosition::Latest => end,
        StartPosition::Offset(o) => o.clamp(first, end),
        StartPosition::Time(t) => log.offset_for_timestamp(t)?.unwrap_or(end),
    })
}

/// A duplicate answers with the id of the message it duplicates (as SQS
/// does), read from the original's record: every original is appended by
/// the time `Topic::publish` returns. One whose record is gone (retention)
/// keeps the id it was given.
fn original_ids(topic: &Topic, published: &mut [Published]) -> Result<()> {
    for p in published.iter_mut().filter(|p| p.duplicate) {
        if let Some(original) = topic.read_one(p.partition, p.offset)? {
            p.id = original.id;
        }
    }
    Ok(())
}

fn apply_queue_defaults(queue: &QueueConfig, messages: &mut [Message], now: i64) {
    for m in messages {
        if m.not_before_ms.is_none() && queue.delay_ms > 0 {
            m.not_before_ms = Some(now + queue.delay_ms as i64);
        }
        if m.expires_ms.is_none() {
            m.expires_ms = queue.message_ttl_ms.map(|ttl| now + ttl as i64);
        }
    }
}

/// Bytes of a queue's unfinished records, estimated from the log's size
/// and the share of its records that are unfinished.
fn backlog_bytes(topic: &Topic, depth: u64) -> Result<u64> {
    let mut size = 0u64;
    let mut records = 0u64;
    for log in topic.logs() {
        size += log.size_bytes()?;
        records += log.end_offset() - log.start_offset();
    }
    Ok(size.saturating_mul(depth).checked_div(records).unwrap_or(0))
}
