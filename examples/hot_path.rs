//! The filter's per-request core in a loop, natively, for timing and for
//! `valgrind --tool=callgrind` (bench/PROFILE.md has the commands and the
//! results).
//!
//! Each iteration is what `Vm::process` does in the filter minus the
//! hostcalls: `engine::evaluate` (rule, token extraction, cache lookup or
//! parse + checks + cache insert, scopes) then `plan::plan`. The policy is
//! the one `make bench` gives listener C: a Cognito provider with issuer,
//! audience (client_id), token_use, RS256 only, and one rule asking for a
//! scope; token cache of 1,000 entries.
//!
//! Modes (`cargo run --release --example hot_path -- [MODE [ITERATIONS]]`):
//!   hit      one token, repeated: every request after the first is a hit
//!   miss     4,000 distinct tokens in a cycle through the 1,000-entry cache:
//!            every request misses, is parsed and checked, and its signature
//!            goes to a host-like verifier stub that encodes the
//!            `verify_signature` arguments (as the filter does) and says
//!            "valid" without doing RSA (Envoy does that in BoringSSL)
//!   nocache  one token, cache off, same stub: parse + checks per request
//!   pure     one token, cache off, the pure-Rust RSA verifier (jwt-simple):
//!            what a host without `verify_signature` pays
//! Without arguments every mode runs and prints ns per request.
//!
//! The stub modes sign nothing: the tokens carry 256 bytes of junk as a
//! signature (the right length for the key, so the shape check passes) and
//! the key below is a fixed public RSA-2048 key. That keeps RSA key
//! generation and signing out of the profile and makes the run fast under
//! valgrind. `pure` generates and signs with a real key.

#![allow(clippy::restriction)] // a measuring tool: it may panic on bad input

use std::hint::black_box;
use std::time::Instant;

use jwt_policy::algorithm::Algorithm;
use jwt_policy::b64;
use jwt_policy::engine::{ConfiguredKeys, Env, evaluate};
use jwt_policy::envoy_crypto;
use jwt_policy::plan::{self, Plan};
use jwt_policy::policy::Policy;
use jwt_policy::request::{Request, RequestHead, encode_pairs};
use jwt_policy::signature::{Key, NoAcceleration, Verdict, Verifier};
use jwt_policy::token::Jws;
use jwt_policy::token_cache::TokenCache;
use jwt_policy::trace::NoTrace;
use jwt_simple::prelude::*;
use serde_json::{Value, json};

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_BenchPool1";
const CLIENT_ID: &str = "4bench0client0id0000000000";
const SCOPE: &str = "order/post.order";
const NOW: u64 = 1_750_000_000;
/// The modulus of a fixed RSA-2048 public key (e = 65537); its private key
/// was thrown away. Only the stub modes use it.
const FIXED_N: &str = "xCv1PqjkxOFPCnAFcyb7LV2wUR23BlebmgR7VmjXNRSoqXUgZFo-C4dyxaR1sjXXRLf_ATzCrBnedd7enBCvjVJCe2Ocz7ml8slRQHO4Xj4LZwh0Sc0eXcN402OiGiCO_ZiPV6FsnkGEYqCK5WkOGoMQEzA26nV9JgVtGZkQjNH0zA0dGgpP5XPyC18e6O9xoqDF-eFuAPPGpJiPB6gqn9B0BDTDpVwqJDpUTEnOKYDp95zlhsMmHcVmVF86k8R9mWzeD2s3IFrGRqG51ZB14zhFDsJ9mw7jB1vsO_DzOwYO_rpbuOl25yy1KCC3m3fYFPj4ctinmYPTH6StsDJgzw";
const KID: &str = "bench-rsa-1";

/// The request as the filter reads it: every header entry in one
/// hostcall, a buffer in the proxy-wasm pairs encoding that the filter owns
/// (copied here per request, as the host copies it into the VM).
struct Req {
    pairs: Vec<u8>,
}

impl Req {
    fn new(token: &str) -> Req {
        let authorization = format!("Bearer {token}");
        Req {
            pairs: encode_pairs(&[
                (":authority", "api.example.com"),
                (":path", "/api/v1/order"),
                (":method", "GET"),
                (":scheme", "http"),
                ("user-agent", "wrk"),
                ("authorization", authorization.as_str()),
            ]),
        }
    }
}

/// Stands in for Envoy's `verify_signature`: the filter's own work for a
/// host verification (encoding the protobuf arguments), then "valid".
struct HostStub;

impl Verifier for HostStub {
    fn verify(&self, alg: Algorithm, key: Key<'_>, jws: &Jws<'_>, _token: &str) -> Verdict {
        let Key::Public(k) = key else {
            return Verdict::CannotVerify;
        };
        match envoy_crypto::arguments(
            alg,
            &k.spki_der,
            &jws.signature,
            jws.signing_input.as_bytes(),
        ) {
            Some(args) => {
                black_box(args);
                Verdict::Valid
            }
            None => Verdict::CannotVerify,
        }
    }
}

fn cognito_claims(jti: usize) -> Value {
    json!({
        "sub": CLIENT_ID, "token_use": "access", "scope": SCOPE, "auth_time": NOW,
        "iss": ISSUER, "exp": NOW + 3600, "iat": NOW, "version": 2,
        "jti": format!("0f6e3b27-8a7c-4f7a-9d0e-{jti:012}"), "client_id": CLIENT_ID
    })
}

