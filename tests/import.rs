//! `jwt-policy import` as a user runs it, on the fixtures in
//! tests/fixtures/import: the emitted configuration, the report lines, exit
//! statuses and messages; the imported policies deciding requests through
//! `jwt-policy explain` with minted tokens; `--emit envoy` accepted by
//! `envoy --mode validate` and `--emit wasmplugin` by `jwt-policy check`;
//! the examples in docs/cli.md and the README are real output. The same
//! policies deciding in a real Envoy are `tests/import_envoy.rs`.
//!
//! Tests that decide requests first ask `jwt-policy check` whether the
//! filter accepts the output (`match.path_template`, `match.hosts`, claim
//! checks without `one_of`) and fail with its answer when it does not.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use support::cases::{CLIENT, ISSUER};
use support::cli::{Run, run};
use support::{Alg, TestKey, cognito_access_claims, jwks};

fn repo(path: &str) -> String {
    support::repo_path(path).display().to_string()
}

fn fixture(name: &str) -> String {
    repo(&format!("tests/fixtures/import/{name}"))
}

/// A file in a fresh temporary directory.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    support::temp_file("jwt-policy-import", name, contents)
}

fn import(from: &str, file: &str, extra: &[&str]) -> Run {
    let file = fixture(file);
    let mut args = vec!["import", "--from", from, &file];
    args.extend_from_slice(extra);
    run(&args)
}

const POOL: &str = "us-east-1_pO0zNXTot";
const JWKS_URI: &str =
    "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot/.well-known/jwks.json";

fn cfn_params() -> Vec<String> {
    vec![
        format!("--param=UserPoolId={POOL}"),
        format!("--param=AppClientId={CLIENT}"),
    ]
}

fn walkthrough(from: &str, file: &str, params: &[String]) -> Run {
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    import(from, file, &params)
}

/// The walkthrough's API, whichever form it was written in.
fn walkthrough_config() -> Value {
    let get = json!({"provider": "order_authorizer", "scopes": ["order/get.order"]});
    json!({
        "providers": {
            "order_authorizer": {
                "issuer": ISSUER,
                "audiences": [CLIENT],
                "algorithms": ["RS256", "RS384", "RS512"],
                "remote_jwks": {"cluster": "jwks_order_authorizer", "uri": JWKS_URI}
            }
        },
        "rules": [
            {"name": "get_api_v1_order_id",
             "match": {"path_template": "/api/v1/order/{id}", "methods": ["GET"]},
             "requires": get},
            {"name": "get_api_v1_order",
             "match": {"path": "/api/v1/order", "methods": ["GET"]},
             "requires": get},
            {"name": "post_api_v1_order",
             "match": {"path": "/api/v1/order", "methods": ["POST"]},
             "requires": {"provider": "order_authorizer", "scopes": ["order/post.order"]}},
            {"name": "get_healthz",
             "match": {"path": "/healthz", "methods": ["GET"]},
             "allow_anonymous": true},
            {"name": "any_files_proxy",
             "match": {"path_template": "/files/{proxy+}"},
             "requires": {"provider": "order_authorizer", "scopes": ["order/get.order", "order/admin"]}}
        ],
        "unmatched": "deny"
    })
}

/// Whether this build's filter accepts `config` (`jwt-policy check`); the
/// reason when not.
fn filter_accepts(config: &str) -> Result<(), String> {
    let path = temp_file("config.json", config.as_bytes());
    let r = run(&["check", "--quiet", path.to_str().unwrap()]);
    if r.code == 0 { Ok(()) } else { Err(r.stdout) }
}

// ---------------------------------------------------------------- API Gateway

#[test]
fn cloudformation_walkthrough() {
    let r = walkthrough("api-gateway", "cloudformation.yaml", &cfn_params());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json(), walkthrough_config());
    let file = fixture("cloudformation.yaml");
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!("jwt-policy import: {file}: CloudFormation template, HTTP API OrdersApi")
    );
    let lines = r.lines();
    assert_eq!(
        lines[0],
        format!(
            "mapped: Resources.OrderAuthorizer -> providers.order_authorizer: issuer {ISSUER}, \
             audiences [{CLIENT}], algorithms RS256 RS384 RS512, keys from {JWKS_URI} through \
             cluster jwks_order_authorizer, token in header authorization (Bearer <token>)"
        )
    );
    // One line per route, in rule order: most specific first.
    let routes: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("mapped: Resources.") && l.contains("Route"))
        .copied()
        .collect();
    assert_eq!(
        routes,
        [
            "mapped: Resources.GetOrderByIdRoute (GET /api/v1/order/{id}) -> rules[0] get_api_v1_order_id: path_template /api/v1/order/{id}, methods GET; a token from order_authorizer, any of scopes order/get.order",
            "mapped: Resources.GetOrderRoute (GET /api/v1/order) -> rules[1] get_api_v1_order: path /api/v1/order, methods GET; a token from order_authorizer, any of scopes order/get.order",
            "mapped: Resources.PostOrderRoute (POST /api/v1/order) -> rules[2] post_api_v1_order: path /api/v1/order, methods POST; a token from order_authorizer, any of scopes order/post.order",
            "mapped: Resources.HealthRoute (GET /healthz) -> rules[3] get_healthz: path /healthz, methods GET; anonymous",
            "mapped: Resources.FilesRoute (ANY /files/{proxy+}) -> rules[4] any_files_proxy: path_template /files/{proxy+}; a token from order_authorizer, any of scopes order/get.order order/admin",
        ]
    );
    assert!(r.has_line(
        "note: Resources.OrderAuthorizer: keys at <issuer>/.well-known/jwks.json, where Cognito publishes them; \
         API Gateway does not check token_use, and neither does this provider: for Cognito access tokens add \
         \"token_use\": \"access\" (else the pool's ID tokens pass too)"
    ));
    assert!(r.has_line(
        "note: requests no route matches: API Gateway answers 404 Not Found, the filter 403 (unmatched: deny)"
    ));
    assert!(
        r.summary().starts_with("imported: 1 provider, 5 rules, "),
        "{}",
        r.summary()
    );
    assert!(!r.stderr.contains("untranslatable"), "{}", r.stderr);
}

