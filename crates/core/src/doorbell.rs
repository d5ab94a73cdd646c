//! A doorbell rung when something may have become deliverable (a publish,
//! a nack, an expired lease), so long-polling receivers wake at once
//! instead of polling. It works for blocking callers (a condition variable
//! with a timeout) and for async ones (a future that resolves on the next
//! ring), without tying the core to an async runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Doorbell {
    rings: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
    cv: Condvar,
}

impl Doorbell {
    /// How often it has rung; take this before trying a receive, then wait
    /// for a ring after it.
    pub fn rings(&self) -> u64 {
        self.rings.load(Ordering::SeqCst)
    }

    pub fn ring(&self) {
        // Bumped under the lock, so a waiter that checked the count under
        // the lock cannot miss this ring.
        let wakers = {
            let mut wakers = self.wakers.lock().unwrap();
            self.rings.fetch_add(1, Ordering::SeqCst);
            std::mem::take(&mut *wakers)
        };
        self.cv.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    /// Blocks until a ring after `seen`, or `timeout`; true if it rang.
    pub fn wait(&self, seen: u64, timeout: Duration) -> bool {
        let guard = self.wakers.lock().unwrap();
        let (_guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |_| self.rings() == seen)
            .unwrap();
        self.rings() != seen
    }

    /// Resolves at the first ring after `seen` (immediately if it already
    /// rang). Put a timeout around it.
    pub fn rung_after(&self, seen: u64) -> RungAfter<'_> {
        RungAfter { bell: self, seen }
    }
}

/// Future returned by [`Doorbell::rung_after`].
#[derive(Debug)]
pub struct RungAfter<'a> {
    bell: &'a Doorbell,
    seen: u64,
}

impl Future for RungAfter<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut wakers = self.bell.wakers.lock().unwrap();
        if self.bell.rings() != self.seen {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_wakes_on_a_ring_from_another_thread() {
        let bell = Arc::new(Doorbell::default());
        let seen = bell.rings();
        let ringer = bell.clone();
        let t = std::thread::spawn(move || ringer.ring());
        assert!(bell.wait(seen, Duration::from_secs(30)));
        t.join().unwrap();
        assert!(!bell.wait(bell.rings(), Duration::from_millis(1)));
    }

    #[test]
    fn the_future_is_ready_after_a_ring() {
        let bell = Doorbell::default();
        let seen = bell.rings();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut fut = std::pin::pin!(bell.rung_after(seen));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        bell.ring();
        assert!(fut.as_mut().poll(&mut cx).is_ready());
    }
}
