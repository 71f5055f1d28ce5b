//! `jwt-policy check`: every plugin configuration in the given files is
//! compiled exactly as the filter compiles it (`Policy::from_json`); a
//! refusal is reported with its field path. Configurations that compile are
//! then linted for settings that are legal but risky.

use std::io::Write;
use std::path::PathBuf;

use jwt_policy::algorithm::Algorithm;
use jwt_policy::config::{Mode, PluginConfig, Unmatched};
use jwt_policy::policy::{self, Access, KeySource, Policy};

use crate::cli::{Failure, Status, emit, read_input};
use crate::yaml::{self, PluginSource};

/// Validate plugin configurations and warn about risky settings.
///
/// Each CONFIG is a plugin configuration (JSON or YAML), an Envoy bootstrap
/// (`envoy.yaml`: every `envoy.filters.http.wasm` filter whose
/// `config.configuration` is a `google.protobuf.StringValue`), or Istio
/// manifests (`WasmPlugin` `spec.pluginConfig`, `EnvoyFilter`), several
/// YAML documents per file allowed. `-` reads standard input.
///
/// Findings go to standard output, one per line:
/// `FILE[, LOCATION]: error|warning: FIELD: MESSAGE`. A file without any
/// plugin configuration (another manifest of the deployment) only gets a
/// note, but finding none in all the files is an error.
/// Exit status: 0 when every configuration is valid (warnings allowed
/// unless --strict), 1 when problems were found, 2 when a file cannot be
/// read.
#[derive(clap::Args)]
pub struct Args {
    /// Files to check (`-` for standard input).
    #[arg(required = true, value_name = "CONFIG")]
    configs: Vec<PathBuf>,
    /// Count warnings as problems (exit status 1).
    #[arg(long)]
    strict: bool,
    /// Print only errors and the summary, not warnings.
    #[arg(long, short)]
    quiet: bool,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

/// One problem or warning, at a field of the plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub field: String,
    pub message: String,
}

