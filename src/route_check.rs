//! Route-name rules decided on the route the request is forwarded on.
//!
//! Envoy picks a route before the filter runs. When the filter then edits
//! request headers (claim headers set, client copies removed, the token
//! stripped, `:path` rewritten), Envoy clears its route cache and the router
//! selects the route again on the edited request: it may be another route,
//! whose rule never ran. A proxy-wasm filter cannot see that second
//! selection (`xds.route_name` keeps the first until some filter asks Envoy
//! for the route again). So with `route_check: true` the filter runs twice:
//!
//! 1. the first pass decides as usual and, when it forwards, leaves a
//!    [`Ticket`] in the stream's filter state: the route it decided on, and
//!    whether it removed the token;
//! 2. a filter that makes Envoy select the route again (any filter that
//!    reads per-route configuration, e.g. an empty `header_mutation`) runs;
//! 3. the second pass finds the ticket. Same route: the request goes on
//!    untouched. Another route: the policy decides again on the request as
//!    it now is, under the new route ([`second_pass`]); it goes on only if
//!    that decision allows it and needs no further edit (another edit could
//!    make Envoy select yet another route). Otherwise it is refused.

use std::borrow::Cow;

use crate::denial::{Denial, DenyReason};
use crate::engine::{Evaluation, Outcome};
use crate::plan::{Edits, Plan, plan};
use crate::policy::Policy;
use crate::request::RequestHead;

/// The filter-state property the first pass leaves (Envoy stores it as
/// `wasm.jwt_policy_route`; clients cannot set filter state).
pub const TICKET_PROPERTY: &str = "jwt_policy_route";

/// What the first pass tells the second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The first pass removed the token (the provider does not forward it),
    /// so the second cannot verify it again.
    pub token_removed: bool,
    /// The route name the first pass decided on (empty: none).
    pub route: Vec<u8>,
}

impl Ticket {
    /// The ticket for a request the first pass forwards.
    pub fn after(eval: &Evaluation, route: Option<&[u8]>) -> Ticket {
        Ticket {
            token_removed: matches!(&eval.outcome, Outcome::Allow(g) if g.strip.is_some()),
            route: route.unwrap_or_default().to_vec(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.route.len().saturating_add(1));
        out.push(if self.token_removed { b's' } else { b'k' });
        out.extend_from_slice(&self.route);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Ticket> {
        let (flag, route) = bytes.split_first()?;
        let token_removed = match flag {
            b's' => true,
            b'k' => false,
            _ => return None,
        };
        Some(Ticket {
            token_removed,
            route: route.to_vec(),
        })
    }

    /// Whether the route Envoy selected now is the one decided on.
    pub fn same_route(&self, route: Option<&[u8]>) -> bool {
        route.unwrap_or_default() == self.route.as_slice()
    }
}

/// The refusal when a decision cannot be repeated for the new route.
pub fn rerouted() -> Denial {
    Denial::forbidden(
        DenyReason::Rerouted,
        Cow::Borrowed("request re-routed after authorization"),
        None,
    )
}

/// The second pass for a request Envoy re-routed: `eval` is the policy's
/// decision on the request as forwarded (`head`), under the new route.
/// Returns the evaluation to count and the plan to carry out.
pub fn second_pass(
    policy: &Policy,
    mut eval: Evaluation,
    head: &RequestHead,
    ticket: &Ticket,
) -> (Evaluation, Plan) {
    let planned = plan(policy, &eval, head);
    let refuse = match (&eval.outcome, &planned) {
        // The first pass took the token away: no token now says nothing.
        (Outcome::Deny(d), _) => ticket.token_removed && d.reason == DenyReason::Missing,
        (_, Plan::Forward(edits)) => edits.changes(head),
        _ => false,
    };
    if refuse {
        eval.outcome = Outcome::Deny(rerouted());
        let refused = plan(policy, &eval, head);
        return (eval, refused);
    }
    let planned = match planned {
        // Every edit is already in place.
        Plan::Forward(_) => Plan::Forward(Edits::default()),
        other => other,
    };
    (eval, planned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CacheUse, Grant};
    use crate::extract::TokenSite;
    use crate::policy::tests::example;

    fn eval(outcome: Outcome) -> Evaluation {
        Evaluation {
            rule: Some(1),
            provider: Some(0),
            kid: None,
            cache: CacheUse::NotUsed,
            outcome,
            rewrite: None,
            claim_state: Vec::new(),
        }
    }

    #[test]
    fn tickets_round_trip() {
        let allow = eval(Outcome::Allow(Grant::default()));
        let t = Ticket::after(&allow, Some(b"orders"));
        assert_eq!(Ticket::decode(&t.encode()), Some(t.clone()));
        assert!(t.same_route(Some(b"orders")));
        assert!(!t.same_route(Some(b"partner")));
        assert!(!t.same_route(None));
        let stripped = eval(Outcome::Allow(Grant {
            headers: vec![],
            strip: Some(TokenSite::Header("authorization".into())),
        }));
        let t = Ticket::after(&stripped, None);
        assert!(t.token_removed && t.same_route(None));
        assert_eq!(Ticket::decode(&t.encode()), Some(t));
        assert_eq!(Ticket::decode(b""), None);
        assert_eq!(Ticket::decode(b"xroute"), None);
    }

    #[test]
    fn a_rerouted_request_goes_on_only_unchanged() {
        let policy = crate::policy::Policy::from_json(example().to_string().as_bytes()).unwrap();
        let kept = Ticket {
            token_removed: false,
            route: b"default_route".to_vec(),
        };
        let claims = |v: &str| {
            eval(Outcome::Allow(Grant {
                headers: vec![("x-client-id".into(), v.into())],
                strip: None,
            }))
        };
        let head = RequestHead::from_pairs(&[(":path", "/admin"), ("x-client-id", "c1")]);
        // Allowed under the new route with the same claim header: goes on,
        // untouched.
        let (e, p) = second_pass(&policy, claims("c1"), &head, &kept);
        assert!(matches!(e.outcome, Outcome::Allow(_)));
        assert_eq!(p, Plan::Forward(Edits::default()));
        // Would need another edit: refused.
        let (e, p) = second_pass(&policy, claims("c2"), &head, &kept);
        assert!(matches!(&e.outcome, Outcome::Deny(d) if d.reason == DenyReason::Rerouted));
        assert!(matches!(p, Plan::Respond(r) if r.status == 403));
        // Denied under the new route: that denial.
        let scope = Denial::forbidden(DenyReason::Scope, "token lacks the required scope", None);
        let (e, _) = second_pass(&policy, eval(Outcome::Deny(scope.clone())), &head, &kept);
        assert_eq!(e.outcome, Outcome::Deny(scope));
        // No token because the first pass removed it: re-routed.
        let removed = Ticket {
            token_removed: true,
            ..kept.clone()
        };
        let (e, _) = second_pass(
            &policy,
            eval(Outcome::Deny(Denial::missing())),
            &head,
            &removed,
        );
        assert!(matches!(&e.outcome, Outcome::Deny(d) if d.reason == DenyReason::Rerouted));
        let (e, _) = second_pass(
            &policy,
            eval(Outcome::Deny(Denial::missing())),
            &head,
            &kept,
        );
        assert!(matches!(&e.outcome, Outcome::Deny(d) if d.reason == DenyReason::Missing));
    }
}
