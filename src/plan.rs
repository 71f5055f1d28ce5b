//! From a decision to what the host does with the request: header edits and
//! forward, a local response, or wait. Report mode is applied here.
//!
//! The edits make the forwarded request the one that was decided on: the
//! path rewritten to its normal form when the client's was not, no copy of
//! a header the filter owns (claim headers, the decision header, in any
//! case or with `_` for `-`) unless the filter set it, and the token
//! removed when the provider does not forward it.

use crate::config::Mode;
use crate::denial::HttpResponse;
use crate::engine::{Evaluation, Outcome, Wait};
use crate::extract::{TokenSite, is_header_or_twin, remove_cookie, remove_query_param};
use crate::policy::Policy;
use crate::request::RequestHead;
use crate::text::clip;

/// Header edits before forwarding: first `remove` (every entry of each
/// name), then `set` (replacing every entry of the name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Edits {
    pub remove: Vec<String>,
    pub set: Vec<(String, Vec<u8>)>,
}

impl Edits {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.set
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty()
    }

    fn remove(&mut self, name: &[u8]) {
        let name = String::from_utf8_lossy(name);
        if !self.remove.iter().any(|n| *n == name) {
            self.remove.push(name.into_owned());
        }
    }

    fn set(&mut self, name: &str, value: Vec<u8>) {
        self.set.retain(|(n, _)| n != name);
        self.set.push((name.to_owned(), value));
    }

    /// The request head the upstream gets: `head` with the edits applied
    /// as a host applies them (a set header goes where its first entry was,
    /// or last).
    pub fn apply(&self, head: &RequestHead) -> RequestHead {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(head.len());
        for (name, value) in head.iter() {
            if self.remove.iter().any(|n| n.as_bytes() == name) {
                continue;
            }
            match self.set.iter().find(|(n, _)| n.as_bytes() == name) {
                // The first entry takes the new value; later ones go.
                Some((_, v)) => {
                    if !pairs.iter().any(|(n, _)| n == name) {
                        pairs.push((name.to_vec(), v.clone()));
                    }
                }
                None => pairs.push((name.to_vec(), value.to_vec())),
            }
        }
        for (name, value) in &self.set {
            if !pairs.iter().any(|(n, _)| n == name.as_bytes()) {
                pairs.push((name.as_bytes().to_vec(), value.clone()));
            }
        }
        RequestHead::from_pairs(&pairs)
    }

    /// Whether applying the edits changes anything in `head`.
    pub fn changes(&self, head: &RequestHead) -> bool {
        let present = |name: &str| head.values(name.as_bytes()).next().is_some();
        self.remove.iter().any(|n| present(n))
            || self.set.iter().any(|(n, v)| {
                let mut values = head.values(n.as_bytes());
                !(values.next() == Some(v.as_slice()) && values.next().is_none())
            })
    }
}

/// What the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Forward(Edits),
    Respond(HttpResponse),
    Wait(Wait),
}

/// Turns an evaluation into host instructions.
pub fn plan(policy: &Policy, eval: &Evaluation, head: &RequestHead) -> Plan {
    let report = policy.mode_for(eval.rule) == Mode::Report;
    let mut edits = Edits::default();
    // Every copy of a header the filter owns goes, whoever decides what.
    for (name, _) in head.iter() {
        if policy
            .managed_headers
            .iter()
            .any(|m| is_header_or_twin(name, m))
        {
            edits.remove(name);
        }
    }
    let original = head.target();
    let mut target = eval.rewrite.clone();
    match &eval.outcome {
        Outcome::Wait(w) => return Plan::Wait(*w),
        Outcome::Deny(denial) if report => {
            edits.set(
                &policy.decision_header,
                format!("deny; reason={}; status={}", denial.reason, denial.status).into_bytes(),
            );
        }
        Outcome::Deny(denial) => return Plan::Respond(denial.response(&policy.realm)),
        Outcome::Allow(grant) => {
            for (name, value) in &grant.headers {
                edits.set(name, value.clone().into_bytes());
            }
            match &grant.strip {
                None => {}
                Some(TokenSite::Header(name)) => {
                    for (entry, _) in head.iter() {
                        if is_header_or_twin(entry, name) {
                            edits.remove(entry);
                        }
                    }
                }
                Some(TokenSite::Param(name)) => {
                    let base = target.as_deref().unwrap_or(original);
                    target = Some(remove_query_param(base, name));
                }
                Some(TokenSite::Cookie(name)) => {
                    let cookies: Vec<&[u8]> = head.values(b"cookie").collect();
                    match remove_cookie(&cookies.join(&b"; "[..]), name) {
                        Some(rest) => edits.set("cookie", rest),
                        None => edits.remove(b"cookie"),
                    }
                }
            }
            if report {
                edits.set(&policy.decision_header, b"allow".to_vec());
            }
        }
    }
    if let Some(t) = target
        && t != original
    {
        edits.set(":path", t);
    }
    // A header that is set need not be removed first.
    edits
        .remove
        .retain(|r| !edits.set.iter().any(|(s, _)| s == r));
    Plan::Forward(edits)
}

/// One log line describing a decision: reason, provider, rule and `kid`,
/// never the token.
pub fn describe(policy: &Policy, eval: &Evaluation) -> String {
    let provider = eval
        .provider
        .and_then(|p| policy.providers.get(p))
        .map_or("-", |p| p.name.as_str());
    let rule = eval
        .rule
        .and_then(|r| policy.rules.get(r))
        .map_or("-", |r| r.name.as_str());
    let kid = eval
        .kid
        .as_deref()
        .map_or_else(|| "-".to_owned(), |k| clip(k, 64));
    let mode = match policy.mode_for(eval.rule) {
        Mode::Enforce => "",
        Mode::Report => " mode=report",
    };
    match &eval.outcome {
        Outcome::Allow(_) => format!("allow provider={provider} rule={rule} kid={kid}{mode}"),
        Outcome::Wait(w) => format!(
            "wait provider={provider} rule={rule} kid={kid} for={}",
            if w.newer_than.is_some() {
                "refetch"
            } else {
                "keys"
            }
        ),
        Outcome::Deny(d) => format!(
            "deny reason={} status={} provider={provider} rule={rule} kid={kid}{mode} description=\"{}\"",
            d.reason,
            d.status,
            clip(&d.description, 120)
        ),
    }
}
