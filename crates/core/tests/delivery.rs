//! Unit tests of the shared/ordered delivery state machine.

use hermod_core::delivery::{
    Config, DeadLetter, DeliveryError, Fed, LeaseId, Mode, NackOutcome, Partition, Snapshot,
};

fn config(mode: Mode, max_deliveries: u32) -> Config {
    Config {
        mode,
        max_deliveries,
        max_in_flight: 100,
        max_buffered: 100,
    }
}

/// Feeds `keys.len()` records (key per record, due at 0) starting at the cursor.
fn feed_keys(p: &mut Partition, keys: &[Option<u64>]) {
    for &key in keys {
        let offset = p.next_to_feed().unwrap();
        assert_eq!(
            p.feed(Fed {
                offset,
                key,
                not_before_ms: 0
            }),
            None
        );
    }
}

fn offsets(ds: &[hermod_core::delivery::Delivery]) -> Vec<u64> {
    ds.iter().map(|d| d.offset).collect()
}

#[test]
fn feeds_receives_and_acks_in_order() {
    let mut p = Partition::new(config(Mode::Shared, 0), 10);
    assert_eq!(p.next_to_feed(), Some(10));
    feed_keys(&mut p, &[None, None, None]);
    let ds = p.receive(2, 1000, 0);
    assert_eq!(offsets(&ds), vec![10, 11]);
    assert!(ds.iter().all(|d| d.delivery_count == 1));
    assert_eq!(p.in_flight(), 2);
    assert_eq!(p.ack(ds[1].lease), Ok(11));
    assert_eq!(p.ack_floor(), 10, "10 still unacked");
    assert_eq!(p.backlog_hint(13), 2);
    assert_eq!(p.ack(ds[0].lease), Ok(10));
    assert_eq!(p.ack_floor(), 12);
    assert_eq!(p.acked_ranges(), 0);
    assert_eq!(p.backlog_hint(13), 1);
}

#[test]
fn double_ack_and_unknown_lease_are_rejected() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    feed_keys(&mut p, &[None]);
    let d = p.receive(1, 1000, 0)[0];
    assert_eq!(p.ack(d.lease), Ok(0));
    assert_eq!(p.ack(d.lease), Err(DeliveryError::UnknownLease));
    assert_eq!(p.nack(d.lease, 0, 0), Err(DeliveryError::UnknownLease));
    assert_eq!(p.extend(d.lease, 10, 0), Err(DeliveryError::UnknownLease));
    assert_eq!(
        p.ack(LeaseId::from_raw(999)),
        Err(DeliveryError::UnknownLease)
    );
}

#[test]
fn stale_lease_after_redelivery_is_rejected() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    feed_keys(&mut p, &[None]);
    let first = p.receive(1, 100, 0)[0];
    assert!(p.expire(100).is_empty());
    let second = p.receive(1, 100, 100)[0];
    assert_eq!(second.offset, 0);
    assert_eq!(second.delivery_count, 2);
    assert_ne!(first.lease, second.lease);
    assert_eq!(p.ack(first.lease), Err(DeliveryError::UnknownLease));
    assert_eq!(p.ack(second.lease), Ok(0));
}

#[test]
fn extend_keeps_lease_and_fails_after_expiry() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    feed_keys(&mut p, &[None]);
    let d = p.receive(1, 100, 0)[0];
    assert_eq!(p.extend(d.lease, 100, 50), Ok(()));
    assert!(p.expire(120).is_empty());
    assert!(p.receive(1, 100, 120).is_empty(), "still leased until 150");
    assert_eq!(p.next_deadline(), Some(150));
    assert_eq!(
        p.extend(d.lease, 100, 150),
        Err(DeliveryError::LeaseExpired)
    );
    p.expire(150);
    assert_eq!(
        p.extend(d.lease, 100, 150),
        Err(DeliveryError::UnknownLease)
    );
    assert_eq!(p.receive(1, 100, 150)[0].delivery_count, 2);
}

#[test]
fn nack_delay_is_honoured() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    feed_keys(&mut p, &[None]);
    let d = p.receive(1, 1000, 0)[0];
    assert_eq!(p.nack(d.lease, 500, 10), Ok(NackOutcome::Requeued));
    assert_eq!(p.in_flight(), 0);
    assert!(p.receive(1, 1000, 509).is_empty());
    assert_eq!(p.next_deadline(), Some(510));
    let again = p.receive(1, 1000, 510);
    assert_eq!(offsets(&again), vec![0]);
    assert_eq!(again[0].delivery_count, 2);
}

#[test]
fn not_before_is_honoured() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    p.feed(Fed {
        offset: 0,
        key: None,
        not_before_ms: 1000,
    });
    p.feed(Fed {
        offset: 1,
        key: None,
        not_before_ms: 0,
    });
    assert_eq!(offsets(&p.receive(10, 100, 0)), vec![1]);
    assert_eq!(p.next_deadline(), Some(100), "lease of 1 expires first");
    assert!(p.receive(10, 100, 999).is_empty());
    assert_eq!(offsets(&p.receive(10, 100, 1000)), vec![0]);
}