/// A Cognito-shaped token with a junk 256-byte signature.
fn unsigned_token(jti: usize) -> String {
    let header = format!(r#"{{"kid":"{KID}","alg":"RS256"}}"#);
    format!(
        "{}.{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(cognito_claims(jti).to_string().as_bytes()),
        b64::encode(&[0x5a; 256])
    )
}

fn policy(n: &str, e: &str, cache_entries: usize) -> Policy {
    let config = json!({
        "token_cache": {"max_entries": cache_entries},
        "providers": {"cognito": {
            "issuer": ISSUER, "audiences": [CLIENT_ID], "token_use": "access",
            "algorithms": ["RS256"], "clock_skew_s": 60,
            "local_jwks": {"keys": [{"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256", "n": n, "e": e}]}
        }},
        "rules": [{"name": "orders", "match": {"prefix": "/"},
                   "requires": {"provider": "cognito", "scopes": [SCOPE]}}],
        "unmatched": "deny"
    });
    match Policy::from_json(config.to_string().as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("bench policy refused: {e}"),
    }
}

/// One request, as the filter decides it (without the hostcalls).
#[inline(never)]
fn decide(policy: &Policy, cache: &mut TokenCache, verifier: &dyn Verifier, req: &Req) -> bool {
    let Some(head) = RequestHead::from_pairs_buffer(req.pairs.clone()) else {
        return false;
    };
    let mut keys = ConfiguredKeys(policy);
    let mut env = Env {
        keys: &mut keys,
        verifier,
        cache: Some(cache),
        now: NOW + 10,
    };
    let view = Request {
        head: &head,
        route: None,
    };
    let eval = evaluate(policy, &mut env, &view, &mut NoTrace);
    matches!(plan::plan(policy, &eval, &head), Plan::Forward(_))
}

/// The measured loop (callgrind: `--toggle-collect=*hot_path*run_loop*`).
#[inline(never)]
fn run_loop(
    policy: &Policy,
    cache: &mut TokenCache,
    verifier: &dyn Verifier,
    reqs: &mut [Req],
    iterations: usize,
) -> usize {
    let mut allowed = 0;
    let n = reqs.len();
    for i in 0..iterations {
        if decide(policy, cache, verifier, &reqs[i % n]) {
            allowed += 1;
        }
    }
    allowed
}

fn bearer(token: &str) -> Req {
    Req::new(token)
}

fn run(mode: &str, iterations: usize) {
    let e = b64::encode(&[1, 0, 1]);
    let (policy, verifier, mut reqs): (Policy, &dyn Verifier, Vec<Req>) = match mode {
        "hit" => (
            policy(FIXED_N, &e, 1000),
            &HostStub,
            vec![bearer(&unsigned_token(0))],
        ),
        "nocache" => (
            policy(FIXED_N, &e, 0),
            &HostStub,
            vec![bearer(&unsigned_token(0))],
        ),
        "miss" => (
            policy(FIXED_N, &e, 1000),
            &HostStub,
            (0..4000).map(|i| bearer(&unsigned_token(i))).collect(),
        ),
        "pure" => {
            let kp = match RS256KeyPair::generate(2048) {
                Ok(k) => k.with_key_id(KID),
                Err(e) => panic!("RSA key generation: {e}"),
            };
            let c = kp.public_key().to_components();
            let claims = JWTClaims {
                issued_at: None,
                expires_at: None,
                invalid_before: None,
                issuer: None,
                subject: None,
                audiences: None,
                jwt_id: None,
                nonce: None,
                custom: cognito_claims(0),
            };
            let token = match kp.sign(claims) {
                Ok(t) => t,
                Err(e) => panic!("signing: {e}"),
            };
            (
                policy(&b64::encode(&c.n), &b64::encode(&c.e), 0),
                &NoAcceleration,
                vec![bearer(&token)],
            )
        }
        other => panic!("unknown mode {other} (hit, miss, nocache, pure)"),
    };
    let mut cache = TokenCache::new(policy.token_cache);
    // Warm up (and in `hit` mode, put the token in the cache).
    let warm = run_loop(&policy, &mut cache, verifier, &mut reqs, 1);
    assert_eq!(warm, 1, "{mode}: the bench token must be allowed");
    let start = Instant::now();
    let allowed = run_loop(&policy, &mut cache, verifier, &mut reqs, iterations);
    let elapsed = start.elapsed();
    assert_eq!(allowed, iterations, "{mode}: every request must be allowed");
    println!(
        "{mode:8} {iterations:8} requests  {:9.0} ns/request  (cache {} entries)",
        elapsed.as_nanos() as f64 / iterations as f64,
        cache.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            run("hit", 200_000);
            run("miss", 40_000);
            run("nocache", 40_000);
            run("pure", 200);
        }
        [mode] => run(mode, 10_000),
        [mode, n] => run(
            mode,
            n.parse().unwrap_or_else(|_| panic!("not a count: {n}")),
        ),
        _ => panic!("usage: hot_path [hit|miss|nocache|pure [ITERATIONS]]"),
    }
}
