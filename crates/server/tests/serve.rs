//! End-to-end tests of `hermod serve`, starting the real binary: start and
//! health, the data directory's lock, graceful stop on SIGTERM and SIGINT,
//! the definitions file (created, idempotent, a change refused), and the
//! precedence of flag, environment and config file seen from outside
//! through the connection limit.

mod common;

use std::path::Path;

use common::{connect, read_response, send, Exited, Server};
use hermod_core::{Broker, BrokerConfig};

#[test]
fn starts_and_answers_healthz() {
    let mut server = Server::start(&[]);
    let health = server.get("/healthz");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(server.get("/readyz").status, 200);
    assert!(server.data_dir.join("LOCK").exists());
    server.stop();
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let mut first = Server::start(&[]);
    let Err(second) = Server::try_start_in(&first.data_dir, &[], &[]) else {
        panic!("a second server started on the same data directory");
    };
    assert!(!second.status.success());
    let dir = first.data_dir.display().to_string();
    let expected = format!(
        "another hermod server is using {dir} (lock held on {dir}/LOCK); stop it or choose another --data-dir"
    );
    assert!(second.stderr.contains(&expected), "{}", second.stderr);
    assert_eq!(first.get("/healthz").status, 200, "the first one goes on");
    first.stop();
}

#[test]
fn sigterm_stops_gracefully_and_frees_the_data_dir() {
    let mut server = Server::start(&[]);
    server.terminate();
    let status = server.wait();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    let log = server.stderr();
    assert!(log.contains("SIGTERM") && log.contains("stopped"), "{log}");
    let mut again = Server::start_in(&server.data_dir, &[]);
    again.stop();
}

#[test]
fn sigint_stops_gracefully() {
    let mut server = Server::start(&["--log-format", "json"]);
    assert_eq!(server.get("/healthz").status, 200);
    server.interrupt();
    let status = server.wait();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    let log = server.stderr();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["fields"]["message"], "stopped", "{log}");
    assert!(log.contains("SIGINT"), "{log}");
}

const DEFINITIONS: &str = r#"
[topics.orders]
partitions = 3

[queues.jobs]
visibility_timeout_ms = 5000

[exchanges.events]
kind = "topic"

[[subscriptions]]
topic = "orders"
name = "billing"
config = { mode = "stream", start = "earliest" }

[[bindings]]
exchange = "events"
destination = "orders"
key = "order.*"
"#;

#[test]
fn definitions_are_created_once_and_a_change_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let file = temp.path().join("definitions.toml");
    std::fs::write(&file, DEFINITIONS).unwrap();
    let file_arg = file.to_str().unwrap();

    Server::start_in(&data_dir, &["--definitions", file_arg]).stop();
    check_definitions(&data_dir);
    let mut again = Server::start_in(&data_dir, &["--definitions", file_arg]);
    assert!(
        again.log_contains("definitions applied"),
        "{}",
        again.stderr()
    );
    again.stop();
    check_definitions(&data_dir);

    std::fs::write(
        &file,
        DEFINITIONS.replace("partitions = 3", "partitions = 4"),
    )
    .unwrap();
    let refused = Server::try_start_in(&data_dir, &["--definitions", file_arg], &[]);
    let Err(Exited { status, stderr }) = refused else {
        panic!("a changed definition was accepted");
    };
    assert!(!status.success());
    assert!(
        stderr.contains("topic `orders` already exists with other settings"),
        "{stderr}"
    );
    assert!(stderr.contains("partitions: 3 -> 4"), "{stderr}");
}

/// Opens the data directory (the server has stopped) and checks the
/// catalog holds what `DEFINITIONS` asks for.
fn check_definitions(data_dir: &Path) {
    let broker = Broker::open(BrokerConfig::new(data_dir)).unwrap();
    let catalog = broker.catalog();
    assert_eq!(catalog.topics["orders"].config.partitions, 3);
    let jobs = catalog.topics["jobs"]
        .queue
        .as_ref()
        .expect("jobs is a queue");
    assert_eq!(jobs.visibility_timeout_ms, 5000);
    assert!(catalog.exchanges.contains_key("events"));
    let key = ("orders".to_owned(), "billing".to_owned());
    assert!(catalog.subscriptions.contains_key(&key));
    assert_eq!(
        catalog.bindings.len(),
        1,
        "bound once: {:?}",
        catalog.bindings
    );
    broker.close().unwrap();
}

#[test]
fn an_unknown_config_key_stops_the_start_naming_it() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("hermod.toml");
    std::fs::write(&config, "tick_ms = 5\nmax_conections = 1\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let Err(exited) = Server::try_start_in(&temp.path().join("data"), &args, &[]) else {
        panic!("started with an unknown config key");
    };
    assert!(!exited.status.success());
    assert!(
        exited.stderr.contains("`max_conections`"),
        "{}",
        exited.stderr
    );
}

/// File 1, environment 5, flag 2: the flag wins (a third connection is
/// refused, a second is not). Then file 1, environment 2: the environment
/// beats the file.
#[test]
fn flag_beats_env_beats_file_for_max_connections() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("hermod.toml");
    std::fs::write(&config, "[limits]\nmax_connections = 1\n").unwrap();
    let config = config.to_str().unwrap();
    let data_dir = temp.path().join("data");

    let args = ["--config", config, "--max-connections", "2"];
    let env = [("HERMOD_MAX_CONNECTIONS", "5")];
    let mut server = Server::try_start_in(&data_dir, &args, &env).unwrap();
    assert_connection_limit(&server, 2);
    server.stop();

    let env = [("HERMOD_MAX_CONNECTIONS", "2")];
    let mut server = Server::try_start_in(&data_dir, &["--config", config], &env).unwrap();
    assert_connection_limit(&server, 2);
    server.stop();
}

/// Holds `limit` connections open (each has been answered once, so the
/// server has taken it), then checks one more is refused with a 503.
fn assert_connection_limit(server: &Server, limit: usize) {
    let held: Vec<_> = (0..limit)
        .map(|_| {
            let mut stream = connect(server.port);
            send(&mut stream, "GET", "/healthz", None, true);
            let answer = read_response(&mut stream);
            assert_eq!(answer.status, 200, "{answer:?}");
            stream
        })
        .collect();
    let refused = server.get("/healthz");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("connection"), Some("close"));
    assert_eq!(refused.json()["error"]["code"], "too_many_connections");
    drop(held);
    // The places are given back once the server sees the closes.
    let healthy = server.wait_for_status("/healthz", 200);
    assert_eq!(healthy.status, 200, "{healthy:?}");
}

/// An idle keep-alive connection does not hold the stop up, and a client
/// stuck half-way through a request holds it up for the grace period at
/// most.
#[test]
fn stop_does_not_wait_on_idle_or_stuck_connections() {
    use std::io::Write;

    let mut server = Server::start(&["--shutdown-grace-ms", "300"]);
    let mut idle = connect(server.port);
    send(&mut idle, "GET", "/healthz", None, true);
    assert_eq!(read_response(&mut idle).status, 200);
    let mut stuck = connect(server.port);
    stuck
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    server.terminate();
    let status = server.wait();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    assert!(started.elapsed() < common::STOP_TIMEOUT);
    // Whether the half-sent request was read before the signal (then the
    // grace period ran out on it) depends on scheduling; either way the
    // server stops, well within the limit.
    let log = server.stderr();
    assert!(log.contains("stopped"), "{log}");
}
