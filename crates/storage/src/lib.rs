//! Hermod's storage engine: a segmented, crash-safe partition log.
//!
//! A [`Log`] is a directory of segment files holding Kafka record batches
//! (v2), with a sparse offset index and a time index per segment. It assigns
//! offsets on append, makes appends durable according to its [`Durability`],
//! recovers from a torn tail after a crash, and reports corruption instead of
//! dropping acknowledged data. It knows nothing of async runtimes or network
//! protocols; every disk access goes through the small [`io::Fs`] seam.

pub mod batch;
mod checkpoint;
pub mod clock;
mod commit;
mod config;
mod error;
mod flusher;
mod index;
pub mod io;
mod log;
mod maintain;
mod open;
mod read;
mod segment;
pub mod sim;

pub use crate::config::{CorruptionPolicy, Durability, LogConfig};
pub use crate::error::{Error, Result};
pub use crate::flusher::Flusher;
pub use crate::log::{AppendInfo, Log};
pub use crate::maintain::{RetentionReport, SegmentInfo};
pub use crate::open::{RecoveryReport, CLEAN_SHUTDOWN, QUARANTINE_DIR};
pub use crate::read::ReadBatches;
