//! The bounded batch queue and the retry backoff: plain data structures, with
//! time passed in, so they are tested without sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Batches waiting for export; when full, the oldest gives way to the newest.
#[derive(Debug)]
pub struct BatchQueue<B> {
    batches: VecDeque<B>,
    capacity: usize,
}

impl<B> BatchQueue<B> {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a batch queue holds at least one batch");
        Self {
            batches: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Appends a batch; returns the oldest one if it had to be dropped to make room.
    pub fn push(&mut self, batch: B) -> Option<B> {
        let dropped = if self.batches.len() >= self.capacity {
            self.batches.pop_front()
        } else {
            None
        };
        self.batches.push_back(batch);
        dropped
    }

    /// Puts back a batch whose export failed, to be tried first next time.
    /// Returns the newest batch if the queue filled up meanwhile.
    pub fn push_front(&mut self, batch: B) -> Option<B> {
        let dropped = if self.batches.len() >= self.capacity {
            self.batches.pop_back()
        } else {
            None
        };
        self.batches.push_front(batch);
        dropped
    }

    pub fn pop(&mut self) -> Option<B> {
        self.batches.pop_front()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    pub fn drain(&mut self) -> impl Iterator<Item = B> + '_ {
        self.batches.drain(..)
    }
}

/// Exponential backoff: the first failure waits `initial`, each further one
/// twice as long, up to `max`; a success resets it.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next_delay: Duration,
    not_before: Option<Instant>,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next_delay: initial,
            not_before: None,
        }
    }

    /// Records a failure at `now`; returns how long to wait before the next try.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let delay = self.next_delay;
        self.not_before = Some(now + delay);
        self.next_delay = (delay * 2).min(self.max);
        delay
    }

    pub fn succeeded(&mut self) {
        self.next_delay = self.initial;
        self.not_before = None;
    }

    /// Whether an export may start at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// When the next try may start, if we are waiting.
    pub fn not_before(&self) -> Option<Instant> {
        self.not_before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_drops_oldest_when_full() {
        let mut q = BatchQueue::new(3);
        assert_eq!(q.push(1), None);
        assert_eq!(q.push(2), None);
        assert_eq!(q.push(3), None);
        assert_eq!(q.push(4), Some(1));
        assert_eq!(q.push(5), Some(2));
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), Some(4));
        assert_eq!(q.pop(), Some(5));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn failed_batch_goes_back_first() {
        let mut q = BatchQueue::new(2);
        q.push(2);
        assert_eq!(q.push_front(1), None);
        assert_eq!(q.pop(), Some(1));
        q.push(3);
        // Full: 2, 3. The retried batch is older than both, so the newest gives way.
        assert_eq!(q.push_front(1), Some(3));
        assert_eq!(q.drain().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        assert!(b.ready(t0));
        let delays: Vec<u64> = (0..8).map(|_| b.failed(t0).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        b.succeeded();
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), Duration::from_secs(1));
    }

    #[test]
    fn backoff_gates_the_next_try() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        b.failed(t0);
        assert!(!b.ready(t0));
        assert!(!b.ready(t0 + Duration::from_millis(999)));
        assert!(b.ready(t0 + Duration::from_secs(1)));
        assert_eq!(b.not_before(), Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        b.failed(t1);
        assert!(!b.ready(t1 + Duration::from_millis(1999)));
        assert!(b.ready(t1 + Duration::from_secs(2)));
    }
}
