//! Hermod's messaging core: the one model every protocol front maps onto
//! (topics, subscriptions, queues, exchanges), as a state machine over the
//! storage engine, with no sockets and no protocol types.
//!
//! Built so far: the pure parts that routing needs, which touch no storage:
//! the SNS filter-policy language ([`filter`]), AMQP topic routing-key
//! patterns ([`pattern`]) and Kafka's default partitioner ([`partition`]).

pub mod filter;
pub mod partition;
pub mod pattern;
