//! The client commands of `hermod`, talking to a server over the HTTP API.

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {}

pub fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {}
}
