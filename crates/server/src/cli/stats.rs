//! `hermod stats`: one table of topics, subscriptions and queues with depth,
//! in-flight, lag and rates, from `GET /v1/stats`, redrawn every
//! `--interval-ms` until Ctrl-C (`--once`: printed once). On a terminal the
//! screen is cleared between draws; into a pipe, tables follow each other.

use std::io::IsTerminal;
use std::time::Duration;

use hermod_api::{Overview, Rates, TopicInfo};
use hermod_client::Client;

use super::output::{self, Table};
use super::ServerArg;

pub(crate) const EXAMPLES: &str = "Examples:
  hermod stats
  hermod stats --interval-ms 250
  hermod stats --once";

/// Moves the cursor home and clears the screen (ANSI).
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    /// Time between redraws.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    interval_ms: u64,
    /// Print the table once and exit.
    #[arg(long)]
    once: bool,
}

pub(crate) async fn run(client: &Client, args: StatsArgs) -> anyhow::Result<()> {
    if args.once {
        print!("{}", table(&client.stats().await?).render());
        return Ok(());
    }
    let clear = std::io::stdout().is_terminal();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let overview = client.stats().await?;
        draw(client.base_url(), &args, &overview, clear);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.interval_ms)) => {}
            _ = &mut ctrl_c => return Ok(()),
        }
    }
}

fn draw(server: &str, args: &StatsArgs, overview: &Overview, clear: bool) {
    let screen = if clear { CLEAR_SCREEN } else { "" };
    let interval = args.interval_ms;
    println!("{screen}hermod stats: {server}, every {interval} ms (Ctrl-C to stop)\n");
    println!("{}", table(overview).render());
}

/// One row per topic, subscription (`topic/name`) and queue.
fn table(overview: &Overview) -> Table {
    let mut table = Table::new(&[
        "KIND",
        "NAME",
        "DEPTH",
        "IN-FLIGHT",
        "LAG",
        "PUB/S",
        "DELIV/S",
        "ACK/S",
    ]);
    for topic in &overview.topics {
        table.row(topic_row(topic));
        for s in &topic.subscriptions {
            let name = format!("{}/{}", s.topic, s.name);
            let figures = [Some(s.depth), Some(s.in_flight), Some(s.lag)];
            table.row(row("subscription", name, figures, &s.rates));
        }
    }
    for q in &overview.queues {
        let figures = [Some(q.depth), Some(q.in_flight), None];
        table.row(row("queue", q.name.clone(), figures, &q.rates));
    }
    table
}

/// A topic's depth is the messages its partitions hold; lag and in-flight
/// belong to its subscriptions.
fn topic_row(topic: &TopicInfo) -> Vec<String> {
    let held = topic
        .partitions
        .iter()
        .map(|p| p.log_end.saturating_sub(p.log_start))
        .sum();
    row(
        "topic",
        topic.name.clone(),
        [Some(held), None, None],
        &topic.rates,
    )
}

fn row(kind: &str, name: String, figures: [Option<u64>; 3], rates: &Rates) -> Vec<String> {
    let mut cells = vec![kind.to_owned(), name];
    cells.extend(figures.iter().map(|f| output::or_dash(*f)));
    cells.extend([
        output::rate(rates.published_per_s),
        output::rate(rates.delivered_per_s),
        output::rate(rates.acked_per_s),
    ]);
    cells
}

#[cfg(test)]
mod tests {
    use hermod_api::{PartitionInfo, QueueConfig, QueueInfo, TopicConfig};

    use super::*;

    fn overview() -> Overview {
        let topic = TopicInfo {
            name: "orders".into(),
            config: TopicConfig::default(),
            partitions: vec![PartitionInfo {
                partition: 0,
                log_start: 2,
                log_end: 12,
                size_bytes: 100,
            }],
            published: 12,
            published_bytes: 100,
            duplicates: 0,
            rates: Rates {
                published_per_s: 2.5,
                ..Rates::default()
            },
            subscriptions: vec![],
        };
        let queue = QueueInfo {
            name: "jobs".into(),
            config: QueueConfig::default(),
            partitions: vec![],
            depth: 3,
            in_flight: 1,
            published: 4,
            delivered: 1,
            acked: 0,
            nacked: 0,
            expired: 0,
            dead_lettered: 0,
            rates: Rates::default(),
        };
        Overview {
            topics: vec![topic],
            queues: vec![queue],
            exchanges: vec![],
        }
    }

    #[test]
    fn topics_and_queues_get_a_row_each() {
        let text = table(&overview()).render();
        let expected = "\
KIND   NAME    DEPTH  IN-FLIGHT  LAG  PUB/S  DELIV/S  ACK/S
topic  orders     10          -    -    2.5      0.0    0.0
queue  jobs        3          1    -    0.0      0.0    0.0
";
        assert_eq!(text, expected);
    }
}
