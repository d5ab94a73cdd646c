//! Definitions: create, list, describe and delete topics, queues,
//! subscriptions and exchanges; bind and unbind; purge and redrive. Create
//! is idempotent on the server (same settings: 200, new: 201), so both
//! answers are success here and return the resource's info.

use hermod_api::{
    BindingDef, BindingList, ExchangeConfig, ExchangeInfo, ExchangeList, PurgeResponse,
    QueueConfig, QueueInfo, QueueList, RedriveRequest, RedriveResponse, SubscriptionConfig,
    SubscriptionInfo, SubscriptionList, TopicConfig, TopicInfo, TopicList,
};
use reqwest::Method;
use serde::Serialize;

use crate::{Client, Result, Source};

impl Client {
    pub async fn list_topics(&self) -> Result<TopicList> {
        self.call(Method::GET, &["v1", "topics"]).decode().await
    }

    pub async fn create_topic(&self, topic: &str, config: &TopicConfig) -> Result<TopicInfo> {
        let segments = ["v1", "topics", topic];
        self.call(Method::PUT, &segments)
            .json(config)
            .decode()
            .await
    }

    pub async fn topic(&self, topic: &str) -> Result<TopicInfo> {
        self.call(Method::GET, &["v1", "topics", topic])
            .decode()
            .await
    }

    pub async fn delete_topic(&self, topic: &str) -> Result<()> {
        self.call(Method::DELETE, &["v1", "topics", topic])
            .empty()
            .await
    }

    pub async fn list_queues(&self) -> Result<QueueList> {
        self.call(Method::GET, &["v1", "queues"]).decode().await
    }

    pub async fn create_queue(&self, queue: &str, config: &QueueConfig) -> Result<QueueInfo> {
        let segments = ["v1", "queues", queue];
        self.call(Method::PUT, &segments)
            .json(config)
            .decode()
            .await
    }

    pub async fn queue(&self, queue: &str) -> Result<QueueInfo> {
        self.call(Method::GET, &["v1", "queues", queue])
            .decode()
            .await
    }

    pub async fn delete_queue(&self, queue: &str) -> Result<()> {
        self.call(Method::DELETE, &["v1", "queues", queue])
            .empty()
            .await
    }

    /// Moves dead letters held in `queue` back to where they came from.
    pub async fn redrive(&self, queue: &str, request: &RedriveRequest) -> Result<RedriveResponse> {
        let segments = ["v1", "queues", queue, "redrive"];
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    pub async fn list_subscriptions(&self, topic: &str) -> Result<SubscriptionList> {
        let segments = ["v1", "topics", topic, "subscriptions"];
        self.call(Method::GET, &segments).decode().await
    }

    pub async fn create_subscription(
        &self,
        topic: &str,
        subscription: &str,
        config: &SubscriptionConfig,
    ) -> Result<SubscriptionInfo> {
        let segments = ["v1", "topics", topic, "subscriptions", subscription];
        self.call(Method::PUT, &segments)
            .json(config)
            .decode()
            .await
    }

    pub async fn subscription(&self, topic: &str, subscription: &str) -> Result<SubscriptionInfo> {
        let segments = ["v1", "topics", topic, "subscriptions", subscription];
        self.call(Method::GET, &segments).decode().await
    }

    pub async fn delete_subscription(&self, topic: &str, subscription: &str) -> Result<()> {
        let segments = ["v1", "topics", topic, "subscriptions", subscription];
        self.call(Method::DELETE, &segments).empty().await
    }

    /// Drops every message waiting in a queue or subscription.
    pub async fn purge(&self, source: Source<'_>) -> Result<PurgeResponse> {
        let segments = source.action("purge");
        self.call(Method::POST, &segments).decode().await
    }

    pub async fn list_exchanges(&self) -> Result<ExchangeList> {
        self.call(Method::GET, &["v1", "exchanges"]).decode().await
    }

    pub async fn create_exchange(
        &self,
        exchange: &str,
        config: &ExchangeConfig,
    ) -> Result<ExchangeInfo> {
        let segments = ["v1", "exchanges", exchange];
        self.call(Method::PUT, &segments)
            .json(config)
            .decode()
            .await
    }

    pub async fn exchange(&self, exchange: &str) -> Result<ExchangeInfo> {
        let segments = ["v1", "exchanges", exchange];
        self.call(Method::GET, &segments).decode().await
    }

    pub async fn delete_exchange(&self, exchange: &str) -> Result<()> {
        let segments = ["v1", "exchanges", exchange];
        self.call(Method::DELETE, &segments).empty().await
    }

    /// All bindings, or those of one exchange.
    pub async fn list_bindings(&self, exchange: Option<&str>) -> Result<BindingList> {
        #[derive(Serialize)]
        struct Query<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            exchange: Option<&'a str>,
        }
        let call = self.call(Method::GET, &["v1", "bindings"]);
        call.query(&Query { exchange }).decode().await
    }

    /// Creates a binding (or finds the same one); returns it.
    pub async fn bind(&self, binding: &BindingDef) -> Result<BindingDef> {
        let call = self.call(Method::POST, &["v1", "bindings"]);
        call.json(binding).decode().await
    }

    pub async fn unbind(&self, binding: &BindingDef) -> Result<()> {
        let call = self.call(Method::DELETE, &["v1", "bindings"]);
        call.json(binding).empty().await
    }
}
