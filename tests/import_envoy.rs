//! Issue 16, item 4: policies brought in with `jwt-policy import` decide in
//! a real Envoy as their source gateway documents, and `jwt-policy explain`
//! decides every request the same way.
//!
//! Each test imports a fixture of `tests/fixtures/import` with the built
//! binary (`--emit json`), changes nothing in the result but the
//! `remote_jwks.uri` (the host becomes a test JWKS server; the cluster name
//! and the path stay as imported), runs it in Envoy with the release filter,
//! and sends requests: tokens minted here with the claims the source
//! gateway's documentation talks about. Each answer must be the one written
//! next to the request (what API Gateway or MuleSoft documents for it, and
//! ours where the import report says we differ), and `jwt-policy explain
//! --json` with the same configuration, keys, method, path, host and
//! headers must give the same status, `WWW-Authenticate` and body.
//!
//! Needs the release wasm (`make wasm`) and Envoy (`.venv/envoy`, `make
//! setup`); a missing or stale one fails the test with what to run.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use support::cli::{explain_header_args, explain_report, explain_request_args, explained_status};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::{Value, json};

use support::cases::{CLIENT, ISSUER};
use support::{
    Alg, EchoServer, EnvoyConfig, JwksServer, Request, TestKey, cognito_access_claims,
    envoy_binary, jwks, now, send, wasm_path,
};

const POOL: &str = "us-east-1_pO0zNXTot";

// ------------------------------------------------------------------ harness

/// Envoy and the filter this test needs, or a failure saying what to run.
/// A wasm older than the filter's sources would test other code.
fn require_envoy_and_fresh_wasm() {
    let envoy = envoy_binary();
    assert!(
        Command::new(&envoy).arg("--version").output().is_ok(),
        "cannot run Envoy at {} (.venv is made by `make setup`)",
        envoy.display()
    );
    let wasm = wasm_path();
    if std::env::var_os("JWT_POLICY_WASM").is_some() {
        return;
    }
    let built = modified(&wasm);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let newer: Vec<PathBuf> = filter_sources(&src)
        .into_iter()
        .filter(|f| modified(f) > built)
        .collect();
    assert!(
        newer.is_empty(),
        "{} is older than {} (and {} more filter sources): run `make wasm`",
        wasm.display(),
        newer[0].display(),
        newer.len() - 1
    );
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `.rs` files under `src/` that go into the wasm (not `src/bin`).
fn filter_sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name() != Some("bin".as_ref()) {
                out.extend(filter_sources(&path));
            }
        } else if path.extension() == Some("rs".as_ref()) {
            out.push(path);
        }
    }
    out
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// A file in a fresh temporary directory.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    support::temp_file("jwt-policy-import-envoy", name, contents)
}

/// An import's plugin configuration and its report.
struct Imported {
    config: Value,
    report: String,
}

impl Imported {
    fn has_line(&self, line: &str) -> bool {
        self.report.lines().any(|l| l == line)
    }
}

/// `jwt-policy import --from FROM FILE --emit json ARGS...`, which must succeed.
fn import(from: &str, file: &Path, args: &[&str]) -> Imported {
    let out = Command::new(env!("CARGO_BIN_EXE_jwt-policy"))
        .args(["import", "--from", from, "--emit", "json"])
        .arg(file)
        .args(args)
        .output()
        .expect("run jwt-policy import");
    let report = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "import failed:\n{report}");
    let config = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("import printed no JSON ({e}):\n{report}"));
    Imported { config, report }
}

/// What a request must get.
#[derive(Clone, Debug)]
enum Expect {
    /// Forwarded: the upstream gets it, with its method and path.
    Forward,
    /// Answered by the filter: the status, the denial reason (`explain`'s
    /// `reason`), and a piece of the `WWW-Authenticate` challenge (for
    /// `missing`, the whole challenge: RFC 6750 §3.1, no error code).
    Deny {
        status: u16,
        reason: &'static str,
        challenge: &'static str,
    },
}

fn forward() -> Expect {
    Expect::Forward
}

fn no_token() -> Expect {
    Expect::Deny {
        status: 401,
        reason: "missing",
        challenge: r#"Bearer realm="api""#,
    }
}

fn invalid(reason: &'static str) -> Expect {
    Expect::Deny {
        status: 401,
        reason,
        challenge: r#"error="invalid_token""#,
    }
}

