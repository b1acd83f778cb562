//! Per-endpoint lanes: the jobs waiting for an endpoint and how many of its
//! sends are in flight. A full lane sheds jobs back to the store and asks the
//! scan to skip its endpoint, so one slow receiver never holds back the rest.
//!
//! Ordered endpoints (`fifo`, `fifo_key`) give each job a key: a lane keeps
//! such jobs in publish order (delivery ids are monotonic), sends at most one
//! per key at a time, and holds a key while its head waits for a retry.

use aviso_core::{DeliveryId, EndpointId, Timestamp};
use aviso_store::DispatchJob;
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::collections::VecDeque;

struct Queued {
    job: DispatchJob,
    key: Option<String>,
}

/// A key's head is waiting for its retry until `until` (a safety valve).
struct Hold {
    delivery: DeliveryId,
    until: Timestamp,
}

#[derive(Default)]
struct Lane {
    queue: VecDeque<Queued>,
    in_flight: usize,
    busy_keys: HashSet<String>,
    held: HashMap<String, Hold>,
}

impl Lane {
    fn blocked(&self, key: &str, now: Timestamp) -> bool {
        self.busy_keys.contains(key) || self.held.get(key).is_some_and(|h| h.until > now)
    }
}

/// A job taken from a lane to send, with its ordering key.
pub(crate) struct Started {
    /// The job.
    pub job: DispatchJob,
    /// Its ordering key (`None` when the endpoint is unordered).
    pub key: Option<String>,
}

/// All lanes of this node, and the endpoints the scan must skip.
pub(crate) struct Lanes {
    lanes: HashMap<EndpointId, Lane>,
    excluded: HashSet<EndpointId>,
    /// An excluded endpoint's lane has drained to half since last asked: the
    /// work it shed is waiting in the store, so the actor scans at once
    /// rather than at the next tick.
    reopened: bool,
    cap: usize,
    queued: usize,
}

impl Lanes {
    /// Lanes holding at most `cap` waiting jobs each.
    pub fn new(cap: usize) -> Self {
        Self {
            lanes: HashMap::new(),
            excluded: HashSet::new(),
            reopened: false,
            cap: cap.max(1),
            queued: 0,
        }
    }

    /// Queues a job (keyed jobs in publish order); when its lane is full, hands
    /// back its delivery (release its claim). A held head always gets back in.
    pub fn push(&mut self, job: DispatchJob, key: Option<String>) -> Result<(), DeliveryId> {
        let lane = self.lanes.entry(job.endpoint.clone()).or_default();
        let head = key
            .as_ref()
            .is_some_and(|k| lane.held.get(k).is_some_and(|h| h.delivery == job.delivery));
        if head {
            lane.held.remove(key.as_deref().unwrap_or_default());
        } else if lane.queue.len() >= self.cap {
            self.excluded.insert(job.endpoint);
            return Err(job.delivery);
        }
        let entry = Queued { job, key };
        if entry.key.is_some() {
            let id = entry.job.delivery.as_str();
            let at = lane
                .queue
                .iter()
                .rposition(|q| q.job.delivery.as_str() <= id)
                .map_or(0, |i| i + 1);
            lane.queue.insert(at, entry);
        } else {
            lane.queue.push_back(entry);
        }
        self.queued += 1;
        Ok(())
    }

    /// The next job to send for `endpoint` if it is under `max_in_flight`
    /// and `admit` agrees (e.g. a rate-limit token); counts it as in flight.
    /// Keyed jobs wait while their key is busy or held.
    pub fn start_next(
        &mut self,
        endpoint: &EndpointId,
        max_in_flight: usize,
        now: Timestamp,
        admit: impl FnOnce() -> bool,
    ) -> Option<Started> {
        let lane = self.lanes.get_mut(endpoint)?;
        if lane.in_flight >= max_in_flight {
            return None;
        }
        let pos = lane.queue.iter().position(|q| match &q.key {
            None => true,
            Some(k) => !lane.blocked(k, now),
        })?;
        if !admit() {
            return None;
        }
        let Queued { job, key } = lane.queue.remove(pos)?;
        if let Some(k) = &key {
            lane.held.remove(k);
            lane.busy_keys.insert(k.clone());
        }
        lane.in_flight += 1;
        self.queued -= 1;
        if lane.queue.len() < self.cap / 2 && self.excluded.remove(endpoint) {
            self.reopened = true;
        }
        Some(Started { job, key })
    }

