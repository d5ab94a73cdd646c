//! `hermod exchange create | list | describe | delete`, and `hermod bind` /
//! `hermod unbind`, which connect an exchange to topics and queues.

use hermod_api::{BindingDef, ExchangeConfig, ExchangeInfo};
use hermod_client::Client;

use super::output::{self, Table};
use super::parse::{self, KindArg, ScopeArg};
use super::ServerArg;

pub(crate) const EXAMPLES: &str = "Examples:
  hermod exchange create events --kind topic --alternate unrouted
  hermod exchange list
  hermod exchange describe events";

pub(crate) const BIND_EXAMPLES: &str = "Examples:
  hermod bind events orders --key 'order.*'
  hermod bind broadcast audit
  hermod bind by-region eu-orders --filter '{\"region\": [\"eu\"]}'";

pub(crate) const UNBIND_EXAMPLES: &str = "Examples:
  hermod unbind events orders --key 'order.*'
  hermod unbind broadcast audit";

#[derive(Debug, clap::Args)]
pub struct ExchangeArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    #[command(subcommand)]
    command: ExchangeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ExchangeCommand {
    /// Create an exchange (or check that it exists with these settings).
    #[command(after_help = "Examples:
  hermod exchange create broadcast --kind fanout
  hermod exchange create events --kind topic --alternate unrouted")]
    Create {
        name: String,
        /// How the exchange picks bindings.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Topic or queue for messages no binding takes.
        #[arg(long, value_name = "DEST")]
        alternate: Option<String>,
    },
    /// List exchanges with their kinds and binding counts.
    #[command(after_help = "Examples:
  hermod exchange list
  hermod exchange list --json")]
    List {
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show an exchange and its bindings.
    #[command(after_help = "Examples:
  hermod exchange describe events
  hermod exchange describe events --json")]
    Describe {
        name: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Delete an exchange and its bindings.
    #[command(after_help = "Examples:
  hermod exchange delete events")]
    Delete { name: String },
}

#[derive(Debug, clap::Args)]
pub struct BindArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    exchange: String,
    /// The topic or queue.
    destination: String,
    /// Routing key (direct exchanges) or pattern (topic exchanges).
    #[arg(long)]
    key: Option<String>,
    /// Take only messages matching this filter policy (JSON).
    #[arg(long, value_name = "POLICY_JSON")]
    filter: Option<String>,
    /// What the filter looks at (default: attributes, the headers).
    #[arg(long, value_enum, requires = "filter")]
    filter_scope: Option<ScopeArg>,
}

pub(crate) async fn run(client: &Client, args: ExchangeArgs) -> anyhow::Result<()> {
    match args.command {
        ExchangeCommand::Create {
            name,
            kind,
            alternate,
        } => {
            let config = ExchangeConfig {
                kind: kind.into(),
                alternate,
            };
            let info = client.create_exchange(&name, &config).await?;
            println!("exchange {} is ready", info.name);
            Ok(())
        }
        ExchangeCommand::List { json } => list(client, json).await,
        ExchangeCommand::Describe { name, json } => describe(client, &name, json).await,
        ExchangeCommand::Delete { name } => {
            client.delete_exchange(&name).await?;
            println!("deleted exchange {name}");
            Ok(())
        }
    }
}

pub(crate) async fn bind(client: &Client, args: BindArgs) -> anyhow::Result<()> {
    let binding = client.bind(&binding(args)?).await?;
    println!("bound {}", describe_binding(&binding));
    Ok(())
}

pub(crate) async fn unbind(client: &Client, args: BindArgs) -> anyhow::Result<()> {
    let binding = binding(args)?;
    client.unbind(&binding).await?;
    println!("unbound {}", describe_binding(&binding));
    Ok(())
}

fn binding(args: BindArgs) -> anyhow::Result<BindingDef> {
    Ok(BindingDef {
        filter: parse::filter(args.filter.as_deref(), args.filter_scope)?,
        exchange: args.exchange,
        destination: args.destination,
        key: args.key,
    })
}

/// `exchange -> destination (key K)`.
fn describe_binding(b: &BindingDef) -> String {
    let key = b
        .key
        .as_ref()
        .map(|k| format!(" (key {k})"))
        .unwrap_or_default();
    format!("{} -> {}{key}", b.exchange, b.destination)
}

async fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let list = client.list_exchanges().await?;
    if json {
        print!("{}", output::json(&list)?);
        return Ok(());
    }
    let mut table = Table::new(&["NAME", "KIND", "ALTERNATE", "BINDINGS"]);
    for e in &list.exchanges {
        table.row(vec![
            e.name.clone(),
            kind_name(&e.config),
            output::or_dash(e.config.alternate.as_ref()),
            e.bindings.len().to_string(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn describe(client: &Client, name: &str, json: bool) -> anyhow::Result<()> {
    let info = client.exchange(name).await?;
    if json {
        print!("{}", output::json(&info)?);
        return Ok(());
    }
    print!("{}", describe_text(&info));
    Ok(())
}

fn describe_text(info: &ExchangeInfo) -> String {
    let pairs = [
        ("name".to_owned(), info.name.clone()),
        ("kind".to_owned(), kind_name(&info.config)),
        (
            "alternate".to_owned(),
            output::or_dash(info.config.alternate.as_ref()),
        ),
    ];
    let mut bindings = Table::new(&["DESTINATION", "KEY", "FILTER"]);
    for b in &info.bindings {
        let filter = b.filter.as_ref().map(|f| output::cell(&f.policy, 60));
        bindings.row(vec![
            b.destination.clone(),
            output::or_dash(b.key.as_ref()),
            output::or_dash(filter),
        ]);
    }
    format!("{}\n{}", output::key_values(&pairs), bindings.render())
}

/// The kind as the API spells it.
fn kind_name(config: &ExchangeConfig) -> String {
    let json = serde_json::to_value(config).unwrap_or_default();
    output::plain(&json["kind"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_describe_themselves() {
        let mut b = BindingDef {
            exchange: "events".into(),
            destination: "orders".into(),
            key: Some("order.*".into()),
            filter: None,
        };
        assert_eq!(describe_binding(&b), "events -> orders (key order.*)");
        b.key = None;
        assert_eq!(describe_binding(&b), "events -> orders");
    }

    #[test]
    fn kinds_are_named_as_in_the_api() {
        let config = ExchangeConfig {
            kind: KindArg::Topic.into(),
            alternate: None,
        };
        assert_eq!(kind_name(&config), "topic");
    }
}
