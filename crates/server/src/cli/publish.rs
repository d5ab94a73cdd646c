//! `hermod publish`: the value comes from the argument, else `--file`, else
//! stdin (`--lines`: one message per non-empty line). Messages go in
//! batches under the server's default limits; the command prints one
//! message id per line, or the server's JSON answer with `--json`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::Context;
use hermod_api::{ExchangePublishResponse, MessageIn, PublishRequest, PublishResponse};
use hermod_client::Client;

use super::{output, parse, ServerArg};

pub(crate) const EXAMPLES: &str = "Examples:
  hermod publish --topic orders '{\"id\": 7}' --key customer-42 --header type=OrderCompleted
  hermod publish --queue jobs --file jobs.txt --lines
  echo hello | hermod publish --exchange events --routing-key order.created";

/// Most messages in one request (the server's default limit is 1000).
const BATCH_MESSAGES_MAX: usize = 500;
/// Most value bytes in one request (the server's default body limit is
/// 16 MiB; base64 and JSON escaping can double a value's size).
const BATCH_BYTES_MAX: usize = 4 << 20;

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("destination")
        .required(true)
        .args(["topic", "queue", "exchange"])
))]
pub struct PublishArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    /// Publish to this topic.
    #[arg(long, value_name = "T")]
    topic: Option<String>,
    /// Publish to this queue.
    #[arg(long, value_name = "Q")]
    queue: Option<String>,
    /// Publish through this exchange.
    #[arg(long, value_name = "E")]
    exchange: Option<String>,
    /// The message's value (text); without it, --file or stdin.
    value: Option<String>,
    /// Read the value from this file (its exact bytes).
    #[arg(long, value_name = "F", conflicts_with = "value")]
    file: Option<PathBuf>,
    /// One message per line of the input; empty lines are skipped.
    #[arg(long)]
    lines: bool,
    /// Partition key (FIFO message group).
    #[arg(long, value_name = "K")]
    key: Option<String>,
    /// A header; may be repeated.
    #[arg(long = "header", value_name = "k=v", value_parser = parse::header)]
    headers: Vec<(String, String)>,
    /// Routing key for an exchange.
    #[arg(long, value_name = "RK")]
    routing_key: Option<String>,
    /// Not delivered before this many milliseconds from now.
    #[arg(long, value_name = "N")]
    delay_ms: Option<u64>,
    /// De-duplication id (one message, so not with --lines).
    #[arg(long, value_name = "ID", conflicts_with = "lines")]
    dedup_id: Option<String>,
    /// Print the server's JSON answer instead of the ids.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(client: &Client, args: PublishArgs) -> anyhow::Result<()> {
    let (input, from_stdin) = read_input(&args)?;
    let messages: Vec<MessageIn> = bodies(input, args.lines, from_stdin)
        .into_iter()
        .map(|body| message(&body, &args))
        .collect();
    anyhow::ensure!(
        !messages.is_empty(),
        "nothing to publish: the input has no lines"
    );
    let batches = batches(messages);
    if let Some(exchange) = &args.exchange {
        let answer = publish_exchange(client, exchange, batches).await?;
        return print_exchange(&answer, args.json);
    }
    let answer = publish_log(client, &args, batches).await?;
    print_log(&answer, args.json)
}

impl PublishArgs {
    pub(crate) fn not_found_hint(&self) -> &'static str {
        match (&self.topic, &self.queue) {
            (Some(_), _) => "list them with `hermod topic list`",
            (_, Some(_)) => "list them with `hermod queue list`",
            _ => "list them with `hermod exchange list`",
        }
    }
}

