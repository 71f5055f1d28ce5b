//! MuleSoft's JWT Validation policy (`jwt-validation-flex`): a Flex Gateway
//! `PolicyBinding` (parameters in `spec.config`, request rules in
//! `spec.rules`), an `ApiInstance` with the policy inline, or the bare
//! parameters (also as API Manager's `configurationData` with
//! `pointcutData`).
//!
//! Parameters (Flex Gateway's documented defaults where absent):
//! `signingMethod`/`signingKeyLength` -> `algorithms`; `jwtKeyOrigin: jwks`
//! (`jwksUrl`, one URL; `jwksServiceTimeToLive` minutes -> `cache_ttl_s`;
//! `jwksServiceConnectionTimeout` ms -> `timeout_ms`) or `text` (`textKey`:
//! a PEM public key -> `local_jwks`, an HMAC secret ->
//! `shared_secret_base64`); `jwtOrigin` (`customExpression`: the
//! `jwtExpression` -> `from_headers`/`from_params`); `validateAudClaim` +
//! `supportedAudiences` -> `audiences`, `mandatoryAudClaim` and
//! `mandatoryNbfClaim` -> presence checks, `mandatoryExpClaim` ->
//! `require_exp`; custom claims (DataWeave, see [`super::dataweave`]) ->
//! provider claim checks, an `iss` check -> `issuer`, `scope` checks -> the
//! rules' `scopes`. Client-id validation against API Manager contracts has
//! no equivalent. Flex rules (`path`, `methods`, `host` regular
//! expressions) -> rules, with `unmatched: allow` (the policy does not apply
//! to other requests).

use base64::Engine as _;
use serde_json::Value;

use super::dataweave::{self, Check, TokenSource};
use super::jwk::{KeyKind, pem_to_jwk};
use super::model::{
    Claim, Config, HeaderLocation, Match, Provider, RemoteJwks, Requires, Rule, Unmatched,
    name_from, unique_name,
};
use super::node::{Node, join_path};
use super::{Context, Imported, Report};

const POLICY: &str = "jwt-validation-flex";

/// Every parameter of the policy, as Flex Gateway documents them.
const KNOWN: [&str; 20] = [
    "signingMethod",
    "signingKeyLength",
    "textKey",
    "jwtOrigin",
    "jwtExpression",
    "jwtKeyOrigin",
    "jwksUrl",
    "jwksServiceTimeToLive",
    "jwksServiceConnectionTimeout",
    "validateAudClaim",
    "mandatoryAudClaim",
    "mandatoryNbfClaim",
    "mandatoryExpClaim",
    "supportedAudiences",
    "validateCustomClaim",
    "mandatoryCustomClaims",
    "nonMandatoryCustomClaims",
    "skipClientIdValidation",
    "clientIdExpression",
    "claimsToHeaders",
];

/// Where the policy was found.
struct Found<'d> {
    /// `spec.config` and the like, for report paths.
    config_path: String,
    config: &'d Node,
    rules_path: String,
    rules: Option<&'d Node>,
    /// Flex rules use `path`/`methods`; API Manager's pointcuts
    /// `uriTemplateRegex`/`methodRegex`.
    pointcuts: bool,
    name: String,
    /// Local Mode requires `skipClientIdValidation: true`.
    local_mode: bool,
    description: String,
}

pub fn import(docs: &[Node], ctx: &Context<'_>, report: &mut Report) -> Option<Imported> {
    let several = docs.len() > 1;
    let mut found: Vec<Found<'_>> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let prefix = if several {
            format!("document {}: ", i.saturating_add(1))
        } else {
            String::new()
        };
        find(doc, &prefix, &mut found);
    }
    let Some(first) = found.first() else {
        report.error(
            "",
            format!(
                "no {POLICY} policy: neither a PolicyBinding or ApiInstance using it nor its parameters"
            ),
        );
        return None;
    };
    if let Some(other) = found.get(1) {
        report.untranslatable(
            &other.config_path,
            format!(
                "a second {POLICY} policy: import one at a time (this one and any after it are left out)"
            ),
        );
    }
    translate(first, ctx, report)
}

