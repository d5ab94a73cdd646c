//! The client commands of `hermod`, talking to a server over the HTTP API
//! through `hermod-client`. This file declares the commands and dispatches
//! them; each command's arguments and work live in a file of their own,
//! tables and error messages in `output` and `errors`, message formats in
//! `print`, value parsers in `parse`.

mod consume;
mod errors;
mod exchange;
mod output;
mod parse;
mod print;
mod publish;
mod queue;
mod stats;
mod subscription;
mod topic;
mod trace;

use hermod_client::Client;

/// The default `--server`: the address `hermod serve` listens on by default.
const DEFAULT_SERVER: &str = "http://127.0.0.1:9080";

/// The client commands. Their arguments are boxed so that this enum (and
/// `main`'s, which flattens it) stays small.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Create, list, describe and delete topics.
    #[command(after_help = topic::EXAMPLES)]
    Topic(Box<topic::TopicArgs>),
    /// Create, list, describe, delete, purge and redrive queues.
    #[command(after_help = queue::EXAMPLES)]
    Queue(Box<queue::QueueArgs>),
    /// Create, list, describe, delete and purge subscriptions of a topic.
    #[command(after_help = subscription::EXAMPLES)]
    Subscription(Box<subscription::SubscriptionArgs>),
    /// Create, list, describe and delete exchanges.
    #[command(after_help = exchange::EXAMPLES)]
    Exchange(Box<exchange::ExchangeArgs>),
    /// Bind an exchange to a topic or queue.
    #[command(after_help = exchange::BIND_EXAMPLES)]
    Bind(Box<exchange::BindArgs>),
    /// Remove a binding of an exchange.
    #[command(after_help = exchange::UNBIND_EXAMPLES)]
    Unbind(Box<exchange::BindArgs>),
    /// Publish messages to a topic, queue or exchange; prints their ids.
    #[command(after_help = publish::EXAMPLES)]
    Publish(Box<publish::PublishArgs>),
    /// Receive messages from a queue or subscription, print and ack them.
    #[command(after_help = consume::EXAMPLES)]
    Consume(Box<consume::ConsumeArgs>),
    /// A live table of depths, in-flight messages, lag and rates.
    #[command(after_help = stats::EXAMPLES)]
    Stats(Box<stats::StatsArgs>),
    /// Where a message went: its events, one per line.
    #[command(after_help = trace::EXAMPLES)]
    Trace(Box<trace::TraceArgs>),
}

/// `--server`, accepted by every client command (and after its
/// subcommands, hence `global`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArg {
    /// The server's HTTP address.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "HERMOD_SERVER",
        default_value = DEFAULT_SERVER
    )]
    pub server: String,
}

/// Runs one client command to completion on a single-threaded runtime.
pub fn run(command: ClientCommand) -> anyhow::Result<()> {
    let server = command.server().to_owned();
    let not_found = errors::not_found_hint(&command);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(dispatch(command, &server));
    errors::explain(result, &server, &not_found)
}

async fn dispatch(command: ClientCommand, server: &str) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    match command {
        ClientCommand::Topic(a) => topic::run(&client, *a).await,
        ClientCommand::Queue(a) => queue::run(&client, *a).await,
        ClientCommand::Subscription(a) => subscription::run(&client, *a).await,
        ClientCommand::Exchange(a) => exchange::run(&client, *a).await,
        ClientCommand::Bind(a) => exchange::bind(&client, *a).await,
        ClientCommand::Unbind(a) => exchange::unbind(&client, *a).await,
        ClientCommand::Publish(a) => publish::run(&client, *a).await,
        ClientCommand::Consume(a) => consume::run(&client, *a).await,
        ClientCommand::Stats(a) => stats::run(&client, *a).await,
        ClientCommand::Trace(a) => trace::run(&client, *a).await,
    }
}

impl ClientCommand {
    /// Sets `--server` (given before the command, in `main`).
    pub fn set_server(&mut self, url: String) {
        let arg = match self {
            ClientCommand::Topic(a) => &mut a.server,
            ClientCommand::Queue(a) => &mut a.server,
            ClientCommand::Subscription(a) => &mut a.server,
            ClientCommand::Exchange(a) => &mut a.server,
            ClientCommand::Bind(a) | ClientCommand::Unbind(a) => &mut a.server,
            ClientCommand::Publish(a) => &mut a.server,
            ClientCommand::Consume(a) => &mut a.server,
            ClientCommand::Stats(a) => &mut a.server,
            ClientCommand::Trace(a) => &mut a.server,
        };
        arg.server = url;
    }

    fn server(&self) -> &str {
        let arg = match self {
            ClientCommand::Topic(a) => &a.server,
            ClientCommand::Queue(a) => &a.server,
            ClientCommand::Subscription(a) => &a.server,
            ClientCommand::Exchange(a) => &a.server,
            ClientCommand::Bind(a) | ClientCommand::Unbind(a) => &a.server,
            ClientCommand::Publish(a) => &a.server,
            ClientCommand::Consume(a) => &a.server,
            ClientCommand::Stats(a) => &a.server,
            ClientCommand::Trace(a) => &a.server,
        };
        &arg.server
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ClientCommand,
    }

    fn server_of(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(args).unwrap();
        cli.command.server().to_owned()
    }

    #[test]
    fn server_is_accepted_before_and_after_subcommands() {
        let url = "http://h:1";
        assert_eq!(server_of(&["h", "topic", "--server", url, "list"]), url);
        assert_eq!(server_of(&["h", "topic", "list", "--server", url]), url);
        assert_eq!(server_of(&["h", "stats", "--once", "--server", url]), url);
        assert_eq!(server_of(&["h", "trace", "m1", "--server", url]), url);
    }

    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_about_and_examples() {
        use clap::CommandFactory;
        let cli = Cli::command();
        for command in cli.get_subcommands() {
            check_help(command);
        }
    }

    fn check_help(command: &clap::Command) {
        let name = command.get_name();
        assert!(command.get_about().is_some(), "{name} has no about");
        assert!(command.get_after_help().is_some(), "{name} has no examples");
        for sub in command.get_subcommands() {
            check_help(sub);
        }
    }
}
