//! End-to-end tests of the real binary over raw HTTP: what a graceful
//! restart keeps, long polling (woken by a publish on another connection,
//! ended by SIGTERM), Server-Sent Events streams (manual and automatic
//! acks, `stream` subscriptions, ended by SIGTERM) and `/metrics`.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{connect, read_response, send, EventStream, Server};
use serde_json::{json, Value};

/// "Promptly": far below the 10 s long polls these tests start, and
/// generous for a debug build on a busy machine.
const PROMPT: Duration = Duration::from_secs(5);

#[test]
fn a_graceful_restart_keeps_definitions_messages_offsets_and_leases() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let mut server = Server::start_in(&data_dir, &[]);
    define(&server);
    let acked = fill(&server);
    server.stop();

    let mut server = Server::start_in(&data_dir, &[]);
    check_definitions(&server);
    check_contents(&server, &acked);
    server.stop();
}

/// A topic of two partitions with a `stream` and a `shared` subscription,
/// a queue, and a topic exchange bound to the topic.
fn define(server: &Server) {
    server.ok("PUT", "/v1/topics/orders", &json!({"partitions": 2}));
    server.ok(
        "PUT",
        "/v1/topics/orders/subscriptions/billing",
        &json!({"mode": "stream", "start": "earliest"}),
    );
    server.ok(
        "PUT",
        "/v1/topics/orders/subscriptions/audit",
        &json!({"mode": "shared", "start": "earliest"}),
    );
    server.ok(
        "PUT",
        "/v1/queues/jobs",
        &json!({"visibility_timeout_ms": 30000}),
    );
    server.ok("PUT", "/v1/exchanges/events", &json!({"kind": "topic"}));
    let binding = json!({"exchange": "events", "destination": "orders", "key": "order.*"});
    assert_eq!(server.call("POST", "/v1/bindings", &binding).status, 201);
}

/// What `fill` acked before the restart: must not come back.
struct Acked {
    audit: String,
    job: String,
}

/// Publishes `o0`..`o5` to `orders` (`o0`..`o3` to partition 0, `o4`
/// through the exchange, `o5` to partition 1) and `j0`..`j4` to `jobs`;
/// commits `billing` at offset 3 of partition 0 after reading further;
/// acks one message of `audit` and one of `jobs` and leaves two jobs
/// received but not acked.
fn fill(server: &Server) -> Acked {
    publish(
        server,
        "/v1/topics/orders",
        &["o0", "o1", "o2", "o3"],
        Some(0),
    );
    let routed = server.ok(
        "POST",
        "/v1/exchanges/events/messages",
        &json!({"value": "o4", "routing_key": "order.created"}),
    );
    assert_eq!(
        routed["messages"][0]["routed"][0]["destination"], "orders",
        "{routed}"
    );
    publish(server, "/v1/topics/orders", &["o5"], Some(1));
    publish(
        server,
        "/v1/queues/jobs",
        &["j0", "j1", "j2", "j3", "j4"],
        None,
    );

    let billing = "/v1/topics/orders/subscriptions/billing";
    let polled = server.ok("POST", &format!("{billing}/poll"), &json!({"max": 100}));
    assert_eq!(values(&polled).len(), 6, "{polled}");
    let commit = json!({"offsets": [{"partition": 0, "offset": 3}]});
    server.ok("POST", &format!("{billing}/offsets"), &commit);

    let audit = ack_one(server, "/v1/topics/orders/subscriptions/audit");
    let job = ack_one(server, "/v1/queues/jobs");
    // Leased for 1 ms and never acked: back after the restart either way.
    let held = server.ok(
        "POST",
        "/v1/queues/jobs/receive",
        &json!({"max": 2, "visibility_ms": 1}),
    );
    assert_eq!(values(&held).len(), 2, "{held}");
    Acked { audit, job }
}

