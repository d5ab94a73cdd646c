//! The catalog: every topic, queue, subscription, exchange and binding the
//! broker knows, as the metadata log defines them, in memory and without
//! I/O. The broker [`Catalog::check`]s a change (names, settings, references,
//! routing rules), writes it to the metadata log, then [`Catalog::apply`]s
//! it; replaying the log applies the same changes in order.
//!
//! `check` and `apply` deliberately check different things. `check` holds a
//! change to today's rules for names and settings. `apply` checks only what
//! keeps the catalog whole (what is created does not exist yet, what is
//! deleted or referred to does), so that a log written under older, looser
//! rules still replays after the rules tighten, while a log that does not
//! fit together is still caught.
//!
//! Deleting a topic (or queue) deletes its subscriptions and the bindings to
//! it, but not while a dead-letter setting or an exchange's alternate points
//! at it: those would be left dangling, so the delete is refused instead.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::defs::{
    BindingDef, Change, DeliveryMode, DurabilityMode, ExchangeDef, QueueConfig, SubscriptionConfig,
    SubscriptionDef, TopicConfig, TopicDef, MAX_NAME_LEN, MAX_PARTITIONS,
};
use crate::filter::FilterPolicy;
use crate::routing::{BindingError, Exchange, ExchangeKind};

/// Largest `max_record_bytes`: a record must fit in the storage engine's
/// largest batch (16 MiB) with room for the batch and record headers.
pub const MAX_RECORD_BYTES: usize = (16 << 20) - 1024;
/// Smallest `segment_bytes`: smaller segments mean a file (and three
/// handles' worth of index) per few records.
pub const MIN_SEGMENT_BYTES: u64 = 64 << 10;
/// Largest `segment_bytes`: index entries hold 32-bit positions.
pub const MAX_SEGMENT_BYTES: u64 = u32::MAX as u64;
/// Longest visibility timeout and queue delay: 12 hours. SQS caps the
/// visibility timeout there; it caps the delay at 15 minutes, which Hermod
/// relaxes because AMQP and HTTP clients have no such limit to expect.
pub const MAX_TIMEOUT_MS: u64 = 12 * 3600 * 1000;
/// Most records a subscription may lease at once, per partition.
pub const MAX_IN_FLIGHT: usize = 1_000_000;
/// Most records a subscription may read ahead, per partition.
pub const MAX_BUFFERED: usize = 100_000;

/// Every definition, by name. Queues are topics whose `queue` is set, each
/// with one subscription of the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Catalog {
    /// Topics and queues, by name (they share one namespace).
    pub topics: BTreeMap<String, TopicDef>,
    /// Subscriptions by (topic, name); serialized as a list, since JSON
    /// object keys must be strings.
    #[serde(with = "subscription_list")]
    pub subscriptions: BTreeMap<(String, String), SubscriptionDef>,
    /// Exchanges, by name (their own namespace, as in AMQP).
    pub exchanges: BTreeMap<String, ExchangeDef>,
    /// Bindings, in the order they were made (routing reports them so).
    pub bindings: Vec<BindingDef>,
    /// The next topic or subscription id to hand out; ids are never reused.
    pub next_id: u64,
}

