//! `hermod serve`: configuration, the data directory's lock, the listener,
//! the upkeep ticker and graceful shutdown.

#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
