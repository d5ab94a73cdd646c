//! Per-second rates of publishes, deliveries and acks, from the core's
//! counters sampled once a second and kept for a short window.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::Instant;

use hermod_core::Broker;

/// Samples kept per topic or subscription: rates average over this many
/// seconds.
const WINDOW: usize = 10;

/// Samples of one topic or subscription: time, and the published,
/// delivered and acked counters.
type Series = VecDeque<(Instant, [u64; 3])>;

#[derive(Debug, Default)]
pub struct Rates {
    samples: Mutex<HashMap<String, Series>>,
}

impl Rates {
    /// Reads every topic's and subscription's counters.
    pub fn sample(&self, broker: &Broker) {
        let now = Instant::now();
        let catalog = broker.catalog();
        let mut fresh = HashMap::new();
        for name in catalog.topics.keys() {
            if let Ok(t) = broker.topic(name) {
                fresh.insert(topic_key(name), [t.stats().published.load(Relaxed), 0, 0]);
            }
        }
        for (topic, name) in catalog.subscriptions.keys() {
            if let Ok(s) = broker.subscription(topic, name) {
                let st = s.stats();
                let counts = [0, st.delivered.load(Relaxed), st.acked.load(Relaxed)];
                fresh.insert(subscription_key(topic, name), counts);
            }
        }
        let mut samples = self.samples.lock().unwrap();
        samples.retain(|k, _| fresh.contains_key(k));
        for (key, counts) in fresh {
            let series = samples.entry(key).or_default();
            series.push_back((now, counts));
            while series.len() > WINDOW {
                series.pop_front();
            }
        }
    }

    pub fn topic(&self, name: &str) -> hermod_api::Rates {
        self.rates(&topic_key(name))
    }

    pub fn subscription(&self, topic: &str, name: &str) -> hermod_api::Rates {
        self.rates(&subscription_key(topic, name))
    }

    fn rates(&self, key: &str) -> hermod_api::Rates {
        let samples = self.samples.lock().unwrap();
        let Some(series) = samples.get(key) else {
            return hermod_api::Rates::default();
        };
        let (Some((t0, first)), Some((t1, last))) = (series.front(), series.back()) else {
            return hermod_api::Rates::default();
        };
        let seconds = t1.duration_since(*t0).as_secs_f64();
        if seconds <= 0.0 {
            return hermod_api::Rates::default();
        }
        let rate = |i: usize| last[i].saturating_sub(first[i]) as f64 / seconds;
        hermod_api::Rates {
            published_per_s: rate(0),
            delivered_per_s: rate(1),
            acked_per_s: rate(2),
        }
    }
}

fn topic_key(name: &str) -> String {
    format!("t/{name}")
}

fn subscription_key(topic: &str, name: &str) -> String {
    format!("s/{topic}/{name}")
}
