//! The route table: every method and path the API serves, in one list
//! that both builds the router and is compared with the OpenAPI document
//! in the tests, so the two cannot drift apart.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};

use crate::error::{method_not_allowed, no_route, ApiError};
use crate::{consume, events, metrics, publish, resources as r, AppState};

/// The OpenAPI document served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

const TOPIC: &str = "/v1/topics/{topic}";
const SUB: &str = "/v1/topics/{topic}/subscriptions/{subscription}";
const QUEUE: &str = "/v1/queues/{queue}";

/// Every route: method, path and handler.
fn table() -> Vec<(Method, String, MethodRouter<AppState>)> {
    let mut t: Vec<(Method, String, MethodRouter<AppState>)> = vec![
        (Method::GET, "/healthz".into(), get(healthz)),
        (Method::GET, "/readyz".into(), get(readyz)),
        (Method::GET, "/metrics".into(), get(metrics::metrics)),
        (Method::GET, "/v1/openapi.json".into(), get(openapi)),
        (Method::GET, "/v1/stats".into(), get(r::stats)),
        (Method::GET, "/v1/topics".into(), get(r::list_topics)),
        (Method::PUT, TOPIC.into(), put(r::put_topic)),
        (Method::GET, TOPIC.into(), get(r::get_topic)),
        (Method::DELETE, TOPIC.into(), delete(r::delete_topic)),
        (
            Method::POST,
            format!("{TOPIC}/messages"),
            post(publish::to_topic),
        ),
        (
            Method::GET,
            format!("{TOPIC}/partitions/{{partition}}/messages"),
            get(publish::read_partition),
        ),
        (
            Method::GET,
            format!("{TOPIC}/subscriptions"),
            get(r::list_subscriptions),
        ),
        (Method::PUT, SUB.into(), put(r::put_subscription)),
        (Method::GET, SUB.into(), get(r::get_subscription)),
        (Method::DELETE, SUB.into(), delete(r::delete_subscription)),
        (Method::POST, format!("{SUB}/poll"), post(consume::poll)),
        (Method::GET, format!("{SUB}/offsets"), get(consume::offsets)),
        (
            Method::POST,
            format!("{SUB}/offsets"),
            post(consume::commit),
        ),
        (Method::POST, format!("{SUB}/seek"), post(consume::seek)),
        (Method::GET, "/v1/queues".into(), get(r::list_queues)),
        (Method::PUT, QUEUE.into(), put(r::put_queue)),
        (Method::GET, QUEUE.into(), get(r::get_queue)),
        (Method::DELETE, QUEUE.into(), delete(r::delete_queue)),
        (
            Method::POST,
            format!("{QUEUE}/messages"),
            post(publish::to_queue),
        ),
        (Method::POST, format!("{QUEUE}/redrive"), post(r::redrive)),
        (Method::GET, "/v1/exchanges".into(), get(r::list_exchanges)),
        (
            Method::PUT,
            "/v1/exchanges/{exchange}".into(),
            put(r::put_exchange),
        ),
        (
            Method::GET,
            "/v1/exchanges/{exchange}".into(),
            get(r::get_exchange),
        ),
        (
            Method::DELETE,
            "/v1/exchanges/{exchange}".into(),
            delete(r::delete_exchange),
        ),
        (
            Method::POST,
            "/v1/exchanges/{exchange}/messages".into(),
            post(publish::to_exchange),
        ),
        (Method::GET, "/v1/bindings".into(), get(r::list_bindings)),
        (Method::POST, "/v1/bindings".into(), post(r::bind)),
        (Method::DELETE, "/v1/bindings".into(), delete(r::unbind)),
        (Method::GET, "/v1/messages/{id}/trace".into(), get(r::trace)),
    ];
    // Consuming is the same for a queue and a topic's subscription.
    for base in [SUB, QUEUE] {
        t.extend([
            (Method::POST, format!("{base}/purge"), post(r::purge)),
            (
                Method::POST,
                format!("{base}/receive"),
                post(consume::receive),
            ),
            (Method::POST, format!("{base}/ack"), post(consume::ack)),
            (Method::POST, format!("{base}/nack"), post(consume::nack)),
            (
                Method::POST,
                format!("{base}/extend"),
                post(consume::extend),
            ),
            (Method::GET, format!("{base}/events"), get(events::events)),
        ]);
    }
    t
}

/// The (method, path) pairs the router serves.
pub fn routes() -> Vec<(Method, String)> {
    table().into_iter().map(|(m, p, _)| (m, p)).collect()
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let mut by_path: BTreeMap<String, MethodRouter<AppState>> = BTreeMap::new();
    for (_, path, handler) in table() {
        let merged = match by_path.remove(&path) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        by_path.insert(path, merged);
    }
    let mut router = Router::new();
    for (path, handler) in by_path {
        router = router.route(&path, handler);
    }
    router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    if st.shutting_down() {
        return ApiError::new("unavailable", "the server is shutting down").into_response();
    }
    Json(serde_json::json!({"status": "ready"})).into_response()
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The (method, path) pairs the OpenAPI document describes.
    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routes_served() {
        let served: BTreeSet<(String, String)> = routes()
            .into_iter()
            .map(|(m, p)| (m.to_string(), p))
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "served but not in openapi.json: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "in openapi.json but not served: {unserved:?}"
        );
    }

    #[test]
    fn no_route_is_listed_twice() {
        let all = routes();
        let unique: BTreeSet<_> = all
            .iter()
            .map(|(m, p)| (m.to_string(), p.clone()))
            .collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn the_documented_error_codes_are_the_ones_answered() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let documented: BTreeSet<&str> = doc["components"]["schemas"]["ErrorDetail"]["properties"]
            ["code"]["enum"]
            .as_array()
            .expect("ErrorDetail.code lists the codes")
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let answered: BTreeSet<&str> = hermod_api::codes::STATUS.iter().map(|(c, _)| *c).collect();
        assert_eq!(documented, answered);
    }
}
