//! The filter's stats, an operator contract: their names, which ones a
//! decision counts, and the batching of request counters. Envoy shows
//! custom metrics under `wasmcustom.`; all of ours start with `jwt_policy.`:
//!
//! | name | kind |
//! |---|---|
//! | `jwt_policy.allowed`, `jwt_policy.denied.<reason>` | counter |
//! | `jwt_policy.provider.<p>.rule.<r>.allowed` / `.denied.<reason>` | counter |
//!
//! `<p>` is the provider that verified (or refused) the token; `anonymous`
//! for an anonymous rule, `none` when no provider of a rule with several
//! could be chosen (no token, or an `iss` none of them has).
//!
//! | name | kind |
//! |---|---|
//! | `jwt_policy.report.would_deny.<reason>` and per provider/rule `.would_deny.<reason>` | counter |
//! | `jwt_policy.token_cache.hit` / `.miss` | counter |
//! | `jwt_policy.verify.host` / `.pure` | counter |
//! | `jwt_policy.jwks.<p>.fetch_started` / `_succeeded` / `_failed` / `.unknown_kid_refetch` | counter |
//! | `jwt_policy.jwks.<p>.fetch_failed.<reason>` (`no_response`, `status`, `too_large`, `unusable`, `empty`, `not_started`) | counter |
//! | `jwt_policy.route_check.rerouted` | counter |
//! | `jwt_policy.jwks.<p>.keys`, `jwt_policy.jwks.<p>.version` | gauge |
//! | `jwt_policy.vm_memory_bytes` (largest VM's linear memory) | gauge |
//! | `jwt_policy.plugin.<plugin>.config_version` (the hash of [`crate::config_version`]) | gauge |
//! | `jwt_policy.plugin.<plugin>.resource_version` (Istio's WasmPlugin resource version) | gauge |
//! | `jwt_policy.plugin.<plugin>.config_refused` (configurations refused since the proxy started) | gauge |
//!
//! `<plugin>` is the plugin's name (Istio: `<namespace>.<name>`, with `.`
//! written `_`): one Envoy may run several instances of the filter.
//!
//! Request counters are added up in the VM and handed to the host in
//! batches ([`Batch`]): at most [`FLUSH_EVERY_MS`] apart from the request
//! path, and on every tick, which runs at that pace while counts wait.
//! `/stats` therefore lags by about a tenth of a second, and most requests
//! make no stats hostcall at all (bench/PROFILE.md). Counts still pending
//! when a VM is torn down are lost.

use crate::config::Mode;
use crate::denial::DenyReason;
use crate::engine::{CacheUse, Evaluation, Outcome};
use crate::policy::{Access, Policy, ProviderId, RuleId};
use crate::remote_jwks::records::FetchFailureKind;

/// How stale the request counters in `/stats` may get.
pub const FLUSH_EVERY_MS: u64 = 100;

/// Counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// The rule a decision was made under, and the provider it was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleStat {
    pub rule: RuleId,
    pub provider: Option<ProviderId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Allowed,
    Denied(DenyReason),
    RuleAllowed(RuleStat),
    RuleDenied(RuleStat, DenyReason),
    WouldDeny(DenyReason),
    RuleWouldDeny(RuleStat, DenyReason),
    CacheHit,
    CacheMiss,
    VerifyHost,
    VerifyPure,
    FetchStarted(ProviderId),
    FetchSucceeded(ProviderId),
    FetchFailed(ProviderId),
    /// A failed fetch, by reason.
    FetchFailedFor(ProviderId, FetchFailureKind),
    UnknownKidRefetch(ProviderId),
    KeysInUse(ProviderId),
    KeysVersion(ProviderId),
    /// The linear memory of the largest VM.
    VmMemoryBytes,
    /// The route check's second pass found another route than the first.
    RouteRerouted,
}

impl Metric {
    pub fn kind(self) -> Kind {
        match self {
            Metric::KeysInUse(_) | Metric::KeysVersion(_) | Metric::VmMemoryBytes => Kind::Gauge,
            _ => Kind::Counter,
        }
    }

