//! Definitions over HTTP: create (`PUT`, idempotent), list, describe,
//! delete and purge topics, queues, subscriptions and exchanges; bindings;
//! redrive; the overview and message traces.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hermod_api::{
    BindingDef, BindingList, ExchangeConfig, ExchangeList, PurgeResponse, QueueConfig, QueueList,
    RedriveRequest, RedriveResponse, SubscriptionConfig, SubscriptionList, TopicConfig, TopicList,
    TraceResponse,
};

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::{ensure, info, AppState};

/// Where a subscription route points: a queue's subscription, or a
/// topic's named one. The same handlers serve both route families.
#[derive(Debug, Clone)]
pub enum Target {
    Queue(String),
    Subscription { topic: String, name: String },
}

impl Target {
    pub fn from_params(params: &HashMap<String, String>) -> Result<Target, ApiError> {
        match (
            params.get("queue"),
            params.get("topic"),
            params.get("subscription"),
        ) {
            (Some(q), _, _) => Ok(Target::Queue(q.clone())),
            (None, Some(t), Some(s)) => Ok(Target::Subscription {
                topic: t.clone(),
                name: s.clone(),
            }),
            _ => Err(ApiError::internal("route without a queue or subscription")),
        }
    }

    pub fn resolve(
        &self,
        broker: &hermod_core::Broker,
    ) -> Result<std::sync::Arc<hermod_core::subscription::Subscription>, ApiError> {
        Ok(match self {
            Target::Queue(q) => broker.queue(q)?,
            Target::Subscription { topic, name } => broker.subscription(topic, name)?,
        })
    }
}

/// A create's answer: 201 when made now, 200 when it already was.
fn created<T: serde::Serialize>(made: bool, body: T) -> Response {
    let status = if made {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

pub async fn put_topic(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(config): JsonBody<TopicConfig>,
) -> Result<Response, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| {
        let made = ensure::topic(b, &name, config)?;
        Ok(created(made, info::topic(b, &rates, &name)?))
    })
    .await
}

pub async fn get_topic(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| Ok(Json(info::topic(b, &rates, &name)?).into_response()))
        .await
}

pub async fn list_topics(State(st): State<AppState>) -> Result<Json<TopicList>, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| {
        Ok(Json(TopicList {
            topics: info::topics(b, &rates),
        }))
    })
    .await
}

pub async fn delete_topic(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.blocking(move |b| {
        if b.catalog()
            .topics
            .get(&name)
            .is_some_and(|d| d.queue.is_some())
        {
            return Err(ApiError::new(
                "not_found",
                format!(
                    "`{name}` is a queue, not a topic; delete it with DELETE /v1/queues/{name}"
                ),
            ));
        }
        b.delete_topic(&name)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn put_queue(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(config): JsonBody<QueueConfig>,
) -> Result<Response, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| {
        let made = ensure::queue(b, &name, config)?;
        Ok(created(made, info::queue(b, &rates, &name)?))
    })
    .await
}

pub async fn get_queue(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| Ok(Json(info::queue(b, &rates, &name)?).into_response()))
        .await
}

pub async fn list_queues(State(st): State<AppState>) -> Result<Json<QueueList>, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| {
        Ok(Json(QueueList {
            queues: info::queues(b, &rates),
        }))
    })
    .await
}

pub async fn delete_queue(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.blocking(move |b| {
        b.delete_queue(&name)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn put_subscription(
    State(st): State<AppState>,
    Path((topic, name)): Path<(String, String)>,
    JsonBody(config): JsonBody<SubscriptionConfig>,
) -> Result<Response, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| {
        let made = ensure::subscription(b, &topic, &name, config)?;
        Ok(created(made, info::subscription(b, &rates, &topic, &name)?))
    })
    .await
}

pub async fn get_subscription(
    State(st): State<AppState>,
    Path((topic, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| Ok(Json(info::subscription(b, &rates, &topic, &name)?).into_response()))
        .await
}

pub async fn list_subscriptions(
    State(st): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<SubscriptionList>, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| {
        Ok(Json(SubscriptionList {
            subscriptions: info::topic(b, &rates, &topic)?.subscriptions,
        }))
    })
    .await
}

pub async fn delete_subscription(
    State(st): State<AppState>,
    Path((topic, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    st.blocking(move |b| {
        b.delete_subscription(&topic, &name)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn purge(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<PurgeResponse>, ApiError> {
    let target = Target::from_params(&params)?;
    st.blocking(move |b| {
        let purged = target.resolve(b)?.purge()?;
        Ok(Json(PurgeResponse { purged }))
    })
    .await
}

pub async fn redrive(
    State(st): State<AppState>,
    Path(queue): Path<String>,
    JsonBody(req): JsonBody<RedriveRequest>,
) -> Result<Json<RedriveResponse>, ApiError> {
    let max = req.max.unwrap_or(st.limits.max_receive.saturating_mul(100));
    st.blocking(move |b| {
        let moved = b.redrive(&queue, max)? as u64;
        Ok(Json(RedriveResponse { moved }))
    })
    .await
}

pub async fn put_exchange(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(config): JsonBody<ExchangeConfig>,
) -> Result<Response, ApiError> {
    st.blocking(move |b| {
        let made = ensure::exchange(b, &name, config)?;
        Ok(created(made, info::exchange(b, &name)?))
    })
    .await
}

pub async fn get_exchange(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    st.blocking(move |b| Ok(Json(info::exchange(b, &name)?).into_response()))
        .await
}

pub async fn list_exchanges(State(st): State<AppState>) -> Result<Json<ExchangeList>, ApiError> {
    st.blocking(move |b| {
        Ok(Json(ExchangeList {
            exchanges: info::exchanges(b),
        }))
    })
    .await
}

pub async fn delete_exchange(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.blocking(move |b| {
        b.delete_exchange(&name)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingQuery {
    exchange: Option<String>,
}

pub async fn list_bindings(
    State(st): State<AppState>,
    Query(q): Query<BindingQuery>,
) -> Result<Json<BindingList>, ApiError> {
    let bindings = st
        .broker
        .catalog()
        .bindings
        .into_iter()
        .filter(|b| q.exchange.as_ref().is_none_or(|e| &b.exchange == e))
        .collect();
    Ok(Json(BindingList { bindings }))
}

pub async fn bind(
    State(st): State<AppState>,
    JsonBody(def): JsonBody<BindingDef>,
) -> Result<Response, ApiError> {
    st.blocking(move |b| {
        let made = ensure::binding(b, def.clone())?;
        Ok(created(made, def))
    })
    .await
}

pub async fn unbind(
    State(st): State<AppState>,
    JsonBody(def): JsonBody<BindingDef>,
) -> Result<StatusCode, ApiError> {
    st.blocking(move |b| {
        b.unbind(def)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn stats(State(st): State<AppState>) -> Result<Json<hermod_api::Overview>, ApiError> {
    let rates = st.rates.clone();
    st.blocking(move |b| Ok(Json(info::overview(b, &rates))))
        .await
}

pub async fn trace(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TraceResponse>, ApiError> {
    let events = st.broker.trace(&id).ok_or_else(|| {
        ApiError::new(
            "not_found",
            format!("no trace of message `{id}`: it does not exist, or it is older than the traces the server keeps (--trace-capacity)"),
        )
    })?;
    Ok(Json(TraceResponse { id, events }))
}
