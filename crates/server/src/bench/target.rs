//! What `hermod bench` drives: the broker in this process (`--embedded`)
//! or a server over the HTTP API (`--server URL`), behind one async face so
//! the scenarios are written once. Embedded calls run on the blocking pool,
//! as the HTTP front does.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hermod_api::{
    AckRequest, MessageIn, PollRequest, PublishRequest, QueueConfig, ReceiveRequest,
    SubscriptionConfig, TopicConfig,
};
use hermod_client::{Client, Source};
use hermod_core::{Broker, Message, Receipt};

/// Where messages come from: a queue, or a topic's subscription.
#[derive(Debug, Clone)]
pub struct From {
    pub topic: String,
    pub subscription: String,
    pub queue: bool,
}

impl From {
    fn source(&self) -> Source<'_> {
        if self.queue {
            Source::Queue(&self.topic)
        } else {
            Source::Subscription {
                topic: &self.topic,
                subscription: &self.subscription,
            }
        }
    }
}

#[derive(Debug, Clone)]
pub enum Target {
    Embedded(Arc<Broker>),
    Server(Client),
}

impl Target {
    pub async fn create_topic(&self, name: &str, config: TopicConfig) -> anyhow::Result<()> {
        match self {
            Target::Embedded(b) => {
                blocking(b, {
                    let name = name.to_owned();
                    move |b| b.create_topic(&name, config).map(drop)
                })
                .await
            }
            Target::Server(c) => c
                .create_topic(name, &config)
                .await
                .map(drop)
                .map_err(Into::into),
        }
    }

    pub async fn create_queue(&self, name: &str, config: QueueConfig) -> anyhow::Result<()> {
        match self {
            Target::Embedded(b) => {
                blocking(b, {
                    let name = name.to_owned();
                    move |b| b.create_queue(&name, config).map(drop)
                })
                .await
            }
            Target::Server(c) => c
                .create_queue(name, &config)
                .await
                .map(drop)
                .map_err(Into::into),
        }
    }

    pub async fn create_subscription(
        &self,
        topic: &str,
        name: &str,
        config: SubscriptionConfig,
    ) -> anyhow::Result<()> {
        match self {
            Target::Embedded(b) => {
                blocking(b, {
                    let (topic, name) = (topic.to_owned(), name.to_owned());
                    move |b| b.create_subscription(&topic, &name, config).map(drop)
                })
                .await
            }
            Target::Server(c) => c
                .create_subscription(topic, name, &config)
                .await
                .map(drop)
                .map_err(Into::into),
        }
    }

    /// Publishes a batch; returns when it is acknowledged.
    pub async fn publish(&self, topic: &str, values: Vec<Bytes>) -> anyhow::Result<()> {
        match self {
            Target::Embedded(b) => {
                blocking(b, {
                    let topic = topic.to_owned();
                    move |b| {
                        let messages = values
                            .into_iter()
                            .map(|value| Message {
                                value,
                                ..Message::default()
                            })
                            .collect();
                        b.publish(&topic, messages, None).map(drop)
                    }
                })
                .await
            }
            Target::Server(c) => {
                let messages = values
                    .iter()
                    .map(|v| MessageIn::text(String::from_utf8_lossy(v)))
                    .collect();
                let request = PublishRequest {
                    messages,
                    partition: None,
                };
                c.publish_topic(topic, &request).await?;
                Ok(())
            }
        }
    }

    /// Receives up to `max` (waiting up to `wait` for the first): values
    /// and receipts.
    pub async fn receive(
        &self,
        from: &From,
        max: usize,
        wait: Duration,
    ) -> anyhow::Result<Vec<(Bytes, String)>> {
        match self {
            Target::Embedded(b) => {
                blocking(b, {
                    let from = from.clone();
                    move |b| {
                        let sub = b.subscription(&from.topic, &from.subscription)?;
                        let got = b.receive_wait(&sub, max, None, wait)?;
                        Ok(got
                            .into_iter()
                            .map(|r| (r.message.value, r.receipt.to_string()))
                            .collect())
                    }
                })
                .await
            }
            Target::Server(c) => {
                let request = ReceiveRequest {
                    max: Some(max),
                    visibility_ms: None,
                    wait_ms: Some(wait.as_millis() as u64),
                };
                let got = c.receive(from.source(), &request).await?;
                Ok(got
                    .messages
                    .into_iter()
                    .map(|m| (Bytes::from(m.value_bytes()), m.receipt.unwrap_or_default()))
                    .collect())
            }
        }
    }

    pub async fn ack(&self, from: &From, receipts: Vec<String>) -> anyhow::Result<()> {
        match self {
            Target::Embedded(b) => {
                blocking(b, {
                    let from = from.clone();
                    move |b| {
                        let sub = b.subscription(&from.topic, &from.subscription)?;
                        let receipts: Vec<Receipt> = receipts
                            .iter()
                            .map(|r| r.parse())
                            .collect::<Result<_, _>>()?;
                        for r in sub.ack(&receipts)? {
                            r?;
                        }
                        Ok(())
                    }
                })
                .await
            }
            Target::Server(c) => {
                let results = c.ack(from.source(), &AckRequest { receipts }).await?;
                if let Some(bad) = results.results.iter().find(|r| !r.ok) {
                    anyhow::bail!("ack refused: {:?}", bad.error);
                }
                Ok(())
            }
        }
    }

    /// Reads up to `max` records from a `stream` subscription's position.
    pub async fn poll(&self, from: &From, max: usize) -> anyhow::Result<Vec<Bytes>> {
        match self {
            Target::Embedded(b) => {
                blocking(b, {
                    let from = from.clone();
                    move |b| {
                        let sub = b.subscription(&from.topic, &from.subscription)?;
                        Ok(sub
                            .poll(max, 4 << 20)?
                            .into_iter()
                            .map(|s| s.value)
                            .collect())
                    }
                })
                .await
            }
            Target::Server(c) => {
                let request = PollRequest {
                    max: Some(max),
                    max_bytes: Some(4 << 20),
                    wait_ms: Some(1000),
                };
                let got = c.poll(&from.topic, &from.subscription, &request).await?;
                Ok(got
                    .messages
                    .into_iter()
                    .map(|m| Bytes::from(m.value_bytes()))
                    .collect())
            }
        }
    }

    pub async fn delete_topic(&self, name: &str, queue: bool) -> anyhow::Result<()> {
        match self {
            Target::Embedded(b) => {
                blocking(b, {
                    let name = name.to_owned();
                    move |b| {
                        if queue {
                            b.delete_queue(&name)
                        } else {
                            b.delete_topic(&name)
                        }
                    }
                })
                .await
            }
            Target::Server(c) if queue => c.delete_queue(name).await.map_err(Into::into),
            Target::Server(c) => c.delete_topic(name).await.map_err(Into::into),
        }
    }
}

async fn blocking<T, F>(broker: &Arc<Broker>, f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Broker) -> hermod_core::Result<T> + Send + 'static,
{
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || f(&broker))
        .await
        .context("a benchmark task failed")?
        .map_err(Into::into)
}