    /// A send for `endpoint` ended; removes the lane once it is idle and empty.
    pub fn finish(&mut self, endpoint: &EndpointId, key: Option<&str>) {
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
            if let Some(k) = key {
                lane.busy_keys.remove(k);
            }
            self.remove_if_idle(endpoint);
        }
    }

    /// Holds `key` until `delivery` (its head, waiting for a retry) comes back,
    /// or until `until` passes.
    pub fn hold(
        &mut self,
        endpoint: &EndpointId,
        key: String,
        delivery: DeliveryId,
        until: Timestamp,
    ) {
        let lane = self.lanes.entry(endpoint.clone()).or_default();
        lane.held.insert(key, Hold { delivery, until });
    }

    /// Whether `endpoint` has a lane (work waiting, in flight or held).
    pub fn has(&self, endpoint: &EndpointId) -> bool {
        self.lanes.contains_key(endpoint)
    }

    /// Takes the waiting jobs of one lane (its endpoint's config changed).
    pub fn take_queued(&mut self, endpoint: &EndpointId) -> Vec<DispatchJob> {
        let Some(lane) = self.lanes.get_mut(endpoint) else {
            return Vec::new();
        };
        let jobs: Vec<DispatchJob> = lane.queue.drain(..).map(|q| q.job).collect();
        self.queued -= jobs.len();
        self.excluded.remove(endpoint);
        self.remove_if_idle(endpoint);
        jobs
    }

    /// Drops a lane's holds (its endpoint was disabled or deleted).
    pub fn forget_holds(&mut self, endpoint: &EndpointId) {
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            lane.held.clear();
            self.remove_if_idle(endpoint);
        }
    }

    /// Takes every waiting job of every lane (shutdown).
    pub fn take_all_queued(&mut self) -> Vec<DispatchJob> {
        let ids: Vec<EndpointId> = self.lanes.keys().cloned().collect();
        ids.iter().flat_map(|id| self.take_queued(id)).collect()
    }

    /// Whether any lane is full.
    pub fn any_excluded(&self) -> bool {
        !self.excluded.is_empty()
    }

    /// Endpoints whose lanes are full: the scan skips them.
    pub fn excluded(&self) -> Vec<EndpointId> {
        self.excluded.iter().cloned().collect()
    }

    /// Whether a lane that shed work has drained to half since the last call.
    pub fn take_reopened(&mut self) -> bool {
        std::mem::take(&mut self.reopened)
    }

    /// Jobs waiting in all lanes.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Sends in flight in all lanes.
    pub fn in_flight(&self) -> usize {
        self.lanes.values().map(|l| l.in_flight).sum()
    }

    /// Sends in flight per endpoint (endpoints with none are left out).
    pub fn in_flight_by_endpoint(&self) -> impl Iterator<Item = (&EndpointId, usize)> {
        self.lanes
            .iter()
            .filter(|(_, l)| l.in_flight > 0)
            .map(|(id, l)| (id, l.in_flight))
    }

    fn remove_if_idle(&mut self, endpoint: &EndpointId) {
        if self
            .lanes
            .get(endpoint)
            .is_some_and(|l| l.in_flight == 0 && l.queue.is_empty() && l.held.is_empty())
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

    fn start(lanes: &mut Lanes, ep: &EndpointId, max: usize) -> Option<DispatchJob> {
        lanes
            .start_next(ep, max, Timestamp::now(), || true)
            .map(|s| s.job)
    }

    #[test]
    fn keyed_jobs_go_in_publish_order_one_per_key_and_wait_for_a_held_head() {
        let ep = EndpointId::new();
        let mut lanes = Lanes::new(10);
        let jobs: Vec<DispatchJob> = (0..4).map(|_| job(&ep)).collect();
        let k = |s: &str| Some(s.to_owned());
        // Arrival order differs from publish order.
        lanes.push(jobs[2].clone(), k("a")).unwrap();
        lanes.push(jobs[0].clone(), k("a")).unwrap();
        lanes.push(jobs[1].clone(), k("b")).unwrap();
        lanes.push(jobs[3].clone(), k("a")).unwrap();
        let first = start(&mut lanes, &ep, 10).unwrap();
        assert_eq!(first.delivery, jobs[0].delivery);
        let second = start(&mut lanes, &ep, 10).unwrap();
        assert_eq!(second.delivery, jobs[1].delivery, "key b goes in parallel");
        assert!(start(&mut lanes, &ep, 10).is_none(), "key a is busy");
        // The head of `a` fails and waits for a retry: `a` stays held.
        lanes.finish(&ep, Some("a"));
        let far = Timestamp::now().plus(std::time::Duration::from_secs(60));
        lanes.hold(&ep, "a".into(), jobs[0].delivery.clone(), far);
        assert!(start(&mut lanes, &ep, 10).is_none(), "key a is held");
        lanes.push(jobs[0].clone(), k("a")).unwrap();
        let again = start(&mut lanes, &ep, 10).unwrap();
        assert_eq!(again.delivery, jobs[0].delivery, "the head goes first");
        lanes.finish(&ep, Some("a"));
        assert_eq!(
            start(&mut lanes, &ep, 10).unwrap().delivery,
            jobs[2].delivery
        );
    }

    #[test]
    fn a_hold_lapses_after_its_deadline_and_admit_can_refuse() {
        let ep = EndpointId::new();
        let mut lanes = Lanes::new(10);
        lanes.push(job(&ep), Some(String::new())).unwrap();
        lanes.hold(&ep, String::new(), DeliveryId::new(), Timestamp(0));
        assert!(lanes
            .start_next(&ep, 1, Timestamp::now(), || false)
            .is_none());
        assert_eq!(lanes.queued(), 1, "a refused admit leaves the job queued");
        assert!(start(&mut lanes, &ep, 1).is_some());
    }

    #[test]
    fn respects_max_in_flight_and_removes_idle_lanes() {
        let ep = EndpointId::new();
        let mut lanes = Lanes::new(10);
        for _ in 0..3 {
            lanes.push(job(&ep), None).unwrap();
        }
        assert!(start(&mut lanes, &ep, 2).is_some());
        assert!(start(&mut lanes, &ep, 2).is_some());
        assert!(start(&mut lanes, &ep, 2).is_none());
        lanes.finish(&ep, None);
        assert!(start(&mut lanes, &ep, 2).is_some());
        assert_eq!((lanes.queued(), lanes.in_flight()), (0, 2));
        lanes.finish(&ep, None);
        lanes.finish(&ep, None);
        assert!(lanes.lanes.is_empty());
    }

    #[test]
    fn a_full_lane_sheds_jobs_and_is_excluded_until_half_drained() {
        let ep = EndpointId::new();
        let other = EndpointId::new();
        let mut lanes = Lanes::new(4);
        for _ in 0..4 {
            lanes.push(job(&ep), None).unwrap();
        }
        assert!(lanes.push(job(&ep), None).is_err());
        assert!(lanes.push(job(&other), None).is_ok());
        assert_eq!(lanes.excluded(), vec![ep.clone()]);
        start(&mut lanes, &ep, 10).unwrap();
        start(&mut lanes, &ep, 10).unwrap();
        assert_eq!(
            lanes.excluded(),
            vec![ep.clone()],
            "2 of 4 left is not below half"
        );
        assert!(!lanes.take_reopened());
        start(&mut lanes, &ep, 10).unwrap();
        assert!(lanes.excluded().is_empty());
        assert!(lanes.take_reopened(), "the shed work is to be scanned for");
        assert!(!lanes.take_reopened());
    }
}
