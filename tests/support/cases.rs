//! The core policy cases, as data: the Envoy integration test sends each
//! one through the real filter, and the CLI test asks `jwt-policy explain`
//! about the same ones and compares answers.

use serde_json::{Value, json};

use super::http::{Request, Response, send};
use super::tokens::{Alg, TestKey, b64url, cognito_access_claims, jwks, now};

pub const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot";
pub const CLIENT: &str = "14aq5ll5b1it6f62uefem6aqhn";

/// The keys of the core suite, freshly generated per run.
pub struct Keys {
    pub rsa: TestKey,
    pub ps: TestKey,
    pub ec: TestKey,
    pub ed: TestKey,
    /// Same kid as `rsa`, different key: a forger's key.
    pub forger: TestKey,
}

impl Keys {
    pub fn generate() -> Keys {
        Keys {
            rsa: TestKey::rsa("rsa-1", 2048),
            ps: TestKey::rsa("ps-1", 2048),
            ec: TestKey::ec_p256("ec-1"),
            ed: TestKey::ed25519("ed-1"),
            forger: TestKey::rsa("rsa-1", 2048),
        }
    }

    pub fn jwks(&self) -> Value {
        jwks(&[
            self.rsa.jwk(),
            self.ps.jwk_with_alg(Alg::PS256),
            self.ec.jwk(),
            self.ed.jwk(),
        ])
    }
}

/// The plugin configuration of the core issue, with the suite's keys.
pub fn config(keys: &Keys) -> Value {
    json!({
      "providers": {
        "cognito": {
          "issuer": ISSUER,
          "audiences": [CLIENT],
          "token_use": "access",
          "algorithms": ["RS256", "PS256", "ES256", "EdDSA"],
          "local_jwks": keys.jwks(),
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
          "forward_token": true
        }
      },
      "rules": [
        { "match": { "path": "/healthz" }, "allow_anonymous": true },
        { "match": { "prefix": "/api/v1/order", "methods": ["POST"] },
          "requires": { "provider": "cognito", "scopes": ["order/post.order"] } },
        { "match": { "prefix": "/api/v1/order", "methods": ["GET"] },
          "requires": { "provider": "cognito", "scopes": ["order/get.order", "order/admin"] } },
        { "match": { "route": "admin_route" },
          "requires": { "provider": "cognito", "all_scopes": ["order/admin", "order/audit"] } }
      ],
      "unmatched": "deny",
      "route_check": true
    })
}

