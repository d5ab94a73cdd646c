//! The router in process, request by request: every route family, every
//! error class, and that a refused request changes nothing. (The real
//! binary over real sockets is tested in `crates/server/tests`.)

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hermod_core::{Broker, BrokerConfig};
use hermod_http::{router, AppState, Limits, ServerStats};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Api {
    router: axum::Router,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

impl Api {
    fn new() -> Api {
        Api::with_limits(Limits::default())
    }

    fn with_limits(limits: Limits) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).unwrap());
        let (tx, rx) = tokio::sync::watch::channel(false);
        let state = AppState::new(broker.clone(), limits, rx, Arc::new(ServerStats::default()));
        Api {
            router: router(state),
            broker,
            _dir: dir,
            _shutdown: tx,
        }
    }

    async fn raw(&self, method: Method, path: &str, body: &str) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text) = self.raw(method, path, &text).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, v) = self.call(method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    /// Asserts an error answer's status and code.
    async fn fails(&self, method: Method, path: &str, body: &str, status: u16, code: &str) {
        let (s, text) = self.raw(method.clone(), path, body).await;
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert_eq!(s.as_u16(), status, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], code, "{method} {path}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn topics_are_created_idempotently_listed_described_and_deleted() {
    let api = Api::new();
    let (s, v) = api
        .call(Method::PUT, "/v1/topics/orders", json!({"partitions": 3}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["partitions"].as_array().unwrap().len(), 3);
    let (s, _) = api
        .call(Method::PUT, "/v1/topics/orders", json!({"partitions": 3}))
        .await;
    assert_eq!(s, StatusCode::OK);
    api.fails(
        Method::PUT,
        "/v1/topics/orders",
        r#"{"partitions": 4}"#,
        409,
        "already_exists",
    )
    .await;
    let list = api.ok(Method::GET, "/v1/topics", Value::Null).await;
    assert_eq!(list["topics"][0]["name"], "orders");
    let one = api.ok(Method::GET, "/v1/topics/orders", Value::Null).await;
    assert_eq!(one["config"]["partitions"], 3);
    let (s, _) = api
        .call(Method::DELETE, "/v1/topics/orders", Value::Null)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    api.fails(Method::GET, "/v1/topics/orders", "", 404, "not_found")
        .await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let api = Api::with_limits(Limits {
        max_body_bytes: 4096,
        max_message_bytes: 100,
        max_batch: 2,
        ..Limits::default()
    });
    api.ok(Method::PUT, "/v1/topics/t", Value::Null).await;
    let before = api.broker.catalog();
    api.fails(
        Method::PUT,
        "/v1/topics/bad%20name",
        "",
        400,
        "invalid_name",
    )
    .await;
    api.fails(
        Method::PUT,
        "/v1/topics/x",
        "{not json",
        400,
        "malformed_body",
    )
    .await;
    api.fails(
        Method::PUT,
        "/v1/topics/x",
        r#"{"partitionz": 1}"#,
        400,
        "invalid_body",
    )
    .await;
    api.fails(
        Method::PUT,
        "/v1/topics/x",
        r#"{"partitions": 0}"#,
        400,
        "invalid_config",
    )
    .await;
    api.fails(
        Method::PUT,
        "/v1/queues/q",
        r#"{"dead_letter": "nowhere"}"#,
        404,
        "not_found",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/topics/t/messages",
        r#"{"value": "x", "colour": 1}"#,
        400,
        "invalid_body",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/topics/t/messages",
        r#"{"headers": {}}"#,
        400,
        "invalid_message",
    )
    .await;
    let big = format!(r#"{{"value": "{}"}}"#, "x".repeat(101));
    api.fails(
        Method::POST,
        "/v1/topics/t/messages",
        &big,
        413,
        "message_too_large",
    )
    .await;
    let huge = format!(r#"{{"value": "{}"}}"#, "x".repeat(5000));
    api.fails(
        Method::POST,
        "/v1/topics/t/messages",
        &huge,
        413,
        "body_too_large",
    )
    .await;
    let three = r#"{"messages": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}"#;
    api.fails(
        Method::POST,
        "/v1/topics/t/messages",
        three,
        400,
        "limit_exceeded",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/topics/t/messages",
        r#"{"value": "a", "headers": {"hermod.id": "x"}}"#,
        400,
        "invalid_message",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/topics/nope/messages",
        r#"{"value": "a"}"#,
        404,
        "not_found",
    )
    .await;
    api.fails(Method::GET, "/v1/nothing/here", "", 404, "no_such_route")
        .await;
    api.fails(Method::PATCH, "/v1/topics/t", "", 405, "method_not_allowed")
        .await;
    api.fails(Method::POST, "/v1/queues/t/receive", "{}", 404, "not_found")
        .await;
    // Refused creates may use up ids (`next_id`), nothing else.
    let after = api.broker.catalog();
    assert_eq!(
        after.topics, before.topics,
        "a refused request changed the topics"
    );
    assert_eq!(after.subscriptions, before.subscriptions);
    assert_eq!(
        (after.exchanges, after.bindings),
        (before.exchanges, before.bindings)
    );
    let t = api.ok(Method::GET, "/v1/topics/t", Value::Null).await;
    assert_eq!(
        t["partitions"][0]["log_end"], 0,
        "a refused publish appended"
    );
}

#[tokio::test]
async fn publish_one_or_a_batch_and_read_a_partition() {
    let api = Api::new();
    api.ok(Method::PUT, "/v1/topics/events", Value::Null).await;
    let one = api
        .ok(Method::POST, "/v1/topics/events/messages", json!({"value": {"type": "OrderCompleted"}, "key": "k1", "headers": {"type": "OrderCompleted"}}))
        .await;
    assert_eq!(one["messages"][0]["offset"], 0);
    let batch = api
        .ok(
            Method::POST,
            "/v1/topics/events/messages",
            json!({"messages": [{"value": "two"}, {"value_base64": "/wA="}]}),
        )
        .await;
    assert_eq!(batch["messages"][1]["offset"], 2);
    let read = api
        .ok(
            Method::GET,
            "/v1/topics/events/partitions/0/messages?offset=0&max=2",
            Value::Null,
        )
        .await;
    let msgs = read["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["value"], r#"{"type":"OrderCompleted"}"#);
    assert_eq!(msgs[0]["key"], "k1");
    assert_eq!(msgs[0]["headers"]["type"], "OrderCompleted");
    assert_eq!(msgs[0]["id"], one["messages"][0]["id"]);
    assert_eq!(read["next_offset"], 2);
    let rest = api
        .ok(
            Method::GET,
            "/v1/topics/events/partitions/0/messages?offset=2",
            Value::Null,
        )
        .await;
    assert_eq!(rest["messages"][0]["value_base64"], "/wA=");
    assert_eq!(rest["log_end"], 3);
    api.fails(
        Method::GET,
        "/v1/topics/events/partitions/0/messages?offset=9",
        "",
        400,
        "offset_out_of_range",
    )
    .await;
    api.fails(
        Method::GET,
        "/v1/topics/events/partitions/7/messages",
        "",
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_queue_receives_acks_nacks_extends_purges() {
    let api = Api::new();
    api.ok(
        Method::PUT,
        "/v1/queues/work",
        json!({"visibility_timeout_ms": 60000}),
    )
    .await;
    for v in ["a", "b", "c"] {
        api.ok(
            Method::POST,
            "/v1/queues/work/messages",
            json!({"value": v}),
        )
        .await;
    }
    let got = api
        .ok(Method::POST, "/v1/queues/work/receive", json!({"max": 2}))
        .await;
    let msgs = got["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["delivery_count"], 1);
    let (r0, r1) = (
        msgs[0]["receipt"].as_str().unwrap(),
        msgs[1]["receipt"].as_str().unwrap(),
    );
    let acked = api
        .ok(
            Method::POST,
            "/v1/queues/work/ack",
            json!({"receipts": [r0, "zz", r0]}),
        )
        .await;
    assert_eq!(acked["results"][0]["ok"], true);
    assert_eq!(acked["results"][1]["error"]["code"], "invalid_receipt");
    assert_eq!(acked["results"][2]["ok"], false, "{acked}");
    let ext = api
        .ok(
            Method::POST,
            "/v1/queues/work/extend",
            json!({"receipts": [r1], "visibility_ms": 1000}),
        )
        .await;
    assert_eq!(ext["results"][0]["ok"], true, "{ext}");
    let nacked = api
        .ok(
            Method::POST,
            "/v1/queues/work/nack",
            json!({"receipts": [r1]}),
        )
        .await;
    assert_eq!(nacked["results"][0]["ok"], true);
    let again = api
        .ok(Method::POST, "/v1/queues/work/receive", json!({"max": 10}))
        .await;
    let msgs = again["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{again}");
    assert!(msgs
        .iter()
        .any(|m| m["value"] == "b" && m["delivery_count"] == 2));
    let q = api.ok(Method::GET, "/v1/queues/work", Value::Null).await;
    assert_eq!(q["depth"], 2);
    assert_eq!(q["in_flight"], 2);
    let purged = api
        .ok(Method::POST, "/v1/queues/work/purge", Value::Null)
        .await;
    assert_eq!(purged["purged"], 2, "{purged}");
    api.fails(
        Method::POST,
        "/v1/queues/work/receive",
        r#"{"max": 0}"#,
        400,
        "invalid_request",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/queues/work/receive",
        r#"{"max": 100000}"#,
        400,
        "limit_exceeded",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/queues/work/receive",
        r#"{"wait_ms": 100000}"#,
        400,
        "limit_exceeded",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/queues/work/ack",
        r#"{"receipts": []}"#,
        400,
        "invalid_request",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/topics/work/subscriptions/work/poll",
        "{}",
        409,
        "wrong_mode",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/queues/work/poll",
        "{}",
        404,
        "no_such_route",
    )
    .await;
}

#[tokio::test]
async fn a_stream_subscription_polls_commits_and_seeks() {
    let api = Api::new();
    api.ok(Method::PUT, "/v1/topics/log", Value::Null).await;
    api.ok(
        Method::PUT,
        "/v1/topics/log/subscriptions/reader",
        json!({"mode": "stream", "start": "earliest"}),
    )
    .await;
    api.ok(
        Method::POST,
        "/v1/topics/log/messages",
        json!({"messages": [{"value": "1"}, {"value": "2"}, {"value": "3"}]}),
    )
    .await;
    let got = api
        .ok(
            Method::POST,
            "/v1/topics/log/subscriptions/reader/poll",
            json!({"max": 2}),
        )
        .await;
    assert_eq!(got["messages"].as_array().unwrap().len(), 2);
    let off = api
        .ok(
            Method::POST,
            "/v1/topics/log/subscriptions/reader/offsets",
            json!({}),
        )
        .await;
    assert_eq!(off["partitions"][0]["committed"], 2);
    assert_eq!(off["partitions"][0]["lag"], 1);
    let off = api
        .ok(
            Method::POST,
            "/v1/topics/log/subscriptions/reader/seek",
            json!({"partition": 0, "offset": 0}),
        )
        .await;
    assert_eq!(off["partitions"][0]["position"], 0);
    let got = api
        .ok(
            Method::POST,
            "/v1/topics/log/subscriptions/reader/poll",
            json!({}),
        )
        .await;
    assert_eq!(got["messages"].as_array().unwrap().len(), 3);
    api.ok(
        Method::POST,
        "/v1/topics/log/subscriptions/reader/offsets",
        json!({"offsets": [{"partition": 0, "offset": 3}]}),
    )
    .await;
    let off = api
        .ok(
            Method::GET,
            "/v1/topics/log/subscriptions/reader/offsets",
            Value::Null,
        )
        .await;
    assert_eq!(off["partitions"][0]["lag"], 0);
    let subs = api
        .ok(Method::GET, "/v1/topics/log/subscriptions", Value::Null)
        .await;
    assert_eq!(subs["subscriptions"][0]["name"], "reader");
    api.fails(
        Method::POST,
        "/v1/topics/log/subscriptions/reader/receive",
        "{}",
        409,
        "wrong_mode",
    )
    .await;
    api.fails(
        Method::POST,
        "/v1/topics/log/subscriptions/reader/seek",
        r#"{"partition": 0, "offset": 99}"#,
        400,
        "offset_out_of_range",
    )
    .await;
    let (s, _) = api
        .call(
            Method::DELETE,
            "/v1/topics/log/subscriptions/reader",
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn exchanges_route_by_binding_and_dead_letters_are_redriven() {
    let api = Api::new();
    api.ok(Method::PUT, "/v1/exchanges/shop", json!({"kind": "fanout"}))
        .await;
    api.ok(Method::PUT, "/v1/queues/mail", Value::Null).await;
    api.ok(Method::PUT, "/v1/queues/coupon-dlq", Value::Null)
        .await;
    api.ok(
        Method::PUT,
        "/v1/queues/coupons",
        json!({"max_deliveries": 3, "dead_letter": "coupon-dlq"}),
    )
    .await;
    let (s, _) = api
        .call(
            Method::POST,
            "/v1/bindings",
            json!({"exchange": "shop", "destination": "mail"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = api
        .call(
            Method::POST,
            "/v1/bindings",
            json!({"exchange": "shop", "destination": "mail"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let policy = json!({"type": ["OrderCompleted"]}).to_string();
    api.ok(
        Method::POST,
        "/v1/bindings",
        json!({"exchange": "shop", "destination": "coupons", "filter": {"policy": policy}}),
    )
    .await;
    let joined = api
        .ok(
            Method::POST,
            "/v1/exchanges/shop/messages",
            json!({"value": {"type": "MemberJoined"}, "headers": {"type": "MemberJoined"}}),
        )
        .await;
    assert_eq!(joined["messages"][0]["routed"].as_array().unwrap().len(), 1);
    assert_eq!(joined["messages"][0]["missed"][0]["reason"], "filter");
    let order = api
        .ok(
            Method::POST,
            "/v1/exchanges/shop/messages",
            json!({"value": {"type": "OrderCompleted"}, "headers": {"type": "OrderCompleted"}}),
        )
        .await;
    let id = order["messages"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(order["messages"][0]["routed"].as_array().unwrap().len(), 2);
    let mail = api
        .ok(Method::POST, "/v1/queues/mail/receive", json!({"max": 10}))
        .await;
    assert_eq!(mail["messages"].as_array().unwrap().len(), 2);
    for _ in 0..3 {
        let got = api
            .ok(Method::POST, "/v1/queues/coupons/receive", json!({}))
            .await;
        let r = got["messages"][0]["receipt"]
            .as_str()
            .expect("the coupon is delivered")
            .to_string();
        api.ok(
            Method::POST,
            "/v1/queues/coupons/nack",
            json!({"receipts": [r]}),
        )
        .await;
    }
    let none = api
        .ok(Method::POST, "/v1/queues/coupons/receive", json!({}))
        .await;
    assert_eq!(none["messages"].as_array().unwrap().len(), 0);
    let dlq = api
        .ok(Method::GET, "/v1/queues/coupon-dlq", Value::Null)
        .await;
    assert_eq!(dlq["depth"], 1, "{dlq}");
    let moved = api
        .ok(Method::POST, "/v1/queues/coupon-dlq/redrive", Value::Null)
        .await;
    assert_eq!(moved["moved"], 1);
    let back = api
        .ok(Method::POST, "/v1/queues/coupons/receive", json!({}))
        .await;
    assert_eq!(back["messages"][0]["id"], id.as_str());
    let trace = api
        .ok(
            Method::GET,
            &format!("/v1/messages/{id}/trace"),
            Value::Null,
        )
        .await;
    let events: Vec<&str> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"dead_lettered") && events.contains(&"nacked"),
        "{events:?}"
    );
    api.fails(Method::GET, "/v1/messages/nope/trace", "", 404, "not_found")
        .await;
    let bindings = api
        .ok(Method::GET, "/v1/bindings?exchange=shop", Value::Null)
        .await;
    assert_eq!(bindings["bindings"].as_array().unwrap().len(), 2);
    let ex = api.ok(Method::GET, "/v1/exchanges/shop", Value::Null).await;
    assert_eq!(ex["bindings"].as_array().unwrap().len(), 2);
    let (s, _) = api
        .call(
            Method::DELETE,
            "/v1/bindings",
            json!({"exchange": "shop", "destination": "mail"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let stats = api.ok(Method::GET, "/v1/stats", Value::Null).await;
    assert_eq!(stats["queues"].as_array().unwrap().len(), 3);
    let (s, text) = api.raw(Method::GET, "/metrics", "").await;
    assert_eq!(s, StatusCode::OK);
    for name in [
        "hermod_messages_published_total{topic=\"mail\"} 2",
        "hermod_messages_dead_lettered_total",
        "hermod_publish_latency_seconds_bucket",
        "hermod_delivery_latency_seconds_count",
        "hermod_subscription_depth{",
        "hermod_connections_open",
    ] {
        assert!(text.contains(name), "metrics lack {name}:\n{text}");
    }
}

#[tokio::test]
async fn a_long_poll_returns_when_a_message_arrives() {
    let api = Api::new();
    api.ok(Method::PUT, "/v1/queues/q", Value::Null).await;
    let started = std::time::Instant::now();
    let waiter = {
        let router = api.router.clone();
        tokio::spawn(async move {
            let req = Request::post("/v1/queues/q/receive")
                .body(Body::from(r#"{"wait_ms": 20000}"#))
                .unwrap();
            let resp = router.oneshot(req).await.unwrap();
            axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap()
        })
    };
    tokio::task::yield_now().await;
    api.ok(
        Method::POST,
        "/v1/queues/q/messages",
        json!({"value": "wake"}),
    )
    .await;
    let body: Value = serde_json::from_slice(&waiter.await.unwrap()).unwrap();
    assert_eq!(body["messages"][0]["value"], "wake");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "the long poll was not woken"
    );
}

#[tokio::test]
async fn health_readiness_and_the_openapi_document() {
    let api = Api::new();
    assert_eq!(
        api.ok(Method::GET, "/healthz", Value::Null).await["status"],
        "ok"
    );
    assert_eq!(
        api.ok(Method::GET, "/readyz", Value::Null).await["status"],
        "ready"
    );
    let doc = api.ok(Method::GET, "/v1/openapi.json", Value::Null).await;
    assert_eq!(doc["openapi"], "3.1.0");
}
