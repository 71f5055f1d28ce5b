//! The mesh-wide policy cases (issue 12), as data: one configuration for
//! two services and two user pools, with host rules, API Gateway path
//! templates, a rule accepting both pools, an optional-token rule and CORS
//! preflights. `tests/envoy_mesh.rs` sends each case through the real
//! filter; `tests/cli_agreement.rs` asks `jwt-policy explain` the same.

use serde_json::{Value, json};

use super::cases::{CLIENT, Case, Expect, ISSUER};
use super::http::Request;
use super::tokens::{Alg, TestKey, cognito_access_claims, jwks, now};

pub const PARTNER_ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Partners";
pub const PARTNER_CLIENT: &str = "7partnerclientid0000000000";

/// One key per user pool, freshly generated per run (the same `kid`: only
/// the `iss` tells the pools apart).
pub struct MeshKeys {
    pub orders: TestKey,
    pub partners: TestKey,
}

impl MeshKeys {
    pub fn generate() -> MeshKeys {
        MeshKeys {
            orders: TestKey::rsa("pool-key", 2048),
            partners: TestKey::rsa("pool-key", 2048),
        }
    }

    /// An access token of the orders pool.
    pub fn orders(&self, scope: &str) -> String {
        self.orders.token(
            Alg::RS256,
            cognito_access_claims(ISSUER, CLIENT, scope, now()),
        )
    }

    /// An access token of the partners pool.
    pub fn partners(&self, scope: &str) -> String {
        self.partners.token(
            Alg::RS256,
            cognito_access_claims(PARTNER_ISSUER, PARTNER_CLIENT, scope, now()),
        )
    }
}

/// Two services (orders on `api.example.com` and `*.internal.example.com`,
/// files and a catalogue on any host) and two pools.
pub fn config(keys: &MeshKeys) -> Value {
    json!({
      "providers": {
        "orders_pool": {
          "issuer": ISSUER,
          "audiences": [CLIENT],
          "token_use": "access",
          "algorithms": ["RS256"],
          "local_jwks": jwks(&[keys.orders.jwk()]),
          "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }]
        },
        "partner_pool": {
          "issuer": PARTNER_ISSUER,
          "audiences": [PARTNER_CLIENT],
          "token_use": "access",
          "algorithms": ["RS256"],
          "local_jwks": jwks(&[keys.partners.jwk()]),
          "from_headers": [{ "name": "x-partner-token" }],
          "claims_to_headers": [{ "claim": "client_id", "header": "x-client-id" }]
        }
      },
      "rules": [
        { "name": "orders", "match": { "hosts": ["api.example.com", "*.internal.example.com"],
                                       "path_template": "/orders/{id}" },
          "requires": { "providers": ["orders_pool", "partner_pool"], "scopes": ["orders/read"] } },
        { "name": "files", "match": { "path_template": "/files/{proxy+}" },
          "requires": { "provider": "orders_pool" } },
        { "name": "catalog", "match": { "prefix": "/catalog" },
          "requires": { "provider": "orders_pool" }, "allow_missing": true }
      ],
      "unmatched": "deny",
      "bypass_cors_preflight": true
    })
}

fn case(name: &str, request: Request, expect: Expect) -> Case {
    Case {
        name: name.into(),
        request,
        route: "default_route",
        expect,
    }
}

fn allowed(client: Option<&str>) -> Expect {
    Expect {
        status: 200,
        challenge: None,
        upstream: vec![("x-client-id", client.map(str::to_owned))],
    }
}

fn refused(status: u16, error: Option<&str>) -> Expect {
    Expect {
        status,
        challenge: Some(match error {
            Some(e) => format!("Bearer realm=\"api\", error=\"{e}\""),
            None => "Bearer realm=\"api\"".into(),
        }),
        upstream: vec![],
    }
}

fn at(host: &str, method: &str, path: &str) -> Request {
    Request::new(method, path).header("host", host)
}

