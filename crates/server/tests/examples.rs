//! The README's walk-through, `examples/shop.sh`, run against the real
//! binary: the script checks each step itself (and exits non-zero on a
//! mismatch); this test checks its outcome again from outside and runs it
//! a second time on the same server, as the script promises.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Server;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop.sh")
}

fn run_shop(server: &Server) -> String {
    let out = Command::new("bash")
        .arg(script())
        .env("HERMOD_SERVER", server.url())
        .env("HERMOD", env!("CARGO_BIN_EXE_hermod"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "shop.sh failed ({}):\n{stdout}\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    stdout
}

#[test]
fn the_shop_walk_through_runs_and_ends_as_the_readme_says() {
    let mut server = Server::start(&[]);
    for _ in 0..2 {
        let stdout = run_shop(&server);
        assert_eq!(stdout.lines().last(), Some("shop scenario: ok"), "{stdout}");
        let coupons = server.get("/v1/queues/coupons").json();
        assert_eq!(coupons["depth"], 0, "{coupons}");
        assert_eq!(
            coupons["acked"].as_u64().map(|a| a >= 1),
            Some(true),
            "{coupons}"
        );
        assert_eq!(
            coupons["dead_lettered"].as_u64().map(|d| d >= 1),
            Some(true),
            "{coupons}"
        );
        let dlq = server.get("/v1/queues/coupon-dlq").json();
        assert_eq!(dlq["depth"], 0, "{dlq}");
        let mail = server.get("/v1/queues/mail").json();
        assert_eq!(
            (mail["depth"].clone(), mail["in_flight"].clone()),
            (0.into(), 0.into()),
            "{mail}"
        );
    }
    server.stop();
}
