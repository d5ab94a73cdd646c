//! `hermod subscription create | list | describe | delete | purge`, the
//! subscriptions of a topic. Create starts from `--config JSON` (or the
//! defaults) and applies the flags given on top.

use hermod_api::{StartPosition, SubscriptionConfig, SubscriptionInfo};
use hermod_client::{Client, Source};

use super::output::{self, Table};
use super::parse::{self, ModeArg, ScopeArg};
use super::queue;
use super::ServerArg;

pub(crate) const EXAMPLES: &str = "Examples:
  hermod subscription create orders billing --mode shared --start earliest
  hermod subscription list orders
  hermod subscription describe orders billing";

#[derive(Debug, clap::Args)]
pub struct SubscriptionArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    #[command(subcommand)]
    command: SubscriptionCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SubscriptionCommand {
    /// Create a subscription to a topic (or check that it exists with these settings).
    #[command(after_help = "Examples:
  hermod subscription create orders billing
  hermod subscription create orders analytics --mode stream --start earliest
  hermod subscription create orders eu --filter '{\"region\": [\"eu\"]}'")]
    Create(CreateArgs),
    /// List a topic's subscriptions with depth, in-flight and lag.
    #[command(after_help = "Examples:
  hermod subscription list orders
  hermod subscription list orders --json")]
    List {
        topic: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show a subscription's settings and figures.
    #[command(after_help = "Examples:
  hermod subscription describe orders billing
  hermod subscription describe orders billing --json")]
    Describe {
        topic: String,
        name: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Delete a subscription (the topic's messages stay).
    #[command(after_help = "Examples:
  hermod subscription delete orders billing")]
    Delete { topic: String, name: String },
    /// Drop every message waiting in a subscription.
    #[command(after_help = "Examples:
  hermod subscription purge orders billing")]
    Purge { topic: String, name: String },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    topic: String,
    name: String,
    /// How messages are handed out.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Where reading starts: earliest, latest or an offset.
    #[arg(long, value_name = "POSITION", value_parser = parse::start)]
    start: Option<StartPosition>,
    /// Deliver only messages matching this filter policy (JSON).
    #[arg(long, value_name = "POLICY_JSON")]
    filter: Option<String>,
    /// What the filter looks at (default: attributes, the headers).
    #[arg(long, value_enum, requires = "filter")]
    filter_scope: Option<ScopeArg>,
    /// All settings as JSON; the flags above override it.
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
}

pub(crate) async fn run(client: &Client, args: SubscriptionArgs) -> anyhow::Result<()> {
    match args.command {
        SubscriptionCommand::Create(a) => create(client, a).await,
        SubscriptionCommand::List { topic, json } => list(client, &topic, json).await,
        SubscriptionCommand::Describe { topic, name, json } => {
            describe(client, &topic, &name, json).await
        }
        SubscriptionCommand::Delete { topic, name } => {
            client.delete_subscription(&topic, &name).await?;
            println!("deleted subscription {name} of topic {topic}");
            Ok(())
        }
        SubscriptionCommand::Purge { topic, name } => {
            let source = Source::Subscription {
                topic: &topic,
                subscription: &name,
            };
            let purged = client.purge(source).await?.purged;
            println!("purged {purged} messages from subscription {name} of topic {topic}");
            Ok(())
        }
    }
}

async fn create(client: &Client, args: CreateArgs) -> anyhow::Result<()> {
    let config = create_config(&args)?;
    let info = client
        .create_subscription(&args.topic, &args.name, &config)
        .await?;
    let mode = output::plain(&serde_json::to_value(info.config.mode)?);
    println!(
        "{mode} subscription {} of topic {} is ready",
        info.name, info.topic
    );
    Ok(())
}

fn create_config(args: &CreateArgs) -> anyhow::Result<SubscriptionConfig> {
    let mut config: SubscriptionConfig = parse::config(args.config.as_deref())?;
    if let Some(mode) = args.mode {
        config.mode = mode.into();
    }
    if let Some(start) = args.start {
        config.start = start;
    }
    if let Some(filter) = parse::filter(args.filter.as_deref(), args.filter_scope)? {
        config.filter = Some(filter);
    }
    Ok(config)
}

async fn list(client: &Client, topic: &str, json: bool) -> anyhow::Result<()> {
    let list = client.list_subscriptions(topic).await?;
    if json {
        print!("{}", output::json(&list)?);
        return Ok(());
    }
    print!("{}", table(&list.subscriptions).render());
    Ok(())
}

/// Subscriptions, one per row.
pub(crate) fn table(subscriptions: &[SubscriptionInfo]) -> Table {
    let mut table = Table::new(&[
        "SUBSCRIPTION",
        "MODE",
        "DEPTH",
        "IN-FLIGHT",
        "LAG",
        "DELIVERED",
        "ACKED",
        "DEAD-LETTERED",
    ]);
    for s in subscriptions {
        let mode = serde_json::to_value(s.config.mode).unwrap_or_default();
        table.row(vec![
            s.name.clone(),
            output::plain(&mode),
            s.depth.to_string(),
            s.in_flight.to_string(),
            s.lag.to_string(),
            s.delivered.to_string(),
            s.acked.to_string(),
            s.dead_lettered.to_string(),
        ]);
    }
    table
}

async fn describe(client: &Client, topic: &str, name: &str, json: bool) -> anyhow::Result<()> {
    let info = client.subscription(topic, name).await?;
    if json {
        print!("{}", output::json(&info)?);
        return Ok(());
    }
    print!("{}", output::key_values(&describe_pairs(&info)));
    Ok(())
}

fn describe_pairs(s: &SubscriptionInfo) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("topic".to_owned(), s.topic.clone()),
        ("name".to_owned(), s.name.clone()),
    ];
    pairs.extend(output::settings(&s.config));
    let figures = [
        ("depth", s.depth),
        ("in_flight", s.in_flight),
        ("lag", s.lag),
        ("delivered", s.delivered),
        ("acked", s.acked),
        ("nacked", s.nacked),
        ("expired", s.expired),
        ("filtered", s.filtered),
        ("dead_lettered", s.dead_lettered),
    ];
    pairs.extend(figures.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    pairs.extend(queue::rates(&s.rates));
    pairs
}