/// Why a change was refused. `kind` says what the named thing is, or what
/// role it plays (`"dead-letter topic"`, `"alternate topic"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A name that is not allowed; `reason` says what is.
    #[error("invalid {kind} name {}: {reason}", shown(.name))]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: String,
    },
    /// Something of that name exists already.
    #[error("{kind} {} already exists", shown(.name))]
    AlreadyExists { kind: &'static str, name: String },
    /// Nothing of that name exists.
    #[error("{kind} {} does not exist", shown(.name))]
    NotFound { kind: &'static str, name: String },
    /// A setting out of range or at odds with another.
    #[error("invalid {field}: {reason}")]
    InvalidConfig { field: String, reason: String },
    /// A delete refused because something else refers to the thing.
    #[error("cannot delete {kind} {}: {by}", shown(.name))]
    InUse {
        kind: &'static str,
        name: String,
        by: String,
    },
    /// A binding the exchange would refuse (bad key or filter, duplicate).
    #[error("invalid binding: {0}")]
    Binding(String),
}

type Result<T = ()> = std::result::Result<T, CatalogError>;

/// Checks a topic, queue, subscription or exchange name: 1 to
/// [`MAX_NAME_LEN`] characters of `A-Z a-z 0-9 . _ -`, not `.` or `..`. The
/// rule is Kafka's; it keeps names safe in paths, URLs and every protocol.
pub fn validate_name(kind: &'static str, name: &str) -> Result {
    let allowed =
        format!("names are 1 to {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '.', '_' and '-'");
    let reason = if name.is_empty() {
        format!("is empty; {allowed}")
    } else if let Some(c) = name.chars().find(|c| !is_name_char(*c)) {
        format!("contains {c:?}; {allowed}")
    } else if name.len() > MAX_NAME_LEN {
        format!("is {} characters long; {allowed}", name.len())
    } else if name == "." || name == ".." {
        "'.' and '..' are not allowed as names".to_owned()
    } else {
        return Ok(());
    };
    Err(CatalogError::InvalidName {
        kind,
        name: name.to_owned(),
        reason,
    })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

impl Catalog {
    /// Checks a change against the current catalog without applying it:
    /// names, then what must or must not exist, then settings. The broker
    /// calls this before writing the change to the metadata log.
    pub fn check(&self, change: &Change) -> Result {
        check_names(change)?;
        self.check_structure(change)?;
        self.check_settings(change)
    }

    /// Applies a change. Only what keeps the catalog whole is checked here
    /// (see the module documentation); on error nothing changed, and the
    /// caller decides (replay refuses to start).
    pub fn apply(&mut self, change: &Change) -> Result {
        self.check_structure(change)?;
        match change {
            Change::CreateTopic(def) => self.create_topic(def),
            Change::DeleteTopic { name } => self.delete_topic(name),
            Change::CreateSubscription(def) => self.create_subscription(def),
            Change::DeleteSubscription { topic, name } => {
                self.subscriptions.remove(&(topic.clone(), name.clone()));
            }
            Change::CreateExchange(def) => {
                self.exchanges.insert(def.name.clone(), def.clone());
            }
            Change::DeleteExchange { name } => {
                self.exchanges.remove(name);
                self.bindings.retain(|b| b.exchange != *name);
            }
            Change::Bind(def) => self.bindings.push(def.clone()),
            Change::Unbind(def) => self.unbind(def),
        }
        Ok(())
    }

    /// Hands out a new topic or subscription id.
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        id
    }

    /// The subscriptions of `topic`, by name.
    pub fn subscriptions_of(&self, topic: &str) -> impl Iterator<Item = &SubscriptionDef> + '_ {
        let topic = topic.to_owned();
        self.subscriptions
            .range((topic.clone(), String::new())..)
            .take_while(move |((t, _), _)| *t == topic)
            .map(|(_, def)| def)
    }

    /// The bindings of `exchange`, in the order they were made.
    pub fn bindings_of(&self, exchange: &str) -> impl Iterator<Item = &BindingDef> + '_ {
        let exchange = exchange.to_owned();
        self.bindings.iter().filter(move |b| b.exchange == exchange)
    }

    /// Queues whose subscription is missing: the queue's two changes
    /// (topic, then subscription) were cut apart by a crash. The broker
    /// finishes creating them at startup.
    pub fn queues_without_subscription(&self) -> impl Iterator<Item = &TopicDef> + '_ {
        self.topics.values().filter(|t| {
            t.queue.is_some()
                && !self
                    .subscriptions
                    .contains_key(&(t.name.clone(), t.name.clone()))
        })
    }

    fn create_topic(&mut self, def: &TopicDef) {
        self.bump_id_past(def.id);
        self.topics.insert(def.name.clone(), def.clone());
    }

    fn delete_topic(&mut self, name: &str) {
        self.topics.remove(name);
        self.subscriptions.retain(|(topic, _), _| topic != name);
        self.bindings.retain(|b| b.destination != name);
    }

    fn create_subscription(&mut self, def: &SubscriptionDef) {
        self.bump_id_past(def.id);
        let key = (def.topic.clone(), def.name.clone());
        self.subscriptions.insert(key, def.clone());
    }

    /// Removes every binding an exchange's `unbind` would: same destination
    /// and, where the kind looks at keys, the same key; filters are ignored.
    fn unbind(&mut self, def: &BindingDef) {
        let kind = self.exchanges[&def.exchange].config.kind;
        self.bindings.retain(|b| !same_binding_key(kind, b, def));
    }

    /// Keeps ids unique across a replay: an id seen is never handed out.
    fn bump_id_past(&mut self, id: u64) {
        self.next_id = self.next_id.max(id.saturating_add(1));
    }

    /// What keeps the catalog whole; shared by `check` and `apply`.
    fn check_structure(&self, change: &Change) -> Result {
        match change {
            Change::CreateTopic(def) => self.structure_create_topic(def),
            Change::DeleteTopic { name } => self.structure_delete_topic(name),
            Change::CreateSubscription(def) => self.structure_create_subscription(def),
            Change::DeleteSubscription { topic, name } => {
                self.structure_delete_subscription(topic, name)
            }
            Change::CreateExchange(def) => self.structure_create_exchange(def),
            Change::DeleteExchange { name } => self.exchange(name).map(|_| ()),
            Change::Bind(def) => self.structure_bind(def),
            Change::Unbind(def) => self.structure_unbind(def),
        }
    }

    fn structure_create_topic(&self, def: &TopicDef) -> Result {
        if let Some(existing) = self.topics.get(&def.name) {
            return Err(CatalogError::AlreadyExists {
                kind: topic_kind(existing),
                name: def.name.clone(),
            });
        }
        self.check_id_free(def.id)?;
        match &def.queue {
            Some(q) => self.check_dead_letter_target(&def.name, q.dead_letter.as_deref()),
            None => Ok(()),
        }
    }

    fn structure_delete_topic(&self, name: &str) -> Result {
        let def = self.topic(name, "topic")?;
        match self.user_of(name) {
            Some(by) => Err(CatalogError::InUse {
                kind: topic_kind(def),
                name: name.to_owned(),
                by,
            }),
            None => Ok(()),
        }
    }

    /// Who, other than the topic's own subscriptions, points at `topic`.
    fn user_of(&self, topic: &str) -> Option<String> {
        let subscription = self
            .subscriptions
            .values()
            .find(|s| s.topic != topic && s.config.dead_letter.as_deref() == Some(topic));
        if let Some(s) = subscription {
            let name = subscription_name(&s.topic, &s.name);
            return Some(format!(
                "subscription {} dead-letters into it",
                shown(&name)
            ));
        }
        let queue = self.topics.values().find(|t| {
            t.name != topic
                && t.queue
                    .as_ref()
                    .is_some_and(|q| q.dead_letter.as_deref() == Some(topic))
        });
        if let Some(t) = queue {
            return Some(format!("queue {} dead-letters into it", shown(&t.name)));
        }
        let exchange = self
            .exchanges
            .values()
            .find(|x| x.config.alternate.as_deref() == Some(topic))?;
        Some(format!(
            "exchange {} uses it as its alternate",
            shown(&exchange.name)
        ))
    }

    fn structure_create_subscription(&self, def: &SubscriptionDef) -> Result {
        self.topic(&def.topic, "topic")?;
        if self.subscription_exists(&def.topic, &def.name) {
            return Err(CatalogError::AlreadyExists {
                kind: "subscription",
                name: subscription_name(&def.topic, &def.name),
            });
        }
        self.check_id_free(def.id)?;
        self.check_dead_letter_target(&def.topic, def.config.dead_letter.as_deref())
    }

    fn structure_delete_subscription(&self, topic: &str, name: &str) -> Result {
        let full_name = subscription_name(topic, name);
        if !self.subscription_exists(topic, name) {
            return Err(CatalogError::NotFound {
                kind: "subscription",
                name: full_name,
            });
        }
        let is_queue = self.topics.get(topic).is_some_and(|t| t.queue.is_some());
        if is_queue && topic == name {
            return Err(CatalogError::InUse {
                kind: "subscription",
                name: full_name,
                by: format!(
                    "it is queue {}'s own subscription; delete the queue instead",
                    shown(topic)
                ),
            });
        }
        Ok(())
    }

    fn structure_create_exchange(&self, def: &ExchangeDef) -> Result {
        if self.exchanges.contains_key(&def.name) {
            return Err(CatalogError::AlreadyExists {
                kind: "exchange",
                name: def.name.clone(),
            });
        }
        match &def.config.alternate {
            Some(alternate) => self.topic(alternate, "alternate topic").map(|_| ()),
            None => Ok(()),
        }
    }

    fn structure_bind(&self, def: &BindingDef) -> Result {
        self.exchange(&def.exchange)?;
        self.topic(&def.destination, "destination topic")?;
        if self.bindings.contains(def) {
            let duplicate = BindingError::Duplicate {
                destination: def.destination.clone(),
            };
            return Err(CatalogError::Binding(duplicate.to_string()));
        }
        Ok(())
    }

    fn structure_unbind(&self, def: &BindingDef) -> Result {
        let kind = self.exchange(&def.exchange)?.config.kind;
        if self.bindings.iter().any(|b| same_binding_key(kind, b, def)) {
            return Ok(());
        }
        let key = def.key.as_deref().unwrap_or("");
        Err(CatalogError::NotFound {
            kind: "binding",
            name: format!("{} -> {} (key '{key}')", def.exchange, def.destination),
        })
    }

    /// A dead-letter target must exist and must not be the topic itself
    /// (dead letters would come straight back).
    fn check_dead_letter_target(&self, own_topic: &str, dead_letter: Option<&str>) -> Result {
        let Some(target) = dead_letter else {
            return Ok(());
        };
        if target == own_topic {
            return invalid(
                "dead_letter",
                format!("{} cannot dead-letter into itself", shown(own_topic)),
            );
        }
        self.topic(target, "dead-letter topic").map(|_| ())
    }

    fn check_id_free(&self, id: u64) -> Result {
        let topic = self.topics.values().find(|t| t.id == id);
        let user = match topic {
            Some(t) => format!("topic {}", shown(&t.name)),
            None => match self.subscriptions.values().find(|s| s.id == id) {
                Some(s) => format!(
                    "subscription {}",
                    shown(&subscription_name(&s.topic, &s.name))
                ),
                None => return Ok(()),
            },
        };
        invalid("id", format!("{id} is already the id of {user}"))
    }

    /// Settings, against today's rules (`check` only).
    fn check_settings(&self, change: &Change) -> Result {
        match change {
            Change::CreateTopic(def) => check_topic(def),
            Change::CreateSubscription(def) => check_subscription(&self.topics[&def.topic], def),
            Change::Bind(def) => self.check_routing(def),
            _ => Ok(()),
        }
    }

    /// Binds `def` on a scratch copy of its exchange holding the bindings
    /// to the same destination (only those can make it a duplicate), so the
    /// catalog accepts exactly what the live exchange will.
    fn check_routing(&self, def: &BindingDef) -> Result {
        let mut exchange = Exchange::new(self.exchanges[&def.exchange].config.kind);
        for existing in self.bindings_of(&def.exchange) {
            if existing.destination == def.destination {
                // Accepted when made; if today's rules refuse it, it still
                // exists and cannot be a duplicate of a valid binding.
                let _ = bind(&mut exchange, existing);
            }
        }
        bind(&mut exchange, def).map_err(|e| CatalogError::Binding(e.to_string()))
    }

    fn topic(&self, name: &str, kind: &'static str) -> Result<&TopicDef> {
        self.topics.get(name).ok_or_else(|| CatalogError::NotFound {
            kind,
            name: name.to_owned(),
        })
    }

    fn exchange(&self, name: &str) -> Result<&ExchangeDef> {
        self.exchanges
            .get(name)
            .ok_or_else(|| CatalogError::NotFound {
                kind: "exchange",
                name: name.to_owned(),
            })
    }

    fn subscription_exists(&self, topic: &str, name: &str) -> bool {
        self.subscriptions
            .contains_key(&(topic.to_owned(), name.to_owned()))
    }
}