    /// The stat's name (see the module documentation).
    pub fn name(self, policy: &Policy) -> String {
        let provider = |p: ProviderId| {
            policy
                .providers
                .get(p)
                .map_or("unknown", |p| p.name.as_str())
        };
        let rule = |r: RuleStat| {
            let rule = policy.rules.get(r.rule);
            let name = rule.map_or("unknown", |r| r.name.as_str());
            let who = match (r.provider, rule.map(|r| &r.access)) {
                (Some(p), _) => provider(p),
                (None, Some(Access::Token(_))) => "none",
                (None, _) => "anonymous",
            };
            format!("jwt_policy.provider.{who}.rule.{name}")
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
            Metric::FetchFailedFor(p, kind) => {
                format!(
                    "jwt_policy.jwks.{}.fetch_failed.{}",
                    provider(p),
                    kind.name()
                )
            }
            Metric::UnknownKidRefetch(p) => {
                format!("jwt_policy.jwks.{}.unknown_kid_refetch", provider(p))
            }
            Metric::KeysInUse(p) => format!("jwt_policy.jwks.{}.keys", provider(p)),
            Metric::KeysVersion(p) => format!("jwt_policy.jwks.{}.version", provider(p)),
            Metric::VmMemoryBytes => "jwt_policy.vm_memory_bytes".into(),
            Metric::RouteRerouted => "jwt_policy.route_check.rerouted".into(),
        }
    }
}

/// Stats of one plugin instance, kept apart from other instances (and
/// written before any policy exists: a refused configuration has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginMetric {
    ConfigVersion,
    ResourceVersion,
    ConfigRefused,
}

impl PluginMetric {
    /// All gauges: the refusal count is kept in the shared store and
    /// published by the VMs that go on deciding
    /// ([`crate::config_version::Refusals`]).
    pub fn kind(self) -> Kind {
        Kind::Gauge
    }

    /// The stat's name for the plugin named `plugin`.
    pub fn name(self, plugin: &str) -> String {
        let leaf = match self {
            PluginMetric::ConfigVersion => "config_version",
            PluginMetric::ResourceVersion => "resource_version",
            PluginMetric::ConfigRefused => "config_refused",
        };
        format!(
            "jwt_policy.plugin.{}.{leaf}",
            crate::config_version::stat_component(plugin)
        )
    }
}

/// Which verifier checked a request's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifiedBy {
    Host,
    Pure,
}

/// The counters one decision adds to (at most four): the cache, the
/// verifier, the outcome, and the outcome under its rule. A request that
/// waits for keys counts only when it is finally decided.
pub fn request_counts(
    policy: &Policy,
    eval: &Evaluation,
    verified_by: Option<VerifiedBy>,
) -> impl Iterator<Item = Metric> {
    let cache = match eval.cache {
        CacheUse::Hit => Some(Metric::CacheHit),
        CacheUse::Miss => Some(Metric::CacheMiss),
        CacheUse::NotUsed => None,
    };
    let verify = verified_by.map(|v| match v {
        VerifiedBy::Host => Metric::VerifyHost,
        VerifiedBy::Pure => Metric::VerifyPure,
    });
    let report = policy.mode_for(eval.rule) == Mode::Report;
    let rule = eval.rule.map(|rule| RuleStat {
        rule,
        provider: eval.provider,
    });
    let (overall, per_rule) = match &eval.outcome {
        Outcome::Wait(_) => (None, None),
        Outcome::Allow(_) => (Some(Metric::Allowed), rule.map(Metric::RuleAllowed)),
        Outcome::Deny(d) if report => (
            Some(Metric::WouldDeny(d.reason)),
            rule.map(|r| Metric::RuleWouldDeny(r, d.reason)),
        ),
        Outcome::Deny(d) => (
            Some(Metric::Denied(d.reason)),
            rule.map(|r| Metric::RuleDenied(r, d.reason)),
        ),
    };
    [cache, verify, overall, per_rule].into_iter().flatten()
}

/// Request counts not yet handed to the host, by the host's metric id.
#[derive(Debug, Default)]
pub struct Batch {
    pending: Vec<(u32, i64)>,
    last_flush: u64,
}

