//! From a decision to what the host does with the request: header edits and
//! forward, a local response, or wait. Report mode is applied here.

use crate::config::Mode;
use crate::decision::HttpResponse;
use crate::engine::{Evaluation, Outcome, Wait};
use crate::extract::{TokenSite, remove_cookie, remove_query_param};
use crate::policy::Policy;
use crate::request::RequestView;
use crate::text::clip;

/// Header edits before forwarding: first `remove`, then `set` (replacing).
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
}

/// What the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Forward(Edits),
    Respond(HttpResponse),
    Wait(Wait),
}

/// Turns an evaluation into host instructions.
pub fn plan(policy: &Policy, eval: &Evaluation, req: &mut dyn RequestView) -> Plan {
    let mut edits = Edits {
        remove: policy.managed_headers.clone(),
        set: Vec::new(),
    };
    let report = policy.mode_for(eval.rule) == Mode::Report;
    match &eval.outcome {
        Outcome::Wait(w) => Plan::Wait(*w),
        Outcome::Deny(denial) if report => {
            edits.set.push((
                policy.decision_header.clone(),
                format!("deny; reason={}; status={}", denial.reason, denial.status).into_bytes(),
            ));
            Plan::Forward(edits)
        }
        Outcome::Deny(denial) => Plan::Respond(denial.response(&policy.realm)),
        Outcome::Allow(grant) => {
            for (name, value) in &grant.headers {
                edits.set.push((name.clone(), value.clone().into_bytes()));
            }
            match &grant.strip {
                None => {}
                Some(TokenSite::Header(name)) => edits.remove.push(name.clone()),
                Some(TokenSite::Param(name)) => {
                    if let Some(target) = req.path() {
                        edits
                            .set
                            .push((":path".into(), remove_query_param(&target, name)));
                    }
                }
                Some(TokenSite::Cookie(name)) => {
                    if let Some(cookies) = req.header("cookie") {
                        match remove_cookie(&cookies, name) {
                            Some(rest) => edits.set.push(("cookie".into(), rest)),
                            None => edits.remove.push("cookie".into()),
                        }
                    }
                }
            }
            if report {
                edits
                    .set
                    .push((policy.decision_header.clone(), b"allow".to_vec()));
            }
            Plan::Forward(edits)
        }
    }
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