fn check_names(change: &Change) -> Result {
    match change {
        Change::CreateTopic(def) => validate_name(topic_kind(def), &def.name),
        Change::CreateSubscription(def) => validate_name("subscription", &def.name),
        Change::CreateExchange(def) => validate_name("exchange", &def.name),
        _ => Ok(()),
    }
}

fn check_topic(def: &TopicDef) -> Result {
    check_topic_config(&def.config)?;
    match &def.queue {
        Some(q) => check_queue(&def.config, q),
        None => Ok(()),
    }
}

fn check_topic_config(c: &TopicConfig) -> Result {
    in_range("partitions", c.partitions.into(), 1, MAX_PARTITIONS.into())?;
    bytes_in_range(
        "max_record_bytes",
        c.max_record_bytes as u64,
        1,
        MAX_RECORD_BYTES as u64,
    )?;
    bytes_in_range(
        "segment_bytes",
        c.segment_bytes,
        MIN_SEGMENT_BYTES,
        MAX_SEGMENT_BYTES,
    )?;
    positive_if_set("retention_ms", c.retention_ms, "keep records forever")?;
    positive_if_set("retention_bytes", c.retention_bytes, "set no size limit")?;
    if let DurabilityMode::Interval { ms: 0 } = c.durability {
        return invalid(
            "durability",
            "an interval of 0 ms is fsync durability; say fsync",
        );
    }
    if c.content_dedup && c.dedup_window_ms == 0 {
        return invalid(
            "content_dedup",
            "needs a de-duplication window; set dedup_window_ms above 0",
        );
    }
    Ok(())
}