fn find<'d>(doc: &'d Node, prefix: &str, found: &mut Vec<Found<'d>>) {
    let kind = doc.get("kind").and_then(Node::as_str);
    let name = doc
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Node::as_str)
        .unwrap_or("jwt-validation")
        .to_owned();
    let is_jwt = |policy_ref: Option<&Node>| {
        policy_ref
            .and_then(|r| r.get("name"))
            .and_then(Node::as_str)
            .is_some_and(|n| n == POLICY || n.starts_with("jwt-validation-flex-"))
    };
    match kind {
        Some("PolicyBinding") => {
            let spec = doc.get("spec");
            if is_jwt(spec.and_then(|s| s.get("policyRef"))) {
                found.push(Found {
                    config_path: format!("{prefix}spec.config"),
                    config: spec.and_then(|s| s.get("config")).unwrap_or(&EMPTY),
                    rules_path: format!("{prefix}spec.rules"),
                    rules: spec.and_then(|s| s.get("rules")),
                    pointcuts: false,
                    name: name.clone(),
                    local_mode: true,
                    description: format!("Flex Gateway PolicyBinding {name}"),
                });
            }
        }
        Some("ApiInstance") => {
            let policies = doc.get("spec").and_then(|s| s.get("policies"));
            for (i, p) in policies.map_or(&[][..], Node::items).iter().enumerate() {
                if is_jwt(p.get("policyRef")) {
                    found.push(Found {
                        config_path: format!("{prefix}spec.policies[{i}].config"),
                        config: p.get("config").unwrap_or(&EMPTY),
                        rules_path: format!("{prefix}spec.policies[{i}].rules"),
                        rules: p.get("rules"),
                        pointcuts: false,
                        name: name.clone(),
                        local_mode: true,
                        description: format!("Flex Gateway ApiInstance {name}, policies[{i}]"),
                    });
                }
            }
        }
        Some(_) => {}
        None => {
            if let Some(data) = doc.get("configurationData") {
                found.push(Found {
                    config_path: format!("{prefix}configurationData"),
                    config: data,
                    rules_path: format!("{prefix}pointcutData"),
                    rules: doc.get("pointcutData").filter(|p| *p != &Node::Null),
                    pointcuts: true,
                    name: "mulesoft".to_owned(),
                    local_mode: false,
                    description: "API Manager policy (configurationData)".to_owned(),
                });
            } else if doc
                .entries()
                .iter()
                .any(|(k, _)| KNOWN.contains(&k.as_str()))
            {
                found.push(Found {
                    config_path: prefix.trim_end_matches(": ").to_owned(),
                    config: doc,
                    rules_path: String::new(),
                    rules: None,
                    pointcuts: false,
                    name: "mulesoft".to_owned(),
                    local_mode: false,
                    description: format!("{POLICY} parameters"),
                });
            }
        }
    }
}

/// The parameters of a binding without `config`.
static EMPTY: Node = Node::Map(Vec::new());

/// Reads parameters, resolving Flex's `$VARIABLE` values from `--param`.
struct Params<'a> {
    config: &'a Node,
    base: String,
    ctx: &'a Context<'a>,
}

impl Params<'_> {
    fn path(&self, key: &str) -> String {
        join_path(&self.base, key)
    }

    fn node(&self, key: &str) -> Option<&Node> {
        self.config.get(key).filter(|n| **n != Node::Null)
    }

    /// A text value; `$NAME` is a Flex environment variable.
    fn text(&self, key: &str, report: &mut Report) -> Option<String> {
        let node = self.node(key)?;
        let Some(text) = node.scalar_text() else {
            report.error(
                &self.path(key),
                format!("expected a string, found {}", node.kind()),
            );
            return None;
        };
        self.env(&text, &self.path(key), report)
    }

    fn env(&self, text: &str, path: &str, report: &mut Report) -> Option<String> {
        let Some(var) = text.strip_prefix('$').filter(|v| {
            !v.is_empty()
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !v.as_bytes().first().is_some_and(u8::is_ascii_digit)
        }) else {
            return Some(text.to_owned());
        };
        match self.ctx.params.get(var) {
            Some(v) => Some(v),
            None => {
                report.error(
                    path,
                    format!("unresolved environment variable ${var} (pass --param {var}=...)"),
                );
                None
            }
        }
    }

    fn flag(&self, key: &str, default: bool, report: &mut Report) -> bool {
        match self.node(key) {
            None => default,
            Some(n) => match n.as_bool_lenient() {
                Some(b) => b,
                None => {
                    report.error(
                        &self.path(key),
                        format!("expected true or false, found {}", n.kind()),
                    );
                    default
                }
            },
        }
    }

    fn number(&self, key: &str, report: &mut Report) -> Option<u64> {
        let node = self.node(key)?;
        let text = node
            .scalar_text()
            .and_then(|t| self.env(&t, &self.path(key), report))?;
        match text.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => {
                report.error(
                    &self.path(key),
                    format!("expected a whole number, found {text}"),
                );
                None
            }
        }
    }
}

/// What the custom claims ask for, sorted by where it goes.
#[derive(Default)]
struct Claims {
    issuer: Option<(String, String)>,
    token_use: Option<String>,
    provider: Vec<Claim>,
    /// Each entry: any of these scopes (from one claim check).
    scopes: Vec<(String, Vec<String>)>,
}

