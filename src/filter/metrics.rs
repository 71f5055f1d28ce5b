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
//! | `jwt_policy.jwks.<p>.keys`, `jwt_policy.jwks.<p>.version` | gauge |
//! | `jwt_policy.vm_memory_bytes` (largest VM's linear memory) | gauge |
//!
//! Metrics are defined on first use and their ids kept, so the hot path
//! formats no names.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::decision::DenyReason;
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
        }
    }
}

/// Metric ids of one VM.
#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<Metric, u32>>,
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

    pub fn inc(&self, policy: &Policy, metric: Metric) {
        if let Some(id) = self.id(policy, metric) {
            abi::increment_metric(id, 1);
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