fn check_queue(topic: &TopicConfig, q: &QueueConfig) -> Result {
    at_most_ms("visibility_timeout_ms", q.visibility_timeout_ms)?;
    at_most_ms("delay_ms", q.delay_ms)?;
    positive_if_set(
        "message_ttl_ms",
        q.message_ttl_ms,
        "let records wait forever",
    )?;
    positive_if_set("max_length", q.max_length, "set no length limit")?;
    positive_if_set("max_length_bytes", q.max_length_bytes, "set no size limit")?;
    check_dead_letter_deliveries(q.dead_letter.as_deref(), q.max_deliveries)?;
    // The queue's settings that also live in its topic must agree, or it
    // would be unclear which one holds; segment size and byte retention are
    // the topic's alone.
    let expected = TopicConfig {
        segment_bytes: topic.segment_bytes,
        retention_bytes: topic.retention_bytes,
        ..q.topic_config()
    };
    if *topic != expected {
        return invalid(
            "config",
            "a queue's topic settings must be those its queue settings give \
             (QueueConfig::topic_config)",
        );
    }
    Ok(())
}

fn check_subscription(topic: &TopicDef, def: &SubscriptionDef) -> Result {
    if let Some(q) = &topic.queue {
        check_queue_subscription(topic, q, def)?;
    }
    let c = &def.config;
    if c.mode == DeliveryMode::Stream {
        check_stream(c)?;
    }
    in_range(
        "max_in_flight",
        c.max_in_flight as u64,
        1,
        MAX_IN_FLIGHT as u64,
    )?;
    in_range(
        "max_buffered",
        c.max_buffered as u64,
        1,
        MAX_BUFFERED as u64,
    )?;
    at_most_ms("visibility_timeout_ms", c.visibility_timeout_ms)?;
    check_dead_letter_deliveries(c.dead_letter.as_deref(), c.max_deliveries)?;
    if let Some(filter) = &c.filter {
        FilterPolicy::parse_for(&filter.policy, filter.scope)
            .map_err(|e| config_error("filter", e.to_string()))?;
    }
    let partitions = topic.config.partitions as usize;
    if def.start_offsets.len() != partitions {
        return invalid(
            "start_offsets",
            format!(
                "has {} entries but topic {} has {partitions} partitions; give one per partition",
                def.start_offsets.len(),
                shown(&topic.name)
            ),
        );
    }
    Ok(())
}