#[test]
fn openapi_export_and_sam_give_the_same_policy() {
    let cfn = walkthrough("api-gateway", "cloudformation.yaml", &cfn_params());
    let openapi = import("api-gateway", "openapi.yaml", &[]);
    let sam = walkthrough(
        "api-gateway",
        "sam.yaml",
        &[
            format!("--param=OrdersUserPool={POOL}"),
            format!("--param=OrdersAppClient={CLIENT}"),
        ],
    );
    for (r, what) in [(&openapi, "openapi"), (&sam, "sam")] {
        assert_eq!(r.code, 0, "{what}: {}", r.stderr);
        assert_eq!(r.stdout, cfn.stdout, "{what}");
    }
    assert!(openapi.has_line(
        "mapped: paths./files/{proxy+}.x-amazon-apigateway-any-method (ANY /files/{proxy+}) -> rules[4] any_files_proxy: path_template /files/{proxy+}; a token from order_authorizer, any of scopes order/get.order order/admin"
    ), "{}", openapi.stderr);
    assert!(openapi.stderr.starts_with(&format!(
        "jwt-policy import: {}: OpenAPI definition \"orders\"\n",
        fixture("openapi.yaml")
    )));
    // SAM: the issuer is the pool's ProviderURL, derived from its id.
    assert!(sam.stderr.contains(
        "mapped: Resources.OrdersApi.Properties.Auth.Authorizers.OrderAuthorizer -> providers.order_authorizer: issuer https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot,"
    ), "{}", sam.stderr);
    // The default authorizer with the event's scopes; Authorizer: NONE.
    assert!(sam.has_line(
        "mapped: Resources.OrdersFunction.Properties.Events.PostOrder (POST /api/v1/order) -> rules[2] post_api_v1_order: path /api/v1/order, methods POST; a token from order_authorizer, any of scopes order/post.order"
    ), "{}", sam.stderr);
    assert!(sam.has_line(
        "mapped: Resources.HealthFunction.Properties.Events.Health (GET /healthz) -> rules[3] get_healthz: path /healthz, methods GET; anonymous"
    ));
}

#[test]
fn unresolved_values_are_errors_naming_where_and_what() {
    let r = import("api-gateway", "cloudformation.yaml", &[]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    assert!(r.has_line(
        "error: Resources.OrderAuthorizer.Properties.JwtConfiguration.Issuer: unresolved ${UserPoolId} in !Sub (pass --param UserPoolId=...)"
    ), "{}", r.stderr);
    assert!(r.has_line(
        "error: Resources.OrderAuthorizer.Properties.JwtConfiguration.Audience[0]: unresolved !Ref AppClientId (pass --param AppClientId=...)"
    ));
    assert_eq!(r.summary(), "not imported: 2 errors");

    let r = import("api-gateway", "bad-unresolved-ref.yaml", &[]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    assert!(r.has_line(
        "error: Resources.OrderAuthorizer.Properties.JwtConfiguration.Issuer: unresolved !Ref UserPoolId (pass --param UserPoolId=...)"
    ), "{}", r.stderr);
    assert_eq!(r.summary(), "not imported: 1 error");
    let r = import(
        "api-gateway",
        "bad-unresolved-ref.yaml",
        &["--param", "UserPoolId=us-east-1_x", "--param", "Unused=1"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json()["providers"]["order_authorizer"]["issuer"],
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x"
    );
    assert!(r.has_line("warning: --param Unused: not used"));
}

#[test]
fn quick_create_api_with_managed_overrides() {
    let r = import(
        "api-gateway",
        "quick-create.yaml",
        &[
            "--param",
            &format!("UserPool={POOL}"),
            "--param",
            &format!("AppClient={CLIENT}"),
            "--param",
            "AWS::Region=us-east-1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json(),
        json!({
            "providers": {"jwt_authorizer": {
                "issuer": ISSUER,
                "audiences": [CLIENT],
                "algorithms": ["RS256", "RS384", "RS512"],
                "remote_jwks": {"cluster": "jwks_jwt_authorizer", "uri": JWKS_URI},
                "from_params": ["access_token"]
            }},
            "rules": [{"name": "default", "match": {}, "requires": {"provider": "jwt_authorizer"}}],
            "unmatched": "deny",
            "bypass_cors_preflight": true
        })
    );
    assert!(r.has_line(
        "mapped: Resources.MyAPI.Properties.Target (quick create) + Resources.DefaultRouteOverrides ($default) -> rules[0] default: any request; a token from jwt_authorizer"
    ), "{}", r.stderr);
    // CORS: API Gateway answers preflights itself, so they need no token;
    // but a preflight that $default takes goes to its authorizer there.
    for line in [
        "mapped: Resources.MyAPI.Properties.CorsConfiguration -> bypass_cors_preflight: true: CORS preflights \
         (OPTIONS with Origin and Access-Control-Request-Method) pass without a token, before any rule, as API \
         Gateway answers them before any authorizer",
        "note: Resources.MyAPI.Properties.CorsConfiguration: API Gateway answers a preflight itself, with the \
         configured CORS headers; here it goes on to the service, which must answer it (or Envoy's CORS filter): \
         the allowed origins, methods and headers are not carried over",
        "note: Resources.MyAPI.Properties.CorsConfiguration: API Gateway hands a preflight that $default matches \
         to that route's authorizer, which refuses it without a token (AWS's remedy: a route OPTIONS /{proxy+} \
         without authorizer); here it passes like every preflight",
    ] {
        assert!(r.has_line(line), "missing {line}\n{}", r.stderr);
    }
    // Without the region: the pseudo parameter is named.
    let r = import(
        "api-gateway",
        "quick-create.yaml",
        &[
            "--param",
            &format!("UserPool={POOL}"),
            "--param",
            &format!("AppClient={CLIENT}"),
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.has_line(
        "error: Resources.JWTAuthorizer.Properties.JwtConfiguration.Issuer: unresolved ${AWS::Region} in !Sub, a pseudo parameter (pass --param AWS::Region=...)"
    ), "{}", r.stderr);
}

#[test]
fn several_apis_need_api_and_iam_routes_are_untranslatable() {
    let template = br#"
Resources:
  A: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: HTTP}}
  B: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: HTTP}}
  Open:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref B, RouteKey: GET /open}
  Signed:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref B, RouteKey: $default, AuthorizationType: AWS_IAM}
