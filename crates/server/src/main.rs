//! `hermod`: the broker (`hermod serve`) and the command-line client for
//! its HTTP API, in one binary.

mod bench;
mod cli;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hermod",
    version,
    about = "Hermod: one small, durable message broker"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker.
    Serve(serve::ServeArgs),
    /// Measure: publish, queue, fan-out and replay load, embedded or over HTTP.
    #[command(after_help = bench::EXAMPLES)]
    Bench(Box<bench::BenchArgs>),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Serve(a) => serve::run(a),
        Command::Bench(a) => bench::run(*a),
        Command::Client(c) => cli::run(c),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
