//! The upkeep task: calls `Broker::tick` (retention, expired leases,
//! snapshots) and samples the counters rates are computed from, every
//! `tick_ms` on the blocking pool until shutdown. An error
//! the broker survives is logged; a fatal one (a log that cannot sync or is
//! corrupt) starts the shutdown and is returned, so the process exits
//! non-zero.

use std::sync::Arc;
use std::time::Duration;

use hermod_http::AppState;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Ticks until `shutdown` turns true; on a fatal tick error sets it.
pub async fn run(
    state: AppState,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
    trigger: Arc<watch::Sender<bool>>,
) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => return Ok(()),
            _ = interval.tick() => {}
        }
        let ticking = state.clone();
        let ticked = tokio::task::spawn_blocking(move || {
            ticking.sample_rates();
            ticking.broker.tick()
        });
        match ticked.await? {
            Ok(()) => {}
            Err(e) if e.is_fatal() => {
                tracing::error!(error = %e, "upkeep failed; the broker cannot go on, shutting down");
                trigger.send_replace(true);
                return Err(anyhow::Error::new(e).context("upkeep failed"));
            }
            Err(e) => tracing::warn!(error = %e, "upkeep failed; retrying at the next tick"),
        }
    }
}
