//! Hermod's messaging core: the one model every protocol front maps onto
//! (topics, subscriptions, queues, exchanges), as a state machine over the
//! storage engine, with no sockets and no protocol types.
//!
//! [`broker::Broker`] owns a data directory: the metadata log ([`meta`],
//! holding the [`catalog`] of [`defs`]), the topics' partition logs
//! ([`topic`]) and the subscriptions' journals ([`journal`]). A
//! [`subscription`] hands out records through the sans-IO delivery state
//! machine ([`delivery`]) or, in `stream` mode, by offsets. Exchanges route
//! with [`routing`] (topic patterns from [`pattern`], SNS filter policies
//! from [`filter`]); partitions are chosen with Kafka's murmur2
//! ([`partition`]); [`dedup`] drops repeated publishes; [`trace`] answers
//! "where did my message go".

pub mod acked;
pub mod broker;
pub mod catalog;
pub mod dedup;
pub mod defs;
pub mod delivery;
pub mod doorbell;
pub mod error;
pub mod filter;
pub mod journal;
pub mod meta;
pub mod partition;
pub mod pattern;
pub mod record;
pub mod routing;
pub mod subscription;
pub mod topic;
pub mod trace;

pub use crate::broker::{Broker, BrokerConfig, Routed};
pub use crate::error::{Error, Result};
pub use crate::record::Message;
pub use crate::subscription::{Receipt, Received};
pub use crate::topic::Published;