#[test]
fn redeliveries_come_before_new_records() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    feed_keys(&mut p, &[None, None, None]);
    let ds = p.receive(1, 1000, 0);
    p.nack(ds[0].lease, 0, 0).unwrap();
    // 0 is a redelivery, then 1 and 2 are new.
    assert_eq!(offsets(&p.receive(10, 1000, 0)), vec![0, 1, 2]);
}

#[test]
fn max_in_flight_and_max_buffered_are_respected() {
    let cfg = Config {
        mode: Mode::Shared,
        max_deliveries: 0,
        max_in_flight: 2,
        max_buffered: 3,
    };
    let mut p = Partition::new(cfg, 0);
    feed_keys(&mut p, &[None, None, None]);
    assert_eq!(p.next_to_feed(), None, "3 unleased records buffered");
    let ds = p.receive(10, 1000, 0);
    assert_eq!(offsets(&ds), vec![0, 1]);
    assert!(p.receive(10, 1000, 0).is_empty(), "in-flight cap reached");
    assert_eq!(p.next_to_feed(), Some(3));
    p.ack(ds[0].lease).unwrap();
    assert_eq!(offsets(&p.receive(10, 1000, 0)), vec![2]);
}

#[test]
fn dead_letters_exactly_after_max_deliveries_on_nack() {
    let mut p = Partition::new(config(Mode::Shared, 3), 0);
    feed_keys(&mut p, &[None, None]);
    for n in 1..=2 {
        let d = p.receive(1, 1000, 0)[0];
        assert_eq!((d.offset, d.delivery_count), (0, n));
        assert_eq!(p.nack(d.lease, 0, 0), Ok(NackOutcome::Requeued));
    }
    let d = p.receive(1, 1000, 0)[0];
    assert_eq!(d.delivery_count, 3);
    let dead = DeadLetter {
        offset: 0,
        deliveries: 3,
    };
    assert_eq!(p.nack(d.lease, 0, 0), Ok(NackOutcome::DeadLettered(dead)));
    assert_eq!(p.ack_floor(), 1, "dead-lettered counts as done");
    assert_eq!(offsets(&p.receive(10, 1000, 0)), vec![1]);
}

#[test]
fn dead_letters_exactly_after_max_deliveries_on_expiry() {
    let mut p = Partition::new(config(Mode::Shared, 2), 0);
    feed_keys(&mut p, &[None]);
    p.receive(1, 10, 0);
    assert!(p.expire(10).is_empty());
    assert_eq!(p.receive(1, 10, 10)[0].delivery_count, 2);
    assert!(p.expire(19).is_empty());
    assert_eq!(
        p.expire(20),
        vec![DeadLetter {
            offset: 0,
            deliveries: 2
        }]
    );
    assert_eq!(p.ack_floor(), 1);
    assert!(p.receive(1, 10, 20).is_empty());
    assert_eq!(p.next_deadline(), None);
}

#[test]
fn ordered_blocks_a_key_and_releases_in_order() {
    let mut p = Partition::new(config(Mode::Ordered, 0), 0);
    feed_keys(&mut p, &[Some(1), Some(1), Some(2), Some(1), None, Some(2)]);
    let ds = p.receive(10, 1000, 0);
    assert_eq!(offsets(&ds), vec![0, 2, 4], "one per key; unkeyed is free");
    assert!(p.receive(10, 1000, 0).is_empty());
    // Nack of 0 keeps key 1 on offset 0.
    p.nack(ds[0].lease, 0, 0).unwrap();
    let again = p.receive(10, 1000, 0);
    assert_eq!(offsets(&again), vec![0]);
    p.ack(again[0].lease).unwrap();
    assert_eq!(offsets(&p.receive(10, 1000, 0)), vec![1]);
    p.ack(ds[1].lease).unwrap();
    assert_eq!(offsets(&p.receive(10, 1000, 0)), vec![5]);
}

#[test]
fn ordered_delayed_head_holds_back_its_key_only() {
    let mut p = Partition::new(config(Mode::Ordered, 0), 0);
    p.feed(Fed {
        offset: 0,
        key: Some(7),
        not_before_ms: 100,
    });
    p.feed(Fed {
        offset: 1,
        key: Some(7),
        not_before_ms: 0,
    });
    p.feed(Fed {
        offset: 2,
        key: Some(8),
        not_before_ms: 0,
    });
    assert_eq!(offsets(&p.receive(10, 1000, 0)), vec![2]);
    assert_eq!(p.next_deadline(), Some(100));
    assert_eq!(offsets(&p.receive(10, 1000, 100)), vec![0]);
}