fn translate(found: &Found<'_>, ctx: &Context<'_>, report: &mut Report) -> Option<Imported> {
    let p = Params {
        config: found.config,
        base: found.config_path.clone(),
        ctx,
    };
    for (key, _) in found.config.entries() {
        if !KNOWN.contains(&key.as_str()) {
            report.untranslatable(
                &p.path(key),
                "not a jwt-validation-flex parameter that Flex Gateway documents: its effect is unknown",
            );
        }
    }
    if p.node("claimsToHeaders").is_some() {
        report.untranslatable(
            &p.path("claimsToHeaders"),
            "not translated: write the filter's claims_to_headers by hand (claim -> header)",
        );
    }
    let name = name_from(&found.name);
    let mut provider = Provider::default();

    // Signing method and key length.
    let method = p
        .text("signingMethod", report)
        .unwrap_or_else(|| "rsa".to_owned());
    let length = p.number("signingKeyLength", report).unwrap_or(256);
    let method_path = p.path("signingMethod");
    let (alg, kind) = match (method.to_ascii_lowercase().as_str(), length) {
        ("rsa", 256 | 384 | 512) => (format!("RS{length}"), Some(KeyKind::Rsa)),
        ("hmac", 256 | 384 | 512) => (format!("HS{length}"), None),
        ("es", 256) => ("ES256".to_owned(), Some(KeyKind::P256)),
        ("es", 384) => ("ES384".to_owned(), Some(KeyKind::P384)),
        ("none", _) => {
            report.error(
                &method_path,
                "none: unsigned tokens; the filter never accepts them (an unsigned token proves nothing)",
            );
            return None;
        }
        ("es", 512) => {
            report.untranslatable(
                &method_path,
                "es with key length 512 (ES512): the filter does not implement it",
            );
            return None;
        }
        (m, l) => {
            report.error(
                &method_path,
                format!("signing method {m} with key length {l} is not one Flex Gateway supports"),
            );
            return None;
        }
    };
    provider.algorithms = Some(vec![alg.clone()]);
    report.mapped(
        &method_path,
        format!("providers.{name}.algorithms: [{alg}] ({method} with signingKeyLength {length})"),
    );

    // Keys.
    let origin = p
        .text("jwtKeyOrigin", report)
        .unwrap_or_else(|| "text".to_owned());
    let mut jwks_url = None;
    match origin.to_ascii_lowercase().as_str() {
        "jwks" => {
            let Some(urls) = p.text("jwksUrl", report) else {
                report.error(&p.path("jwksUrl"), "missing (jwtKeyOrigin is jwks)");
                return None;
            };
            let urls: Vec<&str> = urls
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .collect();
            let Some(uri) = urls.first().map(|u| (*u).to_owned()) else {
                report.error(&p.path("jwksUrl"), "empty");
                return None;
            };
            if urls.len() > 1 {
                report.untranslatable(
                    &p.path("jwksUrl"),
                    format!(
                        "{} JWKS URLs: a provider fetches one JWKS (with --allow-partial, only {uri} is used)",
                        urls.len()
                    ),
                );
            }
            if !uri.starts_with("https://") && !uri.starts_with("http://") {
                report.error(&p.path("jwksUrl"), format!("{uri} is not an http(s) URL"));
                return None;
            }
            let ttl = p.number("jwksServiceTimeToLive", report);
            let cache_ttl_s = match ttl.map(|m| m.checked_mul(60)) {
                Some(Some(0)) => {
                    report.error(
                        &p.path("jwksServiceTimeToLive"),
                        "0 minutes: keys must be cached for some time",
                    );
                    return None;
                }
                Some(Some(s)) => Some(s),
                Some(None) => {
                    report.error(&p.path("jwksServiceTimeToLive"), "too large");
                    return None;
                }
                None => None,
            };
            let timeout = p.number("jwksServiceConnectionTimeout", report);
            let timeout_ms = match timeout {
                Some(0) => {
                    report.error(&p.path("jwksServiceConnectionTimeout"), "0 ms");
                    return None;
                }
                Some(t) if t > 60_000 => {
                    report.warning(
                        &p.path("jwksServiceConnectionTimeout"),
                        format!("{t} ms: the filter's timeout_ms is at most 60000, used instead"),
                    );
                    Some(60_000)
                }
                other => other,
            };
            let cluster = ctx.cluster_for(&name, &uri);
            report.mapped(
                &p.path("jwksUrl"),
                format!("providers.{name}.remote_jwks: {uri} through cluster {cluster}"),
            );
            if let Some(s) = cache_ttl_s {
                report.mapped(
                    &p.path("jwksServiceTimeToLive"),
                    format!(
                        "providers.{name}.remote_jwks.cache_ttl_s: {s} ({} minutes)",
                        ttl.unwrap_or(0)
                    ),
                );
            }
            if let Some(t) = timeout_ms {
                report.mapped(
                    &p.path("jwksServiceConnectionTimeout"),
                    format!("providers.{name}.remote_jwks.timeout_ms: {t} (also how long a request waits for the first keys)"),
                );
            }
            provider.remote_jwks = Some(RemoteJwks {
                cluster,
                uri: uri.clone(),
                timeout_ms,
                cache_ttl_s,
            });
            jwks_url = Some(uri);
        }
        "text" => {
            let key_path = p.path("textKey");
            let Some(text_key) = p.text("textKey", report) else {
                report.error(&key_path, "missing (jwtKeyOrigin is text)");
                return None;
            };
            match kind {
                Some(kind) => match pem_to_jwk(&text_key, kind, &alg) {
                    Ok(jwk) => {
                        let kid = jwk
                            .get("kid")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned();
                        report.mapped(
                            &key_path,
                            format!(
                                "providers.{name}.local_jwks: the PEM key as a JWK ({}, kid {kid}: its RFC 7638 thumbprint)",
                                jwk.get("kty").and_then(Value::as_str).unwrap_or("")
                            ),
                        );
                        provider.local_jwks = Some(serde_json::json!({"keys": [jwk]}));
                    }
                    Err(why) => {
                        report.error(&key_path, why);
                        return None;
                    }
                },
                None => {
                    let needed = usize::try_from(length / 8).unwrap_or(32);
                    if text_key.len() < needed {
                        report.error(
                            &key_path,
                            format!(
                                "the secret is {} bytes; {alg} needs at least {needed} (RFC 7518 §3.2)",
                                text_key.len()
                            ),
                        );
                        return None;
                    }
                    provider.shared_secret_base64 =
                        Some(base64::engine::general_purpose::STANDARD.encode(text_key.as_bytes()));
                    report.mapped(
                        &key_path,
                        format!(
                            "providers.{name}.shared_secret_base64: the secret's {} bytes (UTF-8), base64",
                            text_key.len()
                        ),
                    );
                    report.warning(
                        &key_path,
                        "an HMAC secret: whoever can verify these tokens can also mint them; keep the configuration secret",
                    );
                }
            }
        }
        other => {
            report.error(
                &p.path("jwtKeyOrigin"),
                format!("{other}: expected jwks or text"),
            );
            return None;
        }
    }

    // Where the token is.
    let origin = p
        .text("jwtOrigin", report)
        .unwrap_or_else(|| "httpBearerAuthenticationHeader".to_owned());
    match origin.as_str() {
        "httpBearerAuthenticationHeader" => report.mapped(
            &p.path("jwtOrigin"),
            format!("providers.{name}: token in the Authorization header as Bearer (the default)"),
        ),
        "customExpression" => {
            let expr_path = p.path("jwtExpression");
            let expr = p
                .text("jwtExpression", report)
                .unwrap_or_else(|| "#[attributes.headers['jwt']]".to_owned());
            let parsed = match dataweave::expression_body(&expr) {
                Some(body) => dataweave::token_source(body),
                None => Err("not a DataWeave expression #[...]".to_owned()),
            };
            match parsed {
                Ok(TokenSource::Header {
                    name: header,
                    bearer,
                }) => {
                    let prefix = bearer.then(|| "Bearer ".to_owned());
                    report.mapped(
                        &expr_path,
                        format!(
                            "providers.{name}.from_headers: [{{\"name\": \"{header}\"{}}}]",
                            if bearer {
                                ", \"prefix\": \"Bearer \""
                            } else {
                                ""
                            }
                        ),
                    );
                    provider.from_headers = Some(vec![HeaderLocation {
                        name: header,
                        prefix,
                    }]);
                }
                Ok(TokenSource::Param(param)) => {
                    report.mapped(
                        &expr_path,
                        format!("providers.{name}.from_params: [\"{param}\"]"),
                    );
                    provider.from_params = vec![param];
                }
                Err(why) => report.untranslatable(
                    &expr_path,
                    format!("{expr}: {why} (with --allow-partial the token is looked for as Authorization: Bearer)"),
                ),
            }
        }
        other => {
            report.error(
                &p.path("jwtOrigin"),
                format!("{other}: expected httpBearerAuthenticationHeader or customExpression"),
            );
            return None;
        }
    }
    report.note(
        &p.path("jwtOrigin"),
        "a request without a token: MuleSoft answers 400, the filter 401 with a WWW-Authenticate challenge (RFC 6750)",
    );

    // Registered claims.
    let validate_aud = p.flag("validateAudClaim", false, report);
    let mandatory_aud = p.flag("mandatoryAudClaim", false, report);
    let audiences: Vec<String> = match p.node("supportedAudiences") {
        Some(Node::Seq(items)) => items.iter().filter_map(Node::scalar_text).collect(),
        Some(_) => p
            .text("supportedAudiences", report)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    if validate_aud {
        if audiences.is_empty() {
            report.warning(
                &p.path("supportedAudiences"),
                "validateAudClaim without audiences: nothing to check",
            );
        } else {
            report.mapped(
                &p.path("supportedAudiences"),
                format!("providers.{name}.audiences: [{}]", audiences.join(", ")),
            );
            if !mandatory_aud {
                report.note(
                    &p.path("validateAudClaim"),
                    "a token without aud passes MuleSoft's check (aud not mandatory); here it passes only when its client_id is one of the audiences (Cognito access tokens)",
                );
            }
            provider.audiences = audiences;
        }
    } else if !audiences.is_empty() {
        report.note(
            &p.path("supportedAudiences"),
            "ignored: validateAudClaim is false, as MuleSoft ignores it",
        );
    }
    if mandatory_aud {
        provider.claims.push(Claim::present("aud"));
        report.mapped(
            &p.path("mandatoryAudClaim"),
            format!("providers.{name}.claims: aud present"),
        );
        report.note(
            &p.path("mandatoryAudClaim"),
            "Cognito access tokens carry client_id, not aud: they never pass this check",
        );
    }
    let mandatory_exp = p.flag("mandatoryExpClaim", false, report);
    provider.require_exp = Some(mandatory_exp);
    report.mapped(
        &p.path("mandatoryExpClaim"),
        format!("providers.{name}.require_exp: {mandatory_exp} (exp is checked whenever present)"),
    );
    if !mandatory_exp {
        report.warning(
            &p.path("mandatoryExpClaim"),
            "false (MuleSoft's default): tokens without exp never expire; set it (require_exp: true) unless the issuer omits exp",
        );
    }
    if p.flag("mandatoryNbfClaim", false, report) {
        provider.claims.push(Claim::present("nbf"));
        report.mapped(
            &p.path("mandatoryNbfClaim"),
            format!("providers.{name}.claims: nbf present"),
        );
    }

    // Client id validation against API Manager contracts.
    let skip_path = p.path("skipClientIdValidation");
    let skip = match p.node("skipClientIdValidation") {
        Some(_) => p.flag("skipClientIdValidation", false, report),
        None if found.local_mode => {
            report.note(
                &skip_path,
                "absent: taken as true, which Flex Gateway's Local Mode requires",
            );
            true
        }
        None => false,
    };
    if skip {
        if p.node("clientIdExpression").is_some() {
            report.note(
                &p.path("clientIdExpression"),
                "ignored: client id validation is skipped",
            );
        }
    } else {
        let expr = p
            .text("clientIdExpression", report)
            .unwrap_or_else(|| "#[vars.claimSet.client_id]".to_owned());
        report.untranslatable(
            &skip_path,
            format!(
                "client id validation ({expr} against the API's contracts in API Manager) has no equivalent; \
                 to admit only some clients, check client_id with a custom claim or list them in audiences"
            ),
        );
    }

    // Custom claims.
    let claims = custom_claims(&p, &name, report);
    let Claims {
        issuer: iss_claim,
        token_use,
        provider: provider_claims,
        scopes,
    } = claims;
    provider.claims.extend(provider_claims);
    provider.token_use = token_use;

    // The issuer: MuleSoft checks iss only through a custom claim.
    let issuer = if let Some((issuer, from)) = iss_claim {
        report.mapped(&from, format!("providers.{name}.issuer: {issuer}"));
        issuer
    } else if let Some(issuer) = ctx.params.get("issuer") {
        report.mapped(
            "--param issuer",
            format!("providers.{name}.issuer: {issuer}"),
        );
        report.note(
            "--param issuer",
            "MuleSoft did not check iss; the filter does (a token from another issuer of the same keys fails)",
        );
        issuer
    } else if let Some(issuer) = jwks_url.as_deref().and_then(cognito_issuer) {
        report.mapped(
            &p.path("jwksUrl"),
            format!("providers.{name}.issuer: {issuer} (a Cognito pool's JWKS is at <issuer>/.well-known/jwks.json)"),
        );
        report.note(
            &p.path("jwksUrl"),
            "MuleSoft did not check iss; the filter does: the issuer is the pool's (pass --param issuer=... for another)",
        );
        issuer
    } else {
        report.error(
            &found.config_path,
            "no issuer: the policy does not check iss (no custom claim on it), and the filter needs one; pass --param issuer=URL",
        );
        return None;
    };
    provider.issuer = issuer;
    let checks_token_use =
        provider.token_use.is_some() || provider.claims.iter().any(|c| c.claim == "token_use");
    if !checks_token_use && provider.issuer.starts_with("https://cognito-idp.") {
        report.note(
            &found.config_path,
            "a Cognito issuer: add \"token_use\": \"access\" to refuse the pool's ID tokens (MuleSoft did not check it)",
        );
    }

    // Scopes go to the rules.
    let mut requires = Requires {
        provider: Some(name.clone()),
        ..Requires::default()
    };
    match scopes.as_slice() {
        [] => {}
        [(_, any)] => requires.scopes = any.clone(),
        several => {
            if several.iter().all(|(_, any)| any.len() == 1) {
                requires.all_scopes = several.iter().flat_map(|(_, a)| a.clone()).collect();
            } else {
                for (from, _) in several {
                    report.untranslatable(
                        from,
                        "several scope checks, one of them with alternatives: no equivalent (all of one set and any of another)",
                    );
                }
            }
        }
    }

    // Which requests: Flex rules, or every request.
    let mut rules = Vec::new();
    let unmatched = match found.rules.filter(|r| !r.items().is_empty()) {
        None => {
            rules.push(Rule {
                name: "all".to_owned(),
                match_: Match::default(),
                allow_anonymous: false,
                allow_missing: false,
                requires: Some(requires.clone()),
            });
            if let Some(rule) = rules.first() {
                let source = if found.rules_path.is_empty() {
                    "(no rules)".to_owned()
                } else {
                    format!("{} (none)", found.rules_path)
                };
                report.mapped(
                    &source,
                    format!(
                        "rules[0] all: {} (the policy applies to every request)",
                        rule.describe()
                    ),
                );
            }
            Unmatched::Deny
        }
        Some(list) => {
            for (i, r) in list.items().iter().enumerate() {
                let path = join_path(&found.rules_path, &format!("[{i}]"));
                match flex_rule(r, found.pointcuts) {
                    Ok(matches) => {
                        for m in matches {
                            let taken: Vec<String> =
                                rules.iter().map(|r: &Rule| r.name.clone()).collect();
                            let rule = Rule {
                                name: unique_name(&format!("rule_{i}"), &taken),
                                match_: m,
                                allow_anonymous: false,
                                allow_missing: false,
                                requires: Some(requires.clone()),
                            };
                            report.mapped(
                                &path,
                                format!(
                                    "rules[{}] {}: {}",
                                    rules.len(),
                                    rule.name,
                                    rule.describe()
                                ),
                            );
                            rules.push(rule);
                        }
                    }
                    Err(why) => report.untranslatable(&path, why),
                }
            }
            report.note(
                &found.rules_path,
                "requests no rule matches are not checked, as the policy does not apply to them in Flex (unmatched: allow)",
            );
            Unmatched::Allow
        }
    };
    let mut providers = std::collections::BTreeMap::new();
    providers.insert(name, provider);
    Some(Imported {
        description: found.description.clone(),
        config: Config {
            providers,
            rules,
            unmatched,
            // The JWT Validation policy has no CORS setting (CORS is another Flex policy).
            bypass_cors_preflight: false,
        },
    })
}

/// `https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json`
/// -> the pool's issuer.
fn cognito_issuer(jwks_url: &str) -> Option<String> {
    let issuer = jwks_url.strip_suffix("/.well-known/jwks.json")?;
    let rest = issuer.strip_prefix("https://cognito-idp.")?;
    let (host, pool) = rest.split_once('/')?;
    (host.ends_with(".amazonaws.com") && !pool.is_empty() && !pool.contains('/'))
        .then(|| issuer.to_owned())
}

fn custom_claims(p: &Params<'_>, provider: &str, report: &mut Report) -> Claims {
    let mut out = Claims::default();
    let validate = p.flag("validateCustomClaim", false, report);
    for (list, mandatory) in [
        ("mandatoryCustomClaims", true),
        ("nonMandatoryCustomClaims", false),
    ] {
        let Some(items) = p.node(list) else { continue };
        if !validate {
            if !items.items().is_empty() {
                report.note(
                    &p.path(list),
                    "ignored: validateCustomClaim is false, as MuleSoft ignores them",
                );
            }
            continue;
        }
        for (i, item) in items.items().iter().enumerate() {
            let path = join_path(&p.path(list), &format!("[{i}]"));
            let key = item.get("key").and_then(Node::scalar_text);
            let Some(key) = key.filter(|k| !k.is_empty()) else {
                report.error(&path, "a custom claim without key");
                continue;
            };
            let source = format!("{path} ({key})");
            let value = item.get("value").cloned().unwrap_or(Node::Null);
            let checks = match &value {
                Node::Str(s) => match dataweave::expression_body(s) {
                    Some(body) => dataweave::claim_checks(body),
                    None => match p.env(s, &path, report) {
                        Some(v) => Ok(vec![Check::OneOf {
                            claim: key.clone(),
                            values: vec![Value::String(v)],
                        }]),
                        None => continue,
                    },
                },
                Node::Bool(_) | Node::Int(_) | Node::Float(_) => Ok(vec![Check::OneOf {
                    claim: key.clone(),
                    values: vec![value.to_json()],
                }]),
                other => Err(format!(
                    "the value is {}, not a literal or an expression",
                    other.kind()
                )),
            };
            let checks = match checks {
                Ok(c) => c,
                Err(why) => {
                    let shown = value.scalar_text().unwrap_or_default();
                    report.untranslatable(&source, format!("{shown}: {why}"));
                    continue;
                }
            };
            if mandatory && !checks.iter().any(|c| c.claim() == key) {
                out.provider.push(Claim::present(&key));
                report.mapped(
                    &source,
                    format!("providers.{provider}.claims: {key} present (mandatory)"),
                );
            }
            for check in checks {
                place(check, mandatory, &source, provider, &mut out, report);
            }
        }
    }
    out
}

/// Where one check goes: `iss` -> the issuer, `scope`/`scp` -> the rules'
/// scopes, anything else -> the provider's claims.
fn place(
    check: Check,
    mandatory: bool,
    source: &str,
    provider: &str,
    out: &mut Claims,
    report: &mut Report,
) {
    let claim = check.claim().to_owned();
    if claim == "iss"
        && let Check::OneOf { values, .. } = &check
    {
        match values.as_slice() {
            [Value::String(issuer)] if out.issuer.is_none() => {
                out.issuer = Some((issuer.clone(), source.to_owned()));
                if !mandatory {
                    report.note(source, "non-mandatory in MuleSoft; the filter always requires iss to be the issuer");
                }
                return;
            }
            _ => {
                report.untranslatable(
                    source,
                    "several accepted issuers: a provider has one (import once per issuer)",
                );
                return;
            }
        }
    }
    if claim == "token_use"
        && mandatory
        && out.token_use.is_none()
        && let Check::OneOf { values, .. } = &check
        && let [Value::String(token_use)] = values.as_slice()
    {
        report.mapped(
            source,
            format!("providers.{provider}.token_use: {token_use}"),
        );
        out.token_use = Some(token_use.clone());
        return;
    }
    if claim == "scope" || claim == "scp" {
        let values = match &check {
            Check::OneOf { values, .. } => values.clone(),
            Check::Contains { value, .. } => vec![value.clone()],
            Check::Present { .. } => Vec::new(),
        };
        let mut scopes = Vec::new();
        for v in &values {
            let Some(s) = v.as_str() else {
                report.untranslatable(source, format!("scope {v} is not a string"));
                return;
            };
            let trimmed = s.trim();
            if trimmed.is_empty() || trimmed.contains(char::is_whitespace) {
                report.untranslatable(
                    source,
                    format!("\"{s}\": MuleSoft compares the whole scope string; a scope with spaces inside is several scopes, no single one to require"),
                );
                return;
            }
            if trimmed != s {
                report.warning(source, format!("\"{s}\" has surrounding spaces (no scope can equal it in MuleSoft): \"{trimmed}\" is required"));
            }
            scopes.push(trimmed.to_owned());
        }
        if scopes.is_empty() {
            if mandatory {
                out.provider.push(Claim::present(&claim));
                report.mapped(
                    source,
                    format!("providers.{provider}.claims: {claim} present"),
                );
            }
            return;
        }
        report.mapped(
            source,
            format!("rules[].requires.scopes: any of {}", scopes.join(" ")),
        );
        report.note(
            source,
            "MuleSoft compares the whole scope claim (a token with \"a b\" fails == 'a'); the filter requires one of the scopes among the token's space-separated scopes, and answers 403 insufficient_scope where MuleSoft answers 401",
        );
        if !mandatory {
            report.note(source, "non-mandatory in MuleSoft (a token without scope passes); here a token without the scope fails");
        }
        out.scopes.push((source.to_owned(), scopes));
        return;
    }
    let claim_check = match check {
        Check::OneOf { values, .. } => Claim::one_of(&claim, values, mandatory),
        Check::Contains { value, .. } => {
            report.note(
                source,
                "contains: on a string claim DataWeave tests for a substring; here the claim must equal the value or be an array holding it",
            );
            Claim::one_of(&claim, vec![value], mandatory)
        }
        Check::Present { .. } => {
            if !mandatory {
                report.note(
                    source,
                    "a presence test on a non-mandatory claim always passes: nothing to check",
                );
                return;
            }
            Claim::present(&claim)
        }
    };
    report.mapped(
        source,
        format!("providers.{provider}.claims: {}", claim_check.describe()),
    );
    out.provider.push(claim_check);
}

/// A Flex rule (`path`, `methods`, `host` regular expressions; `headers`)
/// or an API Manager pointcut (`uriTemplateRegex`, `methodRegex`) as
/// matches (a path regex `/a(/.*)?` needs two).
fn flex_rule(rule: &Node, pointcuts: bool) -> Result<Vec<Match>, String> {
    let (path_key, method_key) = if pointcuts {
        ("uriTemplateRegex", "methodRegex")
    } else {
        ("path", "methods")
    };
    for (key, _) in rule.entries() {
        let known = [path_key, method_key, "host", "headers"];
        if !known.contains(&key.as_str()) {
            return Err(format!("unknown rule attribute {key}"));
        }
    }
    if rule.get("headers").is_some_and(|h| !h.entries().is_empty()) {
        return Err("a rule on request headers has no equivalent".into());
    }
    let methods = match rule.get(method_key).and_then(Node::scalar_text) {
        None => None,
        Some(re) => methods_of(&re)?,
    };
    let hosts = match rule.get("host").and_then(Node::scalar_text) {
        None => None,
        Some(re) => host_of(&re)?.map(|h| vec![h]),
    };
    let paths = match rule.get(path_key).and_then(Node::scalar_text) {
        None => vec![(None, None)],
        Some(re) => paths_of(&re)?,
    };
    Ok(paths
        .into_iter()
        .map(|(path, prefix)| Match {
            path,
            prefix,
            hosts: hosts.clone(),
            methods: methods.clone(),
            ..Match::default()
        })
        .collect())
}

/// A regex without metacharacters (escapes removed), or `None`.
fn regex_literal(re: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if !e.is_ascii_alphanumeric() => out.push(e),
                _ => return None,
            },
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => {
                return None;
            }
            other => out.push(other),
        }
    }
    Some(out)
}

