//! `hermod consume`: receive from a queue or subscription, print each
//! message, then settle it: ack (the default), nack (`--nack`, a failing
//! handler) or leave the lease to run out (`--no-ack`). Without `--follow`
//! one receive (or poll) and exit; with it, the Server-Sent Events stream
//! until Ctrl-C or `--max` messages. `stream` subscriptions have offsets
//! instead of leases: they are polled, and "ack" commits after printing.

use std::io::Write;

use futures_util::StreamExt;
use hermod_api::{
    AckRequest, CommitRequest, DeliveryMode, MessageOut, NackRequest, PartitionOffset, PollRequest,
    ReceiveRequest,
};
use hermod_client::{AckMode, Client, EventsOptions, Source};

use super::print::{Format, Printer};
use super::ServerArg;

pub(crate) const EXAMPLES: &str = "Examples:
  hermod consume --queue jobs --max 5
  hermod consume --topic orders --subscription billing --follow --format table
  hermod consume --queue jobs --follow --format json --no-ack";

/// Messages one receive asks for without `--max`.
const DEFAULT_MAX: usize = 10;

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["queue", "topic"])
))]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    /// The queue to consume from.
    #[arg(long, value_name = "Q")]
    queue: Option<String>,
    /// The topic whose --subscription to consume from.
    #[arg(long, value_name = "T", requires = "subscription")]
    topic: Option<String>,
    /// The subscription of --topic.
    #[arg(long, value_name = "S", requires = "topic")]
    subscription: Option<String>,
    /// Keep consuming (an event stream) until Ctrl-C or --max messages.
    #[arg(long)]
    follow: bool,
    /// Most messages: per receive (default 10), or in total with --follow.
    #[arg(long, value_name = "N")]
    max: Option<usize>,
    /// Do not ack: leases run out and the messages come back.
    #[arg(long, conflicts_with = "nack")]
    no_ack: bool,
    /// Give each message back at once after printing it (a failing handler).
    #[arg(long)]
    nack: bool,
    /// How to print messages.
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    format: Format,
    /// How long one receive waits for a first message.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    wait_ms: u64,
    /// Lease length (the queue's or subscription's visibility timeout if absent).
    #[arg(long, value_name = "N")]
    visibility_ms: Option<u64>,
}

/// What happens to a message after it is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Ack,
    Nack,
    Leave,
}

pub(crate) async fn run(client: &Client, args: ConsumeArgs) -> anyhow::Result<()> {
    let source = args.source();
    let stream_mode = is_stream(client, source).await?;
    let settle = args.settle();
    anyhow::ensure!(
        !(stream_mode && settle == Settle::Nack),
        "--nack gives leases back, and stream subscriptions have none; use --no-ack to leave the offsets uncommitted"
    );
    let mut printer = Printer::new(args.format, std::io::stdout().lock());
    let consumer = Consumer {
        client,
        source,
        stream_mode,
        settle,
    };
    if args.follow {
        consumer.follow(&args, &mut printer).await
    } else {
        consumer.once(&args, &mut printer).await
    }
}

impl ConsumeArgs {
    fn source(&self) -> Source<'_> {
        match (&self.queue, &self.topic, &self.subscription) {
            (Some(queue), _, _) => Source::Queue(queue),
            (None, Some(topic), Some(subscription)) => Source::Subscription {
                topic,
                subscription,
            },
            _ => unreachable!("clap requires --queue, or --topic with --subscription"),
        }
    }

    fn settle(&self) -> Settle {
        match (self.no_ack, self.nack) {
            (true, _) => Settle::Leave,
            (_, true) => Settle::Nack,
            _ => Settle::Ack,
        }
    }

    pub(crate) fn not_found_hint(&self) -> &'static str {
        if self.queue.is_some() {
            "list them with `hermod queue list`"
        } else {
            "list them with `hermod topic list` and `hermod subscription list TOPIC`"
        }
    }
}

/// Whether `source` is a `stream` subscription (read by offset, not lease).
async fn is_stream(client: &Client, source: Source<'_>) -> anyhow::Result<bool> {
    let Source::Subscription {
        topic,
        subscription,
    } = source
    else {
        return Ok(false);
    };
    let info = client.subscription(topic, subscription).await?;
    Ok(info.config.mode == DeliveryMode::Stream)
}

/// What every step of a consume needs.
struct Consumer<'a> {
    client: &'a Client,
    source: Source<'a>,
    stream_mode: bool,
    settle: Settle,
}