fn check_definitions(server: &Server) {
    let orders = server.ok("GET", "/v1/topics/orders", &Value::Null);
    assert_eq!(orders["config"]["partitions"], 2, "{orders}");
    let subs = server.ok("GET", "/v1/topics/orders/subscriptions", &Value::Null);
    let modes: BTreeSet<(String, String)> = subs["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (text(&s["name"]), text(&s["config"]["mode"])))
        .collect();
    let expected = [("audit", "shared"), ("billing", "stream")]
        .map(|(n, m)| (n.to_owned(), m.to_owned()))
        .into();
    assert_eq!(modes, expected, "{subs}");
    let jobs = server.ok("GET", "/v1/queues/jobs", &Value::Null);
    assert_eq!(jobs["config"]["visibility_timeout_ms"], 30000, "{jobs}");
    let events = server.ok("GET", "/v1/exchanges/events", &Value::Null);
    assert_eq!(events["config"]["kind"], "topic", "{events}");
    let bindings = server.ok("GET", "/v1/bindings", &Value::Null);
    let bindings = bindings["bindings"].as_array().unwrap();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(bindings[0]["destination"], "orders");
    assert_eq!(bindings[0]["key"], "order.*");
}

fn check_contents(server: &Server, acked: &Acked) {
    let all_orders: BTreeSet<String> = (0..6).map(|i| format!("o{i}")).collect();

    // `billing` resumes at its committed offsets, not where it had read
    // to: partition 0 from offset 3, partition 1 from the start.
    let billing = "/v1/topics/orders/subscriptions/billing";
    let offsets = server.ok("GET", &format!("{billing}/offsets"), &Value::Null);
    let p0 = &offsets["partitions"][0];
    assert_eq!(
        (p0["partition"].as_u64(), p0["committed"].as_u64()),
        (Some(0), Some(3)),
        "{offsets}"
    );
    assert_eq!(p0["position"], 3, "{offsets}");
    let polled = server.ok("POST", &format!("{billing}/poll"), &json!({"max": 100}));
    let already: BTreeSet<String> = ["o0", "o1", "o2"].map(String::from).into();
    let rest: BTreeSet<String> = all_orders.difference(&already).cloned().collect();
    assert_eq!(values(&polled).into_iter().collect::<BTreeSet<_>>(), rest);

    let audit = receive_all(server, "/v1/topics/orders/subscriptions/audit", 5);
    let mut expected = all_orders.clone();
    expected.remove(&acked.audit);
    assert_eq!(audit.keys().cloned().collect::<BTreeSet<_>>(), expected);

    let jobs = receive_all(server, "/v1/queues/jobs", 4);
    let expected: BTreeSet<String> = (0..5)
        .map(|i| format!("j{i}"))
        .filter(|j| *j != acked.job)
        .collect();
    assert_eq!(jobs.keys().cloned().collect::<BTreeSet<_>>(), expected);
    // Delivery counts are kept: the two held jobs are on their second.
    let second: Vec<&String> = jobs
        .iter()
        .filter(|(_, c)| **c == 2)
        .map(|(v, _)| v)
        .collect();
    assert_eq!(second.len(), 2, "delivery counts: {jobs:?}");
}

/// Receives one message, acks it, and returns its value.
fn ack_one(server: &Server, base: &str) -> String {
    let got = server.ok("POST", &format!("{base}/receive"), &json!({"max": 1}));
    let message = &got["messages"][0];
    let acked = server.ok(
        "POST",
        &format!("{base}/ack"),
        &json!({"receipts": [message["receipt"]]}),
    );
    assert_eq!(acked["results"][0]["ok"], true, "{acked}");
    text(&message["value"])
}

/// Receives until `n` messages came (each value once), then checks nothing
/// more is ready; value → delivery count.
fn receive_all(server: &Server, base: &str, n: usize) -> std::collections::BTreeMap<String, u64> {
    let mut got = std::collections::BTreeMap::new();
    let deadline = Instant::now() + common::HTTP_TIMEOUT;
    while got.len() < n && Instant::now() < deadline {
        let answer = server.ok(
            "POST",
            &format!("{base}/receive"),
            &json!({"max": 100, "wait_ms": 500}),
        );
        for m in answer["messages"].as_array().unwrap() {
            let count = m["delivery_count"].as_u64().unwrap();
            assert!(got.insert(text(&m["value"]), count).is_none(), "twice: {m}");
        }
    }
    let more = server.ok("POST", &format!("{base}/receive"), &json!({"max": 100}));
    assert_eq!(values(&more), Vec::<String>::new(), "more than {n}");
    got
}

#[test]
fn a_long_poll_returns_as_soon_as_another_connection_publishes() {
    let mut server = Server::start(&[]);
    server.ok("PUT", "/v1/queues/lp", &json!({}));
    let started = Instant::now();
    let mut waiting = start_receive(&server, "/v1/queues/lp", 10_000);

    // Nothing published: a short long poll comes back empty after its wait.
    let short = Instant::now();
    let empty = server.ok("POST", "/v1/queues/lp/receive", &json!({"wait_ms": 300}));
    assert_eq!(values(&empty), Vec::<String>::new());
    assert!(
        short.elapsed() >= Duration::from_millis(250),
        "{:?}",
        short.elapsed()
    );
    assert!(
        !answered(&waiting),
        "the 10 s poll answered before any publish"
    );

    publish(&server, "/v1/queues/lp", &["wake"], None);
    let answer = read_response(&mut waiting);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(values(&answer.json()), ["wake"]);
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());
    server.stop();
}