/// The input's bytes, and whether they came from stdin.
fn read_input(args: &PublishArgs) -> anyhow::Result<(Vec<u8>, bool)> {
    if let Some(value) = &args.value {
        return Ok((value.as_bytes().to_vec(), false));
    }
    if let Some(path) = &args.file {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        return Ok((bytes, false));
    }
    if std::io::stdin().is_terminal() {
        eprintln!("reading the value from stdin; end it with Ctrl-D");
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read stdin")?;
    Ok((bytes, true))
}

/// The message bodies in `input`. From stdin, one final newline is dropped
/// (it is `echo`'s, not the value's); `--file` keeps exact bytes.
fn bodies(input: Vec<u8>, lines: bool, from_stdin: bool) -> Vec<Vec<u8>> {
    if lines {
        return input
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
    }
    if !from_stdin {
        return vec![input];
    }
    let end = input.strip_suffix(b"\n").unwrap_or(&input);
    let end = end.strip_suffix(b"\r").unwrap_or(end);
    vec![end.to_vec()]
}

/// One message: text when the body is UTF-8, base64 otherwise.
fn message(body: &[u8], args: &PublishArgs) -> MessageIn {
    let mut message = match std::str::from_utf8(body) {
        Ok(text) => MessageIn::text(text),
        Err(_) => MessageIn::bytes(body),
    };
    message.key = args.key.clone();
    message.headers = args.headers.iter().cloned().collect();
    message.routing_key = args.routing_key.clone();
    message.delay_ms = args.delay_ms;
    message.dedup_id = args.dedup_id.clone();
    message
}

/// Messages cut into requests under [`BATCH_MESSAGES_MAX`] and
/// [`BATCH_BYTES_MAX`] (a single larger message goes alone).
fn batches(messages: Vec<MessageIn>) -> Vec<PublishRequest> {
    let mut batches = Vec::new();
    let mut batch: Vec<MessageIn> = Vec::new();
    let mut bytes = 0;
    for message in messages {
        let size = value_bytes(&message);
        let full = batch.len() == BATCH_MESSAGES_MAX || bytes + size > BATCH_BYTES_MAX;
        if full && !batch.is_empty() {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += size;
        batch.push(message);
    }
    batches.push(batch);
    batches
        .into_iter()
        .map(|messages| PublishRequest {
            messages,
            partition: None,
        })
        .collect()
}

fn value_bytes(message: &MessageIn) -> usize {
    let text = message
        .value
        .as_ref()
        .and_then(|v| v.as_str())
        .map_or(0, str::len);
    text + message.value_base64.as_ref().map_or(0, String::len)
}

async fn publish_log(
    client: &Client,
    args: &PublishArgs,
    batches: Vec<PublishRequest>,
) -> anyhow::Result<PublishResponse> {
    let mut all = PublishResponse {
        messages: Vec::new(),
    };
    for batch in &batches {
        let answer = match (&args.topic, &args.queue) {
            (Some(topic), _) => client.publish_topic(topic, batch).await?,
            (_, Some(queue)) => client.publish_queue(queue, batch).await?,
            _ => unreachable!("clap requires --topic, --queue or --exchange"),
        };
        all.messages.extend(answer.messages);
    }
    Ok(all)
}

async fn publish_exchange(
    client: &Client,
    exchange: &str,
    batches: Vec<PublishRequest>,
) -> anyhow::Result<ExchangePublishResponse> {
    let mut all = ExchangePublishResponse {
        messages: Vec::new(),
    };
    for batch in &batches {
        let answer = client.publish_exchange(exchange, batch).await?;
        all.messages.extend(answer.messages);
    }
    Ok(all)
}

fn print_log(answer: &PublishResponse, json: bool) -> anyhow::Result<()> {
    if json {
        print!("{}", output::json(answer)?);
        return Ok(());
    }
    for m in &answer.messages {
        println!("{}", m.id);
        if m.duplicate {
            eprintln!(
                "note: a duplicate of message {} (partition {} offset {}); not appended again",
                m.id, m.partition, m.offset
            );
        }
    }
    Ok(())
}

fn print_exchange(answer: &ExchangePublishResponse, json: bool) -> anyhow::Result<()> {
    if json {
        print!("{}", output::json(answer)?);
        return Ok(());
    }
    for m in &answer.messages {
        println!("{}", m.id);
        if m.unroutable {
            eprintln!("warning: {} matched no binding (unroutable)", m.id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: PublishArgs,
    }

    fn parse(argv: &[&str]) -> Result<PublishArgs, clap::Error> {
        let argv = std::iter::once("publish").chain(argv.iter().copied());
        Cli::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn stdin_loses_one_final_newline_files_keep_theirs() {
        assert_eq!(bodies(b"hi\n".to_vec(), false, true), vec![b"hi".to_vec()]);
        assert_eq!(
            bodies(b"hi\r\n".to_vec(), false, true),
            vec![b"hi".to_vec()]
        );
        assert_eq!(
            bodies(b"hi\n\n".to_vec(), false, true),
            vec![b"hi\n".to_vec()]
        );
        assert_eq!(
            bodies(b"hi\n".to_vec(), false, false),
            vec![b"hi\n".to_vec()]
        );
    }

    #[test]
    fn lines_are_messages_and_empty_lines_are_skipped() {
        let input = b"a\r\n\nb\nc".to_vec();
        let expected: Vec<Vec<u8>> = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        assert_eq!(bodies(input, true, true), expected);
    }

    #[test]
    fn flags_become_message_fields() {
        let args = parse(&[
            "--topic",
            "t",
            "v",
            "--key",
            "k",
            "--header",
            "a=1",
            "--header",
            "b=x=y",
            "--delay-ms",
            "5",
            "--dedup-id",
            "d",
        ])
        .unwrap();
        let m = message(b"v", &args);
        assert_eq!(m.value, Some(serde_json::json!("v")));
        assert_eq!(m.key.as_deref(), Some("k"));
        assert_eq!(m.headers.get("b").map(String::as_str), Some("x=y"));
        assert_eq!((m.delay_ms, m.dedup_id.as_deref()), (Some(5), Some("d")));
    }

    #[test]
    fn binary_bodies_travel_as_base64() {
        let args = parse(&["--queue", "q"]).unwrap();
        let m = message(&[0xff, 0x00], &args);
        assert_eq!((m.value, m.value_base64.as_deref()), (None, Some("/wA=")));
    }

    #[test]
    fn exactly_one_destination() {
        assert!(parse(&["v"]).is_err());
        assert!(parse(&["--topic", "t", "--queue", "q", "v"]).is_err());
        assert!(parse(&["--queue", "q", "--lines", "--dedup-id", "d"]).is_err());
        assert!(parse(&["--header", "novalue", "--queue", "q"]).is_err());
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let many = vec![MessageIn::text("x"); BATCH_MESSAGES_MAX * 2 + 1];
        let sizes: Vec<usize> = batches(many).iter().map(|b| b.messages.len()).collect();
        assert_eq!(sizes, vec![BATCH_MESSAGES_MAX, BATCH_MESSAGES_MAX, 1]);
        let big = "x".repeat(BATCH_BYTES_MAX / 2 + 1);
        let sizes: Vec<usize> = batches(vec![MessageIn::text(big); 3])
            .iter()
            .map(|b| b.messages.len())
            .collect();
        assert_eq!(sizes, vec![1, 1, 1]);
    }
}
