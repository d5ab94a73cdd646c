//! A background thread that keeps `interval` logs within their sync
//! interval when no append comes along to do it.
//!
//! One thread serves any number of logs (it holds weak references, so a
//! dropped log simply falls out). The storage crate has no async runtime;
//! this is the one thread it starts, and only when asked.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::log::Log;

/// Syncs registered logs whose interval has passed. Stops when dropped.
#[derive(Debug)]
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    logs: Mutex<Vec<Weak<Log>>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Flusher {
    /// Starts the thread, which looks at its logs every `period`.
    pub fn start(period: Duration) -> Flusher {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("hermod-flusher".into())
            .spawn(move || worker.run(period))
            .expect("spawning the flusher thread");
        Flusher {
            shared,
            thread: Some(thread),
        }
    }

    /// Adds a log to those the thread keeps synced. From then on the log's
    /// appends leave syncing to this thread instead of paying for it.
    pub fn register(&self, log: &Arc<Log>) {
        log.flushed_in_background
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.shared.logs.lock().unwrap().push(Arc::downgrade(log));
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap() = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn run(&self, period: Duration) {
        loop {
            {
                let stop = self.stop.lock().unwrap();
                let (stop, _) = self.wake.wait_timeout(stop, period).unwrap();
                if *stop {
                    return;
                }
            }
            let logs: Vec<Arc<Log>> = {
                let mut logs = self.logs.lock().unwrap();
                logs.retain(|w| w.strong_count() > 0);
                logs.iter().filter_map(Weak::upgrade).collect()
            };
            for log in logs {
                if let Err(error) = log.sync_if_due() {
                    tracing::error!(dir = %log.dir().display(), %error, "interval sync failed");
                }
            }
        }
    }
}
