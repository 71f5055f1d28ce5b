//! Adapts the core's stats ([`crate::stats`]: names, what a decision
//! counts, batching) to proxy-wasm metrics: defines each metric on first
//! use, keeps its id, and hands counts over.

use crate::hashing::TrustedKeyMap;
use crate::policy::Policy;
use crate::stats::{Batch, Kind, Metric};
use std::cell::RefCell;

use super::abi::{self, MetricKind};

#[derive(Default)]
pub struct Metrics {
    /// Metrics are the filter's own names: a word hash, not SipHash,
    /// on every count.
    ids: RefCell<TrustedKeyMap<Metric, u32>>,
    batch: RefCell<Batch>,
}

impl Metrics {
    fn id(&self, policy: &Policy, metric: Metric) -> Option<u32> {
        if let Some(id) = self.ids.try_borrow().ok()?.get(&metric) {
            return Some(*id);
        }
        let kind = match metric.kind() {
            Kind::Counter => MetricKind::Counter,
            Kind::Gauge => MetricKind::Gauge,
        };
        let id = abi::define_metric(kind, &metric.name(policy)).ok()?;
        self.ids.try_borrow_mut().ok()?.insert(metric, id);
        Some(id)
    }

    /// Adds one to a counter now (rare events: fetches and the like).
    pub fn inc(&self, policy: &Policy, metric: Metric) {
        if let Some(id) = self.id(policy, metric) {
            abi::increment_metric(id, 1);
        }
    }

    /// Adds one to a counter at the next [`flush`](Self::flush).
    pub fn count(&self, policy: &Policy, metric: Metric) {
        let Some(id) = self.id(policy, metric) else {
            return;
        };
        match self.batch.try_borrow_mut() {
            Ok(mut batch) => batch.count(id),
            Err(_) => abi::increment_metric(id, 1),
        }
    }

    pub fn has_pending(&self) -> bool {
        self.batch.try_borrow().is_ok_and(|b| b.has_pending())
    }

    /// Hands the pending counts to the host.
    pub fn flush(&self, now: u64) {
        let pending = match self.batch.try_borrow_mut() {
            Ok(mut batch) => batch.take(now),
            Err(_) => return,
        };
        for (id, n) in pending {
            abi::increment_metric(id, n);
        }
    }

    /// Flushes when the last flush is old enough.
    pub fn flush_if_due(&self, now: u64) {
        if self.batch.try_borrow().is_ok_and(|b| b.due(now)) {
            self.flush(now);
        }
    }

    /// Raises a gauge shared by all VMs to `value` if it is lower.
    pub fn raise(&self, policy: &Policy, metric: Metric, value: u64) {
        if let Some(id) = self.id(policy, metric)
            && abi::get_metric(id).is_none_or(|current| current < value)
        {
            abi::record_metric(id, value);
        }
    }

    pub fn set(&self, policy: &Policy, metric: Metric, value: u64) {
        if let Some(id) = self.id(policy, metric) {
            abi::record_metric(id, value);
        }
    }
}
