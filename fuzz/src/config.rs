//! The `config` target: bytes as a plugin configuration through
//! `jwt_policy::policy::Policy::from_json`.
//!
//! Invariants: no panic; the same bytes give the same outcome twice (the
//! same compiled policy, or the same error naming the same field); a
//! compiled policy keeps its own promises (limits in their ranges, rules
//! pointing at existing providers, a printable realm, lower-case managed
//! headers that never include where tokens are read from); and a few
//! requests through the compiled policy (a valid ES256 fuzz-key token, no
//! token, a token in a parameter and a cookie) are decided without panic,
//! denied only with 401, 403 or 503 (remote keys are unavailable here),
//! with header hygiene.

use std::sync::OnceLock;

use jwt_policy::extract::TokenLocation;
use jwt_policy::policy::{Access, KeySource, Policy};

use crate::keys::Signer;
use crate::{FuzzRequest, check_outcome, check_plan, cognito};

fn valid_token() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| Signer::Es256.token(&cognito("order/post.order order/get.order")))
}

/// Runs one input; returns whether the configuration compiled.
pub fn run(data: &[u8]) -> bool {
    let first = Policy::from_json(data);
    let second = Policy::from_json(data);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "compiled twice"),
        (Err(a), Err(b)) => assert_eq!(a, b, "refused twice"),
        _ => panic!("the same configuration compiled once and was refused once"),
    }
    let policy = match first {
        Err(e) => {
            let _ = e.to_string();
            return false;
        }
        Ok(p) => p,
    };
    check_policy(&policy);
    let token = valid_token();
    let bearer = format!("Bearer {token}");
    let requests = [
        FuzzRequest::new("POST", "/api/v1/order").with_header("authorization", bearer.as_bytes()),
        FuzzRequest::new("GET", "/healthz"),
        FuzzRequest::new("GET", &format!("/api/v1/order?access_token={token}"))
            .with_header("cookie", format!("a=b; session_token={token}").as_bytes())
            .with_header("x-jwt", token.as_bytes()),
    ];
    for req in &requests {
        let (eval, plan) = crate::decide_twice(&policy, req);
        check_outcome(&eval, true);
        check_plan(&plan);
    }
    true
}

/// Headers the filter must never set or remove (the core's list for
/// `claims_to_headers`).
const RESERVED: [&str; 11] = [
    "host",
    "authorization",
    "proxy-authorization",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "cookie",
];

fn check_policy(p: &Policy) {
    let l = &p.limits;
    assert!((256..=65536).contains(&l.max_token_bytes));
    assert!((64..=8192).contains(&l.max_header_bytes));
    assert!((2..=64).contains(&l.max_json_depth));
    assert!((1..=1024).contains(&l.max_jwks_keys));
    assert!(
        !p.realm.is_empty()
            && p.realm
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\'),
        "realm {:?}",
        p.realm
    );
    let lower = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
    };
    assert!(lower(&p.decision_header), "{:?}", p.decision_header);
    let mut token_headers = vec!["cookie".to_string()];
    for prov in &p.providers {
        assert!(!prov.issuer.is_empty());
        assert!(!prov.algorithms.is_empty());
        assert!(!prov.locations.is_empty());
        assert!(prov.clock_skew_s <= 3600);
        let hmac = prov.algorithms.iter().any(|a| a.is_symmetric());
        assert_eq!(hmac, prov.secret.is_some(), "secret iff HS algorithms");
        match &prov.keys {
            KeySource::Local(keys) => assert!(!keys.is_empty()),
            KeySource::Remote(r) => {
                assert!(r.path.starts_with('/') && !r.authority.is_empty());
                assert!(r.timeout_ms > 0 && r.cache_ttl_s > 0 && r.refetch_cooldown_s > 0);
            }
            KeySource::SecretOnly => assert!(prov.algorithms.iter().all(|a| a.is_symmetric())),
        }
        for loc in &prov.locations {
            if let TokenLocation::Header { name, .. } = loc {
                token_headers.push(name.to_string());
            }
        }
    }
    // Every request loses the managed headers; none of them may be where a
    // token is read from or a header that frames or routes the request.
    for h in &p.managed_headers {
        assert!(lower(h), "managed header {h:?}");
        assert!(
            !token_headers.contains(h) && !RESERVED.contains(&h.as_str()),
            "the filter would remove or overwrite the header {h:?} of every request"
        );
    }
    for (i, r) in p.rules.iter().enumerate() {
        if let Access::Token(t) = &r.access {
            assert!(!t.providers.is_empty(), "rule {i} has no provider");
            for pid in &t.providers {
                assert!(*pid < p.providers.len(), "rule {i} provider");
            }
        }
        assert!(
            !p.rules.iter().take(i).any(|e| e.name == r.name),
            "duplicate rule name {:?}",
            r.name
        );
    }
}
