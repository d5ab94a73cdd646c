//! `hermod bench` runs each scenario to the end and checks itself: small
//! counts, embedded and against a real server. (Its figures are not
//! checked here: speed is measured in benchmarks, never asserted.)

mod common;

use std::process::Command;

use common::Server;

fn bench(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hermod"))
        .arg("bench")
        .args(args)
        .args(["--quiet", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hermod bench {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "bench left data behind"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn accounted(report: &serde_json::Value, messages: u64, deliveries: u64) {
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["messages"], messages, "{report}");
    assert_eq!(report["deliveries"], deliveries, "{report}");
    assert_eq!(report["verdict"]["missing"], 0, "{report}");
    assert!(
        report["latency_us"]["p50"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(report["messages_per_s"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn every_scenario_runs_embedded_and_accounts_for_every_message() {
    let common = ["--durability", "memory", "--count", "600", "--size", "64"];
    for (scenario, deliveries) in [
        ("publish", 600),
        ("queue", 600),
        ("fanout", 1800),
        ("replay", 600),
    ] {
        let mut args = vec![scenario];
        args.extend(common);
        args.extend(["--batch", "7", "--partitions", "2"]);
        accounted(&bench(&args), 600, deliveries);
    }
}

#[test]
fn a_fixed_rate_run_accounts_for_every_message() {
    let args = [
        "queue",
        "--rate",
        "5000",
        "--count",
        "300",
        "--durability",
        "memory",
    ];
    let report = bench(&args);
    accounted(&report, 300, 300);
    assert_eq!(report["rate"], 5000, "{report}");
}

#[test]
fn the_queue_scenario_runs_against_a_server() {
    let mut server = Server::start(&[]);
    let url = server.url();
    let report = bench(&[
        "queue",
        "--server",
        &url,
        "--count",
        "300",
        "--consumers",
        "2",
        "--batch",
        "5",
    ]);
    accounted(&report, 300, 300);
    assert_eq!(report["target"], url.as_str());
    let topics = server.get("/v1/queues").json();
    assert_eq!(
        topics["queues"].as_array().unwrap().len(),
        0,
        "the bench queue was left behind"
    );
    server.stop();
}