fn forbidden(reason: &'static str, challenge: &'static str) -> Expect {
    Expect::Deny {
        status: 403,
        reason,
        challenge,
    }
}

struct Case {
    name: &'static str,
    /// What the source gateway's documentation says of this request, and
    /// where ours differs (the import report says so too).
    source: &'static str,
    request: Request,
    expect: Expect,
}

fn case(name: &'static str, source: &'static str, request: Request, expect: Expect) -> Case {
    Case {
        name,
        source,
        request,
        expect,
    }
}

/// One side's answer: the status (200 for a forwarded request), the
/// challenge and the body of a local response.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    body: Option<String>,
}

/// The imported configuration in Envoy and through `explain`, for every
/// case. Providers with `remote_jwks` get their keys (`keys`) from a test
/// JWKS server at the imported path; only the uri's scheme and host change.
fn decide_in_envoy_and_explain(imported: &Value, keys: &Value, cases: &[Case]) {
    require_envoy_and_fresh_wasm();
    let jwks_server = JwksServer::start(keys.to_string());
    let mut config = imported.clone();
    let mut clusters = Vec::new();
    let mut paths = Vec::new();
    for (_, provider) in config["providers"].as_object_mut().unwrap().iter_mut() {
        let Some(remote) = provider.get_mut("remote_jwks") else {
            continue;
        };
        let uri = remote["uri"].as_str().unwrap();
        let path = uri
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_else(|| panic!("no path in {uri}"));
        remote["uri"] = json!(format!("http://127.0.0.1:{}{path}", jwks_server.port()));
        clusters.push(remote["cluster"].as_str().unwrap().to_owned());
        paths.push(path);
    }
    let config_file = temp_file("config.json", config.to_string().as_bytes());
    let keys_file = temp_file("jwks.json", keys.to_string().as_bytes());
    let upstream = EchoServer::start();
    let mut envoy = EnvoyConfig::new(config.clone()).upstream(upstream.port());
    for cluster in &clusters {
        envoy = envoy.cluster(cluster, jwks_server.port());
    }
    let envoy = envoy.start();

    let mut failures = Vec::new();
    for case in cases {
        let resp = send(envoy.port(), &case.request);
        let in_envoy = Answer {
            status: resp.status,
            www_authenticate: resp.header("www-authenticate").map(str::to_owned),
            body: (resp.status != 200).then(|| resp.body_str()),
        };
        let (by_explain, reason) = match explain(&config_file, &keys_file, &clusters, case) {
            Ok(answer) => answer,
            Err(why) => {
                failures.push(format!("{}: explain: {why}", case.name));
                continue;
            }
        };
        let mut wrong = Vec::new();
        if in_envoy != by_explain {
            wrong.push(format!(
                "Envoy and explain differ:\n    Envoy   {in_envoy:?}\n    explain {by_explain:?}"
            ));
        }
        match &case.expect {
            Expect::Forward => {
                if resp.status != 200 {
                    wrong.push(format!("Envoy answered {in_envoy:?}, not forwarded"));
                } else {
                    let seen = resp.upstream();
                    let sent = String::from_utf8_lossy(&case.request.path);
                    if seen.method != case.request.method || seen.path != sent {
                        wrong.push(format!(
                            "the upstream got {} {}, not {} {sent}",
                            seen.method, seen.path, case.request.method
                        ));
                    }
                    // The imported policies set no claim headers and keep
                    // the token: the upstream gets what the client sent.
                    for (name, value) in &case.request.headers {
                        let (name, value) = (
                            String::from_utf8_lossy(name),
                            String::from_utf8_lossy(value),
                        );
                        if !name.eq_ignore_ascii_case("host")
                            && !seen.headers_named(&name).contains(&value.to_string())
                        {
                            wrong.push(format!("the upstream did not get {name}: {value}"));
                        }
                    }
                }
                if reason.is_some() {
                    wrong.push(format!("explain: denied ({reason:?})"));
                }
            }
            Expect::Deny {
                status,
                reason: want_reason,
                challenge,
            } => {
                let www = in_envoy.www_authenticate.as_deref().unwrap_or("");
                let challenge_ok = if *want_reason == "missing" {
                    www == *challenge
                } else {
                    www.contains(challenge)
                };
                if in_envoy.status != *status || !challenge_ok {
                    wrong.push(format!(
                        "want {status} with {challenge:?} in WWW-Authenticate, Envoy answered {in_envoy:?}"
                    ));
                }
                if reason.as_deref() != Some(want_reason) {
                    wrong.push(format!("explain's reason {reason:?}, want {want_reason}"));
                }
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({}):\n  {}",
                case.name,
                case.source,
                wrong.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests decided wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // The keys came through the imported cluster, from the imported path.
    if !paths.is_empty() {
        let fetched = jwks_server.paths();
        assert!(
            paths.iter().all(|p| fetched.contains(p)),
            "JWKS fetched at {fetched:?}, want {paths:?}"
        );
    }
    envoy.assert_no_wasm_panic();
}

/// `jwt-policy explain --json` on the case's request: the answer and the
/// denial reason.
fn explain(
    config: &Path,
    keys: &Path,
    remote_clusters: &[String],
    case: &Case,
) -> Result<(Answer, Option<String>), String> {
    let mut args = explain_request_args(config, &case.request.method, &case.request.path);
    if !remote_clusters.is_empty() {
        args.push("--jwks".into());
        args.push(keys.into());
    }
    // The harness's client sends `Host: localhost` unless told otherwise.
    args.extend(explain_header_args(
        &case.request.headers,
        Some(b"localhost"),
    ));
    let report = explain_report(&args)?;
    let status = explained_status(&report);
    let answer = Answer {
        status,
        www_authenticate: report["www_authenticate"].as_str().map(str::to_owned),
        body: report["response"]["body"].as_str().map(str::to_owned),
    };
    Ok((answer, report["reason"].as_str().map(str::to_owned)))
}

// ------------------------------------------------------------------ API Gateway

/// The walkthrough's pool: its key and Cognito-shaped access tokens.
struct Pool {
    key: TestKey,
}

impl Pool {
    fn new() -> Pool {
        Pool {
            key: TestKey::rsa("pool-key-1", 2048),
        }
    }

    fn jwks(&self) -> Value {
        jwks(&[self.key.jwk()])
    }

    fn claims(&self, scope: &str) -> Value {
        cognito_access_claims(ISSUER, CLIENT, scope, now())
    }

    fn sign(&self, claims: Value) -> String {
        self.key.token(Alg::RS256, claims)
    }

    fn token(&self, scope: &str) -> String {
        self.sign(self.claims(scope))
    }

    /// A token with the claims edited.
    fn token_with(&self, scope: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims(scope);
        edit(&mut claims);
        self.sign(claims)
    }
}

fn cfn_params() -> Vec<String> {
    vec![
        format!("--param=UserPoolId={POOL}"),
        format!("--param=AppClientId={CLIENT}"),
    ]
}

fn import_walkthrough(file: &str) -> Imported {
    let params = match file {
        "cloudformation.yaml" => cfn_params(),
        "sam.yaml" => vec![
            format!("--param=OrdersUserPool={POOL}"),
            format!("--param=OrdersAppClient={CLIENT}"),
        ],
        "openapi.yaml" => Vec::new(),
        other => panic!("not a walkthrough fixture: {other}"),
    };
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    import("api-gateway", &fixture(file), &params)
}

/// The walkthrough's API (reference article 004, plus an order by id, a
/// health check and files): API Gateway's documented decisions for the
/// walkthrough's tokens, in Envoy and explain.
fn walkthrough_in_envoy(file: &str) {
    let imported = import_walkthrough(file);
    if file != "cloudformation.yaml" {
        assert_eq!(
            imported.config,
            import_walkthrough("cloudformation.yaml").config,
            "{file} must give the CloudFormation template's policy"
        );
    }
    assert!(
        imported.has_line(
            "note: requests no route matches: API Gateway answers 404 Not Found, the filter 403 (unmatched: deny)"
        ),
        "{}",
        imported.report
    );
    let pool = Pool::new();
    let post = pool.token("order/post.order");
    let get = pool.token("order/get.order");
    let admin = pool.token("order/admin");
    let scope_post = r#"error="insufficient_scope", error_description="token lacks the required scope", scope="order/post.order""#;
    let scope_get = r#"error="insufficient_scope", error_description="token lacks the required scope", scope="order/get.order""#;
    let cases = vec![
        case(
            "POST /api/v1/order with order/post.order",
            "API Gateway: 200 (article 004: the POST succeeds)",
            Request::post("/api/v1/order").bearer(&post).body("{}"),
            forward(),
        ),
        case(
            "POST /api/v1/order with both scopes",
            "API Gateway: 200 (the token must include at least one of the route's scopes)",
            Request::post("/api/v1/order").bearer(&pool.token("order/get.order order/post.order")),
            forward(),
        ),
        case(
            "GET /api/v1/order with only order/post.order",
            "API Gateway: 403 (article 004: the GET fails for the missing scope)",
            Request::get("/api/v1/order").bearer(&post),
            forbidden("scope", scope_get),
        ),
        case(
            "GET /api/v1/order with order/get.order",
            "API Gateway: 200",
            Request::get("/api/v1/order").bearer(&get),
            forward(),
        ),
        case(
            "POST /api/v1/order with only order/get.order",
            "API Gateway: 403",
            Request::post("/api/v1/order").bearer(&get),
            forbidden("scope", scope_post),
        ),
        case(
            "GET /api/v1/order/42 with order/get.order",
            "API Gateway: 200, route GET /api/v1/order/{id}",
            Request::get("/api/v1/order/42").bearer(&get),
            forward(),
        ),
        case(
            "GET /api/v1/order/42 with only order/post.order",
            "API Gateway: 403, route GET /api/v1/order/{id}",
            Request::get("/api/v1/order/42").bearer(&post),
            forbidden("scope", scope_get),
        ),
        case(
            "GET /api/v1/order/42/items",
            "API Gateway: 404 ({id} is one segment, no route); ours 403",
            Request::get("/api/v1/order/42/items").bearer(&get),
            forbidden("unmatched", r#"error="insufficient_scope""#),
        ),
        case(
            "POST /api/v1/order without a token",
            "API Gateway: 401",
            Request::post("/api/v1/order"),
            no_token(),
        ),
        case(
            "POST /api/v1/order with a bare token (no Bearer)",
            "API Gateway: 200 (it takes a bare token); ours 401 (RFC 6750), in the report",
            Request::post("/api/v1/order").header("authorization", &post),
            no_token(),
        ),
        case(
            "GET /healthz without a token",
            "API Gateway: 200 (route without authorizer)",
            Request::get("/healthz"),
            forward(),
        ),
        case(
            "GET /healthz with a tampered token",
            "API Gateway: 200 (no authorizer: the token is not looked at)",
            Request::get("/healthz").bearer(&format!("{post}x")),
            forward(),
        ),
        case(
            "POST /healthz",
            "API Gateway: 404 (only GET /healthz); ours 403",
            Request::post("/healthz"),
            forbidden("unmatched", r#"error="insufficient_scope""#),
        ),
        case(
            "DELETE /files/a/b with order/admin",
            "API Gateway: 200, route ANY /files/{proxy+}",
            Request::new("DELETE", "/files/a/b").bearer(&admin),
            forward(),
        ),
        case(
            "GET /files/a/b with order/get.order",
            "API Gateway: 200, route ANY /files/{proxy+}",
            Request::get("/files/a/b").bearer(&get),
            forward(),
        ),
        case(
            "GET /files/a/b with only order/post.order",
            "API Gateway: 403",
            Request::get("/files/a/b").bearer(&post),
            forbidden("scope", r#"scope="order/get.order order/admin""#),
        ),
        case(
            "GET /files",
            "API Gateway: 404 ({proxy+} needs a segment); ours 403",
            Request::get("/files").bearer(&admin),
            forbidden("unmatched", r#"error="insufficient_scope""#),
        ),
        case(
            "GET /nowhere",
            "API Gateway: 404 (no route); ours 403",
            Request::get("/nowhere").bearer(&admin),
            forbidden("unmatched", r#"error="insufficient_scope""#),
        ),
        case(
            "OPTIONS /api/v1/order preflight, no CORS configured",
            "API Gateway: 404 (no OPTIONS route, no CORS); ours 403",
            Request::new("OPTIONS", "/api/v1/order")
                .header("origin", "https://app.example.com")
                .header("access-control-request-method", "POST"),
            forbidden("unmatched", r#"error="insufficient_scope""#),
        ),
        case(
            "POST /api/v1/order with an expired token",
            "API Gateway: 401 (exp)",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c["iat"] = json!(now() - 7200);
                c["exp"] = json!(now() - 3600);
            })),
            invalid("expired"),
        ),
        case(
            "POST /api/v1/order with another app client's token",
            "API Gateway: 401 (client_id is not an audience)",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c["client_id"] = json!("someotherclient");
            })),
            invalid("audience"),
        ),
        case(
            "POST /api/v1/order with aud of another client",
            "API Gateway: 401 (aud, when present, is checked instead of client_id)",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c["aud"] = json!("someotherclient");
            })),
            invalid("audience"),
        ),
        case(
            "POST /api/v1/order with another pool's token",
            "API Gateway: 401 (iss)",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other");
            })),
            invalid("issuer"),
        ),
        case(
            "POST /api/v1/order signed by a key the pool does not publish",
            "API Gateway: 401 (signature)",
            Request::post("/api/v1/order").bearer(
                &TestKey::rsa("pool-key-1", 2048)
                    .token(Alg::RS256, pool.claims("order/post.order")),
            ),
            invalid("signature"),
        ),
    ];
    decide_in_envoy_and_explain(&imported.config, &pool.jwks(), &cases);
}

