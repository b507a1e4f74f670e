//! The queue in front of password checks: at most one check per core runs at a
//! time (each is a deliberately slow hash), a bounded number wait, and familiar
//! logins wait ahead of strangers.
//!
//! Without a bound, a flood of guesses makes every real login wait behind all of
//! them (seconds per login at bcrypt's usual costs); past the bound a check is
//! refused at once, and the caller answers 503 with `Retry-After`. Familiar logins
//! (see `Lockouts::is_familiar`) have a queue of their own,
//! served first and bounded alike, so a spray from strangers can neither fill it
//! nor delay it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Which waiting line a check joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// An address or user with recent successful logins.
    Familiar,
    /// Everyone else.
    Other,
}

/// The queue was full: the check was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

struct State {
    /// Checks that may start now.
    free: usize,
    familiar: VecDeque<oneshot::Sender<Slot>>,
    other: VecDeque<oneshot::Sender<Slot>>,
}

/// Runs at most `slots` checks at once, with up to `max_waiting` waiting per line.
pub struct VerifyQueue {
    max_waiting: usize,
    state: Mutex<State>,
}

/// The right to run one check; passed to the next waiter when dropped.
pub struct Slot {
    /// `None` once it has been given back.
    queue: Option<Arc<VerifyQueue>>,
}

impl Slot {
    fn of(queue: &Arc<VerifyQueue>) -> Self {
        Self {
            queue: Some(queue.clone()),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            queue.release();
        }
    }
}

impl VerifyQueue {
    pub fn new(slots: usize, max_waiting: usize) -> Arc<Self> {
        Arc::new(Self {
            max_waiting,
            state: Mutex::new(State {
                free: slots.max(1),
                familiar: VecDeque::new(),
                other: VecDeque::new(),
            }),
        })
    }

    /// A slot, at once or after waiting in `line`; `Err(Full)` at once if that line
    /// already holds `max_waiting` checks.
    pub async fn acquire(self: &Arc<Self>, line: Line) -> Result<Slot, Full> {
        let handed = {
            let mut state = self.state.lock().expect("verify queue lock");
            if state.free > 0 {
                state.free -= 1;
                return Ok(Slot::of(self));
            }
            let waiting = match line {
                Line::Familiar => &mut state.familiar,
                Line::Other => &mut state.other,
            };
            if waiting.len() >= self.max_waiting {
                // Waiters that gave up still hold places: let them go first.
                waiting.retain(|w| !w.is_closed());
                if waiting.len() >= self.max_waiting {
                    return Err(Full);
                }
            }
            let (send, handed) = oneshot::channel();
            waiting.push_back(send);
            handed
        };
        // The sender is only dropped by handing over a slot (or with the queue).
        handed.await.map_err(|_| Full)
    }

    /// Passes a finished check's slot to the next waiter, familiar ones first. A
    /// slot handed to a waiter that has just given up comes back here when the
    /// channel drops it.
    fn release(self: &Arc<Self>) {
        let mut state = self.state.lock().expect("verify queue lock");
        loop {
            let next = match state.familiar.pop_front() {
                Some(waiter) => Some(waiter),
                None => state.other.pop_front(),
            };
            let Some(waiter) = next else {
                state.free += 1;
                return;
            };
            if waiter.is_closed() {
                continue;
            }
            drop(state);
            match waiter.send(Slot::of(self)) {
                Ok(()) => return,
                // Gone between the look and the send: take the slot back without
                // its drop re-entering here, and look again.
                Err(mut slot) => slot.queue = None,
            }
            state = self.state.lock().expect("verify queue lock");
        }
    }

    /// Checks waiting now, in each line.
    #[cfg(test)]
    fn waiting(&self) -> (usize, usize) {
        let state = self.state.lock().expect("verify queue lock");
        (state.familiar.len(), state.other.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bounded_line_refuses_at_once_when_full() {
        let queue = VerifyQueue::new(1, 2);
        let running = queue.acquire(Line::Other).await.unwrap();
        let first = tokio::spawn({
            let queue = queue.clone();
            async move { queue.acquire(Line::Other).await.map(drop) }
        });
        let second = tokio::spawn({
            let queue = queue.clone();
            async move { queue.acquire(Line::Other).await.map(drop) }
        });
        while queue.waiting().1 < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(queue.acquire(Line::Other).await.err(), Some(Full));
        // The familiar line is not filled by strangers.
        let familiar = tokio::spawn({
            let queue = queue.clone();
            async move { queue.acquire(Line::Familiar).await.map(drop) }
        });
        while queue.waiting().0 < 1 {
            tokio::task::yield_now().await;
        }
        drop(running);
        familiar.await.unwrap().unwrap();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(queue.waiting(), (0, 0));
        // Every slot came back: two may be taken one after the other.
        drop(queue.acquire(Line::Other).await.unwrap());
        drop(queue.acquire(Line::Other).await.unwrap());
    }

    #[tokio::test]
    async fn familiar_logins_go_first() {
        let queue = VerifyQueue::new(1, 10);
        let running = queue.acquire(Line::Other).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (n, line) in [(0, Line::Other), (1, Line::Other), (2, Line::Familiar)] {
            let (waiter, order) = (queue.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = waiter.acquire(line).await.unwrap();
                order.lock().unwrap().push(n);
            }));
            while queue.waiting().0 + queue.waiting().1 < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(running);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![2, 0, 1]);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_no_slot() {
        let queue = VerifyQueue::new(1, 10);
        let running = queue.acquire(Line::Other).await.unwrap();
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.acquire(Line::Other).await.map(drop) }
        });
        while queue.waiting().1 < 1 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        drop(running);
        let again = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            queue.acquire(Line::Other),
        )
        .await;
        assert!(again.expect("the slot came back").is_ok());
    }
}