"#;
    let path = temp_file("two.yaml", template);
    let path = path.to_str().unwrap();
    let r = run(&["import", "--from", "api-gateway", path]);
    assert_eq!(r.code, 2);
    assert!(
        r.has_line("error: Resources: several HTTP APIs (A, B): choose one with --api LOGICAL_ID")
    );
    let r = run(&["import", "--from", "api-gateway", path, "--api", "B"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.has_line(
        "untranslatable: Resources.Signed ($default): AWS_IAM authorization (SigV4-signed requests) has no equivalent in a JWT policy"
    ), "{}", r.stderr);
    assert_eq!(
        r.summary(),
        "not imported: 1 untranslatable item (--allow-partial emits the rest)"
    );
    let r = run(&[
        "import",
        "--from",
        "api-gateway",
        path,
        "--api",
        "B",
        "--allow-partial",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json()["rules"],
        json!([{"name": "get_open", "match": {"path": "/open", "methods": ["GET"]}, "allow_anonymous": true}])
    );
    assert!(
        r.summary()
            .ends_with("; 1 untranslatable item left out (--allow-partial)"),
        "{}",
        r.summary()
    );
}

// ---------------------------------------------------------------- MuleSoft

#[test]
fn flex_policy_binding_with_jwks() {
    let r = import("mulesoft", "flex-jwks.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json(),
        json!({
            "providers": {"orders-jwt": {
                "issuer": ISSUER,
                "audiences": [CLIENT],
                "token_use": "access",
                "algorithms": ["RS256"],
                "remote_jwks": {"cluster": "jwks_orders-jwt", "uri": JWKS_URI, "timeout_ms": 10000, "cache_ttl_s": 3600},
                "require_exp": true
            }},
            "rules": [{"name": "rule_0",
                       "match": {"path": "/api/v1/order", "methods": ["POST"]},
                       "requires": {"provider": "orders-jwt", "scopes": ["order/post.order"]}}],
            "unmatched": "allow"
        })
    );
    for line in [
        "mapped: document 2: spec.config.signingMethod -> providers.orders-jwt.algorithms: [RS256] (rsa with signingKeyLength 256)",
        "mapped: document 2: spec.config.jwksServiceTimeToLive -> providers.orders-jwt.remote_jwks.cache_ttl_s: 3600 (60 minutes)",
        "mapped: document 2: spec.config.mandatoryCustomClaims[0] (scope) -> rules[].requires.scopes: any of order/post.order",
        "note: document 2: spec.config.mandatoryCustomClaims[0] (scope): MuleSoft compares the whole scope claim (a token with \"a b\" fails == 'a'); the filter requires one of the scopes among the token's space-separated scopes, and answers 403 insufficient_scope where MuleSoft answers 401",
        "note: document 2: spec.config.jwtOrigin: a request without a token: MuleSoft answers 400, the filter 401 with a WWW-Authenticate challenge (RFC 6750)",
        "mapped: document 2: spec.config.mandatoryCustomClaims[1] (token_use) -> providers.orders-jwt.token_use: access",
        "mapped: document 2: spec.rules[0] -> rules[0] rule_0: path /api/v1/order, methods POST; a token from orders-jwt, any of scopes order/post.order",
        "note: document 2: spec.rules: requests no rule matches are not checked, as the policy does not apply to them in Flex (unmatched: allow)",
    ] {
        assert!(r.has_line(line), "missing {line}\n{}", r.stderr);
    }
    assert_eq!(
        r.summary(),
        "imported: 1 provider, 1 rule, 5 notes, 0 warnings"
    );
}

/// The MuleSoft policy decides like MuleSoft would, through `explain`.
#[test]
fn flex_jwks_import_decides_requests() {
    let r = import("mulesoft", "flex-jwks.yaml", &[]);
    let config = temp_file("orders.json", r.stdout.as_bytes());
    let key = TestKey::rsa("k1", 2048);
    let keys = temp_file("jwks.json", jwks(&[key.jwk()]).to_string().as_bytes());
    let now = 1_750_000_000u64;
    let token = |claims: Value| key.token(Alg::RS256, claims);
    let explain = |token: &str, method: &str, path: &str| {
        run(&[
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--jwks",
            keys.to_str().unwrap(),
            "--now",
            &now.to_string(),
            "--method",
            method,
            "--path",
            path,
            "--token",
            token,
        ])
    };
    let post = token(cognito_access_claims(
        ISSUER,
        CLIENT,
        "order/post.order",
        now - 10,
    ));
    assert_eq!(explain(&post, "POST", "/api/v1/order").code, 0);
    let both = token(cognito_access_claims(
        ISSUER,
        CLIENT,
        "order/get.order order/post.order",
        now - 10,
    ));
    assert_eq!(
        explain(&both, "POST", "/api/v1/order").code,
        0,
        "scope tokens, not the whole string"
    );
    let get = token(cognito_access_claims(
        ISSUER,
        CLIENT,
        "order/get.order",
        now - 10,
    ));
    let denied = explain(&get, "POST", "/api/v1/order");
    assert_eq!(denied.code, 1);
    assert!(denied.stdout.contains("response  403"), "{}", denied.stdout);
    let mut id_token = cognito_access_claims(ISSUER, CLIENT, "order/post.order", now - 10);
    id_token["token_use"] = json!("id");
    let denied = explain(&token(id_token), "POST", "/api/v1/order");
    assert!(denied.stdout.contains("response  401"), "{}", denied.stdout);
    let other_client = token(cognito_access_claims(
        ISSUER,
        "someoneelse",
        "order/post.order",
        now - 10,
    ));
    assert!(
        explain(&other_client, "POST", "/api/v1/order")
            .stdout
            .contains("response  401")
    );
    // Outside the binding's rules the policy does not apply.
    let anonymous = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--method",
        "GET",
        "--path",
        "/api/v1/order",
    ]);
    assert_eq!(anonymous.code, 0, "{}", anonymous.stdout);
}

