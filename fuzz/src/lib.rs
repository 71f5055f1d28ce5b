//! The harness behind the jwt-policy fuzz targets (`fuzz/fuzz_targets/`):
//! fixed keys and policies, a request the fuzzer controls, and the
//! invariants every decision must keep. Each target is a thin
//! `fuzz_target!` around one `run` function here, so the seed tests in
//! [`seeds`] run exactly what the fuzzer runs.
//!
//! | target | input | module |
//! |---|---|---|
//! | `token` | a token (or a header/payload/signer triple to sign) | [`token`] |
//! | `jwks` | a JWKS document | [`jwks`] |
//! | `config` | a plugin configuration | [`config`] |
//! | `request` | method, path, route and headers, one per line | [`request`] |

use std::sync::OnceLock;

use base64::Engine as _;
use jwt_policy::denial::HttpResponse;
use jwt_policy::engine::{self, ConfiguredKeys, Env, Evaluation, Outcome};
use jwt_policy::plan::{self, Edits, Plan};
use jwt_policy::policy::Policy;
use jwt_policy::signature::NoAcceleration;
use jwt_policy::token_cache::TokenCache;
use jwt_policy::trace::NoTrace;
use serde_json::{Value, json};

pub mod config;
pub mod jwks;
pub mod keys;
pub mod request;
pub mod token;

#[cfg(test)]
mod seeds;

/// The clock of every fuzz decision (seconds since the epoch).
pub const NOW: u64 = 1_750_000_000;
/// A Cognito user pool issuer and app client, as in the core's tests.
pub const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot";
pub const CLIENT: &str = "14aq5ll5b1it6f62uefem6aqhn";
/// The scope the `token` policy's only rule asks for.
pub const SCOPE: &str = "order/post.order";
/// Issuer of the HS256 `partner` provider of the `request` policy.
pub const PARTNER_ISSUER: &str = "https://partner.example.com";

/// Claims of a Cognito client-credentials access token issued at [`NOW`].
pub fn cognito(scope: &str) -> Value {
    json!({
        "sub": CLIENT, "token_use": "access", "scope": scope, "auth_time": NOW,
        "iss": ISSUER, "exp": NOW + 3600, "iat": NOW, "version": 2,
        "jti": "0f6e3b27-8a7c-4f7a-9d0e-5d2c8a1b7e44", "client_id": CLIENT
    })
}

fn secret_base64() -> String {
    base64::engine::general_purpose::STANDARD.encode(&keys::keys().secret)
}

/// The `token` target's policy: one provider that accepts RS256, PS256,
/// ES256, EdDSA (keys in a local JWKS) and HS256 (shared secret), and one
/// rule, `POST /api/v1/order`, that needs [`SCOPE`].
pub fn token_policy_json() -> Value {
    json!({
      "providers": {
        "cognito": {
          "issuer": ISSUER,
          "audiences": [CLIENT],
          "token_use": "access",
          "algorithms": ["RS256", "PS256", "ES256", "EdDSA", "HS256"],
          "local_jwks": keys::jwks(),
          "shared_secret_base64": secret_base64(),
          "claims": [{ "claim": "client_id", "one_of": [CLIENT] }],
          "claims_to_headers": [
            { "claim": "client_id", "header": "x-client-id" },
            { "claim": "scope", "header": "x-scopes" }
          ]
        }
      },
      "rules": [
        { "match": { "prefix": "/api/v1/order", "methods": ["POST"] },
          "requires": { "scopes": [SCOPE] } }
      ]
    })
}

