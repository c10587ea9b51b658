//! The bounded batch queue and the retry backoff: plain data structures, with
//! time passed in, so they are tested without sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What a queued batch weighs against the queue's limits.
pub trait Weigh {
    fn spans(&self) -> usize;
    fn bytes(&self) -> usize;
}

/// How much a queue holds at most; it drops batches as soon as either is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    pub max_spans: usize,
    pub max_bytes: usize,
}

/// A batch with its weight when it was queued.
#[derive(Debug)]
struct Queued<B> {
    batch: B,
    spans: usize,
    bytes: usize,
}

/// Batches waiting for export, held to a number of spans and of bytes; when
/// a new batch passes either, the oldest give way to it.
#[derive(Debug)]
pub struct BatchQueue<B> {
    batches: VecDeque<Queued<B>>,
    limits: QueueLimits,
    spans: usize,
    bytes: usize,
}

impl<B: Weigh> BatchQueue<B> {
    pub fn new(limits: QueueLimits) -> Self {
        assert!(
            limits.max_spans > 0 && limits.max_bytes > 0,
            "a batch queue holds something"
        );
        Self {
            batches: VecDeque::new(),
            limits,
            spans: 0,
            bytes: 0,
        }
    }

    /// Appends a batch; returns how many spans of older batches were dropped
    /// to make room.
    pub fn push(&mut self, batch: B) -> usize {
        self.add(batch, false);
        self.trim()
    }

    /// Puts back a batch whose export failed, to be tried first next time;
    /// returns how many spans were dropped if the queue filled up meanwhile:
    /// the oldest still go first, this one among them, so that what is
    /// delivered once the receiver is back is the most recent.
    pub fn push_front(&mut self, batch: B) -> usize {
        self.add(batch, true);
        self.trim()
    }

    fn add(&mut self, batch: B, front: bool) {
        let queued = Queued {
            spans: batch.spans(),
            bytes: batch.bytes(),
            batch,
        };
        self.spans += queued.spans;
        self.bytes += queued.bytes;
        if front {
            self.batches.push_front(queued);
        } else {
            self.batches.push_back(queued);
        }
    }

    /// Drops the oldest batches while over a limit; the newest stays.
    fn trim(&mut self) -> usize {
        let mut dropped = 0;
        while (self.spans > self.limits.max_spans || self.bytes > self.limits.max_bytes)
            && self.batches.len() > 1
        {
            let Some(gone) = self.batches.pop_front() else {
                break;
            };
            self.spans -= gone.spans;
            self.bytes -= gone.bytes;
            dropped += gone.spans;
        }
        dropped
    }

    pub fn pop(&mut self) -> Option<B> {
        let queued = self.batches.pop_front()?;
        self.spans -= queued.spans;
        self.bytes -= queued.bytes;
        Some(queued.batch)
    }

    /// Spans queued.
    #[cfg(test)]
    pub fn spans(&self) -> usize {
        self.spans
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Empties the queue; returns the spans it held.
    pub fn clear(&mut self) -> usize {
        let spans = self.spans;
        self.batches.clear();
        self.spans = 0;
        self.bytes = 0;
        spans
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

    /// A batch of `spans` spans of 100 bytes each, named by `id`.
    #[derive(Debug, PartialEq)]
    struct B {
        id: u32,
        spans: usize,
    }

    impl Weigh for B {
        fn spans(&self) -> usize {
            self.spans
        }
        fn bytes(&self) -> usize {
            self.spans * 100
        }
    }

    fn b(id: u32, spans: usize) -> B {
        B { id, spans }
    }

    fn ids(q: &mut BatchQueue<B>) -> Vec<u32> {
        std::iter::from_fn(|| q.pop()).map(|b| b.id).collect()
    }

    const ROOMY: usize = usize::MAX;

    #[test]
    fn queue_holds_spans_not_batches_and_drops_the_oldest() {
        let mut q = BatchQueue::new(QueueLimits {
            max_spans: 10,
            max_bytes: ROOMY,
        });
        // Many small batches fit where a count of batches would have stopped.
        for id in 0..10 {
            assert_eq!(q.push(b(id, 1)), 0);
        }
        assert_eq!((q.spans(), q.bytes()), (10, 1000));
        // 4 more spans: the 4 oldest batches go.
        assert_eq!(q.push(b(10, 4)), 4);
        assert_eq!(q.spans(), 10);
        assert_eq!(ids(&mut q), vec![4, 5, 6, 7, 8, 9, 10]);
        assert!(q.is_empty() && q.spans() == 0 && q.bytes() == 0);
    }

    #[test]
    fn queue_is_held_to_its_bytes_too() {
        let mut q = BatchQueue::new(QueueLimits {
            max_spans: ROOMY,
            max_bytes: 500,
        });
        assert_eq!(q.push(b(1, 3)), 0);
        assert_eq!(q.push(b(2, 2)), 0);
        assert_eq!(q.push(b(3, 1)), 3);
        assert_eq!(q.bytes(), 300);
        // A batch heavier than the whole queue still goes: the last one stays.
        assert_eq!(q.push(b(4, 9)), 3);
        assert_eq!(ids(&mut q), vec![4]);
    }

    #[test]
    fn failed_batch_goes_back_first() {
        let mut q = BatchQueue::new(QueueLimits {
            max_spans: 2,
            max_bytes: ROOMY,
        });
        q.push(b(2, 1));
        assert_eq!(q.push_front(b(1, 1)), 0);
        assert_eq!(q.pop(), Some(b(1, 1)));
        q.push(b(3, 1));
        // Full: 2, 3. The retried batch is the oldest: it gives way.
        assert_eq!(q.push_front(b(1, 1)), 1);
        assert_eq!(ids(&mut q), vec![2, 3]);
        q.push(b(5, 2));
        assert_eq!(q.clear(), 2);
        assert!(q.is_empty());
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