#[test]
fn flex_text_pem_key() {
    let r = import("mulesoft", "flex-text-pem.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.json();
    let provider = &out["providers"]["partner-jwt"];
    assert_eq!(provider["issuer"], "https://partners.example.com");
    let jwk = &provider["local_jwks"]["keys"][0];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["e"], "AQAB");
    assert_eq!(
        jwk["kid"], "K4UiBWcQ0NTmMVWvfJRtjAiEK38j8IAaQ1xhVjpFq80",
        "RFC 7638 thumbprint"
    );
    assert_eq!(provider["from_headers"], json!([{"name": "x-jwt"}]));
    assert_eq!(
        provider["claims"],
        json!([{"claim": "nbf", "required": true}, {"claim": "partner_tier", "one_of": ["gold", "silver"]}])
    );
    assert_eq!(
        out["rules"],
        json!([{"name": "rule_0", "match": {"prefix": "/partners/", "hosts": ["api.example.com"]},
                "requires": {"provider": "partner-jwt"}}])
    );
    assert!(r.has_line(
        "mapped: spec.config.textKey -> providers.partner-jwt.local_jwks: the PEM key as a JWK (RSA, kid K4UiBWcQ0NTmMVWvfJRtjAiEK38j8IAaQ1xhVjpFq80: its RFC 7638 thumbprint)"
    ), "{}", r.stderr);
    assert!(r.has_line("mapped: spec.config.mandatoryCustomClaims[0] (iss) -> providers.partner-jwt.issuer: https://partners.example.com"));
}