/// What a case must produce.
pub struct Expect {
    pub status: u16,
    /// The `WWW-Authenticate` value must start with this (when set).
    pub challenge: Option<String>,
    /// Headers the upstream must see (`Some`) or must not see (`None`).
    pub upstream: Vec<(&'static str, Option<String>)>,
}

pub struct Case {
    pub name: String,
    pub request: Request,
    /// The Envoy route the request takes (`admin_route` for /admin...).
    pub route: &'static str,
    pub expect: Expect,
}

fn challenge(error: &str) -> Option<String> {
    Some(format!("Bearer realm=\"api\", error=\"{error}\""))
}

fn allowed(scopes: &str) -> Expect {
    Expect {
        status: 200,
        challenge: None,
        upstream: vec![
            ("x-client-id", Some(CLIENT.into())),
            ("x-scopes", Some(scopes.into())),
        ],
    }
}

fn invalid() -> Expect {
    Expect {
        status: 401,
        challenge: challenge("invalid_token"),
        upstream: vec![],
    }
}

fn forbidden(scope: &str) -> Expect {
    Expect {
        status: 403,
        challenge: Some("Bearer realm=\"api\", error=\"insufficient_scope\"".to_string()),
        upstream: vec![],
    }
    .with_challenge_suffix(scope)
}

impl Expect {
    fn with_challenge_suffix(mut self, scope: &str) -> Expect {
        self.challenge = self.challenge.map(|c| format!("{c}\u{0}{scope}"));
        self
    }
}

/// Claims of a valid Cognito client-credentials access token.
pub fn claims(scope: &str) -> Value {
    cognito_access_claims(ISSUER, CLIENT, scope, now())
}

fn rs(keys: &Keys, c: Value) -> String {
    keys.rsa.token(Alg::RS256, c)
}

fn case(name: impl Into<String>, request: Request, expect: Expect) -> Case {
    let route = if request.path.starts_with(b"/admin") {
        "admin_route"
    } else {
        "default_route"
    };
    Case {
        name: name.into(),
        request,
        route,
        expect,
    }
}

fn post(token: &str) -> Request {
    Request::post("/api/v1/order").bearer(token)
}

/// Every case of the core issue.
pub fn core_cases(keys: &Keys) -> Vec<Case> {
    let post_scope = "order/post.order";
    let mut cases = vec![
        case(
            "valid RS256",
            post(&rs(keys, claims(post_scope))),
            allowed(post_scope),
        ),
        case(
            "valid PS256",
            post(&keys.ps.token(Alg::PS256, claims(post_scope))),
            allowed(post_scope),
        ),
        case(
            "valid ES256",
            post(&keys.ec.token(Alg::ES256, claims(post_scope))),
            allowed(post_scope),
        ),
        case(
            "valid EdDSA",
            post(&keys.ed.token(Alg::EdDSA, claims(post_scope))),
            allowed(post_scope),
        ),
        case(
            "token in query parameter",
            Request::post(format!(
                "/api/v1/order?access_token={}",
                rs(keys, claims(post_scope))
            )),
            allowed(post_scope),
        ),
        case(
            "token in cookie",
            Request::post("/api/v1/order").header(
                "cookie",
                format!("a=b; session_token={}", rs(keys, claims(post_scope))),
            ),
            allowed(post_scope),
        ),
        case(
            "missing token",
            Request::post("/api/v1/order"),
            Expect {
                status: 401,
                challenge: Some("Bearer realm=\"api\"".into()),
                upstream: vec![],
            },
        ),
        case(
            "Basic credentials are not a bearer token",
            Request::post("/api/v1/order").header("authorization", "Basic dXNlcjpwYXNz"),
            Expect {
                status: 401,
                challenge: Some("Bearer realm=\"api\"".into()),
                upstream: vec![],
            },
        ),
    ];

    let mut c = claims(post_scope);
    c["exp"] = json!(now() - 120);
    cases.push(case("expired", post(&rs(keys, c)), invalid()));
    let mut c = claims(post_scope);
    c["nbf"] = json!(now() + 600);
    cases.push(case("not yet valid", post(&rs(keys, c)), invalid()));
    let mut c = claims(post_scope);
    c["iat"] = json!(now() + 600);
    cases.push(case("issued in the future", post(&rs(keys, c)), invalid()));
    let mut c = claims(post_scope);
    c["iss"] = json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_other");
    cases.push(case("wrong issuer", post(&rs(keys, c)), invalid()));
    let mut c = claims(post_scope);
    c["client_id"] = json!("another-app-client");
    c["sub"] = json!("another-app-client");
    cases.push(case(
        "wrong audience (client_id)",
        post(&rs(keys, c)),
        invalid(),
    ));
    let mut c = claims(post_scope);
    c["aud"] = json!(["someone-else"]);
    cases.push(case("wrong audience (aud)", post(&rs(keys, c)), invalid()));
    let mut c = claims(post_scope);
    c["aud"] = json!(CLIENT);
    cases.push(case(
        "audience by aud",
        post(&rs(keys, c)),
        allowed(post_scope),
    ));
    let mut c = claims(post_scope);
    c["token_use"] = json!("id");
    cases.push(case("wrong token_use", post(&rs(keys, c)), invalid()));
    let mut c = claims(post_scope);
    c.as_object_mut().unwrap().remove("client_id");
    c["aud"] = json!(CLIENT);
    cases.push(case(
        "missing required claim",
        post(&rs(keys, c)),
        invalid(),
    ));

    // Tampering and forgery.
    let good = rs(keys, claims(post_scope));
    let parts: Vec<&str> = good.split('.').collect();
    let mut evil = claims("order/post.order order/admin order/audit");
    evil["client_id"] = json!(CLIENT);
    let tampered = format!("{}.{}.{}", parts[0], b64url(evil.to_string()), parts[2]);
    cases.push(case("tampered payload", post(&tampered), invalid()));
    cases.push(case(
        "signed by another key with the same kid",
        post(&keys.forger.token(Alg::RS256, claims(post_scope))),
        invalid(),
    ));
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "kid": "rsa-1"});
        let unsigned = format!(
            "{}.{}.",
            b64url(header.to_string()),
            b64url(claims(post_scope).to_string())
        );
        cases.push(case(
            format!("alg {alg}, empty signature"),
            post(&unsigned),
            invalid(),
        ));
        let with_sig = format!("{unsigned}{}", parts[2]);
        cases.push(case(
            format!("alg {alg}, copied signature"),
            post(&with_sig),
            invalid(),
        ));
    }
    // HS256 "signed" with the RSA public key (the classic confusion attack):
    // the public key's PEM as the HMAC secret.
    let public_der = TestKey::hmac("rsa-1", keys.rsa.public_pem());
    cases.push(case(
        "HS256 signed with the RSA public key",
        post(&public_der.mint(
            Alg::HS256,
            json!({"alg": "HS256", "kid": "rsa-1"}),
            claims(post_scope),
        )),
        invalid(),
    ));
    cases.push(case(
        "unknown kid",
        post(&keys.rsa.mint(
            Alg::RS256,
            json!({"alg": "RS256", "kid": "rsa-9"}),
            claims(post_scope),
        )),
        invalid(),
    ));
    cases.push(case(
        "EC key named by an RS256 header",
        post(&keys.rsa.mint(
            Alg::RS256,
            json!({"alg": "RS256", "kid": "ec-1"}),
            claims(post_scope),
        )),
        invalid(),
    ));
    cases.push(case(
        "PS256-only key named by an RS256 header",
        post(&keys.ps.mint(
            Alg::RS256,
            json!({"alg": "RS256", "kid": "ps-1"}),
            claims(post_scope),
        )),
        invalid(),
    ));
    for (name, token) in [
        ("garbage token", "garbage".to_string()),
        ("two segments", format!("{}.{}", parts[0], parts[1])),
        ("truncated signature", good[..good.len() - 12].to_string()),
        (
            "truncated payload",
            format!(
                "{}.{}.{}",
                parts[0],
                &parts[1][..parts[1].len() / 2],
                parts[2]
            ),
        ),
        ("four segments", format!("{good}.x")),
    ] {
        cases.push(case(name, post(&token), invalid()));
    }
    cases.push(case(
        "non-UTF-8 bytes in the Authorization header",
        Request::post("/api/v1/order").header("authorization", b"Bearer \xff\xfe\xc3(".as_slice()),
        invalid(),
    ));
    cases.push(case(
        "non-UTF-8 bytes in another header",
        post(&good).header("x-odd-bytes", b"\xe9t\xe9".as_slice()),
        allowed(post_scope),
    ));

    // Scopes.
    let get = |scope: &str| Request::get("/api/v1/order/42").bearer(&rs(keys, claims(scope)));
    cases.push(case(
        "GET with the POST scope only",
        get(post_scope),
        forbidden("order/get.order order/admin"),
    ));
    cases.push(case(
        "GET with any-of scope get.order",
        get("order/get.order"),
        allowed("order/get.order"),
    ));
    cases.push(case(
        "GET with any-of scope admin",
        get("order/admin"),
        allowed("order/admin"),
    ));
    let admin = |scope: &str| Request::get("/admin/users").bearer(&rs(keys, claims(scope)));
    cases.push(case(
        "admin with one of two all-of scopes",
        admin("order/admin"),
        forbidden("order/admin order/audit"),
    ));
    cases.push(case(
        "admin with both all-of scopes",
        admin("order/admin order/audit"),
        allowed("order/admin order/audit"),
    ));

    // Anonymous and unmatched routes, spoofed headers.
    cases.push(case(
        "anonymous route ignores a bad token and drops spoofed claim headers",
        Request::get("/healthz")
            .bearer("garbage")
            .header("x-client-id", "spoofed"),
        Expect {
            status: 200,
            challenge: None,
            upstream: vec![
                ("x-client-id", None),
                ("authorization", Some("Bearer garbage".into())),
            ],
        },
    ));
    cases.push(case(
        "unmatched route is denied",
        Request::get("/elsewhere").bearer(&good),
        Expect {
            status: 403,
            challenge: challenge("insufficient_scope"),
            upstream: vec![],
        },
    ));
    cases.push(case(
        "spoofed claim header is replaced by the token's claim",
        post(&good).header("x-client-id", "admin-client"),
        allowed(post_scope),
    ));
    cases.push(case(
        "path traversal does not reach the anonymous rule",
        Request::post("/healthz/../api/v1/order"),
        Expect {
            status: 401,
            challenge: Some("Bearer realm=\"api\"".into()),
            upstream: vec![],
        },
    ));
    cases
}