/// Every case of the mesh issue.
pub fn cases(keys: &MeshKeys) -> Vec<Case> {
    let read = keys.orders("orders/read");
    let partner = keys.partners("orders/read");
    let preflight = |path: &str| {
        at("api.example.com", "OPTIONS", path)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "DELETE")
    };
    vec![
        case(
            "host and path template",
            at("api.example.com", "GET", "/orders/42").bearer(&read),
            allowed(Some(CLIENT)),
        ),
        case(
            "host in another case, with a port and a trailing dot",
            at("API.Example.COM.:443", "GET", "/orders/42").bearer(&read),
            allowed(Some(CLIENT)),
        ),
        case(
            "wildcard host",
            at("eu.internal.example.com", "GET", "/orders/42").bearer(&read),
            allowed(Some(CLIENT)),
        ),
        case(
            "a host of no rule",
            at("evil.example.com", "GET", "/orders/42").bearer(&read),
            refused(403, Some("insufficient_scope")),
        ),
        case(
            "the wildcard's apex is not under it",
            at("internal.example.com", "GET", "/orders/42").bearer(&read),
            refused(403, Some("insufficient_scope")),
        ),
        case(
            "{id} is one segment",
            at("api.example.com", "GET", "/orders/42/items").bearer(&read),
            refused(403, Some("insufficient_scope")),
        ),
        case(
            "the template matches the normal path",
            at("api.example.com", "GET", "/orders/7/../42").bearer(&read),
            allowed(Some(CLIENT)),
        ),
        case(
            "the partner pool's token in its own header",
            at("api.example.com", "GET", "/orders/42").header("x-partner-token", &partner),
            allowed(Some(PARTNER_CLIENT)),
        ),
        case(
            "the partner pool's token where only the orders pool reads",
            at("api.example.com", "GET", "/orders/42").bearer(&partner),
            refused(401, Some("invalid_token")),
        ),
        case(
            "an issuer of neither pool",
            at("api.example.com", "GET", "/orders/42").bearer(&keys.orders.token(
                Alg::RS256,
                cognito_access_claims("https://evil.example.com", CLIENT, "orders/read", now()),
            )),
            refused(401, Some("invalid_token")),
        ),
        case(
            "the orders pool's iss, signed by the partner pool",
            at("api.example.com", "GET", "/orders/42").bearer(&keys.partners.token(
                Alg::RS256,
                cognito_access_claims(ISSUER, CLIENT, "orders/read", now()),
            )),
            refused(401, Some("invalid_token")),
        ),
        case(
            "a valid token without the rule's scope",
            at("api.example.com", "GET", "/orders/42").bearer(&keys.orders("orders/write")),
            refused(403, Some("insufficient_scope")),
        ),
        case(
            "a greedy template",
            at("any", "GET", "/files/reports/2026/q4.pdf").bearer(&read),
            allowed(Some(CLIENT)),
        ),
        case(
            "a greedy template needs a segment",
            at("any", "GET", "/files/").bearer(&read),
            refused(403, Some("insufficient_scope")),
        ),
        case(
            "optional token: none, and a spoofed claim header goes",
            at("any", "GET", "/catalog/books").header("x-client-id", "admin"),
            allowed(None),
        ),
        case(
            "optional token: a valid one sets the claim headers",
            at("any", "GET", "/catalog/books").bearer(&read),
            allowed(Some(CLIENT)),
        ),
        case(
            "optional token: an invalid one is refused",
            at("any", "GET", "/catalog/books").bearer(&format!("{read}x")),
            refused(401, Some("invalid_token")),
        ),
        case(
            "a required token is still required",
            at("any", "GET", "/files/a"),
            refused(401, None),
        ),
        case(
            "a CORS preflight needs no token",
            preflight("/orders/42"),
            allowed(None),
        ),
        case(
            "OPTIONS without Access-Control-Request-Method is no preflight",
            at("api.example.com", "OPTIONS", "/orders/42")
                .header("origin", "https://app.example.com"),
            refused(401, None),
        ),
    ]
}
