//! A rule as configured: what it matches (paths in normal form, methods,
//! route name) and what it demands (nothing, or a token with scopes and
//! claims).

use crate::config::{Mode, RuleConfig};
use crate::hosts::HostPattern;
use crate::path::{self, PathRules};
use crate::path_template::PathTemplate;
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
    // The literal parts of a template get the normal form too; a template
    // with `{...}` is normal as long as its literals are.
    let template = match &m.path_template {
        None => Some(None),
        Some(_) if m.path.is_some() || m.prefix.is_some() => {
            problems.refuse(
                at("match.path_template"),
                "exclusive with match.path and match.prefix",
            );
            None
        }
        Some(t) => match path_field("path_template", &Some(t.clone())) {
            Some(Some(normal)) => match PathTemplate::parse(&String::from_utf8_lossy(&normal)) {
                Ok(parsed) => Some(Some(parsed)),
                Err(why) => {
                    problems.refuse(at("match.path_template"), why);
                    None
                }
            },
            _ => None,
        },
    };
    let hosts = match &m.hosts {
        None => Some(None),
        Some(hs) if hs.is_empty() => {
            problems.refuse(at("match.hosts"), "must not be empty");
            None
        }
        Some(hs) => {
            let mut out = Vec::with_capacity(hs.len());
            for (j, h) in hs.iter().enumerate() {
                match HostPattern::parse(h) {
                    Ok(p) => out.push(p),
                    Err(why) => problems.refuse(at(&format!("match.hosts[{j}]")), why),
                }
            }
            (out.len() == hs.len()).then_some(Some(out))
        }
    };
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
        template: template?,
        hosts: hosts?,
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
        (true, None) if r.allow_missing => {
            problems.refuse(
                at("allow_missing"),
                "only with requires (an anonymous rule ignores tokens)",
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
    let mut resolve = |field: &str, name: &str| -> Option<ProviderId> {
        let found = providers.iter().position(|p| *p == name);
        if found.is_none() {
            problems.refuse(
                at(field),
                format!("unknown provider \"{}\"", clip(name, d::MAX_NAME_LEN)),
            );
        }
        found
    };
    let chosen: Option<Vec<ProviderId>> = match (&req.provider, &req.providers) {
        (Some(_), Some(_)) => {
            problems.refuse(at("requires.providers"), "exclusive with requires.provider");
            None
        }
        (Some(name), None) => resolve("requires.provider", name).map(|p| vec![p]),
        (None, Some(names)) if names.is_empty() => {
            problems.refuse(at("requires.providers"), "must not be empty");
            None
        }
        (None, Some(names)) => {
            let ids: Vec<Option<ProviderId>> = names
                .iter()
                .enumerate()
                .map(|(j, n)| resolve(&format!("requires.providers[{j}]"), n))
                .collect();
            let ids: Option<Vec<ProviderId>> = ids.into_iter().collect();
            if let Some(ids) = &ids
                && ids
                    .iter()
                    .enumerate()
                    .any(|(j, id)| ids.get(..j).unwrap_or_default().contains(id))
            {
                problems.refuse(at("requires.providers"), "a provider is listed twice");
                return None;
            }
            ids
        }
        (None, None) if providers.len() == 1 => Some(vec![0]),
        (None, None) => {
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
        providers: chosen?,
        allow_missing: r.allow_missing,
        any_scopes,
        all_scopes,
        claims,
        scope_hint,
    }))
}
