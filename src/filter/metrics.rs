//! The filter's stats. Envoy shows custom metrics under `wasmcustom.`; all
//! of ours start with `jwt_policy.`:
//!
//! | name | kind |
//! |---|---|
//! | `jwt_policy.allowed`, `jwt_policy.denied.<reason>` | counter |
//! | `jwt_policy.provider.<p>.rule.<r>.allowed` / `.denied.<reason>` | counter |
//! | `jwt_policy.report.would_deny.<reason>` and per provider/rule `.would_deny.<reason>` | counter |
//! | `jwt_policy.token_cache.hit` / `.miss` | counter |
//! | `jwt_policy.verify.host` / `.pure` | counter |
//! | `jwt_policy.jwks.<p>.fetch_started` / `_succeeded` / `_failed` / `.unknown_kid_refetch` | counter |
//! | `jwt_policy.jwks.<p>.fetch_failed.<reason>` (`no_response`, `status`, `too_large`, `unusable`, `empty`, `not_started`) | counter |
//! | `jwt_policy.route_check.rerouted` | counter |
//! | `jwt_policy.jwks.<p>.keys`, `jwt_policy.jwks.<p>.version` | gauge |
//! | `jwt_policy.vm_memory_bytes` (largest VM's linear memory) | gauge |
//!
//! Metrics are defined on first use and their ids kept, so the hot path
//! formats no names. Per-request counters are added up in the VM and handed
//! to Envoy in batches ([`Metrics::count`], [`Metrics::flush`]): at most
//! [`FLUSH_EVERY_MS`] apart from the request path, and on every tick, which
//! runs at that pace while counts wait. `/stats` therefore lags by about a
//! tenth of a second, and most requests make no stats hostcall at all (three
//! fewer hostcalls per allowed request; bench/PROFILE.md). Counts still
//! pending when a VM is torn down are lost.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::denial::DenyReason;
use crate::jwks_cache::FetchFailureKind;
use crate::policy::{Policy, ProviderId, RuleId};

use super::abi::{self, MetricKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Allowed,
    Denied(DenyReason),
    RuleAllowed(RuleId),
    RuleDenied(RuleId, DenyReason),
    WouldDeny(DenyReason),
    RuleWouldDeny(RuleId, DenyReason),
    CacheHit,
    CacheMiss,
    VerifyHost,
    VerifyPure,
    FetchStarted(ProviderId),
    FetchSucceeded(ProviderId),
    FetchFailed(ProviderId),
    UnknownKidRefetch(ProviderId),
    KeysInUse(ProviderId),
    KeysVersion(ProviderId),
    /// The linear memory of the largest VM.
    VmMemoryBytes,
    /// The route check's second pass found another route than the first.
    RouteRerouted,
    /// A JWKS fetch failed, by reason.
    FetchFailedFor(ProviderId, FetchFailureKind),
}

impl Metric {
    fn kind(self) -> MetricKind {
        match self {
            Metric::KeysInUse(_) | Metric::KeysVersion(_) | Metric::VmMemoryBytes => {
                MetricKind::Gauge
            }
            _ => MetricKind::Counter,
        }
    }

    fn name(self, policy: &Policy) -> String {
        let provider = |p: ProviderId| {
            policy
                .providers
                .get(p)
                .map_or("unknown", |p| p.name.as_str())
        };
        let rule = |r: RuleId| {
            let rule = policy.rules.get(r);
            let name = rule.map_or("unknown", |r| r.name.as_str());
            let provider = rule
                .and_then(|r| match &r.access {
                    crate::policy::Access::Token(t) => Some(provider(t.provider)),
                    crate::policy::Access::Anonymous => None,
                })
                .unwrap_or("anonymous");
            format!("jwt_policy.provider.{provider}.rule.{name}")
        };
        match self {
            Metric::Allowed => "jwt_policy.allowed".into(),
            Metric::Denied(reason) => format!("jwt_policy.denied.{reason}"),
            Metric::RuleAllowed(r) => format!("{}.allowed", rule(r)),
            Metric::RuleDenied(r, reason) => format!("{}.denied.{reason}", rule(r)),
            Metric::WouldDeny(reason) => format!("jwt_policy.report.would_deny.{reason}"),
            Metric::RuleWouldDeny(r, reason) => format!("{}.would_deny.{reason}", rule(r)),
            Metric::CacheHit => "jwt_policy.token_cache.hit".into(),
            Metric::CacheMiss => "jwt_policy.token_cache.miss".into(),
            Metric::VerifyHost => "jwt_policy.verify.host".into(),
            Metric::VerifyPure => "jwt_policy.verify.pure".into(),
            Metric::FetchStarted(p) => format!("jwt_policy.jwks.{}.fetch_started", provider(p)),
            Metric::FetchSucceeded(p) => format!("jwt_policy.jwks.{}.fetch_succeeded", provider(p)),
            Metric::FetchFailed(p) => format!("jwt_policy.jwks.{}.fetch_failed", provider(p)),
            Metric::UnknownKidRefetch(p) => {
                format!("jwt_policy.jwks.{}.unknown_kid_refetch", provider(p))
            }
            Metric::KeysInUse(p) => format!("jwt_policy.jwks.{}.keys", provider(p)),
            Metric::KeysVersion(p) => format!("jwt_policy.jwks.{}.version", provider(p)),
            Metric::VmMemoryBytes => "jwt_policy.vm_memory_bytes".into(),
            Metric::RouteRerouted => "jwt_policy.route_check.rerouted".into(),
            Metric::FetchFailedFor(p, kind) => {
                format!(
                    "jwt_policy.jwks.{}.fetch_failed.{}",
                    provider(p),
                    kind.name()
                )
            }
        }
    }
}

/// How stale the request counters in `/stats` may get.
pub const FLUSH_EVERY_MS: u64 = 100;

/// Metric ids of one VM, and the counts not yet handed to the host.
#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<Metric, u32>>,
    /// `(metric id, count)`: the few counters requests touch.
    pending: RefCell<Vec<(u32, i64)>>,
    last_flush: Cell<u64>,
}

impl Metrics {
    fn id(&self, policy: &Policy, metric: Metric) -> Option<u32> {
        if let Some(id) = self.ids.try_borrow().ok()?.get(&metric) {
            return Some(*id);
        }
        let id = abi::define_metric(metric.kind(), &metric.name(policy)).ok()?;
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
        let Ok(mut pending) = self.pending.try_borrow_mut() else {
            abi::increment_metric(id, 1);
            return;
        };
        match pending.iter_mut().find(|(i, _)| *i == id) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => pending.push((id, 1)),
        }
    }

    pub fn has_pending(&self) -> bool {
        self.pending.try_borrow().is_ok_and(|p| !p.is_empty())
    }

    /// Hands the pending counts to the host.
    pub fn flush(&self, now: u64) {
        self.last_flush.set(now);
        if let Ok(mut pending) = self.pending.try_borrow_mut() {
            for (id, n) in pending.drain(..) {
                abi::increment_metric(id, n);
            }
        }
    }

    /// Flushes when the last flush is [`FLUSH_EVERY_MS`] old.
    pub fn flush_if_due(&self, now: u64) {
        if now.saturating_sub(self.last_flush.get()) >= FLUSH_EVERY_MS {
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
