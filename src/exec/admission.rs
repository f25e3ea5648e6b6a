//! How many SSH handshakes go to one address at once. OpenSSH's stock
//! `MaxStartups 10:30:100` starts dropping new connections once ten are
//! unauthenticated, and a connection counts for a moment after the client
//! sees it authenticated; so admission starts under that, takes a dropped
//! handshake (reset or closed before the server spoke) as the server's
//! throttling rather than as a failure, lowers that address's limit, and
//! raises it again, one at a time, as handshakes succeed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The handshakes to one address:port.
pub struct Admission {
    slots: Arc<Semaphore>,
    /// Slots the address has now (permits given out and free).
    limit: AtomicUsize,
    /// The most it may have.
    max: usize,
    /// Successes since the limit last changed.
    successes: AtomicUsize,
}

impl Admission {
    pub fn new(max: usize) -> Admission {
        let max = max.max(1);
        Admission {
            slots: Arc::new(Semaphore::new(max)),
            limit: AtomicUsize::new(max),
            max,
            successes: AtomicUsize::new(0),
        }
    }

    /// Waits for a slot; `None` when shutting down.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// The server dropped a handshake: one slot fewer (never below one).
    pub fn throttled(&self) {
        self.successes.store(0, Ordering::Relaxed);
        let lowered = self
            .limit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                (l > 1).then(|| l - 1)
            })
            .is_ok();
        if lowered {
            // The slot is taken out when one is next free.
            let slots = self.slots.clone();
            tokio::spawn(async move {
                if let Ok(permit) = slots.acquire_owned().await {
                    permit.forget();
                }
            });
        }
    }

    /// A handshake went through: after as many successes as there are
    /// slots, one slot more (up to the maximum).
    pub fn succeeded(&self) {
        let limit = self.limit.load(Ordering::Acquire);
        if limit >= self.max {
            return;
        }
        if self.successes.fetch_add(1, Ordering::AcqRel) + 1 >= limit
            && self
                .limit
                .compare_exchange(limit, limit + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.successes.store(0, Ordering::Relaxed);
            self.slots.add_permits(1);
        }
    }

    /// The slots the address has now.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dropped_handshake_lowers_the_limit_and_successes_raise_it_again() {
        let a = Admission::new(4);
        a.throttled();
        a.throttled();
        assert_eq!(a.limit(), 2);
        for _ in 0..2 {
            a.succeeded();
        }
        assert_eq!(a.limit(), 3);
        for _ in 0..10 {
            a.succeeded();
        }
        assert_eq!(a.limit(), 4, "never past the maximum");
        for _ in 0..10 {
            a.throttled();
        }
        assert_eq!(a.limit(), 1, "never below one");
    }
}
