//! `kill -9` of the real binary in the middle of a publish/receive/ack
//! workload, five times over, then a full drain: no publish that was
//! answered 200 is lost, no ack that was answered `ok: true` is lost (its
//! message never comes back), and nothing appears that was never
//! published.
//!
//! Requests cut off by the kill have unknown outcomes: their messages may
//! or may not be there, their acks may or may not have happened. Only
//! answered requests are promises, and only they are checked.
//!
//! Time order is kept with one global counter: a receive takes a tick
//! before its request is sent, an ack takes one after its answer arrived.
//! A message acked at tick `a` and returned by a receive sent at tick
//! `r > a` is a lost ack.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{try_http, Server};
use serde_json::{json, Value};

const ROUNDS: usize = 5;
const PRODUCERS: usize = 3;
const CONSUMERS: usize = 2;
/// Messages per publish request.
const BATCH: usize = 5;
/// How long a round runs before the kill, once it has made progress.
const ROUND: Duration = Duration::from_millis(1500);
/// Longest a round may take to make progress, on a very busy machine.
const ROUND_MAX: Duration = Duration::from_secs(20);
/// Longest the final drain may take.
const DRAIN_MAX: Duration = Duration::from_secs(30);
const QUEUE: &str = "/v1/queues/work";

/// Unlimited deliveries, so nothing is dead-lettered or dropped; a short
/// lease, so what a killed consumer held comes back soon for the drain.
fn queue_config() -> Value {
    json!({"visibility_timeout_ms": 2000, "max_deliveries": 0})
}

#[test]
fn kill_nine_loses_no_acknowledged_publish_or_ack() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let history = Arc::new(History::default());
    let mut next_value = [0u64; PRODUCERS];
    for round in 0..ROUNDS {
        let mut server = Server::start_in(&data_dir, &[]);
        // The queue survives every kill: after the first round this is the
        // idempotent "already there, same settings" answer.
        let created = server.call("PUT", QUEUE, &queue_config());
        let expected = if round == 0 { 201 } else { 200 };
        assert_eq!(created.status, expected, "round {round}: {}", created.body);
        run_round(&mut server, &history, &mut next_value);
        eprintln!("round {round}: {}", history.summary());
    }
    let mut server = Server::start_in(&data_dir, &[]);
    drain(&server, &history);
    server.stop();
    history.check();
    assert_still_free(&data_dir);
}