#[test]
fn api_gateway_cloudformation_walkthrough_in_envoy() {
    walkthrough_in_envoy("cloudformation.yaml");
}

#[test]
fn api_gateway_openapi_export_in_envoy() {
    walkthrough_in_envoy("openapi.yaml");
}

#[test]
fn api_gateway_sam_template_in_envoy() {
    walkthrough_in_envoy("sam.yaml");
}

/// AWS's quick-create sample: one `$default` route with the authorizer,
/// the token in the `access_token` query parameter, CORS configured.
#[test]
fn api_gateway_quick_create_with_cors_in_envoy() {
    let imported = import(
        "api-gateway",
        &fixture("quick-create.yaml"),
        &[
            &format!("--param=UserPool={POOL}"),
            &format!("--param=AppClient={CLIENT}"),
            "--param=AWS::Region=us-east-1",
        ],
    );
    assert_eq!(imported.config["bypass_cors_preflight"], true);
    assert!(
        imported.has_line(
            "note: Resources.MyAPI.Properties.CorsConfiguration: API Gateway hands a preflight that $default \
             matches to that route's authorizer, which refuses it without a token (AWS's remedy: a route \
             OPTIONS /{proxy+} without authorizer); here it passes like every preflight"
        ),
        "{}",
        imported.report
    );
    let pool = Pool::new();
    let token = pool.token("");
    let preflight = |path: &str| {
        Request::new("OPTIONS", path)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
    };
    let cases = vec![
        case(
            "GET /anything?access_token=TOKEN",
            "API Gateway: 200 ($default, identity source $request.querystring.access_token)",
            Request::get(format!("/anything?access_token={token}")),
            forward(),
        ),
        case(
            "PUT /a/b/c?access_token=TOKEN",
            "API Gateway: 200 ($default takes every method and path)",
            Request::new("PUT", format!("/a/b/c?x=1&access_token={token}")).body("{}"),
            forward(),
        ),
        case(
            "GET /anything without a token",
            "API Gateway: 401",
            Request::get("/anything"),
            no_token(),
        ),
        case(
            "GET /anything with the token in Authorization",
            "API Gateway: 401 (the identity source is the query parameter)",
            Request::get("/anything").bearer(&token),
            no_token(),
        ),
        case(
            "GET /anything?access_token=<another client's>",
            "API Gateway: 401 (audience)",
            Request::get(format!(
                "/anything?access_token={}",
                pool.token_with("", |c| c["client_id"] = json!("someotherclient"))
            )),
            invalid("audience"),
        ),
        case(
            "CORS preflight OPTIONS /anything without a token",
            "API Gateway: answered by API Gateway when no route takes OPTIONS, but $default does: \
             401 from its authorizer; ours passes to the service (bypass_cors_preflight), in the report",
            preflight("/anything"),
            forward(),
        ),
        case(
            "CORS preflight on a path no rule would match",
            "API Gateway: as above; ours passes before any rule",
            preflight("/a/b/c"),
            forward(),
        ),
        case(
            "OPTIONS with Origin but no Access-Control-Request-Method",
            "not a preflight: API Gateway's $default authorizer, 401",
            Request::new("OPTIONS", "/anything").header("origin", "https://app.example.com"),
            no_token(),
        ),
    ];
    decide_in_envoy_and_explain(&imported.config, &pool.jwks(), &cases);
}