/// A queue has exactly one subscription, named after it, whose settings
/// come from the queue.
fn check_queue_subscription(topic: &TopicDef, q: &QueueConfig, def: &SubscriptionDef) -> Result {
    if def.name != topic.name {
        return invalid(
            "topic",
            format!(
                "{} is a queue, whose only subscription is its own; \
                 subscribe to a topic instead",
                shown(&topic.name)
            ),
        );
    }
    let (expected_mode, rule) = if q.fifo {
        (
            DeliveryMode::Ordered,
            "a FIFO queue's subscription must be ordered",
        )
    } else {
        (
            DeliveryMode::Shared,
            "a standard queue's subscription must be shared",
        )
    };
    if def.config.mode != expected_mode {
        return invalid("mode", rule);
    }
    let expected = SubscriptionConfig {
        max_in_flight: def.config.max_in_flight,
        max_buffered: def.config.max_buffered,
        ..q.subscription_config()
    };
    if def.config != expected {
        return invalid(
            "config",
            "a queue's subscription settings must be those its queue settings give \
             (QueueConfig::subscription_config)",
        );
    }
    Ok(())
}

/// Stream subscriptions commit offsets; nothing is ever redelivered by
/// them, so nothing is ever dead-lettered.
fn check_stream(c: &SubscriptionConfig) -> Result {
    let why = "a stream subscription commits offsets and never dead-letters; \
               remove it or use mode shared or ordered";
    if c.dead_letter.is_some() {
        return invalid("dead_letter", why);
    }
    if c.max_deliveries != 0 {
        return invalid("max_deliveries", why);
    }
    Ok(())
}