/// Checks a response against a case's expectation; returns what differs.
pub fn mismatch(
    case: &Case,
    status: u16,
    challenge: Option<&str>,
    upstream: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let e = &case.expect;
    if status != e.status {
        return Some(format!("status {status}, expected {}", e.status));
    }
    if let Some(want) = &e.challenge {
        let (prefix, scope) = want.split_once('\u{0}').unwrap_or((want, ""));
        let got = challenge.unwrap_or("");
        if !got.starts_with(prefix)
            || (!scope.is_empty() && !got.ends_with(&format!("scope=\"{scope}\"")))
        {
            return Some(format!("WWW-Authenticate {got:?}, expected {want:?}"));
        }
    }
    if status == 200 {
        for (name, want) in &e.upstream {
            let got = upstream(name);
            if &got != want {
                return Some(format!(
                    "upstream header {name} = {got:?}, expected {want:?}"
                ));
            }
        }
    }
    None
}

/// Sends `case` to the listener on `port`; the response, and what differs
/// from the case's expectation (if anything), as a failure line.
pub fn send_case(port: u16, case: &Case) -> (Response, Option<String>) {
    let resp = send(port, &case.request);
    let view = (resp.status == 200).then(|| resp.upstream());
    let got = |name: &str| view.as_ref().and_then(|u| u.header(name));
    let failure = mismatch(case, resp.status, resp.header("www-authenticate"), &got)
        .map(|why| format!("{}: {why}; body {}", case.name, resp.body_str()));
    (resp, failure)
}

/// Panics listing `failures` (of `total` cases) unless there are none.
pub fn assert_no_failures(failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        total,
        failures.join("\n")
    );
}
