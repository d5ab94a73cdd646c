//! Messages: publish to a topic, queue or exchange; read a partition;
//! receive, ack, nack and extend leases (queues and `shared`/`ordered`
//! subscriptions); poll, commit and seek (`stream` subscriptions); and a
//! message's trace.

use hermod_api::{
    AckRequest, CommitRequest, ExchangePublishResponse, ExtendRequest, Messages, NackRequest,
    Offsets, PartitionRead, PollRequest, PublishRequest, PublishResponse, ReceiptResults,
    ReceiveRequest, SeekRequest, TraceResponse,
};
use reqwest::Method;
use serde::Serialize;

use crate::{Client, Result, Source};

/// Where and how much to read from one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReadOptions {
    /// First offset to read (the log's start if absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Most messages to return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
    /// Most value bytes to return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
}

impl Client {
    pub async fn publish_topic(
        &self,
        topic: &str,
        request: &PublishRequest,
    ) -> Result<PublishResponse> {
        let segments = ["v1", "topics", topic, "messages"];
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    pub async fn publish_queue(
        &self,
        queue: &str,
        request: &PublishRequest,
    ) -> Result<PublishResponse> {
        let segments = ["v1", "queues", queue, "messages"];
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    /// Publishes through an exchange; `request.partition` must be `None`.
    pub async fn publish_exchange(
        &self,
        exchange: &str,
        request: &PublishRequest,
    ) -> Result<ExchangePublishResponse> {
        let segments = ["v1", "exchanges", exchange, "messages"];
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    /// Reads a partition of a topic from an offset, without a subscription.
    pub async fn read_partition(
        &self,
        topic: &str,
        partition: u32,
        options: &ReadOptions,
    ) -> Result<PartitionRead> {
        let partition = partition.to_string();
        let segments = ["v1", "topics", topic, "partitions", &partition, "messages"];
        self.call(Method::GET, &segments)
            .query(options)
            .decode()
            .await
    }

    /// Leases messages from a queue or a `shared`/`ordered` subscription.
    pub async fn receive(&self, source: Source<'_>, request: &ReceiveRequest) -> Result<Messages> {
        let segments = source.action("receive");
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    pub async fn ack(&self, source: Source<'_>, request: &AckRequest) -> Result<ReceiptResults> {
        let segments = source.action("ack");
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    pub async fn nack(&self, source: Source<'_>, request: &NackRequest) -> Result<ReceiptResults> {
        let segments = source.action("nack");
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    pub async fn extend(
        &self,
        source: Source<'_>,
        request: &ExtendRequest,
    ) -> Result<ReceiptResults> {
        let segments = source.action("extend");
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    /// Reads a `stream` subscription from its position, advancing it.
    pub async fn poll(
        &self,
        topic: &str,
        subscription: &str,
        request: &PollRequest,
    ) -> Result<Messages> {
        let segments = stream_action(topic, subscription, "poll");
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    /// A `stream` subscription's positions, committed offsets and lag.
    pub async fn offsets(&self, topic: &str, subscription: &str) -> Result<Offsets> {
        let segments = stream_action(topic, subscription, "offsets");
        self.call(Method::GET, &segments).decode().await
    }

    /// Commits offsets of a `stream` subscription (its positions when
    /// `request.offsets` is `None`).
    pub async fn commit(
        &self,
        topic: &str,
        subscription: &str,
        request: &CommitRequest,
    ) -> Result<Offsets> {
        let segments = stream_action(topic, subscription, "offsets");
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    /// Moves a `stream` subscription's read position in one partition.
    pub async fn seek(
        &self,
        topic: &str,
        subscription: &str,
        request: &SeekRequest,
    ) -> Result<Offsets> {
        let segments = stream_action(topic, subscription, "seek");
        self.call(Method::POST, &segments)
            .json(request)
            .decode()
            .await
    }

    /// Where a message went, while the server still keeps its trace.
    pub async fn trace(&self, message_id: &str) -> Result<TraceResponse> {
        let segments = ["v1", "messages", message_id, "trace"];
        self.call(Method::GET, &segments).decode().await
    }
}

fn stream_action<'a>(topic: &'a str, subscription: &'a str, action: &'static str) -> Vec<&'a str> {
    let source = Source::Subscription {
        topic,
        subscription,
    };
    source.action(action)
}