fn check_dead_letter_deliveries(dead_letter: Option<&str>, max_deliveries: u32) -> Result {
    if dead_letter.is_some() && max_deliveries == 0 {
        return invalid(
            "max_deliveries",
            "is 0 (unlimited) but dead_letter is set; set max_deliveries to say \
             after how many deliveries a record is dead-lettered",
        );
    }
    Ok(())
}

fn bind(exchange: &mut Exchange, def: &BindingDef) -> std::result::Result<(), BindingError> {
    let filter = def.filter.as_ref().map(|f| (f.policy.as_str(), f.scope));
    exchange.bind(&def.destination, def.key.as_deref().unwrap_or(""), filter)
}

/// Whether `b` is a binding that unbinding `def` removes, as
/// `Exchange::unbind` decides: fanout and headers exchanges ignore keys.
fn same_binding_key(kind: ExchangeKind, b: &BindingDef, def: &BindingDef) -> bool {
    let keys_match = match kind {
        ExchangeKind::Fanout | ExchangeKind::Headers => true,
        ExchangeKind::Direct | ExchangeKind::Topic => {
            b.key.as_deref().unwrap_or("") == def.key.as_deref().unwrap_or("")
        }
    };
    b.exchange == def.exchange && b.destination == def.destination && keys_match
}

fn in_range(field: &str, value: u64, min: u64, max: u64) -> Result {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    invalid(
        field,
        format!("must be between {min} and {max}, got {value}"),
    )
}

fn bytes_in_range(field: &str, value: u64, min: u64, max: u64) -> Result {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    invalid(
        field,
        format!(
            "must be between {} and {} bytes, got {value}",
            with_unit(min),
            with_unit(max)
        ),
    )
}

/// `65536 (64 KiB)`: a byte count as typed and as read.
fn with_unit(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    match UNITS
        .iter()
        .find(|(size, _)| n >= *size && n.is_multiple_of(*size))
    {
        Some((size, unit)) => format!("{n} ({} {unit})", n / size),
        None => n.to_string(),
    }
}

fn at_most_ms(field: &str, ms: u64) -> Result {
    if ms <= MAX_TIMEOUT_MS {
        return Ok(());
    }
    invalid(
        field,
        format!("must be at most {MAX_TIMEOUT_MS} ms (12 hours), got {ms}"),
    )
}

/// `Some(0)` is refused: it would mean "nothing at all", which `None`
/// (no limit) is never confused with.
fn positive_if_set(field: &str, value: Option<u64>, none_means: &str) -> Result {
    if value == Some(0) {
        return invalid(
            field,
            format!("must be positive; leave it unset to {none_means}"),
        );
    }
    Ok(())
}

fn invalid(field: &str, reason: impl Into<String>) -> Result {
    Err(config_error(field, reason))
}

fn config_error(field: &str, reason: impl Into<String>) -> CatalogError {
    CatalogError::InvalidConfig {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn topic_kind(def: &TopicDef) -> &'static str {
    if def.queue.is_some() {
        "queue"
    } else {
        "topic"
    }
}

/// A subscription's name in messages: `topic/name` (`/` is in no name).
fn subscription_name(topic: &str, name: &str) -> String {
    format!("{topic}/{name}")
}

/// A name quoted for a message, escaped and cut short, since a refused name
/// may be long or hold control characters.
fn shown(name: &str) -> String {
    const MAX_SHOWN: usize = 64;
    let cut: String = name.chars().take(MAX_SHOWN).collect();
    let more = if cut.len() < name.len() { "..." } else { "" };
    format!("{cut:?}{more}")
}

/// The subscriptions map as a list of definitions, each keyed by its own
/// topic and name.
mod subscription_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::defs::SubscriptionDef;

    type Map = BTreeMap<(String, String), SubscriptionDef>;

    pub fn serialize<S: Serializer>(map: &Map, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        let mut map = Map::new();
        for def in Vec::<SubscriptionDef>::deserialize(d)? {
            let key = (def.topic.clone(), def.name.clone());
            if map.insert(key, def).is_some() {
                return Err(serde::de::Error::custom("a subscription is listed twice"));
            }
        }
        Ok(map)
    }
}
