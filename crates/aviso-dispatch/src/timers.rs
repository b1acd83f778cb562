//! The timer heap: retries this node keeps claimed until they are due.

use aviso_core::{DeliveryId, Timestamp};
use aviso_store::DispatchJob;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

struct Entry {
    at: Timestamp,
    seq: u64,
    job: DispatchJob,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A bounded min-heap of jobs by due time.
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    cap: usize,
    seq: u64,
}

impl Timers {
    /// A heap holding at most `cap` jobs.
    pub fn new(cap: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            cap,
            seq: 0,
        }
    }

    /// Room left.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Room left.
    pub fn free(&self) -> usize {
        self.cap.saturating_sub(self.heap.len())
    }

    /// Holds `job` until `at`; when the heap is full, hands back its delivery.
    pub fn push(&mut self, at: Timestamp, job: DispatchJob) -> Result<(), DeliveryId> {
        if self.free() == 0 {
            return Err(job.delivery);
        }
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            job,
        }));
        Ok(())
    }

    /// The earliest due time held.
    pub fn next_at(&self) -> Option<Timestamp> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Removes and returns the jobs due at or before `now`, earliest first.
    pub fn pop_due(&mut self, now: Timestamp) -> Vec<DispatchJob> {
        let mut out = Vec::new();
        while self.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            out.extend(self.heap.pop().map(|Reverse(e)| e.job));
        }
        out
    }

    /// Removes every job (shutdown).
    pub fn drain(&mut self) -> Vec<DispatchJob> {
        self.heap.drain().map(|Reverse(e)| e.job).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::tests::job;
    use aviso_core::EndpointId;

    #[test]
    fn pops_due_jobs_in_order_and_respects_capacity() {
        let ep = EndpointId::new();
        let mut t = Timers::new(3);
        let (a, b, c) = (job(&ep), job(&ep), job(&ep));
        let (ida, idb) = (a.delivery.clone(), b.delivery.clone());
        t.push(Timestamp(300), c).unwrap();
        t.push(Timestamp(100), a).unwrap();
        t.push(Timestamp(200), b).unwrap();
        assert!(t.push(Timestamp(50), job(&ep)).is_err());
        assert_eq!(t.next_at(), Some(Timestamp(100)));
        let due: Vec<_> = t
            .pop_due(Timestamp(250))
            .into_iter()
            .map(|j| j.delivery)
            .collect();
        assert_eq!(due, vec![ida, idb]);
        assert_eq!((t.free(), t.next_at()), (2, Some(Timestamp(300))));
    }
}
