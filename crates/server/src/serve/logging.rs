//! Logging for `hermod serve`: `tracing` events to stderr, readable lines
//! by default or one JSON object per line (`--log-format json`), filtered
//! by `--log-level` (the `RUST_LOG` syntax). Stdout is kept for the banner.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use super::config::LogFormat;

/// Installs the process-wide subscriber.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let env_filter =
        EnvFilter::try_new(filter).with_context(|| format!("bad log filter `{filter}`"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
