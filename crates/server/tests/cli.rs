//! The client commands of `hermod` against the real binary: each command
//! runs as its own process with `--server URL`, its output is checked, and
//! the server's state is checked again over raw HTTP. One server serves the
//! main test; resources are named `k-*`.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

/// Longest wait for a command that should end promptly.
const PROMPTLY: Duration = Duration::from_secs(20);

/// A command's outcome.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn hermod() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hermod"));
    command.env_remove("HERMOD_SERVER").env_remove("RUST_LOG");
    command
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `hermod ARGS --server URL` with `stdin` as its input.
fn run_with(url: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = hermod()
        .args(args)
        .args(["--server", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hermod");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    finish(child.wait_with_output().unwrap())
}

/// The CLI of one server.
struct Cli<'a> {
    server: &'a Server,
    url: String,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Run {
        run_with(&self.url, args, b"")
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, b"")
    }

    fn ok_with(&self, args: &[&str], stdin: &[u8]) -> String {
        let run = run_with(&self.url, args, stdin);
        assert_eq!(run.code, Some(0), "hermod {args:?} failed: {run:?}");
        run.stdout
    }

    /// Runs a command that must fail with exit code 1; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, Some(1), "hermod {args:?} should fail: {run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        run.stderr
    }

    /// A `--json` command's output.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// `GET PATH` on the server, as JSON.
    fn get(&self, path: &str) -> Value {
        let response = self.server.get(path);
        assert_eq!(response.status, 200, "{path}: {response:?}");
        response.json()
    }

    /// Consumes with `--format json`; the messages printed.
    fn consume_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["consume", "--format", "json"];
        all.extend(args);
        self.ok(&all)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }
}

fn values(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect()
}

/// The ids a publish printed: one per line.
fn ids(stdout: &str) -> Vec<&str> {
    let ids: Vec<&str> = stdout.lines().collect();
    assert!(
        ids.iter()
            .all(|id| id.len() >= 16 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')),
        "not ids: {stdout:?}"
    );
    ids
}

/// The row of a table whose first (or second) cell is `name`.
fn row<'t>(table: &'t str, name: &str) -> Vec<&'t str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name) || cells.get(1) == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

#[test]
fn every_command_against_the_real_binary() {
    let mut server = Server::start(&[]);
    let cli = Cli {
        url: server.url(),
        server: &server,
    };
    topics(&cli);
    server_flag_and_env(&cli);
    publish_and_consume(&cli);
    subscriptions(&cli);
    follow(&cli);
    exchanges(&cli);
    queues(&cli);
    stats_and_trace(&cli);
    errors(&cli);
    server.stop();
}