// ------------------------------------------------------------------ MuleSoft

/// Reference article 000's JWT Validation policy for the walkthrough's
/// Cognito tokens as a Flex Gateway PolicyBinding on `POST /api/v1/order`.
#[test]
fn mulesoft_flex_jwks_in_envoy() {
    let imported = import("mulesoft", &fixture("flex-jwks.yaml"), &[]);
    for line in [
        "note: document 2: spec.config.jwtOrigin: a request without a token: MuleSoft answers 400, the filter 401 with a WWW-Authenticate challenge (RFC 6750)",
        "note: document 2: spec.config.mandatoryCustomClaims[0] (scope): MuleSoft compares the whole scope claim (a token with \"a b\" fails == 'a'); the filter requires one of the scopes among the token's space-separated scopes, and answers 403 insufficient_scope where MuleSoft answers 401",
    ] {
        assert!(
            imported.has_line(line),
            "missing {line}\n{}",
            imported.report
        );
    }
    let pool = Pool::new();
    let post = pool.token("order/post.order");
    let cases = vec![
        case(
            "POST /api/v1/order with order/post.order",
            "MuleSoft: 200 (article 000: the client-credentials token passes)",
            Request::post("/api/v1/order").bearer(&post).body("{}"),
            forward(),
        ),
        case(
            "POST /api/v1/order without a token",
            "MuleSoft: 400; ours 401 with a challenge (RFC 6750), in the report",
            Request::post("/api/v1/order"),
            no_token(),
        ),
        case(
            "POST /api/v1/order with order/get.order",
            "MuleSoft: 401 (custom claim scope); ours 403 insufficient_scope, in the report",
            Request::post("/api/v1/order").bearer(&pool.token("order/get.order")),
            forbidden("scope", r#"scope="order/post.order""#),
        ),
        case(
            "POST /api/v1/order with \"order/get.order order/post.order\"",
            "MuleSoft: 401 (== compares the whole claim); ours 200 (one of the scopes), in the report",
            Request::post("/api/v1/order").bearer(&pool.token("order/get.order order/post.order")),
            forward(),
        ),
        case(
            "POST /api/v1/order with an aud of the app client",
            "MuleSoft: 200 (supportedAudiences)",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c["aud"] = json!(CLIENT);
            })),
            forward(),
        ),
        case(
            "POST /api/v1/order with an aud of another client",
            "MuleSoft: 401 (aud not supported)",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c["aud"] = json!("someotherclient");
            })),
            invalid("audience"),
        ),
        case(
            "POST /api/v1/order, no aud, another client's client_id",
            "MuleSoft: 200 (aud not mandatory); ours 401: client_id must be an audience, in the report",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c["client_id"] = json!("someotherclient");
            })),
            invalid("audience"),
        ),
        case(
            "POST /api/v1/order with an ID token",
            "MuleSoft: 401 (custom claim token_use == access)",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c["token_use"] = json!("id");
            })),
            invalid("token_use"),
        ),
        case(
            "POST /api/v1/order with an expired token",
            "MuleSoft: 401 (exp)",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c["iat"] = json!(now() - 7200);
                c["exp"] = json!(now() - 3600);
            })),
            invalid("expired"),
        ),
        case(
            "POST /api/v1/order with a token without exp",
            "MuleSoft: 401 (mandatoryExpClaim: true)",
            Request::post("/api/v1/order").bearer(&pool.token_with("order/post.order", |c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
            invalid("expired"),
        ),
        case(
            "POST /api/v1/order signed by another key",
            "MuleSoft: 401 (signature)",
            Request::post("/api/v1/order").bearer(
                &TestKey::rsa("pool-key-1", 2048)
                    .token(Alg::RS256, pool.claims("order/post.order")),
            ),
            invalid("signature"),
        ),
        case(
            "GET /api/v1/order without a token",
            "MuleSoft: 200 (outside the binding's rules the policy does not apply)",
            Request::get("/api/v1/order"),
            forward(),
        ),
    ];
    decide_in_envoy_and_explain(&imported.config, &pool.jwks(), &cases);
}

