//! A rule as configured: what it matches (paths in normal form, methods,
//! route name) and what it demands (nothing, or a token with scopes and
//! claims).

use crate::config::{Mode, RuleConfig};
use crate::path::{self, PathRules};
use crate::rules::Matcher;
use crate::text::clip;

use super::defaults as d;
use super::errors::Problems;
use super::names::{is_name, is_token};
use super::provider::claim_rules;
use super::{Access, ProviderId, Rule, TokenRequirement};

/// Rule `i`; every problem is recorded, `None` when there was one.
/// `providers`: every provider name declared, in order (compiled or not, so
/// a rule naming a broken provider adds no second problem).
pub fn compile(
    i: usize,
    r: &RuleConfig,
    providers: &[&str],
    mode: Mode,
    paths: &PathRules,
    problems: &mut Problems,
) -> Option<Rule> {
    let at = |f: &str| format!("rules[{i}].{f}");
    let before = problems.len();
    let matcher = matcher(r, paths, &at, problems);
    let access = access(r, providers, &at, problems);
    let name = match &r.name {
        Some(n) if !is_name(n) => {
            problems.refuse(
                at("name"),
                format!(
                    "rule names use letters, digits, '_' and '-' (at most {})",
                    d::MAX_NAME_LEN
                ),
            );
            None
        }
        Some(n) => Some(n.clone()),
        None => Some(i.to_string()),
    };
    if problems.len() != before {
        return None;
    }
    Some(Rule {
        name: name?,
        matcher: matcher?,
        access: access?,
        mode: r.mode.unwrap_or(mode),
    })
}

fn matcher(
    r: &RuleConfig,
    paths: &PathRules,
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Option<Matcher> {
    let m = &r.match_;
    // Request paths are matched in normal form, so rule paths are put in
    // the same form here (`/%7Eadmin` is `/~admin`, `/api/./x` is `/api/x`);
    // a rule path that no request path can equal is refused.
    let mut path_field = |name: &str, v: &Option<String>| -> Option<Option<Vec<u8>>> {
        let field = at(&format!("match.{name}"));
        match v {
            None => Some(None),
            Some(p) if !p.starts_with('/') => {
                problems.refuse(field, "must start with '/'");
                None
            }
            Some(p) if p.contains(['?', '#']) => {
                problems.refuse(field, "must not contain a query or fragment");
                None
            }
            Some(p) => match path::normalize(p.as_bytes(), paths) {
                Ok(normal) => Some(Some(normal.into_owned())),
                Err(problem) => {
                    problems.refuse(
                        field,
                        format!(
                            "can never match: {} (refused in request paths; see path_normalization.ambiguous)",
                            problem.description()
                        ),
                    );
                    None
                }
            },
        }
    };
    let path = path_field("path", &m.path);
    let prefix = path_field("prefix", &m.prefix);
    let methods = match &m.methods {
        None => Some(None),
        Some(ms) if ms.is_empty() => {
            problems.refuse(at("match.methods"), "must not be empty");
            None
        }
        Some(ms) => {
            let mut out = Vec::with_capacity(ms.len());
            for (j, method) in ms.iter().enumerate() {
                if is_token(method) {
                    out.push(method.to_ascii_uppercase().into_bytes());
                } else {
                    problems.refuse(at(&format!("match.methods[{j}]")), "is not an HTTP method");
                }
            }
            (out.len() == ms.len()).then_some(Some(out))
        }
    };
    if m.route.as_deref() == Some("") {
        problems.refuse(at("match.route"), "must not be empty");
    }
    Some(Matcher {
        path: path?,
        prefix: prefix?,
        route: m.route.as_ref().map(|r| r.as_bytes().to_vec()),
        methods: methods?,
    })
}

fn access(
    r: &RuleConfig,
    providers: &[&str],
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Option<Access> {
    let req = match (r.allow_anonymous, &r.requires) {
        (true, Some(_)) => {
            problems.refuse(
                at("requires"),
                "a rule cannot both allow_anonymous and require a token",
            );
            return None;
        }
        (true, None) => return Some(Access::Anonymous),
        (false, None) => {
            problems.refuse(at("requires"), "required unless allow_anonymous is true");
            return None;
        }
        (false, Some(req)) => req,
    };
    let provider: Option<ProviderId> = match &req.provider {
        Some(name) => {
            let found = providers.iter().position(|p| p == name);
            if found.is_none() {
                problems.refuse(
                    at("requires.provider"),
                    format!("unknown provider \"{}\"", clip(name, d::MAX_NAME_LEN)),
                );
            }
            found
        }
        None if providers.len() == 1 => Some(0),
        None => {
            problems.refuse(
                at("requires.provider"),
                "required when more than one provider is configured",
            );
            None
        }
    };
    let mut scope_list = |name: &str, list: &[String]| -> Vec<String> {
        for (j, s) in list.iter().enumerate() {
            if s.is_empty()
                || s.bytes()
                    .any(|b| b <= b' ' || b == b'"' || b == b'\\' || b >= 0x7f)
            {
                problems.refuse(at(&format!("requires.{name}[{j}]")), "is not a scope token");
            }
        }
        list.to_vec()
    };
    let any_scopes = scope_list("scopes", &req.scopes);
    let all_scopes = scope_list("all_scopes", &req.all_scopes);
    let mut named: Vec<&str> = Vec::new();
    for s in any_scopes.iter().chain(&all_scopes) {
        if !named.contains(&s.as_str()) {
            named.push(s);
        }
    }
    let scope_hint = (!named.is_empty()).then(|| named.join(" "));
    let claims = claim_rules(&at("requires.claims"), &req.claims, problems);
    Some(Access::Token(TokenRequirement {
        provider: provider?,
        any_scopes,
        all_scopes,
        claims,
        scope_hint,
    }))
}
