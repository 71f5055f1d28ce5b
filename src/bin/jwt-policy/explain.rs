//! `jwt-policy explain`: one request through the filter's own decision code
//! (`engine::evaluate`, then `plan::plan`), offline, with every check
//! recorded (`trace::Steps`) and the response or forwarded headers shown.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use jwt_policy::config::Mode;
use jwt_policy::denial::HttpResponse;
use jwt_policy::engine::{self, Env, KeyStatus, KeyStore, Outcome};
use jwt_policy::filter_state;
use jwt_policy::jwks::{self, KeySet};
use jwt_policy::plan::{self, Plan};
use jwt_policy::policy::{Access, KeySource, Policy, Provider, ProviderId, Rule};
use jwt_policy::request::RecordedRequest;
use jwt_policy::rules::Matcher;
use jwt_policy::signature::NoAcceleration;
use jwt_policy::trace::{Check, Step, Steps};

use crate::cli::{Failure, Status, emit, now, read_input, read_token};
use crate::yaml;

/// Show how the filter decides one request: the rule, the provider, every
/// check in order, and the response or the headers sent upstream.
///
/// The decision is made by the filter's own code, offline. Keys come from
/// the configuration; a provider with `remote_jwks` needs them given with
/// --jwks (a JWKS file), else the signature cannot be checked and the
/// answer is undetermined.
///
/// Exit status: 0 the request is forwarded (allowed, or denied in report
/// mode), 1 the filter answers it with an error (401, 403, 503), 2 usage
/// error or unusable configuration, 3 undetermined (keys needed).
#[derive(clap::Args)]
pub struct Args {
    /// The plugin configuration: JSON, or YAML (envoy.yaml, Istio
    /// WasmPlugin) holding exactly one.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The bearer token, or `-` to read it from standard input; shorthand
    /// for --header 'authorization: Bearer TOKEN'.
    #[arg(long, value_name = "TOKEN|-")]
    token: Option<String>,
    /// The request method.
    #[arg(long, value_name = "M", default_value = "GET")]
    method: String,
    /// The request target (path and query) as the client sends it.
    #[arg(long, value_name = "P")]
    path: OsString,
    /// The request's host (`:authority`), for rules that match hosts.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// The Envoy route name (`xds.route_name`) the request takes.
    #[arg(long, value_name = "NAME")]
    route: Option<String>,
    /// A JWKS file for a provider that uses remote_jwks; PROVIDER= names the
    /// provider when several do. Repeatable.
    #[arg(long, value_name = "[PROVIDER=]FILE")]
    jwks: Vec<String>,
    /// The time of the decision, in seconds since the Unix epoch. Default:
    /// now.
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// A request header, `name: value` (repeatable; values may be any
    /// bytes). Repeated headers are joined as Envoy joins them (`,`, or `; `
    /// for cookies).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<OsString>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Keys from the configuration, plus JWKS files given for remote providers.
struct OfflineKeys<'p> {
    policy: &'p Policy,
    /// By provider index.
    given: Vec<Option<KeySet>>,
}

impl OfflineKeys<'_> {
    fn given(&self, provider: ProviderId) -> Option<&KeySet> {
        self.given.get(provider).and_then(Option::as_ref)
    }
}

