//! Per-endpoint lanes: the jobs waiting for an endpoint and how many of its
//! sends are in flight. A full lane sheds jobs back to the store and asks the
//! scan to skip its endpoint, so one slow receiver never holds back the rest.

use aviso_core::{DeliveryId, EndpointId};
use aviso_store::DispatchJob;
use std::collections::{HashMap, HashSet, VecDeque};

#[derive(Default)]
struct Lane {
    queue: VecDeque<DispatchJob>,
    in_flight: usize,
}

/// All lanes of this node, and the endpoints the scan must skip.
pub(crate) struct Lanes {
    lanes: HashMap<EndpointId, Lane>,
    excluded: HashSet<EndpointId>,
    cap: usize,
    queued: usize,
}

impl Lanes {
    /// Lanes holding at most `cap` waiting jobs each.
    pub fn new(cap: usize) -> Self {
        Self {
            lanes: HashMap::new(),
            excluded: HashSet::new(),
            cap: cap.max(1),
            queued: 0,
        }
    }

    /// Queues a job; when its lane is full, hands back its delivery (release its claim).
    pub fn push(&mut self, job: DispatchJob) -> Result<(), DeliveryId> {
        let lane = self.lanes.entry(job.endpoint.clone()).or_default();
        if lane.queue.len() >= self.cap {
            self.excluded.insert(job.endpoint);
            return Err(job.delivery);
        }
        lane.queue.push_back(job);
        self.queued += 1;
        Ok(())
    }

    /// The next job to send for `endpoint` if it is under `max_in_flight`;
    /// counts it as in flight.
    pub fn start_next(
        &mut self,
        endpoint: &EndpointId,
        max_in_flight: usize,
    ) -> Option<DispatchJob> {
        let lane = self.lanes.get_mut(endpoint)?;
        if lane.in_flight >= max_in_flight {
            return None;
        }
        let job = lane.queue.pop_front()?;
        lane.in_flight += 1;
        self.queued -= 1;
        if lane.queue.len() < self.cap / 2 {
            self.excluded.remove(endpoint);
        }
        Some(job)
    }

    /// A send for `endpoint` ended; removes the lane once it is idle and empty.
    pub fn finish(&mut self, endpoint: &EndpointId) {
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
            self.remove_if_idle(endpoint);
        }
    }

    /// Takes the waiting jobs of one lane (its endpoint's config changed).
    pub fn take_queued(&mut self, endpoint: &EndpointId) -> Vec<DispatchJob> {
        let Some(lane) = self.lanes.get_mut(endpoint) else {
            return Vec::new();
        };
        let jobs: Vec<DispatchJob> = lane.queue.drain(..).collect();
        self.queued -= jobs.len();
        self.excluded.remove(endpoint);
        self.remove_if_idle(endpoint);
        jobs
    }

    /// Takes every waiting job of every lane (shutdown).
    pub fn take_all_queued(&mut self) -> Vec<DispatchJob> {
        let ids: Vec<EndpointId> = self.lanes.keys().cloned().collect();
        ids.iter().flat_map(|id| self.take_queued(id)).collect()
    }

    /// Endpoints whose lanes are full: the scan skips them.
    pub fn excluded(&self) -> Vec<EndpointId> {
        self.excluded.iter().cloned().collect()
    }

    /// Jobs waiting in all lanes.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Sends in flight in all lanes.
    pub fn in_flight(&self) -> usize {
        self.lanes.values().map(|l| l.in_flight).sum()
    }

    fn remove_if_idle(&mut self, endpoint: &EndpointId) {
        if self
            .lanes
            .get(endpoint)
            .is_some_and(|l| l.in_flight == 0 && l.queue.is_empty())
        {
            self.lanes.remove(endpoint);
            self.excluded.remove(endpoint);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aviso_core::name::EventTypeName;
    use aviso_core::{EventId, TenantId, Timestamp};

    pub(crate) fn job(endpoint: &EndpointId) -> DispatchJob {
        DispatchJob {
            delivery: DeliveryId::new(),
            event: EventId::new(),
            endpoint: endpoint.clone(),
            tenant: TenantId::new(),
            event_type: EventTypeName::parse("test.event").unwrap(),
            payload: "{}".into(),
            attempts: 0,
            round_attempts: 0,
            round_started_at: Timestamp::now(),
            due_at: Timestamp::now(),
        }
    }

    #[test]
    fn respects_max_in_flight_and_removes_idle_lanes() {
        let ep = EndpointId::new();
        let mut lanes = Lanes::new(10);
        for _ in 0..3 {
            lanes.push(job(&ep)).unwrap();
        }
        assert!(lanes.start_next(&ep, 2).is_some());
        assert!(lanes.start_next(&ep, 2).is_some());
        assert!(lanes.start_next(&ep, 2).is_none());
        lanes.finish(&ep);
        assert!(lanes.start_next(&ep, 2).is_some());
        assert_eq!((lanes.queued(), lanes.in_flight()), (0, 2));
        lanes.finish(&ep);
        lanes.finish(&ep);
        assert!(lanes.lanes.is_empty());
    }

    #[test]
    fn a_full_lane_sheds_jobs_and_is_excluded_until_half_drained() {
        let ep = EndpointId::new();
        let other = EndpointId::new();
        let mut lanes = Lanes::new(4);
        for _ in 0..4 {
            lanes.push(job(&ep)).unwrap();
        }
        assert!(lanes.push(job(&ep)).is_err());
        assert!(lanes.push(job(&other)).is_ok());
        assert_eq!(lanes.excluded(), vec![ep.clone()]);
        lanes.start_next(&ep, 10).unwrap();
        lanes.start_next(&ep, 10).unwrap();
        assert_eq!(
            lanes.excluded(),
            vec![ep.clone()],
            "2 of 4 left is not below half"
        );
        lanes.start_next(&ep, 10).unwrap();
        assert!(lanes.excluded().is_empty());
    }
}