#[test]
fn sigterm_ends_a_long_poll_in_progress_and_the_server_exits_0() {
    let mut server = Server::start(&[]);
    server.ok("PUT", "/v1/queues/lp", &json!({}));
    let mut waiting = start_receive(&server, "/v1/queues/lp", 10_000);
    // A whole request on another connection: the server has taken up the
    // poll, sent before it, by the time this is answered.
    server.ok("GET", "/v1/queues/lp", &Value::Null);
    assert!(!answered(&waiting));

    let signalled = Instant::now();
    server.terminate();
    let answer = read_response(&mut waiting);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(values(&answer.json()), Vec::<String>::new());
    let status = server.wait();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    // The grace period is 30 s by default: the server did not wait the
    // poll out.
    assert!(signalled.elapsed() < PROMPT, "{:?}", signalled.elapsed());
}

#[test]
fn event_streams_deliver_ack_and_end_on_sigterm() {
    let mut server = Server::start(&[]);
    server.ok("PUT", "/v1/queues/manual", &json!({}));
    server.ok("PUT", "/v1/queues/auto", &json!({}));
    server.ok("PUT", "/v1/topics/ticks", &json!({}));
    server.ok(
        "PUT",
        "/v1/topics/ticks/subscriptions/reader",
        &json!({"mode": "stream", "start": "earliest"}),
    );

    // Manual acks: every event carries a receipt, and acking them empties
    // the queue.
    let mut manual = EventStream::open(server.port, "/v1/queues/manual/events");
    publish(&server, "/v1/queues/manual", &["m0", "m1", "m2"], None);
    let events = manual.next_events(3);
    let receipts: Vec<Value> = events
        .iter()
        .map(|e| {
            assert_eq!(e.event.as_deref(), Some("message"), "{e:?}");
            let data = e.json();
            assert_eq!(e.id.as_deref(), data["id"].as_str(), "{e:?}");
            assert_eq!(data["delivery_count"], 1, "{e:?}");
            data["receipt"].clone()
        })
        .collect();
    assert_eq!(event_values(&events), ["m0", "m1", "m2"]);
    assert!(receipts.iter().all(Value::is_string), "{receipts:?}");
    let acked = server.ok(
        "POST",
        "/v1/queues/manual/ack",
        &json!({ "receipts": receipts }),
    );
    let results = acked["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["ok"] == true), "{acked}");
    assert_empty(&server, "/v1/queues/manual");

    // `ack=auto`: acked as written, nothing left in flight.
    let mut auto = EventStream::open(server.port, "/v1/queues/auto/events?ack=auto");
    publish(&server, "/v1/queues/auto", &["a0", "a1", "a2"], None);
    assert_eq!(event_values(&auto.next_events(3)), ["a0", "a1", "a2"]);
    assert_empty(&server, "/v1/queues/auto");

    // A `stream` subscription: records in offset order, those published
    // before the stream opened first.
    publish(&server, "/v1/topics/ticks", &["t0", "t1"], None);
    let mut ticks = EventStream::open(server.port, "/v1/topics/ticks/subscriptions/reader/events");
    publish(&server, "/v1/topics/ticks", &["t2", "t3", "t4"], None);
    let events = ticks.next_events(5);
    let offsets: Vec<u64> = events
        .iter()
        .map(|e| e.json()["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
    assert_eq!(event_values(&events), ["t0", "t1", "t2", "t3", "t4"]);

    // SIGTERM ends every open stream, and the server exits 0 promptly.
    let signalled = Instant::now();
    server.terminate();
    for (name, mut stream) in [("manual", manual), ("auto", auto), ("ticks", ticks)] {
        assert_eq!(stream.next_event(), None, "the {name} stream goes on");
    }
    let status = server.wait();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    assert!(signalled.elapsed() < PROMPT, "{:?}", signalled.elapsed());
}

#[test]
fn metrics_over_the_socket_show_connections_and_latencies() {
    let mut server = Server::start(&[]);
    server.ok(
        "PUT",
        "/v1/topics/measured",
        &json!({"durability": "fsync"}),
    );
    for i in 0..3 {
        publish(&server, "/v1/topics/measured", &[&format!("v{i}")], None);
    }
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = &metrics.body;
    assert!(
        sample(text, "hermod_connections_open") >= 1.0,
        "the scrape's own connection is open:\n{text}"
    );
    assert!(
        sample(text, "hermod_sync_latency_seconds_count") > 0.0,
        "{text}"
    );
    assert!(
        sample(text, "hermod_publish_latency_seconds_count") >= 3.0,
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("hermod_publish_latency_seconds_bucket{")),
        "{text}"
    );
    server.stop();
}

/// Publishes text values in one request (to one partition if given).
fn publish(server: &Server, path: &str, texts: &[&str], partition: Option<u32>) {
    let messages: Vec<Value> = texts.iter().map(|t| json!({"value": t})).collect();
    let mut body = json!({ "messages": messages });
    if let Some(p) = partition {
        body["partition"] = json!(p);
    }
    let answer = server.ok("POST", &format!("{path}/messages"), &body);
    assert_eq!(answer["messages"].as_array().unwrap().len(), texts.len());
}

/// Sends a receive that waits up to `wait_ms`, without reading its answer.
fn start_receive(server: &Server, base: &str, wait_ms: u64) -> std::net::TcpStream {
    let mut stream = connect(server.port);
    let body = json!({ "wait_ms": wait_ms }).to_string();
    send(
        &mut stream,
        "POST",
        &format!("{base}/receive"),
        Some(&body),
        false,
    );
    stream
}

/// Whether an answer (or a close) is waiting on `stream`; does not wait.
fn answered(stream: &std::net::TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let peeked = stream.peek(&mut [0; 1]);
    stream.set_nonblocking(false).unwrap();
    !matches!(peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Nothing ready and nothing in flight.
fn assert_empty(server: &Server, queue: &str) {
    let info = server.ok("GET", queue, &Value::Null);
    assert_eq!(
        (&info["depth"], &info["in_flight"]),
        (&json!(0), &json!(0)),
        "{info}"
    );
}

/// The text values of a `Messages` answer, in order.
fn values(messages: &Value) -> Vec<String> {
    messages["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("not Messages: {messages}"))
        .iter()
        .map(|m| text(&m["value"]))
        .collect()
}

fn event_values(events: &[common::ServerEvent]) -> Vec<String> {
    events.iter().map(|e| text(&e.json()["value"])).collect()
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// The value of the unlabelled sample `name` in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name}:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}
