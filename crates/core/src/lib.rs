//! Hermod's messaging core: the one model every protocol front maps onto
//! (topics, subscriptions, queues, exchanges), as a state machine over the
//! storage engine, with no sockets and no protocol types.
//!
//! Built so far: the pure parts, which touch no storage: the SNS
//! filter-policy language ([`filter`]), AMQP topic routing-key patterns
//! ([`pattern`]), Kafka's default partitioner ([`partition`]), exchanges
//! and their bindings ([`routing`]), the de-duplication window ([`dedup`])
//! and the delivery state machine of `shared` and `ordered` subscriptions
//! ([`delivery`]).

pub mod acked;
pub mod dedup;
pub mod defs;
pub mod delivery;
pub mod filter;
pub mod partition;
pub mod pattern;
pub mod routing;
