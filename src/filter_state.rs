//! What a decision publishes as Envoy filter state, for access logs and
//! later filters (`%FILTER_STATE(wasm.jwt_policy.decision:PLAIN)%`). The
//! host sets each entry as a property; Envoy stores it under `wasm.` plus
//! the name.
//!
//! | name | value | published |
//! |---|---|---|
//! | `jwt_policy.decision` | `allow`, `deny`, or `would_deny` (report mode) | `decision_to_filter_state` |
//! | `jwt_policy.reason` | the denial reason (stats names) | with a denial |
//! | `jwt_policy.rule` | the rule's name | when a rule matched |
//! | `jwt_policy.provider` | the provider that verified the token | when one did |
//! | `jwt_policy.claim.<name>` | a claim (`claims_to_filter_state`) | when the token passed its provider's checks |
//!
//! Claims are published for a token that passed its provider's checks,
//! allowed or not: a log line for a 403 still names the client.

use crate::config::Mode;
use crate::engine::{Evaluation, Outcome};
use crate::policy::Policy;

pub const DECISION: &str = "jwt_policy.decision";
pub const REASON: &str = "jwt_policy.reason";
pub const RULE: &str = "jwt_policy.rule";
pub const PROVIDER: &str = "jwt_policy.provider";
pub const CLAIM_PREFIX: &str = "jwt_policy.claim.";

/// The entries to publish for a decided request (none for a request that
/// waits for keys).
pub fn entries(policy: &Policy, eval: &Evaluation) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    if matches!(eval.outcome, Outcome::Wait(_)) {
        return out;
    }
    if policy.decision_to_filter_state {
        let report = policy.mode_for(eval.rule) == Mode::Report;
        let (decision, reason) = match &eval.outcome {
            Outcome::Deny(d) if report => ("would_deny", Some(d.reason)),
            Outcome::Deny(d) => ("deny", Some(d.reason)),
            _ => ("allow", None),
        };
        out.push((DECISION.into(), decision.into()));
        if let Some(reason) = reason {
            out.push((REASON.into(), reason.name().into()));
        }
        if let Some(rule) = eval.rule.and_then(|r| policy.rules.get(r)) {
            out.push((RULE.into(), rule.name.clone().into_bytes()));
        }
        if let Some(p) = eval.provider.and_then(|p| policy.providers.get(p)) {
            out.push((PROVIDER.into(), p.name.clone().into_bytes()));
        }
    }
    for (name, value) in &eval.claim_state {
        out.push((format!("{CLAIM_PREFIX}{name}"), value.clone().into_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denial::{Denial, DenyReason};
    use crate::engine::{CacheUse, Grant, Wait};
    use serde_json::json;

    fn policy(decisions: bool, mode: &str) -> Policy {
        Policy::from_json(
            json!({
                "providers": {"idp": {"issuer": "i", "shared_secret_base64": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0zMg==",
                    "algorithms": ["HS256"],
                    "claims_to_filter_state": [{"claim": "client_id", "name": "client"}]}},
                "rules": [{"name": "orders", "match": {}, "requires": {}}],
                "decision_to_filter_state": decisions,
                "mode": mode
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn eval(outcome: Outcome, claims: &[(&str, &str)]) -> Evaluation {
        Evaluation {
            rule: Some(0),
            provider: Some(0),
            kid: None,
            cache: CacheUse::NotUsed,
            outcome,
            rewrite: None,
            claim_state: claims
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn names(entries: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_allowed_request_publishes_decision_rule_provider_and_claims() {
        let p = policy(true, "enforce");
        let e = eval(Outcome::Allow(Grant::default()), &[("client", "abc")]);
        assert_eq!(
            names(&entries(&p, &e)),
            pairs(&[
                ("jwt_policy.decision", "allow"),
                ("jwt_policy.rule", "orders"),
                ("jwt_policy.provider", "idp"),
                ("jwt_policy.claim.client", "abc"),
            ])
        );
    }

    #[test]
    fn a_denial_names_its_reason_and_report_mode_says_would_deny() {
        let deny = Outcome::Deny(Denial::invalid_token(DenyReason::Expired, "x"));
        let e = eval(deny, &[]);
        assert_eq!(
            names(&entries(&policy(true, "enforce"), &e)),
            pairs(&[
                ("jwt_policy.decision", "deny"),
                ("jwt_policy.reason", "expired"),
                ("jwt_policy.rule", "orders"),
                ("jwt_policy.provider", "idp"),
            ])
        );
        assert_eq!(
            names(&entries(&policy(true, "report"), &e)).first(),
            Some(&("jwt_policy.decision".into(), "would_deny".into()))
        );
    }

    #[test]
    fn claims_alone_without_decisions_and_nothing_while_waiting() {
        let e = eval(Outcome::Allow(Grant::default()), &[("client", "abc")]);
        assert_eq!(
            names(&entries(&policy(false, "enforce"), &e)),
            pairs(&[("jwt_policy.claim.client", "abc")])
        );
        let waiting = eval(
            Outcome::Wait(Wait {
                provider: 0,
                newer_than: None,
            }),
            &[("client", "abc")],
        );
        assert!(entries(&policy(true, "enforce"), &waiting).is_empty());
    }
}