fn anchored(re: &str) -> &str {
    re.strip_prefix('^')
        .unwrap_or(re)
        .strip_suffix('$')
        .unwrap_or_else(|| re.strip_prefix('^').unwrap_or(re))
}

/// `(path, prefix)` pairs for a path regex (matched against the whole path).
#[allow(clippy::type_complexity)]
fn paths_of(re: &str) -> Result<Vec<(Option<String>, Option<String>)>, String> {
    let re = anchored(re.trim());
    if re.is_empty() || re == ".*" || re == "/.*" {
        return Ok(vec![(None, None)]);
    }
    if let Some(lit) = regex_literal(re) {
        return Ok(vec![(Some(lit), None)]);
    }
    for (suffix, slash, optional) in [
        ("(/.*)?", true, true),
        ("(/.*)", true, false),
        ("/.*", true, false),
        ("(.*)", false, false),
        (".*", false, false),
    ] {
        if let Some(lit) = re.strip_suffix(suffix).and_then(regex_literal) {
            let prefix = if slash {
                format!("{lit}/")
            } else {
                lit.clone()
            };
            return Ok(if optional {
                vec![(Some(lit), None), (None, Some(prefix))]
            } else {
                vec![(None, Some(prefix))]
            });
        }
    }
    Err(format!(
        "path regular expression {re}: only a literal path, or one followed by .* or (/.*), has an equivalent"
    ))
}