/// A PEM key made here, its token verified by the imported configuration
/// (the JWK carries the key the PEM held).
#[test]
fn pem_key_import_verifies_tokens_signed_with_it() {
    let key = TestKey::rsa("unused", 2048);
    let body: String = key
        .public_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let binding = format!(
        "kind: PolicyBinding\nmetadata: {{name: pem}}\nspec:\n  policyRef: {{name: jwt-validation-flex}}\n  config:\n    jwtKeyOrigin: text\n    textKey: {body}\n    skipClientIdValidation: true\n    mandatoryExpClaim: true\n    validateCustomClaim: true\n    mandatoryCustomClaims:\n    - {{key: iss, value: 'https://issuer.example'}}\n"
    );
    let source = temp_file("pem.yaml", binding.as_bytes());
    let r = run(&["import", "--from", "mulesoft", source.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config = temp_file("pem.json", r.stdout.as_bytes());
    let now = 1_750_000_000u64;
    let claims = json!({"iss": "https://issuer.example", "exp": now + 60, "sub": "x"});
    // No kid in the header: the only key is used.
    let token = key.mint(Alg::RS256, json!({"alg": "RS256"}), claims);
    let decide = |token: &str| {
        run(&[
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--path",
            "/",
            "--now",
            &now.to_string(),
            "--token",
            token,
        ])
    };
    let ok = decide(&token);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    let other = TestKey::rsa("unused", 2048).mint(
        Alg::RS256,
        json!({"alg": "RS256"}),
        json!({"iss": "https://issuer.example", "exp": now + 60}),
    );
    assert_eq!(decide(&other).code, 1);
}

#[test]
fn flex_hmac_with_custom_claims() {
    let secret = "0123456789abcdef0123456789abcdef";
    let r = import(
        "mulesoft",
        "flex-hmac.yaml",
        &["--param", &format!("JWT_SECRET={secret}")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json(),
        json!({
            "providers": {"internal-jwt": {
                "issuer": "https://auth.internal.example.com",
                "audiences": ["orders-api", "billing-api"],
                "algorithms": ["HS256"],
                "shared_secret_base64": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                "require_exp": true,
                "from_headers": [{"name": "authorization", "prefix": "Bearer "}],
                "claims": [
                    {"claim": "aud", "required": true},
                    {"claim": "client_id", "one_of": ["batch", "portal"]},
                    {"claim": "department", "one_of": ["sales"], "required": false},
                    {"claim": "groups", "one_of": ["admin"], "required": false}
                ]
            }},
            "rules": [{"name": "all", "match": {},
                       "requires": {"provider": "internal-jwt", "scopes": ["orders:write", "orders:admin"]}}],
            "unmatched": "deny"
        })
    );
    for line in [
        "mapped: spec.config.textKey -> providers.internal-jwt.shared_secret_base64: the secret's 32 bytes (UTF-8), base64",
        "mapped: spec.config.jwtExpression -> providers.internal-jwt.from_headers: [{\"name\": \"authorization\", \"prefix\": \"Bearer \"}]",
        "mapped: spec.config.mandatoryCustomClaims[1] (scope) -> rules[].requires.scopes: any of orders:write orders:admin",
        "mapped: spec.config.mandatoryCustomClaims[2] (client_id) -> providers.internal-jwt.claims: client_id one of [\"batch\",\"portal\"]",
        "mapped: spec.config.nonMandatoryCustomClaims[0] (department) -> providers.internal-jwt.claims: department one of [\"sales\"] (when present)",
        "note: spec.config.nonMandatoryCustomClaims[1] (groups): contains: on a string claim DataWeave tests for a substring; here the claim must equal the value or be an array holding it",
        "mapped: spec.config.mandatoryCustomClaims[0] (iss) -> providers.internal-jwt.issuer: https://auth.internal.example.com",
    ] {
        assert!(r.has_line(line), "missing {line}\n{}", r.stderr);
    }
    // The secret is a Flex environment variable: without it, an error.
    let r = import("mulesoft", "flex-hmac.yaml", &[]);
    assert_eq!(r.code, 2);
    assert!(r.has_line(
        "error: spec.config.textKey: unresolved environment variable $JWT_SECRET (pass --param JWT_SECRET=...)"
    ), "{}", r.stderr);
    let r = import(
        "mulesoft",
        "flex-hmac.yaml",
        &["--param", "JWT_SECRET=short"],
    );
    assert_eq!(r.code, 2);
    assert!(r.has_line(
        "error: spec.config.textKey: the secret is 5 bytes; HS256 needs at least 32 (RFC 7518 §3.2)"
    ), "{}", r.stderr);
}

#[test]
fn bare_parameters() {
    let r = import("mulesoft", "mulesoft-params.json", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json(),
        json!({
            "providers": {"mulesoft": {
                "issuer": "https://login.example.com",
                "audiences": ["reports"],
                "algorithms": ["RS256"],
                "remote_jwks": {"cluster": "jwks_mulesoft", "uri": "https://login.example.com/keys", "cache_ttl_s": 1800},
                "require_exp": true,
                "from_params": ["access_token"],
                "claims": [{"claim": "roles", "one_of": ["reader"]}]
            }},
            "rules": [{"name": "all", "match": {}, "requires": {"provider": "mulesoft"}}],
            "unmatched": "deny"
        })
    );
    assert!(
        r.has_line("mapped: jwtExpression -> providers.mulesoft.from_params: [\"access_token\"]"),
        "{}",
        r.stderr
    );
}

#[test]
fn untranslatable_dataweave_fails_unless_allow_partial() {
    let r = import("mulesoft", "bad-dataweave.yaml", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let untranslatable: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("untranslatable: "))
        .collect();
    assert_eq!(
        untranslatable,
        [
            "untranslatable: spec.config.jwtExpression: #[payload.token]: `payload.token` is not attributes.headers['name'] or attributes.queryParams['name'] (with --allow-partial the token is looked for as Authorization: Bearer)",
            "untranslatable: spec.config.skipClientIdValidation: client id validation (#[vars.claimSet.client_id] against the API's contracts in API Manager) has no equivalent; to admit only some clients, check client_id with a custom claim or list them in audiences",
            "untranslatable: spec.config.mandatoryCustomClaims[1] (exp): #[vars.claimSet.exp > now() as Number]: unexpected '>'",
            "untranslatable: spec.config.mandatoryCustomClaims[2] (role): #[upper(vars.claimSet.role) == 'ADMIN']: `==` other than between a claim and a literal value",
        ]
    );
    assert_eq!(
        r.summary(),
        "not imported: 4 untranslatable items (--allow-partial emits the rest)"
    );
    let r = import("mulesoft", "bad-dataweave.yaml", &["--allow-partial"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json()["rules"],
        json!([{"name": "all", "match": {}, "requires": {"provider": "orders-jwt", "scopes": ["order/post.order"]}}])
    );
    assert!(
        r.summary()
            .ends_with("; 4 untranslatable items left out (--allow-partial)"),
        "{}",
        r.summary()
    );
}

#[test]
fn two_jwks_urls() {
    let r = import("mulesoft", "bad-two-jwks.yaml", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    assert!(r.has_line(&format!(
        "untranslatable: spec.config.jwksUrl: 2 JWKS URLs: a provider fetches one JWKS (with --allow-partial, only {JWKS_URI} is used)"
    )), "{}", r.stderr);
    let r = import("mulesoft", "bad-two-jwks.yaml", &["--allow-partial"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.json()["providers"]["orders-jwt"]["remote_jwks"]["uri"],
        JWKS_URI
    );
}

#[test]
fn refusals_and_usage_errors() {
    let none = temp_file(
        "none.json",
        br#"{"signingMethod": "none", "skipClientIdValidation": true}"#,
    );
    let r = run(&[
        "import",
        "--from",
        "mulesoft",
        none.to_str().unwrap(),
        "--allow-partial",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.has_line(
        "error: signingMethod: none: unsigned tokens; the filter never accepts them (an unsigned token proves nothing)"
    ), "{}", r.stderr);

    let r = run(&["import", "--from", "mulesoft", "/nonexistent/policy.yaml"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("jwt-policy: cannot read /nonexistent/policy.yaml"),
        "{}",
        r.stderr
    );
    let file = fixture("flex-jwks.yaml");
    let r = run(&["import", "--from", "mulesoft", &file, "--param", "novalue"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "jwt-policy: --param novalue: expected NAME=VALUE\n"
    );
    for args in [
        &["import", &file][..],
        &["import", "--from", "kong", &file],
        &["import", "--from", "mulesoft", &file, "--emit", "xml"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(r.stdout.is_empty());
    }
    let r = import("mulesoft", "openapi.yaml", &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("error: no jwt-validation-flex policy"),
        "{}",
        r.stderr
    );
    let r = import("api-gateway", "flex-jwks.yaml", &[]);
    assert_eq!(r.code, 2);

    let r = run(&["import", "--help"]);
    assert_eq!(r.code, 0);
    for flag in [
        "--from",
        "--param",
        "--jwks-cluster",
        "--emit",
        "--allow-partial",
        "--api",
        "Exit status",
    ] {
        assert!(r.stdout.contains(flag), "import --help lacks {flag}");
    }
}

// ---------------------------------------------------------------- outputs

#[test]
fn jwks_cluster_option() {
    let mut args = cfn_params();
    args.push("--jwks-cluster=cognito_idp".to_owned());
    let r = walkthrough("api-gateway", "cloudformation.yaml", &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json()["providers"]["order_authorizer"]["remote_jwks"]["cluster"],
        "cognito_idp"
    );
}

#[test]
fn emit_wasmplugin_is_an_istio_deployment() {
    let r = import("mulesoft", "flex-jwks.yaml", &["--emit", "wasmplugin"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&r.stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["WasmPlugin", "ServiceEntry", "DestinationRule"]);
    let cluster = "outbound|443||cognito-idp.us-east-1.amazonaws.com";
    assert_eq!(
        docs[0]["spec"]["pluginConfig"]["providers"]["orders-jwt"]["remote_jwks"]["cluster"],
        cluster
    );
    assert_eq!(docs[0]["spec"]["phase"], "AUTHN");
    assert_eq!(docs[0]["spec"]["failStrategy"], "FAIL_CLOSE");
    assert_eq!(
        docs[1]["spec"]["hosts"][0],
        "cognito-idp.us-east-1.amazonaws.com"
    );
    assert_eq!(
        docs[2]["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["mode"],
        "SIMPLE"
    );
    let path = temp_file("wasmplugin.yaml", r.stdout.as_bytes());
    let check = run(&["check", path.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(
        check.stdout.contains(
            "WasmPlugin default/jwt-policy, spec.pluginConfig: valid (1 provider, 1 rule; version "
        ),
        "{}",
        check.stdout
    );
}

/// `envoy --mode validate` (which loads the filter and runs its
/// configuration check) on an emitted bootstrap.
fn envoy_validate(bootstrap: &str) -> Result<String, String> {
    let wasm = support::wasm_path();
    let text = bootstrap.replace(
        "target/wasm32-wasip1/release/jwt_policy.wasm",
        wasm.to_str().unwrap(),
    );
    let path = temp_file("envoy.yaml", text.as_bytes());
    support::validate_config(&path)
}

#[test]
fn emit_envoy_runs_in_envoy() {
    // Outputs with only the fields every build of the filter knows.
    let mulesoft = import("mulesoft", "flex-jwks.yaml", &["--emit", "envoy"]);
    assert_eq!(mulesoft.code, 0, "{}", mulesoft.stderr);
    let api_gateway = import(
        "api-gateway",
        "quick-create.yaml",
        &[
            "--emit",
            "envoy",
            "--param",
            &format!("UserPool={POOL}"),
            "--param",
            &format!("AppClient={CLIENT}"),
            "--param",
            "AWS::Region=us-east-1",
        ],
    );
    assert_eq!(api_gateway.code, 0, "{}", api_gateway.stderr);
    for (r, rules) in [(&mulesoft, 1), (&api_gateway, 1)] {
        assert!(r.stdout.contains("name: upstream_placeholder"));
        assert!(
            r.stdout
                .contains("sni: cognito-idp.us-east-1.amazonaws.com")
        );
        let log = envoy_validate(&r.stdout)
            .unwrap_or_else(|log| panic!("envoy --mode validate:\n{log}\n{}", r.stdout));
        assert!(log.contains("OK"), "{log}");
        assert!(
            log.contains(&format!(
                "jwt_policy: configured 1 provider(s), {rules} rule(s)"
            )),
            "the filter configured itself:\n{log}"
        );
    }
}

/// Needs `match.path_template` in the filter.
#[test]
fn walkthrough_envoy_bootstrap_is_accepted_by_envoy() {
    let mut args = cfn_params();
    args.push("--emit=envoy".to_owned());
    let r = walkthrough("api-gateway", "cloudformation.yaml", &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = walkthrough("api-gateway", "cloudformation.yaml", &cfn_params());
    filter_accepts(&json.stdout).unwrap_or_else(|why| panic!("the filter refuses: {why}"));
    let log = envoy_validate(&r.stdout).unwrap_or_else(|log| panic!("{log}"));
    assert!(
        log.contains("jwt_policy: configured 1 provider(s), 5 rule(s)"),
        "{log}"
    );
}

/// The walkthrough's routes decided as API Gateway decides them. Needs
/// `match.path_template` in the filter.
#[test]
fn walkthrough_decides_like_api_gateway() {
    let r = walkthrough("api-gateway", "cloudformation.yaml", &cfn_params());
    filter_accepts(&r.stdout).unwrap_or_else(|why| panic!("the filter refuses: {why}"));
    let config = temp_file("walkthrough.json", r.stdout.as_bytes());
    let key = TestKey::rsa("k1", 2048);
    let keys = temp_file("jwks.json", jwks(&[key.jwk()]).to_string().as_bytes());
    let now = 1_750_000_000u64;
    let decide = |scope: Option<&str>, method: &str, path: &str| -> (i32, String) {
        let mut args = vec![
            "explain".to_owned(),
            "--config".to_owned(),
            config.to_str().unwrap().to_owned(),
            "--jwks".to_owned(),
            keys.to_str().unwrap().to_owned(),
            "--now".to_owned(),
            now.to_string(),
            "--method".to_owned(),
            method.to_owned(),
            "--path".to_owned(),
            path.to_owned(),
        ];
        if let Some(scope) = scope {
            args.push("--token".to_owned());
            args.push(key.token(
                Alg::RS256,
                cognito_access_claims(ISSUER, CLIENT, scope, now - 10),
            ));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&args);
        let rule = r
            .stdout
            .lines()
            .find(|l| l.starts_with("rule "))
            .unwrap_or("")
            .to_owned();
        (r.code, rule)
    };
    let (code, rule) = decide(Some("order/post.order"), "POST", "/api/v1/order");
    assert_eq!(code, 0, "{rule}");
    assert_eq!(
        decide(Some("order/post.order"), "GET", "/api/v1/order").0,
        1
    );
    let (code, rule) = decide(Some("order/get.order"), "GET", "/api/v1/order/42");
    assert_eq!(code, 0);
    assert!(rule.contains("get_api_v1_order_id"), "{rule}");
    assert_eq!(decide(None, "GET", "/healthz").0, 0);
    assert_eq!(
        decide(None, "POST", "/healthz").0,
        1,
        "unmatched: deny (API Gateway: 404)"
    );
    let (code, rule) = decide(Some("order/admin"), "DELETE", "/files/a/b");
    assert_eq!(code, 0);
    assert!(rule.contains("any_files_proxy"), "{rule}");
    assert_eq!(
        decide(Some("order/admin"), "GET", "/files").0,
        1,
        "{{proxy+}} needs a segment"
    );
}

/// The HMAC policy's custom claims decided like MuleSoft's. Needs claim
/// checks without `one_of` (`mandatoryAudClaim`) in the filter.
#[test]
fn flex_hmac_decides_requests() {
    let secret = "0123456789abcdef0123456789abcdef";
    let r = import(
        "mulesoft",
        "flex-hmac.yaml",
        &["--param", &format!("JWT_SECRET={secret}")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    filter_accepts(&r.stdout).unwrap_or_else(|why| panic!("the filter refuses: {why}"));
    hmac_decisions(&r.stdout, secret);
}

fn hmac_decisions(config: &str, secret: &str) {
    let config = temp_file("hmac.json", config.as_bytes());
    let key = TestKey::hmac("unused", secret);
    let now = 1_750_000_000u64;
    let base = json!({
        "iss": "https://auth.internal.example.com",
        "aud": "orders-api",
        "exp": now + 60,
        "scope": "orders:write",
        "client_id": "batch",
    });
    let decide = |edit: &dyn Fn(&mut Value)| {
        let mut claims = base.clone();
        edit(&mut claims);
        let token = key.mint(Alg::HS256, json!({"alg": "HS256", "typ": "JWT"}), claims);
        let r = run(&[
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--path",
            "/any",
            "--now",
            &now.to_string(),
            "--token",
            &token,
        ]);
        let status = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("response  "))
            .map_or("forwarded".to_owned(), str::to_owned);
        (r.code, status)
    };
    assert_eq!(decide(&|_| {}), (0, "forwarded".to_owned()));
    assert_eq!(
        decide(&|c| c["scope"] = json!("orders:read orders:admin")).0,
        0,
        "scope among the token's"
    );
    assert_eq!(decide(&|c| c["scope"] = json!("orders:read")).1, "403");
    assert_eq!(decide(&|c| c["client_id"] = json!("other")).1, "401");
    assert_eq!(
        decide(&|c| {
            c.as_object_mut().unwrap().remove("aud");
        })
        .1,
        "401",
        "mandatoryAudClaim"
    );
    assert_eq!(
        decide(&|c| c["department"] = json!("hr")).1,
        "401",
        "non-mandatory but present"
    );
    assert_eq!(decide(&|c| c["department"] = json!("sales")).0, 0);
    assert_eq!(decide(&|c| c["groups"] = json!(["staff", "admin"])).0, 0);
    assert_eq!(decide(&|c| c["groups"] = json!(["staff"])).1, "401");
    assert_eq!(decide(&|c| c["iss"] = json!("https://elsewhere")).1, "401");
}

// ---------------------------------------------------------------- docs

/// The console block that follows `marker` in docs/cli.md.
fn doc_example(marker: &str) -> String {
    let doc = std::fs::read_to_string(repo("docs/cli.md")).unwrap();
    let start = doc
        .find(marker)
        .unwrap_or_else(|| panic!("docs/cli.md lacks {marker}"));
    let block = &doc[start..];
    let open = block.find("```console\n").unwrap() + "```console\n".len();
    let close = block[open..].find("\n```").unwrap();
    block[open..open + close].to_owned()
}

/// `jwt-policy ARGS` from the repository root, as a console transcript:
/// standard error, then (`stdout_to`) `$ cat FILE` and standard output.
fn transcript(
    args: &[&str],
    stdout_to: Option<&str>,
    keep: impl Fn(&str) -> bool,
) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_jwt-policy"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let mut text: String = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .filter(|l| keep(l))
        .map(|l| format!("{l}\n"))
        .collect();
    if let Some(file) = stdout_to {
        text.push_str(&format!(
            "$ cat {file}\n{}",
            String::from_utf8(out.stdout).unwrap()
        ));
    }
    (text, out.status.code().unwrap())
}

/// The console blocks of the README's "Migrating from API Gateway or
/// MuleSoft" section, in order.
fn readme_examples() -> Vec<String> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme
        .find("\n## Migrating from API Gateway or MuleSoft\n")
        .expect("README has the migration section");
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("```console\n")
        .skip(1)
        .map(|block| block[..block.find("\n```").unwrap()].to_owned())
        .collect()
}

/// The README's worked examples: the command, its report as printed, and
/// `jq -c '.providers[], .rules[], .unmatched'` of the configuration (each
/// line compared as JSON, since jq keeps the file's member order).
#[test]
fn readme_examples_are_real_output() {
    let examples = readme_examples();
    assert_eq!(examples.len(), 2, "one worked example each");
    let runs = [
        (
            "$ jwt-policy import --from api-gateway tests/fixtures/import/cloudformation.yaml \\\n    --param UserPoolId=us-east-1_pO0zNXTot --param AppClientId=14aq5ll5b1it6f62uefem6aqhn > orders.json",
            vec![
                "import",
                "--from",
                "api-gateway",
                "tests/fixtures/import/cloudformation.yaml",
                "--param",
                "UserPoolId=us-east-1_pO0zNXTot",
                "--param",
                "AppClientId=14aq5ll5b1it6f62uefem6aqhn",
            ],
            "orders.json",
        ),
        (
            "$ jwt-policy import --from mulesoft tests/fixtures/import/flex-jwks.yaml > orders-flex.json",
            vec![
                "import",
                "--from",
                "mulesoft",
                "tests/fixtures/import/flex-jwks.yaml",
            ],
            "orders-flex.json",
        ),
    ];
    for (example, (command, args, file)) in examples.iter().zip(runs) {
        let out = Command::new(env!("CARGO_BIN_EXE_jwt-policy"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let jq = format!("$ jq -c '.providers[], .rules[], .unmatched' {file}\n");
        let (report, values) = example
            .split_once(&jq)
            .unwrap_or_else(|| panic!("no `{jq}` in the README example:\n{example}"));
        assert_eq!(
            report,
            format!("{command}\n{}", String::from_utf8(out.stderr).unwrap()),
            "the README's report of {file}"
        );
        let config: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut want: Vec<Value> = config["providers"]
            .as_object()
            .unwrap()
            .values()
            .cloned()
            .collect();
        want.extend(config["rules"].as_array().unwrap().iter().cloned());
        want.push(config["unmatched"].clone());
        let shown: Vec<Value> = values
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        assert_eq!(shown, want, "the README's configuration of {file}");
    }
}

#[test]
fn docs_examples_are_real_output() {
    let all = |_: &str| true;
    let (out, code) = transcript(
        &[
            "import",
            "--from",
            "api-gateway",
            "tests/fixtures/import/cloudformation.yaml",
            "--param",
            "UserPoolId=us-east-1_pO0zNXTot",
            "--param",
            "AppClientId=14aq5ll5b1it6f62uefem6aqhn",
        ],
        None,
        all,
    );
    assert_eq!(code, 0);
    let json = walkthrough("api-gateway", "cloudformation.yaml", &cfn_params()).stdout;
    let expected = format!(
        "$ jwt-policy import --from api-gateway tests/fixtures/import/cloudformation.yaml \\\n    --param UserPoolId=us-east-1_pO0zNXTot --param AppClientId=14aq5ll5b1it6f62uefem6aqhn > orders.json\n{out}$ echo $?\n0\n$ cat orders.json\n{json}"
    );
    assert_eq!(
        doc_example("#### Example: API Gateway, CloudFormation"),
        expected.trim_end()
    );

    let (out, _) = transcript(
        &[
            "import",
            "--from",
            "mulesoft",
            "tests/fixtures/import/flex-jwks.yaml",
        ],
        Some("orders-flex.json"),
        all,
    );
    let expected = format!(
        "$ jwt-policy import --from mulesoft tests/fixtures/import/flex-jwks.yaml > orders-flex.json\n{out}"
    );
    assert_eq!(
        doc_example("#### Example: MuleSoft, Flex Gateway PolicyBinding"),
        expected.trim_end()
    );

    let (out, code) = transcript(
        &[
            "import",
            "--from",
            "mulesoft",
            "tests/fixtures/import/bad-dataweave.yaml",
        ],
        None,
        |l| !l.starts_with("mapped") && !l.starts_with("note"),
    );
    let expected = format!(
        "$ jwt-policy import --from mulesoft tests/fixtures/import/bad-dataweave.yaml\n{out}$ echo $?\n{code}"
    );
    assert_eq!(
        doc_example("The `mapped` and `note` lines are left out here"),
        expected
    );

    let (out, code) = transcript(
        &[
            "import",
            "--from",
            "api-gateway",
            "tests/fixtures/import/cloudformation.yaml",
        ],
        None,
        all,
    );
    let expected = format!(
        "$ jwt-policy import --from api-gateway tests/fixtures/import/cloudformation.yaml\n{out}$ echo $?\n{code}"
    );
    assert_eq!(
        doc_example("is an error naming where it is and what to pass"),
        expected
    );
}
