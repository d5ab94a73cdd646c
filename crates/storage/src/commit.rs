//! The waiting side of group commit: appends parked until a sync covers
//! them, each with its own slot, so that a finished sync wakes exactly the
//! appends it made durable and a woken append learns its fate from its slot
//! without taking a lock.
//!
//! (Earlier versions used condition variables. Every woken waiter then had to
//! take the sync mutex again, and a 64-writer load spent most of its CPU in
//! the scheduler while the disk sat idle.)

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;

/// Still waiting (or woken spuriously).
const WAITING: u8 = 0;
/// A sync made the append durable.
const DONE: u8 = 1;
/// The append's thread is to lead the next group commit.
const LEAD: u8 = 2;
/// Something happened (a failed sync, a truncation): look again.
const RECHECK: u8 = 3;

/// What woke a parked append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Its data is durable.
    Done,
    /// It must lead the next group commit.
    Lead,
    /// It must look at the log's state again.
    Recheck,
}

/// One parked append.
#[derive(Debug)]
struct Slot {
    state: AtomicU8,
    thread: Thread,
    /// Appends this one wakes in turn once woken (see [`wake_done`]).
    chain: Mutex<Vec<Ticket>>,
}

/// A parked append's handle on its slot.
#[derive(Debug, Clone)]
pub struct Ticket(Arc<Slot>);

impl Ticket {
    /// A ticket for the current thread.
    pub fn new() -> Ticket {
        Ticket(Arc::new(Slot {
            state: AtomicU8::new(WAITING),
            thread: std::thread::current(),
            chain: Mutex::new(Vec::new()),
        }))
    }

    /// Parks until the slot says why; spurious wake-ups park again.
    pub fn park(&self) -> Wake {
        loop {
            match self.0.state.swap(WAITING, Ordering::Acquire) {
                DONE => {
                    let chain = std::mem::take(&mut *self.0.chain.lock().unwrap());
                    wake_done(chain);
                    return Wake::Done;
                }
                LEAD => return Wake::Lead,
                RECHECK => return Wake::Recheck,
                _ => std::thread::park(),
            }
        }
    }

    fn wake(&self, state: u8) {
        self.0.state.store(state, Ordering::Release);
        self.0.thread.unpark();
    }
}

impl Default for Ticket {
    fn default() -> Self {
        Ticket::new()
    }
}

/// The parked appends of one log, kept under the log's sync mutex.
#[derive(Debug, Default)]
pub struct Waiters {
    parked: Vec<(u64, Ticket)>,
}

impl Waiters {
    /// Parks `ticket` until every offset below `target` is durable.
    pub fn push(&mut self, target: u64, ticket: Ticket) {
        self.parked.push((target, ticket));
    }

    /// Whether no append is parked.
    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    /// Takes out the appends that `synced` covers; the caller wakes them with
    /// [`wake_done`] once it has let go of the lock.
    pub fn take_covered(&mut self, synced: u64) -> Vec<Ticket> {
        let mut covered = Vec::new();
        self.parked.retain(|(target, ticket)| {
            let done = *target <= synced;
            if done {
                covered.push(ticket.clone());
            }
            !done
        });
        covered
    }

    /// Takes out one parked append to lead the next group commit.
    pub fn take_leader(&mut self) -> Option<Ticket> {
        (!self.parked.is_empty()).then(|| self.parked.remove(0).1)
    }

    /// Wakes every parked append to look again.
    pub fn recheck_all(&mut self) {
        for (_, ticket) in self.parked.drain(..) {
            ticket.wake(RECHECK);
        }
    }
}

/// Wakes appends whose data is durable. The caller wakes two of them and
/// hands each half of the rest to wake in turn, so that the leader is back to
/// syncing after two wake-ups instead of one per append, and the wake-ups
/// spread over every core in a tree of logarithmic depth.
pub fn wake_done(mut tickets: Vec<Ticket>) {
    while !tickets.is_empty() {
        let first = tickets.swap_remove(0);
        let rest = tickets.split_off(tickets.len() / 2);
        *first.0.chain.lock().unwrap() = rest;
        first.wake(DONE);
    }
}

/// Wakes the append that is to lead.
pub fn wake_leader(ticket: Ticket) {
    ticket.wake(LEAD);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_wakes_exactly_what_it_covers() {
        let mut waiters = Waiters::default();
        let tickets: Vec<Ticket> = (0..4).map(|_| Ticket::new()).collect();
        for (i, t) in tickets.iter().enumerate() {
            waiters.push(10 * (i as u64 + 1), t.clone());
        }
        let covered = waiters.take_covered(25);
        assert_eq!(covered.len(), 2);
        wake_done(covered);
        assert_eq!(tickets[0].park(), Wake::Done);
        assert_eq!(tickets[1].park(), Wake::Done);
        let leader = waiters.take_leader().unwrap();
        wake_leader(leader);
        assert_eq!(tickets[2].park(), Wake::Lead);
        waiters.recheck_all();
        assert!(waiters.is_empty());
        assert_eq!(tickets[3].park(), Wake::Recheck);
    }
}
