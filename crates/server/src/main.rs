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
    /// The server's HTTP address, for the client commands (also accepted
    /// after the command; env HERMOD_SERVER) [default: http://127.0.0.1:9080]
    #[arg(long = "server", id = "server_before_command", value_name = "URL")]
    server: Option<String>,
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
    let result = match (args.command, args.server) {
        (Command::Serve(_), Some(_)) => Err(anyhow::anyhow!(
            "--server is an option of the client commands; `hermod serve` listens on --http HOST:PORT"
        )),
        (Command::Serve(a), None) => serve::run(a),
        (Command::Bench(mut a), server) => {
            a.server = a.server.or(server);
            bench::run(*a)
        }
        (Command::Client(mut c), server) => {
            // `hermod --server URL topic list`: the flag before the command
            // wins over HERMOD_SERVER and the default.
            if let Some(url) = server {
                c.set_server(url);
            }
            cli::run(c)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