#[test]
fn shared_mode_ignores_keys() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    feed_keys(&mut p, &[Some(1), Some(1)]);
    assert_eq!(offsets(&p.receive(10, 1000, 0)), vec![0, 1]);
}

#[test]
fn acked_gaps_are_ranges_and_floor_advances() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    feed_keys(&mut p, &[None; 6]);
    let ds = p.receive(10, 1000, 0);
    for i in [1, 2, 4] {
        p.ack(ds[i].lease).unwrap();
    }
    assert_eq!(p.acked_ranges(), 2);
    assert_eq!(p.backlog_hint(6), 3);
    p.ack(ds[3].lease).unwrap();
    assert_eq!(p.acked_ranges(), 1, "1..5 merged");
    p.ack(ds[0].lease).unwrap();
    assert_eq!(p.ack_floor(), 5);
    assert_eq!(p.acked_ranges(), 0);
}

#[test]
fn snapshot_restore_keeps_counts_and_drops_leases() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    feed_keys(&mut p, &[None, None, None, None]);
    let ds = p.receive(3, 1000, 0);
    p.ack(ds[1].lease).unwrap();
    p.nack(ds[2].lease, 0, 0).unwrap();
    let snap = p.snapshot();
    assert_eq!(
        snap,
        Snapshot {
            ack_floor: 0,
            acked: vec![(1, 2)],
            deliveries: vec![(0, 1), (2, 1)],
            next_lease: 3
        }
    );
    let mut q = Partition::restore(config(Mode::Shared, 0), snap);
    assert_eq!(q.in_flight(), 0);
    assert_eq!(q.ack(ds[0].lease), Err(DeliveryError::UnknownLease));
    assert_eq!(q.next_to_feed(), Some(0));
    q.feed(Fed {
        offset: 0,
        key: None,
        not_before_ms: 0,
    });
    assert_eq!(q.next_to_feed(), Some(2), "acked 1 is skipped");
    q.feed(Fed {
        offset: 2,
        key: None,
        not_before_ms: 0,
    });
    q.feed(Fed {
        offset: 3,
        key: None,
        not_before_ms: 0,
    });
    let again = q.receive(10, 1000, 0);
    let got: Vec<(u64, u32)> = again.iter().map(|d| (d.offset, d.delivery_count)).collect();
    assert_eq!(got, vec![(0, 2), (2, 2), (3, 1)]);
    assert!(
        again.iter().all(|d| d.lease.raw() >= 3),
        "new leases never collide"
    );
}

#[test]
fn restore_dead_letters_in_flight_record_with_spent_budget() {
    let mut p = Partition::new(config(Mode::Shared, 1), 0);
    feed_keys(&mut p, &[None, None]);
    p.receive(1, 1000, 0);
    let mut q = Partition::restore(config(Mode::Shared, 1), p.snapshot());
    let dead = q.feed(Fed {
        offset: 0,
        key: None,
        not_before_ms: 0,
    });
    assert_eq!(
        dead,
        Some(DeadLetter {
            offset: 0,
            deliveries: 1
        })
    );
    assert_eq!(q.ack_floor(), 1);
    assert_eq!(
        q.feed(Fed {
            offset: 1,
            key: None,
            not_before_ms: 0
        }),
        None
    );
    assert_eq!(offsets(&q.receive(10, 1000, 0)), vec![1]);
}

#[test]
fn restore_tolerates_overlapping_ranges() {
    let snap = Snapshot {
        ack_floor: 5,
        acked: vec![(3, 7), (6, 9), (11, 12)],
        deliveries: vec![(8, 2)],
        next_lease: 0,
    };
    let p = Partition::restore(config(Mode::Shared, 0), snap);
    assert_eq!(p.ack_floor(), 9);
    assert_eq!(p.next_to_feed(), Some(9));
    assert_eq!(p.tracked(), 0, "count of an acked offset is dropped");
    assert_eq!(p.backlog_hint(20), 10);
}

#[test]
fn negative_times_and_huge_values_do_not_panic() {
    let mut p = Partition::new(config(Mode::Shared, 0), u64::MAX - 10);
    feed_keys(&mut p, &[None]);
    let d = p.receive(usize::MAX, i64::MAX, i64::MAX)[0];
    assert_eq!(p.extend(d.lease, -5, i64::MIN), Ok(()));
    assert_eq!(
        p.nack(d.lease, i64::MAX, i64::MAX),
        Ok(NackOutcome::Requeued)
    );
    assert_eq!(p.backlog_hint(0), 0);
}

#[test]
#[should_panic(expected = "not asked for")]
fn feeding_out_of_order_is_a_programmer_error() {
    let mut p = Partition::new(config(Mode::Shared, 0), 0);
    p.feed(Fed {
        offset: 1,
        key: None,
        not_before_ms: 0,
    });
}
