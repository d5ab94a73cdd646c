//! `hermod serve`: configuration, the data directory's lock, the listener,
//! the upkeep ticker and graceful shutdown.
//!
//! Start: settings ([`config`]), logging, the data directory and its lock
//! ([`lock`]), the broker opened on the blocking pool with the definitions
//! file applied ([`definitions`]), the listener with its connection limit
//! ([`listener`]), then the banner on stdout. Shutdown has one signal, a
//! `watch` channel that turns true on SIGINT, SIGTERM or a fatal upkeep
//! error: every task watches it (the HTTP server stops accepting and its
//! long polls and event streams end, the upkeep task stops), and the server
//! waits for all of them (in-flight requests for at most
//! `shutdown_grace_ms`) before closing the broker and releasing the lock.

mod config;
mod definitions;
mod listener;
mod lock;
mod logging;
mod upkeep;

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hermod_api::Definitions;
use hermod_core::{Broker, BrokerConfig};
use hermod_http::{AppState, ServerStats};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use config::{ServeFlags, Settings};
use listener::LimitedListener;
use lock::DataDirLock;

/// `hermod serve`'s flags (boxed: they are many, and the command enum
/// holds them by value).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    flags: Box<ServeFlags>,
}

/// Runs the broker until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(*args.flags)?;
    logging::init(settings.log_format, &settings.log_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hermod")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(settings))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Installed first, so a signal during start is not lost: the server
    // then stops as soon as it has started.
    let signals = Signals::install()?;
    let definitions = match &settings.definitions {
        Some(path) => Some(definitions::load(path)?),
        None => None,
    };
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let lock = DataDirLock::acquire(dir)?;
    let broker = open_broker(&settings, definitions).await?;
    let served = serve_broker(&settings, broker.clone(), signals).await;
    let closed = close_broker(broker).await;
    let released = lock.release();
    tracing::info!("stopped");
    served.and(closed).and(released)
}

/// Serves the HTTP API until the shutdown signal, then waits for every
/// task.
async fn serve_broker(
    settings: &Settings,
    broker: Arc<Broker>,
    signals: Signals,
) -> anyhow::Result<()> {
    let tcp = TcpListener::bind(&settings.http)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http))?;
    let addr = tcp.local_addr()?;
    let stats = Arc::new(ServerStats::default());
    let listener = LimitedListener::new(tcp, settings.limits.max_connections, stats.clone());
    let (trigger, shutdown) = watch::channel(false);
    let trigger = Arc::new(trigger);
    let state = AppState::new(broker, settings.limits.clone(), shutdown.clone(), stats);
    let stopping = wait_for_shutdown(shutdown.clone());
    let http =
        axum::serve(listener, hermod_http::router(state.clone())).with_graceful_shutdown(stopping);
    let http = tokio::spawn(http.into_future());
    let tick = Duration::from_millis(settings.tick_ms);
    let upkeep = tokio::spawn(upkeep::run(state, tick, shutdown.clone(), trigger.clone()));
    let signalled = tokio::spawn(signals.wait(trigger.clone(), shutdown.clone()));
    print_banner(&settings.data_dir, addr);
    tracing::info!(%addr, "listening");
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    let served = finish_serving(http, shutdown, grace).await;
    // The server may also have stopped by itself (an error): stop the rest.
    trigger.send_replace(true);
    let upkept = upkeep.await.context("the upkeep task failed")?;
    signalled.await.context("the signal task failed")?;
    served.and(upkept)
}

/// Opens the broker and applies the definitions, on the blocking pool
/// (both do file I/O and sync).
async fn open_broker(
    settings: &Settings,
    defs: Option<Definitions>,
) -> anyhow::Result<Arc<Broker>> {
    let mut config = BrokerConfig::new(&settings.data_dir);
    config.trace_capacity = settings.trace_capacity;
    let dir = settings.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let broker = Broker::open(config)
            .with_context(|| format!("cannot open the broker in {}", dir.display()))?;
        if let Some(defs) = defs {
            if let Err(e) = apply_definitions(&broker, &defs) {
                let _ = broker.close();
                return Err(e);
            }
        }
        Ok(Arc::new(broker))
    })
    .await?
}

fn apply_definitions(broker: &Broker, defs: &Definitions) -> anyhow::Result<()> {
    let applied = definitions::apply(broker, defs).context("cannot apply the definitions file")?;
    tracing::info!(
        created = applied.created,
        unchanged = applied.unchanged,
        "definitions applied"
    );
    Ok(())
}

/// Syncs and closes every log.
async fn close_broker(broker: Arc<Broker>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || broker.close())
        .await?
        .context("cannot close the broker cleanly")
}

/// Waits for the HTTP server: until shutdown, then for in-flight requests
/// for at most `grace`, after which their connections are dropped.
async fn finish_serving(
    mut http: JoinHandle<std::io::Result<()>>,
    shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> anyhow::Result<()> {
    tokio::select! {
        served = &mut http => return Ok(served??),
        () = wait_for_shutdown(shutdown) => {}
    }
    tracing::info!("shutting down: no new connections; waiting for requests in flight");
    match tokio::time::timeout(grace, &mut http).await {
        Ok(served) => Ok(served??),
        Err(_) => {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "requests still running after the grace period; dropping them"
            );
            http.abort();
            Ok(())
        }
    }
}

/// Resolves when the shutdown signal turns true (or its sender is gone).
async fn wait_for_shutdown(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// Writes the banner; tests read the port from its `HTTP API:` line.
fn print_banner(data_dir: &Path, addr: SocketAddr) {
    let shown = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let banner = format!(
        "hermod {}\ndata directory: {}\nHTTP API: http://{addr}/v1\nmetrics: http://{addr}/metrics\n",
        env!("CARGO_PKG_VERSION"),
        shown.display()
    );
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(banner.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!(error = %e, "cannot write the banner to stdout");
    }
}

/// SIGINT and SIGTERM, caught from start to exit.
#[derive(Debug)]
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
        })
    }

    /// Starts the shutdown on the first signal; ends with the shutdown.
    async fn wait(mut self, trigger: Arc<watch::Sender<bool>>, shutdown: watch::Receiver<bool>) {
        let name = tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            () = wait_for_shutdown(shutdown) => return,
        };
        tracing::info!(signal = name, "signal received; stopping");
        trigger.send_replace(true);
    }
}
