//! `hermod queue create | list | describe | delete | purge | redrive`.
//! Create starts from `--config JSON` (or the defaults) and applies the
//! flags given on top.

use hermod_api::{QueueConfig, QueueInfo, RedriveRequest};
use hermod_client::{Client, Source};

use super::output::{self, Table};
use super::{parse, ServerArg};

pub(crate) const EXAMPLES: &str = "Examples:
  hermod queue create jobs --max-deliveries 5 --dead-letter jobs-dlq
  hermod queue list
  hermod queue redrive jobs-dlq";

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    #[command(subcommand)]
    command: QueueCommand,
}

#[derive(Debug, clap::Subcommand)]
enum QueueCommand {
    /// Create a queue (or check that it exists with these settings).
    #[command(after_help = "Examples:
  hermod queue create jobs
  hermod queue create payments --fifo --visibility-timeout-ms 60000
  hermod queue create jobs --max-deliveries 5 --dead-letter jobs-dlq")]
    Create(CreateArgs),
    /// List queues with their depths and rates.
    #[command(after_help = "Examples:
  hermod queue list
  hermod queue list --json")]
    List {
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show a queue's settings and figures.
    #[command(after_help = "Examples:
  hermod queue describe jobs
  hermod queue describe jobs --json")]
    Describe {
        name: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Delete a queue and its messages.
    #[command(after_help = "Examples:
  hermod queue delete jobs")]
    Delete { name: String },
    /// Drop every message waiting in a queue.
    #[command(after_help = "Examples:
  hermod queue purge jobs")]
    Purge { name: String },
    /// Move dead letters held in a queue back to the queues they came from.
    #[command(after_help = "Examples:
  hermod queue redrive jobs-dlq
  hermod queue redrive jobs-dlq --max 100")]
    Redrive {
        /// The dead-letter queue.
        name: String,
        /// Most messages to move (default: all).
        #[arg(long, value_name = "N")]
        max: Option<usize>,
    },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    name: String,
    /// Ordered per key (message group), with de-duplication.
    #[arg(long)]
    fifo: bool,
    /// Deliveries after which a message is dead-lettered (0: unlimited).
    #[arg(long, value_name = "N")]
    max_deliveries: Option<u32>,
    /// Queue that takes messages delivered --max-deliveries times.
    #[arg(long, value_name = "QUEUE")]
    dead_letter: Option<String>,
    /// How long a received message stays invisible to others.
    #[arg(long, value_name = "N")]
    visibility_timeout_ms: Option<u64>,
    /// Delay before a new message becomes visible.
    #[arg(long, value_name = "N")]
    delay_ms: Option<u64>,
    /// All settings as JSON; the flags above override it.
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
}

pub(crate) async fn run(client: &Client, args: QueueArgs) -> anyhow::Result<()> {
    match args.command {
        QueueCommand::Create(a) => create(client, a).await,
        QueueCommand::List { json } => list(client, json).await,
        QueueCommand::Describe { name, json } => describe(client, &name, json).await,
        QueueCommand::Delete { name } => {
            client.delete_queue(&name).await?;
            println!("deleted queue {name}");
            Ok(())
        }
        QueueCommand::Purge { name } => {
            let purged = client.purge(Source::Queue(&name)).await?.purged;
            println!("purged {purged} messages from queue {name}");
            Ok(())
        }
        QueueCommand::Redrive { name, max } => {
            let moved = client.redrive(&name, &RedriveRequest { max }).await?.moved;
            println!("moved {moved} messages from {name} back to their source");
            Ok(())
        }
    }
}

async fn create(client: &Client, args: CreateArgs) -> anyhow::Result<()> {
    let config = create_config(&args)?;
    let info = client.create_queue(&args.name, &config).await?;
    let kind = if info.config.fifo {
        "fifo queue"
    } else {
        "queue"
    };
    println!("{kind} {} is ready", info.name);
    Ok(())
}

fn create_config(args: &CreateArgs) -> anyhow::Result<QueueConfig> {
    let mut config: QueueConfig = parse::config(args.config.as_deref())?;
    config.fifo |= args.fifo;
    if let Some(n) = args.max_deliveries {
        config.max_deliveries = n;
    }
    if let Some(q) = &args.dead_letter {
        config.dead_letter = Some(q.clone());
    }
    if let Some(ms) = args.visibility_timeout_ms {
        config.visibility_timeout_ms = ms;
    }
    if let Some(ms) = args.delay_ms {
        config.delay_ms = ms;
    }
    Ok(config)
}

async fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let list = client.list_queues().await?;
    if json {
        print!("{}", output::json(&list)?);
        return Ok(());
    }
    print!("{}", table(&list.queues).render());
    Ok(())
}

/// Queues, one per row.
fn table(queues: &[QueueInfo]) -> Table {
    let mut table = Table::new(&[
        "NAME",
        "FIFO",
        "DEPTH",
        "IN-FLIGHT",
        "PUBLISHED",
        "ACKED",
        "DEAD-LETTERED",
        "PUB/S",
        "ACK/S",
    ]);
    for q in queues {
        table.row(vec![
            q.name.clone(),
            if q.config.fifo { "yes" } else { "no" }.to_owned(),
            q.depth.to_string(),
            q.in_flight.to_string(),
            q.published.to_string(),
            q.acked.to_string(),
            q.dead_lettered.to_string(),
            output::rate(q.rates.published_per_s),
            output::rate(q.rates.acked_per_s),
        ]);
    }
    table
}

async fn describe(client: &Client, name: &str, json: bool) -> anyhow::Result<()> {
    let info = client.queue(name).await?;
    if json {
        print!("{}", output::json(&info)?);
        return Ok(());
    }
    print!("{}", output::key_values(&describe_pairs(&info)));
    Ok(())
}

fn describe_pairs(q: &QueueInfo) -> Vec<(String, String)> {
    let mut pairs = vec![("name".to_owned(), q.name.clone())];
    pairs.extend(output::settings(&q.config));
    let figures = [
        ("depth", q.depth),
        ("in_flight", q.in_flight),
        ("published", q.published),
        ("delivered", q.delivered),
        ("acked", q.acked),
        ("nacked", q.nacked),
        ("expired", q.expired),
        ("dead_lettered", q.dead_lettered),
    ];
    pairs.extend(figures.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    pairs.extend(rates(&q.rates));
    pairs
}

/// A resource's rates as `describe` pairs.
pub(crate) fn rates(rates: &hermod_api::Rates) -> [(String, String); 3] {
    [
        (
            "published_per_s".to_owned(),
            output::rate(rates.published_per_s),
        ),
        (
            "delivered_per_s".to_owned(),
            output::rate(rates.delivered_per_s),
        ),
        ("acked_per_s".to_owned(), output::rate(rates.acked_per_s)),
    ]
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: QueueCommand,
    }

    #[test]
    fn flags_override_the_config_json() {
        let cli = Cli::try_parse_from([
            "q",
            "create",
            "jobs",
            "--config",
            r#"{"max_deliveries": 3, "delay_ms": 7}"#,
            "--max-deliveries",
            "5",
            "--dead-letter",
            "dlq",
        ])
        .unwrap();
        let QueueCommand::Create(args) = cli.command else {
            panic!("not a create");
        };
        let config = create_config(&args).unwrap();
        assert_eq!(config.max_deliveries, 5);
        assert_eq!(config.delay_ms, 7);
        assert_eq!(config.dead_letter.as_deref(), Some("dlq"));
        assert!(!config.fifo);
    }
}
