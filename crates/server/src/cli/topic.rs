//! `hermod topic create | list | describe | delete`. Create starts from
//! `--config JSON` (or the defaults) and applies the flags given on top.

use hermod_api::{DurabilityMode, TopicConfig, TopicInfo};
use hermod_client::Client;

use super::output::{self, Table};
use super::{parse, subscription, ServerArg};

pub(crate) const EXAMPLES: &str = "Examples:
  hermod topic create orders --partitions 3 --durability interval:5
  hermod topic list
  hermod topic describe orders --json";

#[derive(Debug, clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopicCommand {
    /// Create a topic (or check that it exists with these settings).
    #[command(after_help = "Examples:
  hermod topic create orders
  hermod topic create clicks --partitions 8 --retention-ms 86400000 --durability memory
  hermod topic create audit --config '{\"partitions\": 2, \"dedup_window_ms\": 60000}'")]
    Create(CreateArgs),
    /// List topics with their sizes and rates.
    #[command(after_help = "Examples:
  hermod topic list
  hermod topic list --json")]
    List {
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show a topic's settings, partitions and subscriptions.
    #[command(after_help = "Examples:
  hermod topic describe orders
  hermod topic describe orders --json")]
    Describe {
        name: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Delete a topic, its messages and its subscriptions.
    #[command(after_help = "Examples:
  hermod topic delete orders")]
    Delete { name: String },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    name: String,
    /// Number of partitions (fixed at creation).
    #[arg(long, value_name = "N")]
    partitions: Option<u32>,
    /// Delete messages older than this.
    #[arg(long, value_name = "N")]
    retention_ms: Option<u64>,
    /// When a publish is acknowledged: fsync, memory or interval:MS.
    #[arg(long, value_name = "MODE", value_parser = parse::durability)]
    durability: Option<DurabilityMode>,
    /// All settings as JSON; the flags above override it.
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
}

pub(crate) async fn run(client: &Client, args: TopicArgs) -> anyhow::Result<()> {
    match args.command {
        TopicCommand::Create(a) => create(client, a).await,
        TopicCommand::List { json } => list(client, json).await,
        TopicCommand::Describe { name, json } => describe(client, &name, json).await,
        TopicCommand::Delete { name } => {
            client.delete_topic(&name).await?;
            println!("deleted topic {name}");
            Ok(())
        }
    }
}

async fn create(client: &Client, args: CreateArgs) -> anyhow::Result<()> {
    let mut config: TopicConfig = parse::config(args.config.as_deref())?;
    if let Some(n) = args.partitions {
        config.partitions = n;
    }
    if let Some(ms) = args.retention_ms {
        config.retention_ms = Some(ms);
    }
    if let Some(d) = args.durability {
        config.durability = d;
    }
    let info = client.create_topic(&args.name, &config).await?;
    let partitions = info.config.partitions;
    println!("topic {} is ready ({partitions} partitions)", info.name);
    Ok(())
}

async fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let list = client.list_topics().await?;
    if json {
        print!("{}", output::json(&list)?);
        return Ok(());
    }
    let mut table = Table::new(&[
        "NAME",
        "PARTITIONS",
        "MESSAGES",
        "BYTES",
        "SUBSCRIPTIONS",
        "PUB/S",
    ]);
    for topic in &list.topics {
        table.row(vec![
            topic.name.clone(),
            topic.partitions.len().to_string(),
            messages_held(topic).to_string(),
            topic
                .partitions
                .iter()
                .map(|p| p.size_bytes)
                .sum::<u64>()
                .to_string(),
            topic.subscriptions.len().to_string(),
            output::rate(topic.rates.published_per_s),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn describe(client: &Client, name: &str, json: bool) -> anyhow::Result<()> {
    let info = client.topic(name).await?;
    if json {
        print!("{}", output::json(&info)?);
        return Ok(());
    }
    print!("{}", describe_text(&info));
    Ok(())
}

/// A topic's settings and figures, then its partitions and subscriptions.
fn describe_text(info: &TopicInfo) -> String {
    let mut pairs = vec![("name".to_owned(), info.name.clone())];
    pairs.extend(output::settings(&info.config));
    pairs.extend([
        ("messages".to_owned(), messages_held(info).to_string()),
        ("published".to_owned(), info.published.to_string()),
        (
            "published_bytes".to_owned(),
            info.published_bytes.to_string(),
        ),
        ("duplicates".to_owned(), info.duplicates.to_string()),
        (
            "published_per_s".to_owned(),
            output::rate(info.rates.published_per_s),
        ),
    ]);
    let mut partitions = Table::new(&["PARTITION", "LOG-START", "LOG-END", "BYTES"]);
    for p in &info.partitions {
        partitions.row(vec![
            p.partition.to_string(),
            p.log_start.to_string(),
            p.log_end.to_string(),
            p.size_bytes.to_string(),
        ]);
    }
    let subscriptions = subscription::table(&info.subscriptions);
    format!(
        "{}\n{}\n{}",
        output::key_values(&pairs),
        partitions.render(),
        subscriptions.render()
    )
}

/// Messages the topic's partitions hold now.
fn messages_held(topic: &TopicInfo) -> u64 {
    topic
        .partitions
        .iter()
        .map(|p| p.log_end.saturating_sub(p.log_start))
        .sum()
}
