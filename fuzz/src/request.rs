//! The `request` target: a whole request through the decision of
//! [`crate::request_policy`], and the same bytes through the small decoders
//! of the host layer.
//!
//! Input, one item per line (`\n`): the method, the request target
//! (`:path`), the route name (empty: none), then headers as `name: value`
//! (lines without a colon are skipped; names are lower-cased, and repeated
//! headers joined as Envoy presents them: with `,`, or `; ` for `cookie`).
//!
//! Invariants: no panic; the decision is the same with and without the
//! token cache; denials are 400, 401 or 403; the path decided on is in
//! normal form (absolute, no empty, `.` or `..` segment, normalising it
//! again changes nothing) and the forwarded request carries exactly that
//! path (the forwarded `:path` is itself normal and decides the same path);
//! no copy of a managed header survives in the forwarded request unless the
//! filter set it; an `Allow` under a token rule only for a token (found
//! again where the provider reads it) that passes the reference signature
//! and claim checks, with the rule's scopes; a token that is not forwarded
//! is gone from the forwarded request (header and its twins removed,
//! parameter or cookie cut out); header hygiene. Decoders: `envoy_crypto::parse_result`,
//! `DocMeta`, `DocRecord` and `FetchState` never panic and whatever they
//! decode encodes back to itself; the ECDSA DER conversion and the
//! `verify_signature` argument encoding give well-formed output.

use jwt_policy::algorithm::Algorithm;
use jwt_policy::engine::Outcome;
use jwt_policy::envoy_crypto;
use jwt_policy::extract::is_header_or_twin;
use jwt_policy::extract::{Extraction, TokenSite, cookie_values, extract, query_values};
use jwt_policy::path::{self, TargetPath};
use jwt_policy::plan::Plan;
use jwt_policy::policy::Policy;
use jwt_policy::policy::RemoteJwks;
use jwt_policy::remote_jwks::records::{self, DocMeta, DocRecord, FetchState, Purpose};
use jwt_policy::request::RequestHead;
use jwt_policy::signature;

use crate::{FuzzRequest, NOW, check_allowed_token, check_outcome, check_plan, has_control};

/// Reads the line format described in the module documentation.
pub fn parse(data: &[u8]) -> FuzzRequest {
    let mut lines = data.split(|b| *b == b'\n');
    let mut req = FuzzRequest {
        method: lines.next().unwrap_or_default().to_vec(),
        path: lines.next().unwrap_or_default().to_vec(),
        route: lines.next().filter(|r| !r.is_empty()).map(<[u8]>::to_vec),
        ..FuzzRequest::default()
    };
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default();
        let value = value.strip_prefix(b" ").unwrap_or(value);
        // Names that are not UTF-8 match no configured header either way.
        req = req.with_header(&String::from_utf8_lossy(name), value);
    }
    req
}

/// The request line format for seeds.
pub fn render(method: &str, path: &str, route: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("{method}\n{path}\n{route}");
    for (name, value) in headers {
        out.push_str(&format!("\n{name}: {value}"));
    }
    out.into_bytes()
}

/// Runs one input; returns the decision for the seed tests.
pub fn run(data: &[u8]) -> Outcome {
    decoders(data);
    let policy = crate::request_policy();
    let req = parse(data);
    let head = req.head();
    let (eval, plan) = crate::decide_twice(policy, &req);
    check_outcome(&eval, false);
    check_plan(&plan);
    if let Plan::Forward(edits) = &plan {
        check_forwarded(policy, &head, &edits.apply(&head), edits);
    }
    let Some(pid) = eval.provider else {
        return eval.outcome;
    };
    let provider = &policy.providers[pid];
    let Outcome::Allow(grant) = &eval.outcome else {
        return eval.outcome;
    };
    let Extraction::Found { token, site } = extract(&provider.locations, &head) else {
        panic!("allowed without a token to be found again");
    };
    let rule = eval.rule.map(|i| policy.rules[i].name.as_str());
    let (any, all): (&[&str], &[&str]) = match rule {
        Some("1") => (&["order/post.order"], &[]),
        Some("2") => (&["order/get.order", "order/admin"], &[]),
        Some("3") => (&[], &["order/admin", "order/audit"]),
        _ => (&[], &[]),
    };
    check_allowed_token(&token, &provider.name, any, all);
    if !provider.forward_token {
        assert_eq!(
            grant.strip.as_ref(),
            Some(&site),
            "the token's place is stripped"
        );
        let Plan::Forward(edits) = &plan else {
            panic!("an allowed request is forwarded")
        };
        match &site {
            TokenSite::Header(name) => assert!(
                !edits
                    .apply(&head)
                    .iter()
                    .any(|(n, _)| is_header_or_twin(n, name)),
                "the token header {name} is gone, twins too"
            ),
            TokenSite::Param(name) => {
                let target = edits.get(":path").expect("the path is rewritten");
                if !has_control(&req.path) {
                    assert!(!has_control(target), "{target:?}");
                }
                // A fragment is never sent in a request target (Envoy refuses
                // one), and after it `?` means nothing: only check without.
                if !req.path.contains(&b'#') {
                    assert_eq!(query_values(target, name).count(), 0, "{target:?}");
                }
            }
            TokenSite::Cookie(name) => match edits.get("cookie") {
                Some(cookies) => {
                    assert_eq!(cookie_values(cookies, name).count(), 0);
                    let sent: Vec<&[u8]> = head.values(b"cookie").collect();
                    if !has_control(&sent.concat()) {
                        assert!(!has_control(cookies), "{cookies:?}");
                    }
                }
                None => assert!(edits.remove.iter().any(|h| h == "cookie")),
            },
        }
    }
    eval.outcome
}