/// The `request` target's policy: the Envoy test suite's configuration
/// (tests/support/cases.rs) with the fuzz keys, tokens not forwarded (so
/// stripping runs), an HS256 provider reading a header without prefix, a
/// report-mode rule and a rule-level claim.
pub fn request_policy_json() -> Value {
    json!({
      "providers": {
        "cognito": {
          "issuer": ISSUER,
          "audiences": [CLIENT],
          "token_use": "access",
          "algorithms": ["RS256", "PS256", "ES256", "EdDSA"],
          "local_jwks": keys::jwks(),
          "clock_skew_s": 60,
          "require_exp": true,
          "from_headers": [{ "name": "authorization", "prefix": "Bearer " }],
          "from_params": ["access_token"],
          "from_cookies": ["session_token"],
          "claims": [{ "claim": "client_id", "one_of": [CLIENT], "required": true }],
          "claims_to_headers": [
            { "claim": "client_id", "header": "x-client-id" },
            { "claim": "scope", "header": "x-scopes" }
          ],
          "forward_token": false
        },
        "partner": {
          "issuer": PARTNER_ISSUER,
          "algorithms": ["HS256"],
          "shared_secret_base64": secret_base64(),
          "require_exp": false,
          "from_headers": [{ "name": "x-partner-token" }],
          "claims_to_headers": [{ "claim": "sub", "header": "x-partner" }]
        }
      },
      "rules": [
        { "match": { "path": "/healthz" }, "allow_anonymous": true },
        { "match": { "prefix": "/api/v1/order", "methods": ["POST"] },
          "requires": { "provider": "cognito", "scopes": ["order/post.order"] } },
        { "match": { "prefix": "/api/v1/order", "methods": ["GET"] },
          "requires": { "provider": "cognito", "scopes": ["order/get.order", "order/admin"] } },
        { "match": { "route": "admin_route" },
          "requires": { "provider": "cognito", "all_scopes": ["order/admin", "order/audit"] } },
        { "match": { "prefix": "/partner" }, "name": "partner", "mode": "report",
          "requires": { "provider": "partner" } },
        { "match": { "prefix": "/tenant" },
          "requires": { "provider": "cognito", "claims": [{ "claim": "org.tenant", "one_of": ["t1"] }] } }
      ],
      "unmatched": "deny",
      "route_check": true
    })
}

fn compiled(v: &Value) -> Policy {
    Policy::from_json(v.to_string().as_bytes()).expect("the fuzz policy compiles")
}

/// The compiled [`token_policy_json`], built once per process.
pub fn token_policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| compiled(&token_policy_json()))
}

/// The compiled [`request_policy_json`], built once per process.
pub fn request_policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| compiled(&request_policy_json()))
}

/// The core's in-memory request: header names are lower-cased, each header
/// line is its own entry (as Envoy hands them over in one map read).
pub use jwt_policy::request::RecordedRequest as FuzzRequest;

/// One decision with configured keys, the pure-Rust verifier and the clock
/// at [`NOW`], and the host instructions that follow from it.
pub fn decide(
    policy: &Policy,
    req: &FuzzRequest,
    cache: Option<&mut TokenCache>,
) -> (Evaluation, Plan) {
    let mut keys = ConfiguredKeys(policy);
    let mut env = Env {
        keys: &mut keys,
        verifier: &NoAcceleration,
        cache,
        now: NOW,
    };
    let head = req.head();
    let eval = engine::evaluate(policy, &mut env, &req.view(&head), &mut NoTrace);
    let plan = plan::plan(policy, &eval, &head);
    // The log line is built for every denial; it must not fail either.
    let _ = plan::describe(policy, &eval);
    (eval, plan)
}

/// Decides `req` twice with one fresh token cache (a miss, then perhaps a
/// hit) and checks that the cache changes nothing about the decision.
pub fn decide_twice(policy: &Policy, req: &FuzzRequest) -> (Evaluation, Plan) {
    let mut cache = TokenCache::new(policy.token_cache);
    let (first, first_plan) = decide(policy, req, Some(&mut cache));
    let (second, second_plan) = decide(policy, req, Some(&mut cache));
    assert_eq!(
        (&first.outcome, first.rule, first.provider, &first.kid),
        (&second.outcome, second.rule, second.provider, &second.kid),
        "the verified-token cache changed the decision ({:?} then {:?})",
        first.cache,
        second.cache
    );
    assert_eq!(first_plan, second_plan, "the cache changed the plan");
    decide_primed(policy, req, &first, &first_plan);
    (first, first_plan)
}

