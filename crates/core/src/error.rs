//! The core's one error type. It separates "this request failed" (bad
//! input, a missing resource, a full queue, a stale receipt) from "this node
//! must stop" ([`Error::is_fatal`]: a log that failed to sync or is corrupt),
//! and gives each failure a stable code that every protocol front maps to
//! its own (HTTP status, SQS error name, AMQP reply code).

use crate::catalog::CatalogError;
use crate::meta::MetaError;
use crate::record::MessageError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A definition change was refused (name, config, missing or existing
    /// resource, resource in use).
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A message was refused (size, reserved header).
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("queue `{queue}` is full ({reason}); consume some messages or raise the limit")]
    QueueFull { queue: String, reason: String },
    #[error("unknown or stale receipt: it was never issued, was already acked or nacked, its lease expired, or the broker restarted")]
    UnknownReceipt,
    #[error("the lease has expired; the message may already be delivered to another consumer")]
    LeaseExpired,
    #[error("malformed receipt `{0}`")]
    BadReceipt(String),
    #[error("subscription `{subscription}` is a {mode} subscription; {what} needs a {needs} one")]
    WrongMode {
        subscription: String,
        mode: &'static str,
        needs: &'static str,
        what: &'static str,
    },
    #[error("partition {partition} does not exist; the topic has {partitions}")]
    NoSuchPartition { partition: u32, partitions: u32 },
    #[error("offset {offset} is out of range: partition holds {start}..{end}")]
    OffsetOutOfRange { offset: u64, start: u64, end: u64 },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the broker is shutting down")]
    Closed,
    #[error(transparent)]
    Storage(#[from] hermod_storage::Error),
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl Error {
    /// Whether the node must stop serving (a log is poisoned or corrupt).
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Storage(e) => e.is_fatal(),
            Error::Meta(MetaError::Storage(e)) => e.is_fatal(),
            Error::Meta(_) => true,
            _ => false,
        }
    }

    /// A stable, protocol-neutral code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Catalog(e) => match e {
                CatalogError::InvalidName { .. } => "invalid_name",
                CatalogError::AlreadyExists { .. } => "already_exists",
                CatalogError::NotFound { .. } => "not_found",
                CatalogError::InvalidConfig { .. } => "invalid_config",
                CatalogError::InUse { .. } => "in_use",
                CatalogError::Binding(_) => "invalid_binding",
            },
            Error::Message(MessageError::TooLarge { .. }) => "message_too_large",
            Error::Message(_) => "invalid_message",
            Error::QueueFull { .. } => "queue_full",
            Error::UnknownReceipt => "unknown_receipt",
            Error::LeaseExpired => "lease_expired",
            Error::BadReceipt(_) => "invalid_receipt",
            Error::WrongMode { .. } => "wrong_mode",
            Error::NoSuchPartition { .. } => "not_found",
            Error::OffsetOutOfRange { .. } => "offset_out_of_range",
            Error::Invalid(_) => "invalid_request",
            Error::Closed => "unavailable",
            Error::Storage(_) | Error::Meta(_) => "internal",
        }
    }
}
