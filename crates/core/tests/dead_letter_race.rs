//! A regression test: dead letters must reach the dead-letter queue even
//! while `tick` deletes what a queue has finished. `tick` used to read the
//! subscription's floor while a change had finished offsets in memory but
//! not yet moved and journaled them, and delete the segment holding the
//! dead letters before they were read: they were dropped, not moved.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use hermod_core::defs::QueueConfig;
use hermod_core::{Broker, BrokerConfig, Message};
use hermod_storage::clock::ManualClock;

#[test]
fn dead_letters_survive_a_concurrent_tick_deleting_the_consumed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let mut config = BrokerConfig::new(dir.path());
    config.clock = clock.clone();
    let broker = Arc::new(Broker::open(config).unwrap());
    broker.create_queue("dlq", QueueConfig::default()).unwrap();
    let queue = QueueConfig {
        max_deliveries: 1,
        dead_letter: Some("dlq".into()),
        visibility_timeout_ms: 1_000,
        ..QueueConfig::default()
    };
    broker.create_queue("q", queue).unwrap();
    // A queue's segments are 64 MiB: fill more than one, so the first is
    // sealed and may be deleted once everything in it is finished.
    let n = 80;
    for i in 0..n {
        let mut value = vec![b'x'; 1_000_000];
        value[0] = i as u8;
        let message = Message {
            value: Bytes::from(value),
            ..Message::default()
        };
        broker.publish("q", vec![message], None).unwrap();
    }
    let q = broker.queue("q").unwrap();
    let mut leased = 0;
    while leased < n {
        let got = q.receive(n - leased, None).unwrap();
        assert!(!got.is_empty());
        leased += got.len();
    }
    // Every lease expires with its one delivery used up: the next receive
    // dead-letters all of them, moving them one by one, while the ticker
    // deletes what the queue has finished.
    clock.advance(2_000);
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (broker, stop) = (broker.clone(), stop.clone());
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            while !stop.load(Ordering::Relaxed) {
                broker.tick().unwrap();
            }
        })
    };
    assert!(q.receive(1, None).unwrap().is_empty());
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    assert_eq!(q.stats().dead_lettered.load(Ordering::Relaxed), n as u64);
    assert_eq!(q.depth(), 0);
    let dlq = broker.queue("dlq").unwrap();
    assert_eq!(
        dlq.depth(),
        n as u64,
        "dead letters were dropped, not moved"
    );
}