/// Decides `req` once more with a cache primed by every piece of its
/// header values (split at commas, a `Bearer ` prefix dropped) presented
/// alone as a bearer token: whatever of it verifies is cached first. A
/// token the cache holds skips the scan of its bytes (engine::authenticate),
/// so a request that joins, extends or repeats a cached token must still
/// get the decision it gets from a cold cache.
fn decide_primed(policy: &Policy, req: &FuzzRequest, cold: &Evaluation, cold_plan: &Plan) {
    let mut cache = TokenCache::new(policy.token_cache);
    for (_, value) in &req.headers {
        for piece in value.split(|b| *b == b',') {
            let piece = piece.trim_ascii();
            let token = match piece.get(..7) {
                Some(p) if p.eq_ignore_ascii_case(b"bearer ") => piece.get(7..).unwrap_or_default(),
                _ => piece,
            };
            let Ok(token) = std::str::from_utf8(token.trim_ascii()) else {
                continue;
            };
            if token.is_empty() {
                continue;
            }
            let primer = FuzzRequest {
                headers: Vec::new(),
                ..req.clone()
            }
            .bearer(token);
            decide(policy, &primer, Some(&mut cache));
        }
    }
    let (primed, primed_plan) = decide(policy, req, Some(&mut cache));
    assert_eq!(
        (&cold.outcome, cold.rule, cold.provider, &cold.kid),
        (&primed.outcome, primed.rule, primed.provider, &primed.kid),
        "a cache primed with the request's tokens changed the decision ({:?})",
        primed.cache
    );
    assert_eq!(cold_plan, &primed_plan, "a primed cache changed the plan");
}

/// Statuses a denial may have: 400 (a path refused), 401 and 403, and 503
/// only where keys can be missing (a remote JWKS).
pub fn check_outcome(eval: &Evaluation, may_lack_keys: bool) {
    match &eval.outcome {
        Outcome::Deny(d) => {
            let ok = matches!(d.status, 400 | 401 | 403) || (may_lack_keys && d.status == 503);
            assert!(ok, "denial with status {}: {d:?}", d.status);
        }
        Outcome::Wait(w) => panic!("configured keys never make a request wait: {w:?}"),
        Outcome::Allow(_) => {}
    }
}

/// Header hygiene of whatever the host is told to do: nothing a client
/// sent can put a line break or NUL into a header, and denials answer with
/// a JSON body and a printable challenge.
pub fn check_plan(plan: &Plan) {
    match plan {
        Plan::Respond(r) => check_response(r),
        Plan::Forward(edits) => check_edits(edits),
        Plan::Wait(_) => {}
    }
}

fn check_response(r: &HttpResponse) {
    assert!(
        matches!(r.status, 400 | 401 | 403 | 503),
        "status {}",
        r.status
    );
    for (name, value) in &r.headers {
        assert!(
            value.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "response header {name} is not printable ASCII: {value:?}"
        );
    }
    let body: Value = serde_json::from_str(&r.body).expect("the denial body is JSON");
    assert!(body.get("error").is_some_and(Value::is_string));
}

/// Whether a header value holds a control character (HTAB is allowed).
pub fn has_control(value: &[u8]) -> bool {
    value
        .iter()
        .any(|b| *b != b'\t' && (*b < b' ' || *b == 0x7f))
}

fn check_edits(edits: &Edits) {
    // Header names are RFC 7230 tokens in lower case (`x-client$id` is
    // one); `:path` is the only pseudo-header the filter rewrites.
    let tchar =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    for name in edits.remove.iter().chain(edits.set.iter().map(|(n, _)| n)) {
        assert!(
            name == ":path" || (!name.is_empty() && name.bytes().all(tchar)),
            "header name {name:?}"
        );
    }
    for (name, value) in &edits.set {
        // `:path` and `cookie` are the client's own value with the token cut
        // out: `request` checks they gain no control character.
        if name == ":path" || name == "cookie" {
            continue;
        }
        assert!(
            !has_control(value),
            "header {name} would carry control characters: {value:?}"
        );
    }
}