fn topics(cli: &Cli) {
    let create = [
        "topic",
        "create",
        "k-t",
        "--partitions",
        "2",
        "--retention-ms",
        "60000",
        "--durability",
        "memory",
    ];
    assert_eq!(cli.ok(&create), "topic k-t is ready (2 partitions)\n");
    assert_eq!(
        cli.ok(&create),
        "topic k-t is ready (2 partitions)\n",
        "idempotent"
    );
    let other = cli.fails(&["topic", "create", "k-t", "--partitions", "3"]);
    assert!(
        other.contains("(already_exists)") && other.contains("hint:"),
        "{other}"
    );
    let config = r#"{"dedup_window_ms": 60000}"#;
    cli.ok(&["topic", "create", "k-dedup", "--config", config]);

    let table = cli.ok(&["topic", "list"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert_eq!(row(&table, "k-t")[..3], ["k-t", "2", "0"], "{table}");
    let list = cli.json(&["topic", "list", "--json"]);
    let names: Vec<&str> = list["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"k-t") && names.contains(&"k-dedup"),
        "{names:?}"
    );

    let text = cli.ok(&["topic", "describe", "k-t"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("name:") && l.ends_with("k-t")),
        "{text}"
    );
    assert!(text.contains("PARTITION"), "{text}");
    let info = cli.json(&["topic", "describe", "k-t", "--json"]);
    assert_eq!(info["config"]["partitions"], 2);
    assert_eq!(info["config"]["retention_ms"], 60000);
    assert_eq!(info["config"]["durability"], "memory");
    let info = cli.json(&["topic", "describe", "k-dedup", "--json"]);
    assert_eq!(info["config"]["dedup_window_ms"], 60000);
}

/// `--server` before the command, and `HERMOD_SERVER`.
fn server_flag_and_env(cli: &Cli) {
    let before = finish(
        hermod()
            .args(["--server", &cli.url, "topic", "list"])
            .output()
            .unwrap(),
    );
    assert_eq!(before.code, Some(0), "{before:?}");
    assert_eq!(row(&before.stdout, "k-t")[0], "k-t");
    let before = finish(
        hermod()
            .args(["--server", &cli.url, "topic", "describe", "k-t", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(before.code, Some(0), "{before:?}");
    let env = finish(
        hermod()
            .args(["topic", "list"])
            .env("HERMOD_SERVER", &cli.url)
            .output()
            .unwrap(),
    );
    assert_eq!(env.code, Some(0), "{env:?}");
    assert_eq!(row(&env.stdout, "k-t")[0], "k-t");
    // The flag before the command wins over the environment.
    let both = finish(
        hermod()
            .args(["--server", &cli.url, "topic", "list"])
            .env("HERMOD_SERVER", "http://127.0.0.1:1")
            .output()
            .unwrap(),
    );
    assert_eq!(both.code, Some(0), "{both:?}");
    // `serve` has no --server.
    let serve = finish(
        hermod()
            .args(["--server", &cli.url, "serve"])
            .output()
            .unwrap(),
    );
    assert_eq!(serve.code, Some(1), "{serve:?}");
    assert!(serve.stderr.contains("--http"), "{serve:?}");
}

fn publish_and_consume(cli: &Cli) {
    cli.ok(&["queue", "create", "k-q"]);
    let q = ["--queue", "k-q"];

    // The value as argument, with a key and headers.
    let args = [
        "publish",
        q[0],
        q[1],
        "hello",
        "--key",
        "k1",
        "--header",
        "type=greeting",
        "--header",
        "lang=en",
    ];
    let first = cli.ok(&args);
    assert_eq!(ids(&first).len(), 1);
    // From a file, from stdin, and one message per line.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value.txt");
    std::fs::write(&file, "from file").unwrap();
    let file = file.to_str().unwrap();
    assert_eq!(
        ids(&cli.ok(&["publish", q[0], q[1], "--file", file])).len(),
        1
    );
    assert_eq!(
        ids(&cli.ok_with(&["publish", q[0], q[1]], b"from stdin")).len(),
        1
    );
    let lines = cli.ok_with(&["publish", q[0], q[1], "--lines"], b"l1\nl2\n\nl3\n");
    assert_eq!(ids(&lines).len(), 3, "empty lines are skipped");
    let json = cli.json(&["publish", q[0], q[1], "--json", "j"]);
    assert_eq!(json["messages"][0]["duplicate"], false, "{json}");

    let got = cli.consume_json(&[q[0], q[1]]);
    assert_eq!(
        values(&got),
        ["hello", "from file", "from stdin", "l1", "l2", "l3", "j"]
    );
    assert_eq!(got[0]["id"], first.trim());
    assert_eq!(got[0]["key"], "k1");
    assert_eq!(got[0]["headers"]["type"], "greeting");
    assert_eq!(got[0]["headers"]["lang"], "en");
    assert_eq!(got[0]["delivery_count"], 1);
    let queue = cli.get("/v1/queues/k-q");
    assert_eq!(
        (&queue["depth"], &queue["in_flight"]),
        (&0.into(), &0.into()),
        "acked: {queue}"
    );

    // raw and table formats.
    cli.ok(&["publish", q[0], q[1], "raw value"]);
    assert_eq!(
        cli.ok(&["consume", q[0], q[1], "--format", "raw"]),
        "raw value\n"
    );
    cli.ok(&["publish", q[0], q[1], "tabled", "--key", "kk"]);
    let table = cli.ok(&["consume", q[0], q[1], "--format", "table"]);
    let mut lines = table.lines();
    assert!(
        lines.next().unwrap().starts_with("PARTITION/OFFSET"),
        "{table}"
    );
    let cells: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        (cells[2], cells[3], cells[4]),
        ("1", "kk", "tabled"),
        "{table}"
    );
    // Nothing there: nothing printed, success.
    assert_eq!(cli.ok(&["consume", q[0], q[1], "--wait-ms", "0"]), "");

    // A delayed message is not there at once.
    let started = Instant::now();
    cli.ok(&["publish", q[0], q[1], "later", "--delay-ms", "500"]);
    assert_eq!(cli.ok(&["consume", q[0], q[1], "--wait-ms", "0"]), "");
    let later = cli.ok(&["consume", q[0], q[1], "--wait-ms", "5000"]);
    assert_eq!(later, "later\n");
    assert!(started.elapsed() >= Duration::from_millis(450));

    // --no-ack leaves the lease; --nack gives it back at once.
    cli.ok(&["publish", q[0], q[1], "left"]);
    assert_eq!(cli.ok(&["consume", q[0], q[1], "--no-ack"]), "left\n");
    let queue = cli.get("/v1/queues/k-q");
    assert_eq!(
        (&queue["depth"], &queue["in_flight"]),
        (&1.into(), &1.into()),
        "{queue}"
    );
    cli.ok(&["queue", "create", "k-nack"]);
    cli.ok(&["publish", "--queue", "k-nack", "again"]);
    let nacked = cli.consume_json(&["--queue", "k-nack", "--nack"]);
    assert_eq!(nacked[0]["delivery_count"], 1);
    let redelivered = cli.consume_json(&["--queue", "k-nack"]);
    assert_eq!(values(&redelivered), ["again"]);
    assert_eq!(redelivered[0]["delivery_count"], 2);

    // De-duplication: the second publish prints the id and says so.
    let dedup = ["publish", "--topic", "k-dedup", "once", "--dedup-id", "d-1"];
    let first = cli.ok(&dedup);
    let second = cli.run(&dedup);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(ids(&second.stdout).len(), 1);
    assert!(second.stderr.contains("duplicate"), "{second:?}");
    assert_eq!(
        first, second.stdout,
        "a duplicate answers with the original's id"
    );
    let json = cli.json(&[
        "publish",
        "--topic",
        "k-dedup",
        "once",
        "--dedup-id",
        "d-1",
        "--json",
    ]);
    assert_eq!(json["messages"][0]["duplicate"], true, "{json}");
    let topic = cli.get("/v1/topics/k-dedup");
    assert_eq!(
        (&topic["published"], &topic["duplicates"]),
        (&1.into(), &2.into()),
        "{topic}"
    );
}

fn subscriptions(cli: &Cli) {
    let create = [
        "subscription",
        "create",
        "k-t",
        "str",
        "--mode",
        "stream",
        "--start",
        "earliest",
    ];
    assert_eq!(
        cli.ok(&create),
        "stream subscription str of topic k-t is ready\n"
    );
    let shared = [
        "subscription",
        "create",
        "k-t",
        "shr",
        "--start",
        "earliest",
    ];
    assert_eq!(
        cli.ok(&shared),
        "shared subscription shr of topic k-t is ready\n"
    );
    let wrong = cli.fails(&["subscription", "create", "k-t", "shr", "--mode", "ordered"]);
    assert!(wrong.contains("(already_exists)"), "{wrong}");

    let table = cli.ok(&["subscription", "list", "k-t"]);
    row(&table, "str");
    row(&table, "shr");
    let list = cli.json(&["subscription", "list", "k-t", "--json"]);
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 2, "{list}");
    let text = cli.ok(&["subscription", "describe", "k-t", "str"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("mode:") && l.ends_with("stream")),
        "{text}"
    );
    let info = cli.json(&["subscription", "describe", "k-t", "str", "--json"]);
    assert_eq!(info["config"]["mode"], "stream");
    assert_eq!(info["config"]["start"], "earliest");

    // A stream subscription: consumed messages are committed.
    cli.ok_with(&["publish", "--topic", "k-t", "--lines"], b"s1\ns2\ns3\n");
    let sub = ["--topic", "k-t", "--subscription", "str"];
    let got = cli.consume_json(&sub);
    let mut got_values = values(&got);
    got_values.sort();
    assert_eq!(got_values, ["s1", "s2", "s3"]);
    assert!(got.iter().all(|m| m["receipt"].is_null()));
    let offsets = cli.get("/v1/topics/k-t/subscriptions/str/offsets");
    let parts = offsets["partitions"].as_array().unwrap();
    let committed: u64 = parts.iter().map(|p| p["committed"].as_u64().unwrap()).sum();
    let lag: u64 = parts.iter().map(|p| p["lag"].as_u64().unwrap()).sum();
    assert_eq!((committed, lag), (3, 0), "{offsets}");
    let mut args = vec!["consume"];
    args.extend(sub);
    args.extend(["--wait-ms", "0"]);
    assert_eq!(cli.ok(&args), "", "nothing left after the commit");
    let nack = cli.fails(&["consume", sub[0], sub[1], sub[2], sub[3], "--nack"]);
    assert!(nack.contains("stream subscriptions have none"), "{nack}");

    // Purge and delete.
    let purged = cli.ok(&["subscription", "purge", "k-t", "shr"]);
    assert_eq!(
        purged,
        "purged 3 messages from subscription shr of topic k-t\n"
    );
    let deleted = cli.ok(&["subscription", "delete", "k-t", "shr"]);
    assert_eq!(deleted, "deleted subscription shr of topic k-t\n");
    let gone = cli.fails(&["subscription", "describe", "k-t", "shr"]);
    assert!(gone.contains("(not_found)"), "{gone}");
}

fn follow(cli: &Cli) {
    cli.ok(&["queue", "create", "k-f"]);
    // Started before anything is published: waits, then ends after --max.
    let mut child = hermod()
        .args([
            "consume", "--queue", "k-f", "--follow", "--max", "2", "--server", &cli.url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    cli.ok_with(&["publish", "--queue", "k-f", "--lines"], b"f1\nf2\nf3\n");
    let deadline = Instant::now() + PROMPTLY;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("consume --follow --max 2 did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "f1\nf2\n");
    // Two acked; the third neither taken nor leased.
    let queue = cli.get("/v1/queues/k-f");
    assert_eq!(
        (&queue["depth"], &queue["in_flight"], &queue["acked"]),
        (&1.into(), &0.into(), &2.into()),
        "{queue}"
    );
    let rest = cli.ok(&["consume", "--queue", "k-f", "--follow", "--max", "1"]);
    assert_eq!(rest, "f3\n");
}

fn exchanges(cli: &Cli) {
    let create = ["exchange", "create", "k-x", "--kind", "direct"];
    assert_eq!(cli.ok(&create), "exchange k-x is ready\n");
    cli.ok(&create);
    let table = cli.ok(&["exchange", "list"]);
    assert!(row(&table, "k-x").contains(&"direct"), "{table}");
    let list = cli.json(&["exchange", "list", "--json"]);
    assert!(list["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "k-x"));

    let bound = cli.ok(&["bind", "k-x", "k-q", "--key", "red"]);
    assert!(
        bound.starts_with("bound ") && bound.contains("k-q"),
        "{bound}"
    );
    assert_eq!(
        cli.ok(&["bind", "k-x", "k-q", "--key", "red"]),
        bound,
        "idempotent"
    );
    let text = cli.ok(&["exchange", "describe", "k-x"]);
    assert!(text.contains("k-q") && text.contains("red"), "{text}");
    let info = cli.json(&["exchange", "describe", "k-x", "--json"]);
    assert_eq!(info["config"]["kind"], "direct");
    assert_eq!(info["bindings"][0]["destination"], "k-q");

    cli.ok(&["queue", "purge", "k-q"]);
    let routed = cli.run(&["publish", "--exchange", "k-x", "--routing-key", "red", "r"]);
    assert_eq!(routed.code, Some(0), "{routed:?}");
    assert_eq!(ids(&routed.stdout).len(), 1);
    assert!(routed.stderr.is_empty(), "{routed:?}");
    let lost = cli.run(&[
        "publish",
        "--exchange",
        "k-x",
        "--routing-key",
        "green",
        "g",
    ]);
    assert_eq!(lost.code, Some(0), "{lost:?}");
    assert!(lost.stderr.contains("unroutable"), "{lost:?}");
    let json = cli.json(&[
        "publish",
        "--exchange",
        "k-x",
        "--routing-key",
        "red",
        "--json",
        "r2",
    ]);
    assert_eq!(
        json["messages"][0]["routed"][0]["destination"], "k-q",
        "{json}"
    );
    assert_eq!(values(&cli.consume_json(&["--queue", "k-q"])), ["r", "r2"]);

    let unbound = cli.ok(&["unbind", "k-x", "k-q", "--key", "red"]);
    assert!(unbound.starts_with("unbound "), "{unbound}");
    let info = cli.json(&["exchange", "describe", "k-x", "--json"]);
    assert_eq!(info["bindings"], serde_json::json!([]));
    assert_eq!(
        cli.ok(&["exchange", "delete", "k-x"]),
        "deleted exchange k-x\n"
    );
    let gone = cli.fails(&["exchange", "describe", "k-x"]);
    assert!(gone.contains("hermod exchange list"), "{gone}");
}

fn queues(cli: &Cli) {
    cli.ok(&["queue", "create", "k-dlq"]);
    let create = [
        "queue",
        "create",
        "k-src",
        "--max-deliveries",
        "1",
        "--dead-letter",
        "k-dlq",
        "--visibility-timeout-ms",
        "5000",
    ];
    assert_eq!(cli.ok(&create), "queue k-src is ready\n");
    let fifo = cli.ok(&["queue", "create", "k-fifo", "--fifo", "--delay-ms", "0"]);
    assert_eq!(fifo, "fifo queue k-fifo is ready\n");

    let table = cli.ok(&["queue", "list"]);
    row(&table, "k-src");
    let list = cli.json(&["queue", "list", "--json"]);
    let names: Vec<&str> = list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"k-src") && names.contains(&"k-fifo"),
        "{names:?}"
    );
    let text = cli.ok(&["queue", "describe", "k-src"]);
    assert!(text.contains("k-dlq"), "{text}");
    let info = cli.json(&["queue", "describe", "k-src", "--json"]);
    assert_eq!(info["config"]["max_deliveries"], 1);
    assert_eq!(info["config"]["visibility_timeout_ms"], 5000);
    assert_eq!(info["config"]["dead_letter"], "k-dlq");

    // Nacked once: dead-lettered; redrive moves it back.
    cli.ok(&["publish", "--queue", "k-src", "poison"]);
    cli.ok(&["consume", "--queue", "k-src", "--nack"]);
    assert_eq!(cli.get("/v1/queues/k-dlq")["depth"], 1);
    let moved = cli.ok(&["queue", "redrive", "k-dlq"]);
    assert_eq!(moved, "moved 1 messages from k-dlq back to their source\n");
    assert_eq!(cli.get("/v1/queues/k-src")["depth"], 1);

    cli.ok(&["publish", "--queue", "k-src", "two"]);
    let purged = cli.ok(&["queue", "purge", "k-src"]);
    assert_eq!(purged, "purged 2 messages from queue k-src\n");
    assert_eq!(
        cli.ok(&["queue", "delete", "k-src"]),
        "deleted queue k-src\n"
    );
    let gone = cli.fails(&["queue", "describe", "k-src"]);
    assert!(
        gone.contains("hint: list them with `hermod queue list`"),
        "{gone}"
    );
}

fn stats_and_trace(cli: &Cli) {
    let table = cli.ok(&["stats", "--once"]);
    assert!(table.starts_with("KIND"), "{table}");
    let sub = row(&table, "k-t/str");
    assert_eq!(sub[0], "subscription", "{table}");
    assert_eq!(row(&table, "k-nack")[0], "queue", "{table}");

    cli.ok(&["queue", "create", "k-trace"]);
    let id = cli.ok(&["publish", "--queue", "k-trace", "traced"]);
    let id = id.trim();
    cli.ok(&["consume", "--queue", "k-trace"]);
    let trace = cli.ok(&["trace", id]);
    let events: Vec<&str> = trace
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(events, ["published", "delivered", "acked"], "{trace}");
    assert!(trace.contains("topic=k-trace"), "{trace}");
}

fn errors(cli: &Cli) {
    let stderr = cli.fails(&["topic", "describe", "k-missing"]);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("(not_found)"), "{stderr}");
    assert!(
        stderr.contains("hint: list them with `hermod topic list`"),
        "{stderr}"
    );
    let stderr = cli.fails(&["publish", "--queue", "k-missing", "x"]);
    assert!(stderr.contains("hermod queue list"), "{stderr}");
    let stderr = cli.fails(&["trace", "01JD3W8ZQ5G0H2K4M6N8P0R2T4"]);
    assert!(
        stderr.contains("(not_found)") && stderr.contains("hint:"),
        "{stderr}"
    );
    let stderr = cli.fails(&["topic", "create", "bad name"]);
    assert!(stderr.contains("(invalid_name)"), "{stderr}");
    let stderr = cli.fails(&["consume", "--queue", "k-q", "--max", "100000"]);
    assert!(stderr.contains("(limit_exceeded)"), "{stderr}");
    let stderr = cli.fails(&["consume", "--topic", "k-t", "--subscription", "nope"]);
    assert!(stderr.contains("hermod subscription list"), "{stderr}");
    // Deleting a topic with its subscription goes through.
    cli.ok(&["subscription", "delete", "k-t", "str"]);
    assert_eq!(cli.ok(&["topic", "delete", "k-t"]), "deleted topic k-t\n");
}

#[test]
fn without_a_server_the_hint_asks_whether_it_runs() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        &["topic", "list"][..],
        &["publish", "--queue", "q", "x"],
        &["stats", "--once"],
    ] {
        let run = run_with(&url, args, b"");
        assert_eq!(run.code, Some(1), "{args:?}: {run:?}");
        assert!(run.stderr.contains("(unreachable)"), "{run:?}");
        assert!(
            run.stderr
                .contains(&format!("is the server running at {url}")),
            "{run:?}"
        );
    }
    let before = finish(
        hermod()
            .args(["--server", &url, "topic", "list"])
            .output()
            .unwrap(),
    );
    assert_eq!(before.code, Some(1), "{before:?}");
    assert!(before.stderr.contains(&url), "{before:?}");
}

#[test]
fn every_command_help_shows_an_example() {
    let commands: &[&[&str]] = &[
        &["topic"],
        &["topic", "create"],
        &["topic", "list"],
        &["topic", "describe"],
        &["topic", "delete"],
        &["queue"],
        &["queue", "create"],
        &["queue", "list"],
        &["queue", "describe"],
        &["queue", "delete"],
        &["queue", "purge"],
        &["queue", "redrive"],
        &["subscription"],
        &["subscription", "create"],
        &["subscription", "list"],
        &["subscription", "describe"],
        &["subscription", "delete"],
        &["subscription", "purge"],
        &["exchange"],
        &["exchange", "create"],
        &["exchange", "list"],
        &["exchange", "describe"],
        &["exchange", "delete"],
        &["bind"],
        &["unbind"],
        &["publish"],
        &["consume"],
        &["stats"],
        &["trace"],
    ];
    for command in commands {
        let run = finish(hermod().args(*command).arg("--help").output().unwrap());
        assert_eq!(run.code, Some(0), "{command:?}: {run:?}");
        assert!(
            run.stdout.contains("Examples:"),
            "{command:?} --help: {}",
            run.stdout
        );
        let example = format!("hermod {}", command[0]);
        assert!(
            run.stdout.contains(&example),
            "{command:?} --help: {}",
            run.stdout
        );
    }
    let top = finish(hermod().arg("--help").output().unwrap());
    assert!(top.stdout.contains("--server"), "{}", top.stdout);
}