impl Consumer<'_> {
    /// One receive (or poll), print, settle.
    async fn once<W: Write>(
        &self,
        args: &ConsumeArgs,
        printer: &mut Printer<W>,
    ) -> anyhow::Result<()> {
        let messages = self.fetch(args).await?;
        for message in &messages {
            printer.print(message)?;
        }
        let unsettled = self.settle_all(&messages).await?;
        anyhow::ensure!(
            unsettled == 0,
            "{unsettled} of {} messages were not settled and will be delivered again; give more time with --visibility-ms",
            messages.len()
        );
        Ok(())
    }

    async fn fetch(&self, args: &ConsumeArgs) -> anyhow::Result<Vec<MessageOut>> {
        let max = Some(args.max.unwrap_or(DEFAULT_MAX));
        let wait_ms = Some(args.wait_ms);
        let answer = match self.source {
            Source::Subscription {
                topic,
                subscription,
            } if self.stream_mode => {
                let request = PollRequest {
                    max,
                    max_bytes: None,
                    wait_ms,
                };
                self.client.poll(topic, subscription, &request).await?
            }
            source => {
                let visibility_ms = args.visibility_ms;
                let request = ReceiveRequest {
                    max,
                    visibility_ms,
                    wait_ms,
                };
                self.client.receive(source, &request).await?
            }
        };
        Ok(answer.messages)
    }

    /// The event stream, each message printed and settled in turn.
    async fn follow<W: Write>(
        &self,
        args: &ConsumeArgs,
        printer: &mut Printer<W>,
    ) -> anyhow::Result<()> {
        let options = EventsOptions {
            max: args.max.map(|m| m as u64),
            visibility_ms: args.visibility_ms,
            ack: AckMode::Manual,
        };
        let mut events = self.client.events(self.source, &options).await?;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut count = 0;
        while args.max.is_none_or(|max| count < max) {
            let next = tokio::select! {
                next = events.next() => next,
                _ = &mut ctrl_c => return Ok(()),
            };
            let Some(message) = next else {
                eprintln!("the server ended the stream");
                return Ok(());
            };
            let message = message?;
            printer.print(&message)?;
            // A receipt that could not be settled was reported; its message
            // comes back later, so following goes on.
            self.settle_all(std::slice::from_ref(&message)).await?;
            count += 1;
        }
        Ok(())
    }

    /// Acks, nacks or commits what was printed; returns how many receipts
    /// could not be settled (each reported on stderr).
    async fn settle_all(&self, messages: &[MessageOut]) -> anyhow::Result<usize> {
        if messages.is_empty() || self.settle == Settle::Leave {
            return Ok(0);
        }
        if let (
            true,
            Source::Subscription {
                topic,
                subscription,
            },
        ) = (self.stream_mode, self.source)
        {
            let request = CommitRequest {
                offsets: Some(commit_offsets(messages)),
            };
            self.client.commit(topic, subscription, &request).await?;
            return Ok(0);
        }
        let receipts: Vec<String> = messages.iter().filter_map(|m| m.receipt.clone()).collect();
        if receipts.is_empty() {
            return Ok(0);
        }
        let results = match self.settle {
            Settle::Nack => {
                let request = NackRequest {
                    receipts,
                    delay_ms: 0,
                };
                self.client.nack(self.source, &request).await?
            }
            _ => {
                self.client
                    .ack(self.source, &AckRequest { receipts })
                    .await?
            }
        };
        Ok(report_unsettled(&results.results))
    }
}

/// The offsets to commit after `messages`: one past the last per partition.
fn commit_offsets(messages: &[MessageOut]) -> Vec<PartitionOffset> {
    let mut next: std::collections::BTreeMap<u32, u64> = Default::default();
    for m in messages {
        let offset = next.entry(m.partition).or_default();
        *offset = (*offset).max(m.offset + 1);
    }
    next.into_iter()
        .map(|(partition, offset)| PartitionOffset { partition, offset })
        .collect()
}

/// Says which receipts were not settled and why; returns how many.
fn report_unsettled(results: &[hermod_api::ReceiptResult]) -> usize {
    let failed: Vec<_> = results.iter().filter(|r| !r.ok).collect();
    for r in &failed {
        let (code, message) = r
            .error
            .as_ref()
            .map_or(("unknown", "no reason given"), |e| {
                (e.code.as_str(), e.message.as_str())
            });
        eprintln!("warning: receipt {}: {message} ({code})", r.receipt);
    }
    failed.len()
}

#[cfg(test)]
mod tests {
    use super::super::print::tests::message;
    use super::*;
    #[test]
    fn commits_go_one_past_the_last_offset_per_partition() {
        let messages = [message(0, 4, ""), message(1, 9, ""), message(0, 5, "")];
        let offsets = commit_offsets(&messages);
        let expected = [
            PartitionOffset {
                partition: 0,
                offset: 6,
            },
            PartitionOffset {
                partition: 1,
                offset: 10,
            },
        ];
        assert_eq!(offsets, expected);
    }

    #[test]
    fn failed_receipts_are_counted() {
        let ok = hermod_api::ReceiptResult {
            receipt: "r1".into(),
            ok: true,
            error: None,
        };
        assert_eq!(report_unsettled(std::slice::from_ref(&ok)), 0);
        let failed = hermod_api::ReceiptResult {
            ok: false,
            ..ok.clone()
        };
        assert_eq!(report_unsettled(&[ok, failed]), 1);
    }
}