/// The reference checks behind an `Allow` of a token: the signature
/// verifies with the fuzz keys (see [`keys::reference_verify`]) and the
/// claims meet the provider's and rule's conditions, checked here from the
/// decoded JSON without the filter's parser.
/// `any`: the token must hold one of these scopes (empty: no condition);
/// `all`: every one of these.
pub fn check_allowed_token(token: &str, provider: &str, any: &[&str], all: &[&str]) {
    if let Err(why) = keys::reference_verify(token) {
        panic!("allowed a token whose signature fails the reference check ({why}): {token}");
    }
    let (header, payload) = keys::decoded(token).expect("an allowed token decodes");
    let fail = |why: &str| -> ! { panic!("allowed a token that {why}: {token}") };
    let header = header
        .as_object()
        .unwrap_or_else(|| fail("has a non-object header"));
    for member in ["crit", "jku", "jwk", "x5u", "x5c"] {
        if header.contains_key(member) {
            fail(&format!("has {member} in its header"));
        }
    }
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let (issuer, algs): (&str, &[&str]) = match provider {
        "cognito" => (ISSUER, &["RS256", "PS256", "ES256", "EdDSA", "HS256"]),
        "partner" => (PARTNER_ISSUER, &["HS256"]),
        other => fail(&format!("came from the unknown provider {other}")),
    };
    if !algs.contains(&alg) {
        fail(&format!("uses {alg:?}, not allowed for {provider}"));
    }
    let claims = payload
        .as_object()
        .unwrap_or_else(|| fail("has a non-object payload"));
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        fail("has the wrong issuer");
    }
    // NumericDates as real numbers (RFC 7519 §2): the filter rounds them to
    // the stricter side, so whatever it allows meets the exact comparison.
    let time = |name: &str| {
        claims.get(name).map(|v| {
            v.as_f64()
                .filter(|t| !t.is_sign_negative() && *t < 9_007_199_254_740_992.0)
        })
    };
    let (now, skew) = (NOW as f64, 60.0);
    match time("exp") {
        Some(Some(exp)) if now < exp + skew => {}
        None if provider == "partner" => {}
        other => fail(&format!("has exp {other:?} at {NOW}")),
    }
    for name in ["nbf", "iat"] {
        match time(name) {
            None => {}
            Some(Some(t)) if t <= now + skew => {}
            other => fail(&format!("has {name} {other:?} at {NOW}")),
        }
    }
    if provider == "cognito" {
        if claims.get("token_use").and_then(Value::as_str) != Some("access") {
            fail("is not an access token");
        }
        if claims.get("client_id").and_then(Value::as_str) != Some(CLIENT) {
            fail("has the wrong client_id");
        }
        let audience_ok = match claims.get("aud") {
            None => true,
            Some(Value::String(a)) => a == CLIENT,
            Some(Value::Array(items)) => items.iter().any(|a| a.as_str() == Some(CLIENT)),
            Some(_) => false,
        };
        if !audience_ok {
            fail("has the wrong audience");
        }
    }
    let has = |scope: &str| {
        let from_scope = claims
            .get("scope")
            .and_then(Value::as_str)
            .is_some_and(|s| s.split(' ').any(|x| x == scope));
        let from_scp = match claims.get("scp") {
            Some(Value::String(s)) => s.split(' ').any(|x| x == scope),
            Some(Value::Array(items)) => items.iter().any(|x| x.as_str() == Some(scope)),
            _ => false,
        };
        from_scope || from_scp
    };
    if !any.is_empty() && !any.iter().any(|s| has(s)) {
        fail(&format!("holds none of the scopes {any:?}"));
    }
    if let Some(missing) = all.iter().find(|s| !has(s)) {
        fail(&format!("lacks the scope {missing}"));
    }
}