fn methods_of(re: &str) -> Result<Option<Vec<String>>, String> {
    let re = anchored(re.trim());
    if re.is_empty() || re == ".*" {
        return Ok(None);
    }
    let inner = re
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(re);
    let methods: Vec<String> = inner
        .split('|')
        .map(|m| m.trim().to_ascii_uppercase())
        .collect();
    if methods
        .iter()
        .all(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        Ok(Some(methods))
    } else {
        Err(format!(
            "methods regular expression {re}: only alternatives of method names have an equivalent"
        ))
    }
}

fn host_of(re: &str) -> Result<Option<String>, String> {
    let re = anchored(re.trim());
    if re.is_empty() || re == ".*" {
        return Ok(None);
    }
    if let Some(lit) = regex_literal(re) {
        return Ok(Some(lit.to_ascii_lowercase()));
    }
    for wildcard in [".*\\.", "[^.]+\\.", "[^.]*\\.", ".+\\."] {
        if let Some(lit) = re.strip_prefix(wildcard).and_then(regex_literal) {
            return Ok(Some(format!("*.{}", lit.to_ascii_lowercase())));
        }
    }
    Err(format!(
        "host regular expression {re}: only a literal host or *.domain has an equivalent"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_regexes() {
        assert_eq!(
            paths_of("/api/v1/order").unwrap(),
            [(Some("/api/v1/order".into()), None)]
        );
        assert_eq!(
            paths_of("^/api/v1/order$").unwrap(),
            [(Some("/api/v1/order".into()), None)]
        );
        assert_eq!(
            paths_of("/api\\.v1").unwrap(),
            [(Some("/api.v1".into()), None)]
        );
        assert_eq!(
            paths_of("/api(/.*)").unwrap(),
            [(None, Some("/api/".into()))]
        );
        assert_eq!(paths_of("/api/.*").unwrap(), [(None, Some("/api/".into()))]);
        assert_eq!(paths_of("/api.*").unwrap(), [(None, Some("/api".into()))]);
        assert_eq!(
            paths_of("/api(/.*)?").unwrap(),
            [(Some("/api".into()), None), (None, Some("/api/".into()))]
        );
        assert_eq!(paths_of(".*").unwrap(), [(None, None)]);
        assert!(paths_of("/api/[0-9]+").is_err());
        assert!(paths_of("/a|/b").is_err());
        assert_eq!(
            methods_of("GET|POST").unwrap(),
            Some(vec!["GET".into(), "POST".into()])
        );
        assert_eq!(methods_of("(get)").unwrap(), Some(vec!["GET".into()]));
        assert_eq!(methods_of(".*").unwrap(), None);
        assert!(methods_of("G.T").is_err());
        assert_eq!(
            host_of("api\\.example\\.com").unwrap(),
            Some("api.example.com".into())
        );
        assert_eq!(
            host_of(".*\\.example\\.com").unwrap(),
            Some("*.example.com".into())
        );
        assert!(host_of("a|b").is_err());
    }

    #[test]
    fn reference_article_settings() {
        // Reference article 000's policy, its scope with a trailing space.
        let o = super::super::tests::run_import(
            super::super::Source::Mulesoft,
            r##"{"jwtOrigin": "httpBearerAuthenticationHeader", "signingMethod": "rsa",
                "signingKeyLength": 256, "jwtKeyOrigin": "jwks",
                "jwksUrl": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_a/.well-known/jwks.json",
                "jwksServiceTimeToLive": 60, "skipClientIdValidation": true,
                "validateCustomClaim": true,
                "mandatoryCustomClaims": [{"key": "scope", "value": "#[vars.claimSet.scope == 'mule-api/api_read ']"}],
                "nonMandatoryCustomClaims": [{"key": "iss", "value": "#[['https://a', 'https://b'] contains vars.claimSet.iss]"}]}"##,
            &[],
        );
        let text = o.report.render();
        assert!(text.contains("warning: mandatoryCustomClaims[0] (scope): \"mule-api/api_read \" has surrounding spaces"), "{text}");
        assert!(
            text.contains(
                "untranslatable: nonMandatoryCustomClaims[0] (iss): several accepted issuers"
            ),
            "{text}"
        );
        assert!(
            text.contains("warning: mandatoryExpClaim: false (MuleSoft's default)"),
            "{text}"
        );
        assert_eq!(o.status, crate::cli::Status::No);
    }

    #[test]
    fn cognito_issuers_from_jwks_urls() {
        assert_eq!(
            cognito_issuer(
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x/.well-known/jwks.json"
            )
            .as_deref(),
            Some("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x")
        );
        assert_eq!(
            cognito_issuer("https://idp.example/.well-known/jwks.json"),
            None
        );
    }
}