impl Finding {
    fn warning(field: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            level: Level::Warning,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A remote JWKS cached longer than this keeps a rotated-out key trusted.
const LONG_CACHE_TTL_S: u64 = 86_400;
/// Serving stale keys longer than this hides a broken JWKS endpoint.
const LONG_MAX_STALE_S: u64 = 7 * 86_400;
/// Clock skew above this accepts expired tokens for minutes.
const LARGE_CLOCK_SKEW_S: u64 = 300;

pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Failure> {
    let (mut configs, mut errors, mut warnings) = (0usize, 0usize, 0usize);
    for path in &args.configs {
        let bytes = read_input(path)?;
        let file = if path.as_os_str() == "-" {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        let found = match yaml::find_configs(&bytes) {
            Ok(found) => found,
            Err(why) => {
                emit(out, &format!("{file}: error: {why}\n"));
                errors = errors.saturating_add(1);
                continue;
            }
        };
        for (location, why) in &found.skipped {
            if !args.quiet {
                emit(
                    out,
                    &format!("{file}, {location}: warning: skipped: {why}\n"),
                );
            }
            warnings = warnings.saturating_add(1);
        }
        if found.configs.is_empty() {
            // Other manifests of a deployment (`check deploy/istio/*.yaml`)
            // are fine; finding nothing at all is not (see below).
            if !args.quiet {
                emit(
                    out,
                    &format!("{file}: note: no jwt-policy plugin configuration in this file\n"),
                );
            }
            continue;
        }
        for source in &found.configs {
            configs = configs.saturating_add(1);
            let label = label(&file, source);
            let (findings, summary) = check_source(source);
            for f in &findings {
                let level = match f.level {
                    Level::Error => {
                        errors = errors.saturating_add(1);
                        "error"
                    }
                    Level::Warning => {
                        warnings = warnings.saturating_add(1);
                        if args.quiet {
                            continue;
                        }
                        "warning"
                    }
                };
                let field = if f.field.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", f.field)
                };
                emit(out, &format!("{label}: {level}: {field}{}\n", f.message));
            }
            if let Some(summary) = summary
                && !args.quiet
            {
                emit(out, &format!("{label}: valid ({summary})\n"));
            }
        }
    }
    if configs == 0 && errors == 0 {
        emit(out, "error: no jwt-policy plugin configuration found\n");
        errors = 1;
    }
    emit(
        out,
        &format!(
            "{} checked: {}, {}\n",
            plural(configs, "configuration"),
            plural(errors, "error"),
            plural(warnings, "warning")
        ),
    );
    Ok(if errors > 0 || (args.strict && warnings > 0) {
        Status::No
    } else {
        Status::Ok
    })
}

fn label(file: &str, source: &PluginSource) -> String {
    if source.location.is_empty() {
        file.to_owned()
    } else {
        format!("{file}, {}", source.location)
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The findings for one configuration, and a one-line summary when it
/// compiles.
pub fn check_source(source: &PluginSource) -> (Vec<Finding>, Option<String>) {
    let refused = |e: policy::ConfigError| Finding {
        level: Level::Error,
        message: source.message(&e.message),
        field: e.field,
    };
    let config = match policy::parse_config(&source.json) {
        Ok(c) => c,
        Err(e) => return (vec![refused(e)], None),
    };
    let policy = match Policy::from_config(&config) {
        Ok(p) => p,
        Err(errors) => {
            return (
                errors.problems().iter().cloned().map(refused).collect(),
                None,
            );
        }
    };
    // The version the filter logs and publishes when it accepts this
    // configuration (`config_version` gauge).
    let version = jwt_policy::config_version::ConfigVersion::of(&source.json, None);
    let summary = format!(
        "{}, {}; version {}",
        plural(policy.providers.len(), "provider"),
        plural(policy.rules.len(), "rule"),
        version.hex()
    );
    (lint(&config, &policy), Some(summary))
}

/// A token rule on `GET` without `HEAD` whose `HEAD` requests fall to an
/// anonymous rule (or `unmatched: allow`): HEAD is GET without the body,
/// so the resource's headers leak without a token.
fn head_slips_through(policy: &Policy, i: usize) -> Option<Finding> {
    let rule = policy.rules.get(i)?;
    let methods = rule.matcher.methods.as_ref()?;
    let has = |m: &[u8]| methods.iter().any(|x| x.as_slice() == m);
    if !matches!(rule.access, Access::Token(_)) || !has(b"GET") || has(b"HEAD") {
        return None;
    }
    let head = jwt_policy::rules::Matcher {
        methods: Some(vec![b"HEAD".to_vec()]),
        ..rule.matcher.clone()
    };
    // The first rule that takes every HEAD request to these paths.
    let taker = policy
        .rules
        .iter()
        .enumerate()
        .find(|(j, r)| *j != i && head.is_shadowed_by(&r.matcher));
    let by = match taker {
        Some((_, r)) if matches!(r.access, Access::Anonymous) => {
            format!("anonymous rule {}", r.name)
        }
        Some(_) => return None,
        None if policy.unmatched == Unmatched::Allow => "unmatched: allow".to_owned(),
        None => return None,
    };
    Some(Finding::warning(
        format!("rules[{i}].match.methods"),
        format!(
            "rule {} needs a token for GET but not HEAD, and {by} lets HEAD through without one \
             (HEAD is GET without the body: add \"HEAD\")",
            rule.name
        ),
    ))
}

/// Warnings about a configuration that compiles.
pub fn lint(config: &PluginConfig, policy: &Policy) -> Vec<Finding> {
    let mut w = Vec::new();
    for p in &policy.providers {
        let at = |field: &str| format!("providers.{}.{field}", p.name);
        if p.audiences.is_empty() {
            w.push(Finding::warning(
                at("audiences"),
                "not set: tokens issued to any client of this issuer are accepted",
            ));
        }
        let hmac: Vec<&str> = p
            .algorithms
            .iter()
            .filter(|a| a.is_symmetric())
            .map(Algorithm::name)
            .collect();
        if !hmac.is_empty() {
            w.push(Finding::warning(
                at("algorithms"),
                format!(
                    "{} allowed: whoever can verify these tokens can also mint them; \
                     prefer an asymmetric algorithm with a JWKS",
                    hmac.join(", ")
                ),
            ));
        }
        if let KeySource::Remote(r) = &p.keys {
            if r.cache_ttl_s > LONG_CACHE_TTL_S {
                w.push(Finding::warning(
                    at("remote_jwks.cache_ttl_s"),
                    format!(
                        "{} s (more than a day): a key removed from the JWKS stays trusted that long",
                        r.cache_ttl_s
                    ),
                ));
            }
            if r.max_stale_s > LONG_MAX_STALE_S {
                w.push(Finding::warning(
                    at("remote_jwks.max_stale_s"),
                    format!(
                        "{} s (more than 7 days): while the JWKS cannot be fetched, old keys stay trusted that long",
                        r.max_stale_s
                    ),
                ));
            }
        }
        if p.clock_skew_s > LARGE_CLOCK_SKEW_S {
            w.push(Finding::warning(
                at("clock_skew_s"),
                format!(
                    "{} s: expired tokens are accepted for that long after exp",
                    p.clock_skew_s
                ),
            ));
        }
        if p.token_use.is_none() && is_cognito_issuer(&p.issuer) {
            w.push(Finding::warning(
                at("token_use"),
                "not set for a Cognito issuer: ID tokens of the pool are accepted as well \
                 as access tokens (set token_use: access)",
            ));
        }
    }
    if policy.unmatched == Unmatched::Allow {
        w.push(Finding::warning(
            "unmatched",
            "allow: requests that no rule matches go through without a token",
        ));
    }
    if config.mode == Mode::Report {
        w.push(Finding::warning(
            "mode",
            "report: denials are only reported, every request goes through",
        ));
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let at = |field: &str| format!("rules[{i}].{field}");
        let rule_config = config.rules.get(i);
        if config.mode != Mode::Report && rule_config.and_then(|r| r.mode) == Some(Mode::Report) {
            w.push(Finding::warning(
                at("mode"),
                format!(
                    "report: rule {} only reports its denials, its requests always go through",
                    rule.name
                ),
            ));
        }
        let earlier = policy.rules.get(..i).unwrap_or_default();
        if let Some(shadow) = earlier
            .iter()
            .find(|e| rule.matcher.is_shadowed_by(&e.matcher))
        {
            w.push(Finding::warning(
                at("match"),
                format!(
                    "rule {} can never apply: rule {} before it matches every request it would",
                    rule.name, shadow.name
                ),
            ));
        }
        if let Some(m) = rule_config.map(|r| &r.match_) {
            for (name, written, compiled) in [
                ("path", &m.path, &rule.matcher.path),
                ("prefix", &m.prefix, &rule.matcher.prefix),
            ] {
                if let (Some(written), Some(compiled)) = (written, compiled)
                    && written.as_bytes() != compiled.as_slice()
                {
                    w.push(Finding::warning(
                        at(&format!("match.{name}")),
                        format!(
                            "\"{written}\" is matched as \"{}\": request paths are compared in \
                             normal form (README: How a request is decided)",
                            String::from_utf8_lossy(compiled)
                        ),
                    ));
                }
            }
        }
        if let Some(finding) = head_slips_through(policy, i) {
            w.push(finding);
        }
        let Access::Token(req) = &rule.access else {
            continue;
        };
        // A scope no provider of the rule can issue: only when every one
        // of them lists its scopes.
        let mut known: Vec<&String> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut all_listed = !req.providers.is_empty();
        for pid in &req.providers {
            let Some(provider) = policy.providers.get(*pid) else {
                all_listed = false;
                continue;
            };
            match config
                .providers
                .get(&provider.name)
                .map(|p| &p.known_scopes)
                .filter(|k| !k.is_empty())
            {
                Some(k) => {
                    known.extend(k.iter());
                    names.push(&provider.name);
                }
                None => all_listed = false,
            }
        }
        if !all_listed {
            continue;
        }
        let whose = names
            .iter()
            .map(|n| format!("providers.{n}.known_scopes"))
            .collect::<Vec<_>>()
            .join(" or ");
        for (list, scopes) in [("scopes", &req.any_scopes), ("all_scopes", &req.all_scopes)] {
            for (j, scope) in scopes.iter().enumerate() {
                if !known.contains(&scope) {
                    w.push(Finding::warning(
                        at(&format!("requires.{list}[{j}]")),
                        format!("\"{scope}\" is not in {whose}: no token can hold it"),
                    ));
                }
            }
        }
    }
    w
}

/// `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
fn is_cognito_issuer(issuer: &str) -> bool {
    let Some(rest) = issuer.strip_prefix("https://cognito-idp.") else {
        return false;
    };
    let Some((host, pool)) = rest.split_once('/') else {
        return false;
    };
    let region = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"));
    region.is_some_and(|r| !r.is_empty() && !r.contains('.'))
        && !pool.is_empty()
        && !pool.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn base() -> Value {
        json!({
            "providers": {"p": {
                "issuer": "https://issuer.example",
                "audiences": ["a"],
                "local_jwks": {"keys": [serde_json::from_str::<Value>(EC_JWK).unwrap()]}
            }},
            "rules": [
                {"match": {"prefix": "/api"}, "requires": {"scopes": ["read"]}}
            ]
        })
    }

    fn findings(v: &Value) -> Vec<Finding> {
        let source = PluginSource {
            location: String::new(),
            json: v.to_string().into_bytes(),
            verbatim: true,
        };
        check_source(&source).0
    }

    fn fields(v: &Value) -> Vec<String> {
        findings(v).into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_clean_config_has_no_findings() {
        assert_eq!(findings(&base()), []);
        let mut c = base();
        c["providers"]["p"]["known_scopes"] = json!([]);
        assert_eq!(findings(&c), [], "empty known_scopes: not checked");
        c["providers"]["p"]["known_scopes"] = json!(["read", "write"]);
        assert_eq!(findings(&c), []);
    }

    #[test]
    fn errors_name_the_field() {
        let mut c = base();
        c["rules"][0]["requires"]["provider"] = json!("nope");
        let f = findings(&c);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, Level::Error);
        assert_eq!(f[0].field, "rules[0].requires.provider");
    }

    #[test]
    fn warnings() {
        let mut c = base();
        c["providers"]["p"]
            .as_object_mut()
            .unwrap()
            .remove("audiences");
        c["providers"]["p"]["issuer"] =
            json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc");
        c["providers"]["p"]["clock_skew_s"] = json!(900);
        c["providers"]["p"]["known_scopes"] = json!(["read"]);
        c["unmatched"] = json!("allow");
        c["rules"] = json!([
            {"match": {"prefix": "/api"}, "requires": {"scopes": ["read"]}},
            {"match": {"prefix": "/api/v2", "methods": ["GET"]}, "mode": "report",
             "requires": {"scopes": ["read"], "all_scopes": ["write"]}}
        ]);
        assert_eq!(
            fields(&c),
            [
                "providers.p.audiences",
                "providers.p.clock_skew_s",
                "providers.p.token_use",
                "unmatched",
                "rules[1].mode",
                "rules[1].match",
                "rules[1].requires.all_scopes[0]",
            ]
        );
        assert!(findings(&c).iter().all(|f| f.level == Level::Warning));
    }

    #[test]
    fn hmac_remote_ttl_and_report_mode() {
        let secret = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        let c = json!({
            "mode": "report",
            "providers": {
                "h": {"issuer": "i", "audiences": ["a"], "algorithms": ["HS256"], "shared_secret_base64": secret},
                "r": {"issuer": "j", "audiences": ["a"], "remote_jwks": {
                    "cluster": "c", "uri": "https://h/jwks", "cache_ttl_s": 172_800, "max_stale_s": 2_592_000}}
            },
            "rules": [{"match": {}, "requires": {"provider": "h"}}]
        });
        assert_eq!(
            fields(&c),
            [
                "providers.h.algorithms",
                "providers.r.remote_jwks.cache_ttl_s",
                "providers.r.remote_jwks.max_stale_s",
                "mode",
            ]
        );
    }

    #[test]
    fn cognito_issuers() {
        assert!(is_cognito_issuer(
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot"
        ));
        assert!(!is_cognito_issuer(
            "https://cognito-idp.us-east-1.amazonaws.com/"
        ));
        assert!(!is_cognito_issuer("https://issuer.example/us-east-1_x"));
        assert!(!is_cognito_issuer(
            "https://cognito-idp.evil.example.amazonaws.com.attacker/x"
        ));
    }
}