impl Batch {
    /// Adds one to counter `id`.
    pub fn count(&mut self, id: u32) {
        match self.pending.iter_mut().find(|(i, _)| *i == id) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => self.pending.push((id, 1)),
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether the last flush is [`FLUSH_EVERY_MS`] old at `now`.
    pub fn due(&self, now: u64) -> bool {
        now.saturating_sub(self.last_flush) >= FLUSH_EVERY_MS
    }

    /// The pending counts, to hand over now.
    pub fn take(&mut self, now: u64) -> Vec<(u32, i64)> {
        self.last_flush = now;
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denial::Denial;
    use crate::engine::Grant;

    fn policy() -> Policy {
        Policy::from_json(crate::policy::tests::example().to_string().as_bytes()).unwrap()
    }

    fn eval(rule: Option<RuleId>, outcome: Outcome, cache: CacheUse) -> Evaluation {
        Evaluation {
            rule,
            provider: Some(0),
            kid: None,
            cache,
            outcome,
            rewrite: None,
            claim_state: Vec::new(),
        }
    }

    fn rs(rule: RuleId, provider: Option<ProviderId>) -> RuleStat {
        RuleStat { rule, provider }
    }

    /// The names are what dashboards and alerts use: they change only on
    /// purpose.
    #[test]
    fn names_are_stable() {
        let p = policy();
        let names: Vec<String> = [
            Metric::Allowed,
            Metric::Denied(DenyReason::Scope),
            Metric::RuleAllowed(rs(1, Some(0))),
            Metric::RuleDenied(rs(0, None), DenyReason::Missing),
            Metric::RuleWouldDeny(rs(2, Some(0)), DenyReason::Expired),
            Metric::WouldDeny(DenyReason::Path),
            Metric::CacheHit,
            Metric::VerifyPure,
            Metric::FetchFailedFor(0, FetchFailureKind::Empty),
            Metric::UnknownKidRefetch(0),
            Metric::KeysVersion(0),
            Metric::RouteRerouted,
            Metric::VmMemoryBytes,
        ]
        .iter()
        .map(|m| m.name(&p))
        .collect();
        assert_eq!(
            names,
            [
                "jwt_policy.allowed",
                "jwt_policy.denied.scope",
                "jwt_policy.provider.cognito.rule.1.allowed",
                "jwt_policy.provider.anonymous.rule.0.denied.missing",
                "jwt_policy.provider.cognito.rule.2.would_deny.expired",
                "jwt_policy.report.would_deny.path",
                "jwt_policy.token_cache.hit",
                "jwt_policy.verify.pure",
                "jwt_policy.jwks.cognito.fetch_failed.empty",
                "jwt_policy.jwks.cognito.unknown_kid_refetch",
                "jwt_policy.jwks.cognito.version",
                "jwt_policy.route_check.rerouted",
                "jwt_policy.vm_memory_bytes",
            ]
        );
        assert_eq!(Metric::KeysInUse(0).kind(), Kind::Gauge);
        assert_eq!(
            PluginMetric::ConfigRefused.name("istio-system.jwt-policy"),
            "jwt_policy.plugin.istio-system_jwt-policy.config_refused"
        );
        assert_eq!(PluginMetric::ConfigVersion.kind(), Kind::Gauge);
        assert_eq!(Metric::Allowed.kind(), Kind::Counter);
    }

    #[test]
    fn a_decision_counts_cache_verifier_outcome_and_rule() {
        let p = policy();
        let allow = eval(Some(1), Outcome::Allow(Grant::default()), CacheUse::Hit);
        assert_eq!(
            request_counts(&p, &allow, None).collect::<Vec<_>>(),
            [
                Metric::CacheHit,
                Metric::Allowed,
                Metric::RuleAllowed(rs(1, Some(0)))
            ]
        );
        let deny = eval(Some(2), Outcome::Deny(Denial::missing()), CacheUse::NotUsed);
        assert_eq!(
            request_counts(&p, &deny, Some(VerifiedBy::Host)).collect::<Vec<_>>(),
            [
                Metric::VerifyHost,
                Metric::Denied(DenyReason::Missing),
                Metric::RuleDenied(rs(2, Some(0)), DenyReason::Missing)
            ]
        );
        let unmatched = eval(None, Outcome::Deny(Denial::missing()), CacheUse::Miss);
        assert_eq!(
            request_counts(&p, &unmatched, Some(VerifiedBy::Pure)).collect::<Vec<_>>(),
            [
                Metric::CacheMiss,
                Metric::VerifyPure,
                Metric::Denied(DenyReason::Missing)
            ]
        );
        let waiting = eval(
            Some(1),
            Outcome::Wait(crate::engine::Wait {
                provider: 0,
                newer_than: None,
            }),
            CacheUse::NotUsed,
        );
        assert_eq!(request_counts(&p, &waiting, None).count(), 0);
    }

    #[test]
    fn counts_are_batched_and_handed_over_on_time() {
        let mut b = Batch::default();
        assert!(!b.has_pending() && b.due(FLUSH_EVERY_MS));
        b.count(3);
        b.count(3);
        b.count(7);
        assert_eq!(b.take(1000), [(3, 2), (7, 1)]);
        assert!(!b.has_pending());
        assert!(!b.due(1000 + FLUSH_EVERY_MS - 1));
        assert!(b.due(1000 + FLUSH_EVERY_MS));
    }
}