impl KeyStore for OfflineKeys<'_> {
    fn status(&mut self, provider: ProviderId) -> KeyStatus<'_> {
        let p = self.policy.providers.get(provider);
        let keys = match p.map(|p| &p.keys) {
            Some(KeySource::Local(keys)) => Some(keys),
            // Given keys stand for the fetched ones; else the bootstrap
            // keys serve, as they do before the first fetch.
            Some(KeySource::Remote(_)) => self
                .given
                .get(provider)
                .and_then(Option::as_ref)
                .or_else(|| p.and_then(|p| p.bootstrap.as_ref())),
            _ => None,
        };
        match keys {
            Some(keys) => KeyStatus::Ready { keys, version: 0 },
            None => KeyStatus::Unavailable { retry_after_s: 5 },
        }
    }
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Failure> {
    let policy = load_policy(&args.config)?;
    let mut notes = Vec::new();
    let given = load_jwks(&policy, &args.jwks, &mut notes)?;
    let mut req = RecordedRequest {
        method: args.method.as_bytes().to_vec(),
        path: os_bytes(&args.path, "--path")?,
        route: args.route.as_ref().map(|r| r.as_bytes().to_vec()),
        authority: args
            .host
            .as_ref()
            .map(|h| h.as_bytes().to_vec())
            .unwrap_or_default(),
        ..RecordedRequest::default()
    };
    if let Some(token) = &args.token {
        let token = read_token(token)?;
        req.headers.push((
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ));
    }
    for h in &args.headers {
        req.headers.push(parse_header(h)?);
    }
    let now = args.now.unwrap_or_else(now);
    if args.host.is_none()
        && let Some(r) = policy.rules.iter().find(|r| r.matcher.hosts.is_some())
    {
        notes.push(format!(
            "rule {} matches by host and no --host was given: it cannot match",
            r.name
        ));
    }

    let mut keys = OfflineKeys {
        policy: &policy,
        given,
    };
    let mut steps = Steps::default();
    let eval = {
        let mut env = Env {
            keys: &mut keys,
            verifier: &NoAcceleration,
            cache: None,
            now,
        };
        let head = req.head();
        engine::evaluate(&policy, &mut env, &req.view(&head), &mut steps)
    };
    let plan = plan::plan(&policy, &eval, &req.head());

    let rule = eval.rule.and_then(|i| policy.rules.get(i).map(|r| (i, r)));
    let provider = eval
        .provider
        .and_then(|i| policy.providers.get(i).map(|p| (i, p)));
    // Without keys for a remote provider the engine says 503; the filter
    // would fetch them first, so offline there is no answer.
    let remote_unfetched = |i: ProviderId, p: &Provider| {
        matches!(p.keys, KeySource::Remote(_)) && keys.given(i).is_none()
    };
    let missing_keys = provider.filter(|(i, p)| remote_unfetched(*i, p) && p.bootstrap.is_none());
    if let Some((i, p)) = provider
        && remote_unfetched(i, p)
        && p.bootstrap.is_some()
    {
        notes.push(format!(
            "provider {} was checked with its bootstrap keys (local_jwks); at run time the \
             keys fetched from its JWKS URL replace them (pass --jwks to check with those)",
            p.name
        ));
    }
    let undetermined = match (&eval.outcome, missing_keys) {
        (Outcome::Wait(_), _) => true,
        (Outcome::Deny(d), Some(_)) => d.reason == jwt_policy::denial::DenyReason::JwksUnavailable,
        _ => false,
    };
    // The key step the engine failed for want of keys is not a failure of
    // the token: show it as not checked.
    if undetermined
        && let Some(last) = steps.0.last_mut()
        && last.check == Check::Key
        && !last.passed
    {
        last.detail = "not checked: the keys are fetched at run time".into();
    }
    let unchecked = |s: &Step| undetermined && s.check == Check::Key && !s.passed;
    if let (true, Some((_, p))) = (undetermined, missing_keys) {
        let uri = match &p.keys {
            KeySource::Remote(r) => r.uri.as_str(),
            _ => "",
        };
        notes.push(format!(
            "provider {} fetches its keys from {uri} at run time: the signature and \
             everything after it cannot be checked offline; pass --jwks FILE (or \
             --jwks {}=FILE) with that JWKS",
            p.name, p.name
        ));
    }

    let report = policy.mode_for(eval.rule) == Mode::Report;
    let (decision, reason) = match &eval.outcome {
        _ if undetermined => ("undetermined", None),
        Outcome::Allow(_) => ("allow", None),
        Outcome::Deny(d) => ("deny", Some(d)),
        Outcome::Wait(_) => ("undetermined", None),
    };
    let published: Vec<(String, String)> = if undetermined {
        Vec::new()
    } else {
        filter_state::entries(&policy, &eval)
            .into_iter()
            .map(|(n, v)| {
                (
                    format!("wasm.{n}"),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    };
    let upstream = match &plan {
        Plan::Forward(edits) if !undetermined => Some(forwarded(&req, edits)),
        _ => None,
    };
    let response = match &plan {
        Plan::Respond(r) if !undetermined => Some(r),
        _ => None,
    };
    let status = match (undetermined, &plan) {
        (true, _) | (_, Plan::Wait(_)) => Status::Undetermined,
        (false, Plan::Forward(_)) => Status::Ok,
        (false, Plan::Respond(_)) => Status::No,
    };

    if args.json {
        let doc = json!({
            "request": {
                "method": show_bytes(&req.method),
                "path": show_bytes(&req.path),
                "host": (!req.authority.is_empty()).then(|| show_bytes(&req.authority)),
                "route": req.route.as_deref().map(show_bytes),
            },
            "rule": rule.map(|(i, r)| json!({
                "index": i,
                "name": r.name,
                "match": describe_matcher(&r.matcher),
                "requires": describe_access(&policy, r),
            })),
            "provider": provider.map(|(i, p)| json!({
                "name": p.name,
                "issuer": p.issuer,
                "keys": describe_keys(p, keys.given(i)),
            })),
            "mode": if report { "report" } else { "enforce" },
            "checks": steps.0.iter().map(|s| json!({
                "check": s.check.name(),
                "passed": if unchecked(s) { Value::Null } else { json!(s.passed) },
                "detail": s.detail,
            })).collect::<Vec<_>>(),
            "decision": decision,
            "reason": reason.map(|d| d.reason.name()),
            "description": reason.map(|d| d.description.as_ref()),
            "action": match (&plan, undetermined) {
                (_, true) | (Plan::Wait(_), _) => Value::Null,
                (Plan::Forward(_), false) => json!("forward"),
                (Plan::Respond(_), false) => json!("respond"),
            },
            "status": response.map(|r| r.status),
            "www_authenticate": response.and_then(|r| r.header("www-authenticate")),
            "response": response.map(response_json),
            "upstream": upstream.as_ref().map(|u| json!({
                "path": show_bytes(&u.path),
                "headers": u.headers.iter().map(|(n, v)| json!([n, show_bytes(v)])).collect::<Vec<_>>(),
                "removed": u.removed,
            })),
            "filter_state": published.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "notes": notes,
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        emit(out, &format!("{text}\n"));
        return Ok(status);
    }

    let mut t = String::new();
    let route = req
        .route
        .as_deref()
        .map_or_else(String::new, |r| format!(" (route {})", show_bytes(r)));
    let host = if req.authority.is_empty() {
        String::new()
    } else {
        format!(" (host {})", clip(&show_bytes(&req.authority), 100))
    };
    t.push_str(&format!(
        "request   {} {}{host}{route}\n",
        show_bytes(&req.method),
        clip(&show_bytes(&req.path), 100)
    ));
    match rule {
        Some((i, r)) => t.push_str(&format!(
            "rule      rules[{i}] \"{}\": {}; {}\n",
            r.name,
            describe_matcher(&r.matcher),
            describe_access(&policy, r)
        )),
        None => t.push_str("rule      none matches\n"),
    }
    if let Some((i, p)) = provider {
        t.push_str(&format!(
            "provider  {} (issuer {}; keys: {})\n",
            p.name,
            p.issuer,
            describe_keys(p, keys.given(i))
        ));
    }
    if report {
        t.push_str("mode      report (denials are forwarded, not answered)\n");
    }
    t.push_str("checks\n");
    for s in &steps.0 {
        t.push_str(&format!(
            "  {}  {:<10}  {}\n",
            match (s.passed, unchecked(s)) {
                (_, true) => " ?? ",
                (true, _) => "pass",
                (false, _) => "FAIL",
            },
            s.check.name(),
            s.detail
        ));
    }
    match (decision, reason) {
        ("deny", Some(d)) => t.push_str(&format!(
            "decision  deny ({}): {}\n",
            d.reason, d.description
        )),
        (d, _) => t.push_str(&format!("decision  {d}\n")),
    }
    if let Some(r) = response {
        t.push_str(&format!("response  {}\n", r.status));
        for (name, value) in &r.headers {
            t.push_str(&format!("  {name}: {value}\n"));
        }
        t.push_str(&format!("  {}\n", r.body));
    }
    if let Some(u) = &upstream {
        t.push_str(&format!(
            "upstream  {} {}\n",
            show_bytes(&req.method),
            clip(&show_bytes(&u.path), 100)
        ));
        for (name, value) in &u.headers {
            t.push_str(&format!("  {name}: {}\n", clip(&show_bytes(value), 80)));
        }
        if !u.removed.is_empty() {
            t.push_str(&format!("  (removed: {})\n", u.removed.join(", ")));
        }
    }
    if !published.is_empty() {
        t.push_str("filter state\n");
        for (name, value) in &published {
            t.push_str(&format!("  {name}: {}\n", clip(value, 80)));
        }
    }
    for note in &notes {
        t.push_str(&format!("note      {note}\n"));
    }
    emit(out, &t);
    Ok(status)
}

/// The plugin configuration in `path`, compiled as the filter compiles it.
fn load_policy(path: &Path) -> Result<Policy, Failure> {
    let bytes = read_input(path)?;
    let file = path.display();
    let found = yaml::find_configs(&bytes).map_err(|e| format!("{file}: {e}"))?;
    let source = match found.configs.as_slice() {
        [one] => one,
        [] => return Err(format!("{file}: no jwt-policy plugin configuration found").into()),
        many => {
            return Err(format!(
                "{file} holds {} plugin configurations; give explain a file with one \
                 (jwt-policy check lists them)",
                many.len()
            )
            .into());
        }
    };
    Policy::from_json(&source.json).map_err(|errors| {
        let at = if source.location.is_empty() {
            String::new()
        } else {
            format!(" ({})", source.location)
        };
        let problems: Vec<String> = errors
            .problems()
            .iter()
            .map(|e| {
                let message = source.message(&e.message);
                if e.field.is_empty() {
                    message
                } else {
                    format!("{}: {message}", e.field)
                }
            })
            .collect();
        Failure(format!(
            "{file}{at}: the configuration is refused: {} (see jwt-policy check)",
            problems.join("; ")
        ))
    })
}

/// `--jwks [PROVIDER=]FILE` arguments, as key sets by provider index.
fn load_jwks(
    policy: &Policy,
    args: &[String],
    notes: &mut Vec<String>,
) -> Result<Vec<Option<KeySet>>, Failure> {
    let mut given: Vec<Option<KeySet>> = policy.providers.iter().map(|_| None).collect();
    let remote: Vec<&Provider> = policy
        .providers
        .iter()
        .filter(|p| matches!(p.keys, KeySource::Remote(_)))
        .collect();
    for arg in args {
        let named = arg
            .split_once('=')
            .and_then(|(name, file)| Some((policy.provider_id(name)?, file)));
        let (pid, file) = match named {
            Some(found) => found,
            None => match remote.as_slice() {
                [only] => (
                    policy.provider_id(&only.name).unwrap_or_default(),
                    arg.as_str(),
                ),
                [] => return Err("--jwks: no provider uses remote_jwks".into()),
                _ => {
                    return Err(format!(
                        "--jwks: several providers use remote_jwks ({}); write --jwks PROVIDER=FILE",
                        remote
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                    .into());
                }
            },
        };
        let provider = policy
            .providers
            .get(pid)
            .ok_or("--jwks: no such provider")?;
        if !matches!(provider.keys, KeySource::Remote(_)) {
            return Err(format!(
                "--jwks: provider {} does not use remote_jwks; its keys are in the configuration",
                provider.name
            )
            .into());
        }
        let bytes = read_input(Path::new(file))?;
        let parsed =
            jwks::parse_jwks(&bytes, &policy.limits).map_err(|e| format!("--jwks {file}: {e}"))?;
        for skipped in &parsed.skipped {
            notes.push(format!("--jwks {file}: key left out: {skipped}"));
        }
        if let Some(slot) = given.get_mut(pid) {
            *slot = Some(parsed.keys);
        }
    }
    Ok(given)
}

/// `name: value` from the command line; the value may be any bytes.
fn parse_header(arg: &OsString) -> Result<(String, Vec<u8>), Failure> {
    let bytes = os_bytes(arg, "--header")?;
    let colon = bytes
        .iter()
        .position(|b| *b == b':')
        .filter(|i| *i > 0)
        .ok_or("--header: expected 'name: value'")?;
    let (name, value) = bytes.split_at(colon);
    let name = std::str::from_utf8(name)
        .ok()
        .filter(|n| {
            n.bytes()
                .all(|b| b.is_ascii_graphic() && b != b':' && b != b'"')
        })
        .ok_or("--header: the name must be a plain header name")?;
    let value = value.get(1..).unwrap_or_default().trim_ascii();
    Ok((name.to_ascii_lowercase(), value.to_vec()))
}

#[cfg(unix)]
fn os_bytes(arg: &OsString, _what: &str) -> Result<Vec<u8>, Failure> {
    use std::os::unix::ffi::OsStrExt;
    Ok(arg.as_bytes().to_vec())
}

#[cfg(not(unix))]
fn os_bytes(arg: &OsString, what: &str) -> Result<Vec<u8>, Failure> {
    arg.to_str()
        .map(|s| s.as_bytes().to_vec())
        .ok_or_else(|| Failure(format!("{what}: must be UTF-8 on this platform")))
}

/// What the upstream receives.
struct Forwarded {
    path: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    removed: Vec<String>,
}

/// The request after the plan's edits, as the filter applies them
/// ([`plan::Edits::apply`]).
fn forwarded(req: &RecordedRequest, edits: &plan::Edits) -> Forwarded {
    let head = edits.apply(&req.head());
    Forwarded {
        path: head.target().to_vec(),
        headers: head
            .iter()
            .filter(|(n, _)| !n.starts_with(b":"))
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
            .collect(),
        removed: edits.remove.clone(),
    }
}

fn response_json(r: &HttpResponse) -> Value {
    json!({
        "status": r.status,
        "headers": r.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
        "body": r.body,
    })
}

fn describe_matcher(m: &Matcher) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &m.path {
        parts.push(format!("path {}", show_bytes(p)));
    }
    if let Some(p) = &m.prefix {
        parts.push(format!("prefix {}", show_bytes(p)));
    }
    if let Some(t) = &m.template {
        parts.push(format!("path template {}", t.text));
    }
    if let Some(hs) = &m.hosts {
        let names: Vec<String> = hs.iter().map(|h| h.text()).collect();
        parts.push(format!("hosts {}", names.join(", ")));
    }
    if let Some(r) = &m.route {
        parts.push(format!("route {}", show_bytes(r)));
    }
    if let Some(ms) = &m.methods {
        let names: Vec<String> = ms.iter().map(|b| show_bytes(b)).collect();
        parts.push(format!("methods {}", names.join(", ")));
    }
    if parts.is_empty() {
        "every request".into()
    } else {
        parts.join(", ")
    }
}

fn describe_access(policy: &Policy, rule: &Rule) -> String {
    match &rule.access {
        Access::Anonymous => "no token needed".into(),
        Access::Token(t) => {
            let providers: Vec<&str> = t
                .providers
                .iter()
                .map(|pid| policy.providers.get(*pid).map_or("?", |p| p.name.as_str()))
                .collect();
            let mut parts = vec![format!("a token from {}", providers.join(" or "))];
            if t.allow_missing {
                parts.push("or none (allow_missing)".into());
            }
            if !t.any_scopes.is_empty() {
                parts.push(format!("any of scopes {}", t.any_scopes.join(" ")));
            }
            if !t.all_scopes.is_empty() {
                parts.push(format!("all of scopes {}", t.all_scopes.join(" ")));
            }
            for c in &t.claims {
                parts.push(format!("claim {}", c.claim));
            }
            parts.join(", ")
        }
    }
}

fn describe_keys(p: &Provider, given: Option<&KeySet>) -> String {
    let count = |n: usize| {
        if n == 1 {
            "1 key".into()
        } else {
            format!("{n} keys")
        }
    };
    match (&p.keys, given) {
        (KeySource::Local(keys), _) => format!("local JWKS, {}", count(keys.len())),
        (KeySource::Remote(r), Some(keys)) => {
            format!("{} given with --jwks for {}", count(keys.len()), r.uri)
        }
        (KeySource::Remote(r), None) => format!("fetched at run time from {}", r.uri),
        (KeySource::SecretOnly, _) => "shared secret".into(),
    }
}

/// Bytes as text: UTF-8 as it is, other bytes as `\xNN`.
fn show_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

fn clip(s: &str, max: usize) -> String {
    jwt_policy::text::clip(s, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn headers_from_the_command_line() {
        let h = |s: &[u8]| {
            use std::os::unix::ffi::OsStringExt;
            parse_header(&OsString::from_vec(s.to_vec()))
        };
        assert_eq!(
            h(b"Authorization:  Bearer x ").unwrap(),
            ("authorization".into(), b"Bearer x".to_vec())
        );
        assert_eq!(h(b"x-odd: \xe9t\xe9").unwrap().1, b"\xe9t\xe9");
        assert_eq!(h(b"x-empty:").unwrap().1, b"");
        assert!(h(b": v").is_err());
        assert!(h(b"novalue").is_err());
        assert!(h(b"bad name: v").is_err());
    }

    #[test]
    fn bytes_are_shown_escaped() {
        assert_eq!(
            show_bytes(b"\xe9t\xe9 ok \xc3\xa9"),
            "\\xe9t\\xe9 ok \u{e9}"
        );
    }
}