/// The path decided on is normal, and the forwarded request carries it.
fn check_forwarded(
    policy: &Policy,
    sent: &RequestHead,
    forwarded: &RequestHead,
    edits: &jwt_policy::plan::Edits,
) {
    let decided = match path::check_target(sent.target(), &policy.paths) {
        TargetPath::Normal(p) => p.to_vec(),
        TargetPath::Rewrite { path, .. } => path,
        // Report mode forwards refused paths untouched; this policy has none.
        TargetPath::Refused(p) => panic!("a refused path ({p:?}) was forwarded"),
    };
    assert!(decided.starts_with(b"/") || decided == b"*", "{decided:?}");
    if decided != b"*" {
        let inner = decided.get(1..).unwrap_or_default();
        let inner = inner.strip_suffix(b"/").unwrap_or(inner);
        if !inner.is_empty() {
            for seg in inner.split(|b| *b == b'/') {
                assert!(
                    !seg.is_empty() && seg != b"." && seg != b"..",
                    "segment {seg:?} left in {decided:?}"
                );
            }
        }
        assert_eq!(
            path::normalize(&decided, &policy.paths).map(|n| n.into_owned()),
            Ok(decided.clone()),
            "normalising again changes {decided:?}"
        );
    }
    match path::check_target(forwarded.target(), &policy.paths) {
        TargetPath::Normal(p) => {
            assert_eq!(p, decided.as_slice(), "the upstream gets another path")
        }
        other => panic!("the forwarded path is not normal: {other:?}"),
    }
    for (name, value) in forwarded.iter() {
        if let Some(m) = policy
            .managed_headers
            .iter()
            .find(|m| is_header_or_twin(name, m))
        {
            assert_eq!(
                (name, Some(value)),
                (m.as_bytes(), edits.get(m)),
                "a copy of {m} sent by the client reaches the upstream"
            );
        }
    }
}

fn spec() -> RemoteJwks {
    RemoteJwks {
        cluster: "jwks".into(),
        uri: "https://idp.example.com/jwks.json".into(),
        authority: "idp.example.com".into(),
        path: "/jwks.json".into(),
        timeout_ms: 5000,
        cache_ttl_s: 3600,
        max_stale_s: 86_400,
        refetch_cooldown_s: 30,
    }
}

fn decoders(data: &[u8]) {
    let _ = envoy_crypto::parse_result(data);

    let spec = spec();
    let now = NOW * 1000;
    let meta = DocMeta::decode(data);
    if let Some(m) = meta {
        assert_eq!(DocMeta::decode(&m.encode()), Some(m));
        let _ = (m.usable_at(now, &spec), m.refresh_at());
    }
    if let Some(d) = DocRecord::decode(data) {
        assert_eq!(DocRecord::decode(&d.encode()).as_ref(), Some(&d));
        let next = records::stored_after_fetch(Some(&d), b"{}".to_vec(), now, &spec);
        assert!(next.meta.version >= d.meta.version);
    }
    let state = FetchState::decode(data);
    assert_eq!(FetchState::decode(&state.encode()), state);
    let meta = meta.unwrap_or_default();
    for purpose in [Purpose::Scheduled, Purpose::UnknownKid] {
        if let Some(claimed) = state.claim(7, purpose, &meta, now, &spec) {
            assert_eq!(claimed.holder, 7);
            assert!(claimed.fetching(now));
            assert!(!claimed.succeeded(7, now).fetching(now));
            assert!(!claimed.failed(7, now, &spec).fetching(now));
        }
    }
    let _ = records::backoff_ms(state.failures, &spec);

    if let Some(der) = signature::ecdsa_der_from_jws(data) {
        assert_eq!(der.first(), Some(&0x30));
        assert_eq!(usize::from(der[1]) + 2, der.len(), "DER length");
    }
    for alg in [Algorithm::RS256, Algorithm::ES256] {
        if let Some(args) = envoy_crypto::arguments(alg, b"spki", data, data) {
            assert!(
                envoy_crypto::parse_result(&args).is_some(),
                "arguments are not protobuf"
            );
        }
    }
}