/// Runs producers and consumers until the round has published and acked
/// something and `ROUND` has passed, then kills the server under them.
fn run_round(server: &mut Server, history: &Arc<History>, next_value: &mut [u64; PRODUCERS]) {
    let stop = Arc::new(AtomicBool::new(false));
    let (published, acked) = history.counts();
    let mut workers: Vec<JoinHandle<u64>> = Vec::new();
    for (thread, first) in next_value.iter().enumerate() {
        let (h, s, port, first) = (history.clone(), stop.clone(), server.port, *first);
        workers.push(std::thread::spawn(move || {
            produce(port, thread, first, &h, &s)
        }));
    }
    for _ in 0..CONSUMERS {
        let (h, s, port) = (history.clone(), stop.clone(), server.port);
        workers.push(std::thread::spawn(move || {
            while !s.load(SeqCst) && consume_once(port, 10, 100, &h).is_ok() {}
            0
        }));
    }
    let started = Instant::now();
    loop {
        let (p, a) = history.counts();
        let progressed = p > published && a > acked;
        if (progressed && started.elapsed() >= ROUND) || started.elapsed() > ROUND_MAX {
            assert!(
                progressed,
                "no progress in {ROUND_MAX:?}:\n{}",
                server.stderr()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = server.kill9();
    assert_eq!(status.code(), None, "killed by a signal, not exited");
    stop.store(true, SeqCst);
    for (thread, worker) in workers.into_iter().enumerate() {
        let next = worker.join().expect("worker panicked");
        if thread < PRODUCERS {
            next_value[thread] = next;
        }
    }
}

/// Publishes batches of `p{thread}-{n}` until stopped or the server is
/// gone; returns the next `n` to use.
fn produce(port: u16, thread: usize, mut n: u64, history: &History, stop: &AtomicBool) -> u64 {
    while !stop.load(SeqCst) {
        let values: Vec<String> = (n..n + BATCH as u64)
            .map(|i| format!("p{thread}-{i}"))
            .collect();
        n += BATCH as u64;
        history.attempted(&values);
        let messages: Vec<Value> = values.iter().map(|v| json!({"value": v})).collect();
        let body = json!({"messages": messages}).to_string();
        let Ok(answer) = try_http(port, "POST", &format!("{QUEUE}/messages"), Some(&body)) else {
            break; // Killed: the batch's outcome is unknown.
        };
        assert_eq!(answer.status, 200, "publish: {}", answer.body);
        assert_eq!(answer.json()["messages"].as_array().unwrap().len(), BATCH);
        history.published(&values);
    }
    n
}

/// One receive and the ack of what it returned; `Err` if the server is
/// gone. Returns how many messages the receive returned.
fn consume_once(port: u16, max: usize, wait_ms: u64, history: &History) -> Result<usize, ()> {
    let sent = history.tick();
    let body = json!({"max": max, "wait_ms": wait_ms}).to_string();
    let answer =
        try_http(port, "POST", &format!("{QUEUE}/receive"), Some(&body)).map_err(|_| ())?;
    assert_eq!(answer.status, 200, "receive: {}", answer.body);
    let mut by_receipt = HashMap::new();
    for m in answer.json()["messages"].as_array().unwrap() {
        let value = m["value"].as_str().expect("a text value").to_owned();
        let receipt = m["receipt"].as_str().expect("a receipt").to_owned();
        history.received(&value, sent);
        by_receipt.insert(receipt, value);
    }
    if by_receipt.is_empty() {
        return Ok(0);
    }
    let receipts: Vec<&String> = by_receipt.keys().collect();
    let body = json!({ "receipts": receipts }).to_string();
    let answer = try_http(port, "POST", &format!("{QUEUE}/ack"), Some(&body)).map_err(|_| ())?;
    let done = history.tick();
    assert_eq!(answer.status, 200, "ack: {}", answer.body);
    for result in answer.json()["results"].as_array().unwrap() {
        // Not ok: the lease ran out first (a slow round); nothing promised.
        if result["ok"] == true {
            let value = &by_receipt[result["receipt"].as_str().unwrap()];
            history.acked(value, done);
        }
    }
    Ok(by_receipt.len())
}

/// Receives and acks until the queue is empty: nothing ready, nothing in
/// flight (leases taken before the last kill run out within 2 s).
fn drain(server: &Server, history: &History) {
    let started = Instant::now();
    loop {
        let got = consume_once(server.port, 100, 200, history).expect("the server is up");
        if got == 0 {
            let info = server.ok("GET", QUEUE, &Value::Null);
            if info["depth"] == 0 && info["in_flight"] == 0 {
                return;
            }
        }
        assert!(
            started.elapsed() < DRAIN_MAX,
            "the queue did not drain in {DRAIN_MAX:?}: {}",
            server.get(QUEUE).body
        );
    }
}

/// The lock is free after the last graceful stop too.
fn assert_still_free(data_dir: &Path) {
    Server::start_in(data_dir, &[]).stop();
}

/// What the clients saw, in one place.
#[derive(Default)]
struct History {
    clock: AtomicU64,
    state: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Every value a publish request carried, answered or not.
    attempted: HashSet<String>,
    /// Values whose publish was answered 200.
    published: HashSet<String>,
    /// Per value, the tick at which each receive returning it was sent.
    received: HashMap<String, Vec<u64>>,
    /// Per value, the tick after its first `ok: true` ack answer.
    acked: HashMap<String, u64>,
}

impl History {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, SeqCst)
    }

    fn attempted(&self, values: &[String]) {
        let mut s = self.state.lock().unwrap();
        s.attempted.extend(values.iter().cloned());
    }

    fn published(&self, values: &[String]) {
        let mut s = self.state.lock().unwrap();
        s.published.extend(values.iter().cloned());
    }

    fn received(&self, value: &str, sent: u64) {
        let mut s = self.state.lock().unwrap();
        s.received.entry(value.to_owned()).or_default().push(sent);
    }

    fn acked(&self, value: &str, done: u64) {
        let mut s = self.state.lock().unwrap();
        s.acked.entry(value.to_owned()).or_insert(done);
    }

    /// (published, acked) so far.
    fn counts(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        (s.published.len(), s.acked.len())
    }

    fn summary(&self) -> String {
        let s = self.state.lock().unwrap();
        let receives: usize = s.received.values().map(Vec::len).sum();
        format!(
            "{} attempted, {} published, {} values received ({receives} receives), {} acked",
            s.attempted.len(),
            s.published.len(),
            s.received.len(),
            s.acked.len()
        )
    }

    /// The three promises, over the whole run.
    fn check(&self) {
        eprintln!("final: {}", self.summary());
        let s = self.state.lock().unwrap();
        let invented: Vec<&String> = s
            .received
            .keys()
            .filter(|v| !s.attempted.contains(*v))
            .collect();
        assert!(invented.is_empty(), "never published: {invented:?}");
        let mut lost: Vec<&String> = s
            .published
            .iter()
            .filter(|v| !s.received.contains_key(*v))
            .collect();
        lost.sort();
        assert!(
            lost.is_empty(),
            "{} acknowledged publishes never received, such as {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
        let mut unacked: Vec<(&String, u64, u64)> = s
            .acked
            .iter()
            .filter_map(|(v, &done)| {
                let again = s.received[v].iter().copied().filter(|&r| r > done).min()?;
                Some((v, done, again))
            })
            .collect();
        unacked.sort();
        assert!(
            unacked.is_empty(),
            "{} acknowledged acks lost, such as (value, acked at, received again at) {:?}",
            unacked.len(),
            &unacked[..unacked.len().min(10)]
        );
    }
}