/// An HMAC secret (a Flex environment variable), audiences with `aud`
/// mandatory, `exp` mandatory, and custom claims in the DataWeave shapes
/// the importer translates.
#[test]
fn mulesoft_flex_hmac_in_envoy() {
    let secret = "0123456789abcdef0123456789abcdef";
    let imported = import(
        "mulesoft",
        &fixture("flex-hmac.yaml"),
        &[&format!("--param=JWT_SECRET={secret}")],
    );
    let key = TestKey::hmac("unused", secret);
    let base = json!({
        "iss": "https://auth.internal.example.com",
        "aud": "orders-api",
        "scope": "orders:write",
        "client_id": "batch",
    });
    let token = |edit: &dyn Fn(&mut Value)| {
        let mut claims = base.clone();
        claims["iat"] = json!(now());
        claims["exp"] = json!(now() + 600);
        edit(&mut claims);
        key.mint(Alg::HS256, json!({"alg": "HS256", "typ": "JWT"}), claims)
    };
    let get = |edit: &dyn Fn(&mut Value)| Request::get("/orders/7").bearer(&token(edit));
    let cases = vec![
        case(
            "every claim as the policy wants",
            "MuleSoft: 200",
            get(&|_| {}),
            forward(),
        ),
        case(
            "no token",
            "MuleSoft: 400; ours 401, in the report",
            Request::get("/orders/7"),
            no_token(),
        ),
        case(
            "scope orders:admin among others",
            "MuleSoft: 401 (== on the whole claim); ours 200, in the report",
            get(&|c| c["scope"] = json!("orders:read orders:admin")),
            forward(),
        ),
        case(
            "scope orders:read",
            "MuleSoft: 401 (custom claim scope); ours 403, in the report",
            get(&|c| c["scope"] = json!("orders:read")),
            forbidden("scope", r#"scope="orders:write orders:admin""#),
        ),
        case(
            "client_id not in ['batch', 'portal']",
            "MuleSoft: 401 (custom claim client_id)",
            get(&|c| c["client_id"] = json!("other")),
            invalid("claim"),
        ),
        case(
            "client_id portal",
            "MuleSoft: 200",
            get(&|c| c["client_id"] = json!("portal")),
            forward(),
        ),
        case(
            "no aud",
            "MuleSoft: 401 (mandatoryAudClaim: true); ours 401 at the audience check already \
             (without aud, client_id batch would have to be an audience)",
            get(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            invalid("audience"),
        ),
        case(
            "aud billing-api",
            "MuleSoft: 200 (supportedAudiences)",
            get(&|c| c["aud"] = json!(["billing-api"])),
            forward(),
        ),
        case(
            "aud of another API",
            "MuleSoft: 401 (supportedAudiences)",
            get(&|c| c["aud"] = json!("payroll-api")),
            invalid("audience"),
        ),
        case(
            "department hr (non-mandatory claim present, wrong)",
            "MuleSoft: 401 (a non-mandatory claim is checked when present)",
            get(&|c| c["department"] = json!("hr")),
            invalid("claim"),
        ),
        case(
            "department sales",
            "MuleSoft: 200",
            get(&|c| c["department"] = json!("sales")),
            forward(),
        ),
        case(
            "groups holding admin",
            "MuleSoft: 200 (contains on an array)",
            get(&|c| c["groups"] = json!(["staff", "admin"])),
            forward(),
        ),
        case(
            "groups without admin",
            "MuleSoft: 401",
            get(&|c| c["groups"] = json!(["staff"])),
            invalid("claim"),
        ),
        case(
            "another issuer",
            "MuleSoft: 401 (custom claim iss)",
            get(&|c| c["iss"] = json!("https://elsewhere.example.com")),
            invalid("issuer"),
        ),
        case(
            "expired",
            "MuleSoft: 401 (exp)",
            get(&|c| {
                c["iat"] = json!(now() - 7200);
                c["exp"] = json!(now() - 3600);
            }),
            invalid("expired"),
        ),
        case(
            "no exp",
            "MuleSoft: 401 (mandatoryExpClaim: true)",
            get(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            invalid("expired"),
        ),
        case(
            "signed with another secret",
            "MuleSoft: 401 (signature)",
            Request::get("/orders/7").bearer(
                &TestKey::hmac("x", "another secret of thirty-two bytes").mint(
                    Alg::HS256,
                    json!({"alg": "HS256"}),
                    json!({"iss": "https://auth.internal.example.com", "aud": "orders-api",
                       "scope": "orders:write", "client_id": "batch", "exp": now() + 600}),
                ),
            ),
            invalid("signature"),
        ),
    ];
    decide_in_envoy_and_explain(&imported.config, &json!({"keys": []}), &cases);
}

/// The PEM PolicyBinding (`flex-text-pem.yaml`) with its key replaced by
/// one whose private half this test holds: the token in `x-jwt`, `nbf`
/// mandatory, the issuer and a partner tier as custom claims, the binding's
/// rule on a host and a path regular expression.
#[test]
fn mulesoft_flex_text_pem_in_envoy() {
    let key = TestKey::rsa("unused", 2048);
    let body: String = key
        .public_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let fixture_text = std::fs::read_to_string(fixture("flex-text-pem.yaml")).unwrap();
    let start = fixture_text
        .find("    textKey: >-\n")
        .expect("textKey in the fixture");
    let end = start
        + fixture_text[start..]
            .find("    skipClientIdValidation")
            .expect("the field after textKey");
    let binding = format!(
        "{}    textKey: {body}\n{}",
        &fixture_text[..start],
        &fixture_text[end..]
    );
    let imported = import("mulesoft", &temp_file("pem.yaml", binding.as_bytes()), &[]);
    assert_eq!(
        imported.config["rules"][0]["match"],
        json!({"prefix": "/partners/", "hosts": ["api.example.com"]})
    );
    let token = |edit: &dyn Fn(&mut Value)| {
        let mut claims = json!({
            "iss": "https://partners.example.com",
            "sub": "partner-17",
            "partner_tier": "gold",
            "nbf": now() - 10,
            "exp": now() + 600,
        });
        edit(&mut claims);
        // No kid: the PEM gave one key, and MuleSoft's tokens need none.
        key.mint(Alg::RS256, json!({"alg": "RS256", "typ": "JWT"}), claims)
    };
    let at = |host: &str, path: &str| Request::get(path).header("host", host);
    let api = "api.example.com";
    let cases = vec![
        case(
            "a gold partner's token in x-jwt",
            "MuleSoft: 200",
            at(api, "/partners/orders").header("x-jwt", token(&|_| {})),
            forward(),
        ),
        case(
            "silver",
            "MuleSoft: 200 (['gold', 'silver'] contains partner_tier)",
            at(api, "/partners/orders")
                .header("x-jwt", token(&|c| c["partner_tier"] = json!("silver"))),
            forward(),
        ),
        case(
            "bronze",
            "MuleSoft: 401 (custom claim partner_tier)",
            at(api, "/partners/orders")
                .header("x-jwt", token(&|c| c["partner_tier"] = json!("bronze"))),
            invalid("claim"),
        ),
        case(
            "no nbf",
            "MuleSoft: 401 (mandatoryNbfClaim: true)",
            at(api, "/partners/orders").header(
                "x-jwt",
                token(&|c| {
                    c.as_object_mut().unwrap().remove("nbf");
                }),
            ),
            invalid("claim"),
        ),
        case(
            "nbf in the future",
            "MuleSoft: 401 (nbf)",
            at(api, "/partners/orders").header("x-jwt", token(&|c| c["nbf"] = json!(now() + 3600))),
            invalid("not_yet_valid"),
        ),
        case(
            "no exp",
            "MuleSoft: 401 (mandatoryExpClaim: true)",
            at(api, "/partners/orders").header(
                "x-jwt",
                token(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
            invalid("expired"),
        ),
        case(
            "another issuer",
            "MuleSoft: 401 (custom claim iss)",
            at(api, "/partners/orders").header(
                "x-jwt",
                token(&|c| c["iss"] = json!("https://elsewhere.example.com")),
            ),
            invalid("issuer"),
        ),
        case(
            "no token",
            "MuleSoft: 400; ours 401, in the report",
            at(api, "/partners/orders"),
            no_token(),
        ),
        case(
            "the token as Authorization: Bearer",
            "MuleSoft: 400 (the expression reads x-jwt); ours 401",
            at(api, "/partners/orders").bearer(&token(&|_| {})),
            no_token(),
        ),
        case(
            "signed with another key",
            "MuleSoft: 401 (signature)",
            at(api, "/partners/orders").header(
                "x-jwt",
                TestKey::rsa("unused", 2048).mint(
                    Alg::RS256,
                    json!({"alg": "RS256"}),
                    json!({"iss": "https://partners.example.com", "partner_tier": "gold",
                           "nbf": now() - 10, "exp": now() + 600}),
                ),
            ),
            invalid("signature"),
        ),
        case(
            "another host",
            "MuleSoft: 200 (host api\\.example\\.com does not match: the policy does not apply)",
            at("www.example.com", "/partners/orders"),
            forward(),
        ),
        case(
            "/partners without the slash",
            "MuleSoft: 200 (path /partners(/.*) does not match)",
            at(api, "/partners"),
            forward(),
        ),
    ];
    decide_in_envoy_and_explain(&imported.config, &json!({"keys": []}), &cases);
}
