//! API Gateway HTTP APIs with JWT authorizers, from a CloudFormation
//! template (`AWS::ApiGatewayV2::Api`, `::Authorizer`, `::Route`, quick-create
//! APIs with `ApiGatewayManagedOverrides`, an inline `Body`), a SAM template
//! (`AWS::Serverless::HttpApi` `Auth` and the `HttpApi` events of
//! `AWS::Serverless::Function`s, `DefinitionBody`) or an OpenAPI 3
//! definition (`x-amazon-apigateway-authorizer`, per-operation `security`).
//!
//! Each JWT authorizer becomes a provider: its issuer; its audiences
//! (`aud`, or `client_id` for Cognito access tokens, as API Gateway does);
//! RS256/384/512 (API Gateway verifies RSA signatures only); the keys
//! fetched from `<issuer>/.well-known/jwks.json` (Cognito publishes them
//! there; API Gateway itself reads `jwks_uri` from the issuer's discovery
//! document); the identity source as token location. Each route becomes a
//! rule (route key -> `path` or `path_template` and `methods`, scopes any-of
//! as API Gateway checks them, routes without an authorizer anonymous),
//! ordered as [`super::routes`] explains, with `$default` last, and
//! `unmatched: deny` where API Gateway answers 404. Where CORS is configured
//! API Gateway answers preflights itself: `bypass_cors_preflight`.

use std::collections::BTreeMap;

use super::cloudformation::{Problem, Template};
use super::model::{
    Config, HeaderLocation, Provider, RemoteJwks, Requires, Rule, Unmatched, name_from, unique_name,
};
use super::node::{Node, join_path};
use super::routes::RouteKey;
use super::{Context, Imported, Params, Report};

const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";
const IMPLICIT_SAM_API: &str = "ServerlessHttpApi";
/// API Gateway verifies RSA signatures only.
const RSA_ALGORITHMS: [&str; 3] = ["RS256", "RS384", "RS512"];
const OPENAPI_METHODS: [&str; 9] = [
    "get",
    "put",
    "post",
    "delete",
    "options",
    "head",
    "patch",
    "trace",
    "x-amazon-apigateway-any-method",
];

/// An authorizer as the source defines it.
#[derive(Debug, Clone)]
struct Authorizer {
    /// How routes name it: a logical id or a security scheme name.
    key: String,
    /// Where it is, for the report.
    source: String,
    kind: AuthorizerKind,
}

#[derive(Debug, Clone)]
enum AuthorizerKind {
    Jwt {
        issuer: String,
        audiences: Vec<String>,
        identity: Vec<String>,
        /// SAM: the authorizer's own scopes, for routes that give none.
        default_scopes: Vec<String>,
    },
    /// An authorizer without an equivalent, and why.
    Other(String),
    /// Its values could not be resolved (reported as errors).
    Failed,
}

/// What an API's definition holds.
#[derive(Debug, Default)]
struct Definition {
    authorizers: Vec<Authorizer>,
    routes: Vec<Route>,
    /// Where CORS is configured (API Gateway then answers preflights
    /// itself): the report's source of each.
    cors: Vec<String>,
}

impl Definition {
    fn extend(&mut self, other: Definition) {
        self.authorizers.extend(other.authorizers);
        self.routes.extend(other.routes);
        self.cors.extend(other.cors);
    }
}

#[derive(Debug, Clone)]
struct Route {
    key: RouteKey,
    source: String,
    auth: RouteAuth,
}

#[derive(Debug, Clone)]
enum RouteAuth {
    Anonymous,
    Jwt {
        authorizer: String,
        /// `None`: SAM, the authorizer's scopes apply.
        scopes: Option<Vec<String>>,
    },
    Untranslatable(String),
}

/// How OpenAPI values are read: with API Gateway's `${AWS::Region}`
/// variables, and inside a template through its intrinsic functions first.
#[derive(Clone, Copy)]
enum Values<'a> {
    /// An OpenAPI definition inside a template (`Body`, `DefinitionBody`).
    TemplateOpenApi(&'a Template<'a>),
    OpenApi(&'a Params),
}

impl Values<'_> {
    fn string(&self, node: &Node, path: &str) -> Result<String, Vec<Problem>> {
        match self {
            Values::TemplateOpenApi(t) => {
                let s = t.resolve_string(node, path)?;
                Template::openapi_vars(t_params(t), &s, path)
            }
            Values::OpenApi(params) => {
                let s = node.scalar_text().ok_or_else(|| {
                    vec![Problem::new(
                        path,
                        format!("expected a string, found {}", node.kind()),
                    )]
                })?;
                Template::openapi_vars(params, &s, path)
            }
        }
    }

    fn strings(&self, node: &Node, path: &str) -> Result<Vec<String>, Vec<Problem>> {
        let raw = match self {
            Values::TemplateOpenApi(t) => t.resolve_strings(node, path)?,
            Values::OpenApi(_) => match node {
                Node::Seq(items) => {
                    let mut out = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        out.push(item.scalar_text().ok_or_else(|| {
                            vec![Problem::new(
                                &join_path(path, &format!("[{i}]")),
                                format!("expected a string, found {}", item.kind()),
                            )]
                        })?);
                    }
                    out
                }
                other => vec![other.scalar_text().ok_or_else(|| {
                    vec![Problem::new(
                        path,
                        format!("expected a list of strings, found {}", other.kind()),
                    )]
                })?],
            },
        };
        match self {
            Values::TemplateOpenApi(t) => raw
                .iter()
                .map(|s| Template::openapi_vars(t_params(t), s, path))
                .collect(),
            Values::OpenApi(params) => raw
                .iter()
                .map(|s| Template::openapi_vars(params, s, path))
                .collect(),
        }
    }
}

fn t_params<'a>(t: &'a Template<'a>) -> &'a Params {
    t.params()
}

/// Records the problems as errors; `None` when there were any.
fn ok<T>(report: &mut Report, r: Result<T, Vec<Problem>>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(p) => {
            report.problems(p);
            None
        }
    }
}

pub fn import(docs: &[Node], ctx: &Context<'_>, report: &mut Report) -> Option<Imported> {
    let doc = docs.first()?;
    if docs.len() > 1 {
        report.warning(
            "",
            "the file holds several YAML documents: only the first is read",
        );
    }
    if doc.get("openapi").is_some() {
        let title = doc
            .get("info")
            .and_then(|i| i.get("title"))
            .and_then(Node::scalar_text)
            .map_or_else(String::new, |t| format!(" \"{t}\""));
        let definition = read_openapi(doc, "", Values::OpenApi(ctx.params), None, report);
        return build(
            format!("OpenAPI definition{title}"),
            definition,
            ctx,
            report,
        );
    }
    if doc.get("swagger").is_some() {
        report.error(
            "swagger",
            "a Swagger 2.0 definition: HTTP APIs are defined with OpenAPI 3 (export the API as OAS30)",
        );
        return None;
    }
    if doc.get("Resources").is_some() {
        return from_template(doc, ctx, report);
    }
    report.error(
        "",
        "neither a CloudFormation/SAM template (no Resources) nor an OpenAPI 3 definition (no openapi)",
    );
    None
}

// ------------------------------------------------------------ templates

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApiKind {
    V2,
    Sam,
}

fn from_template(doc: &Node, ctx: &Context<'_>, report: &mut Report) -> Option<Imported> {
    let t = Template::new(doc, ctx.params);
    let sam = match doc.get("Transform") {
        Some(Node::Str(s)) => s == SAM_TRANSFORM,
        Some(Node::Seq(items)) => items.iter().any(|i| i.as_str() == Some(SAM_TRANSFORM)),
        _ => false,
    };
    let mut apis: Vec<(String, ApiKind)> = Vec::new();
    for (id, res) in t.resources() {
        match res.get("Type").and_then(Node::as_str) {
            Some("AWS::ApiGatewayV2::Api") => {
                let protocol = res
                    .get("Properties")
                    .and_then(|p| p.get("ProtocolType"))
                    .and_then(Node::as_str);
                if protocol == Some("WEBSOCKET") {
                    report.note(&format!("Resources.{id}"), "a WebSocket API: not read");
                } else {
                    apis.push((id.clone(), ApiKind::V2));
                }
            }
            Some("AWS::Serverless::HttpApi") => apis.push((id.clone(), ApiKind::Sam)),
            Some("AWS::ApiGateway::RestApi") => report.note(
                &format!("Resources.{id}"),
                "a REST API (API Gateway v1): not read; only HTTP APIs have JWT authorizers",
            ),
            _ => {}
        }
    }
    if sam
        && !apis.iter().any(|(id, _)| id == IMPLICIT_SAM_API)
        && !sam_events(&t, IMPLICIT_SAM_API).is_empty()
    {
        apis.push((IMPLICIT_SAM_API.to_owned(), ApiKind::Sam));
    }
    let chosen = match (ctx.api, apis.as_slice()) {
        (Some(want), _) => match apis.iter().find(|(id, _)| id == want) {
            Some(api) => api.clone(),
            None => {
                report.error(
                    "--api",
                    format!(
                        "no HTTP API {want} in the template (HTTP APIs: {})",
                        list_or_none(&apis)
                    ),
                );
                return None;
            }
        },
        (None, [one]) => one.clone(),
        (None, []) => {
            report.error(
                "Resources",
                "no HTTP API (AWS::ApiGatewayV2::Api, AWS::Serverless::HttpApi, or SAM HttpApi events)",
            );
            return None;
        }
        (None, _) => {
            report.error(
                "Resources",
                format!(
                    "several HTTP APIs ({}): choose one with --api LOGICAL_ID",
                    list_or_none(&apis)
                ),
            );
            return None;
        }
    };
    let (id, kind) = chosen;
    let definition = match kind {
        ApiKind::V2 => v2_api(&t, &id, report),
        ApiKind::Sam => sam_api(&t, &id, report),
    };
    let what = if sam {
        "SAM template"
    } else {
        "CloudFormation template"
    };
    build(format!("{what}, HTTP API {id}"), definition, ctx, report)
}

fn list_or_none(apis: &[(String, ApiKind)]) -> String {
    if apis.is_empty() {
        "none".to_owned()
    } else {
        apis.iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether `node` (an `ApiId`) refers to the resource `api`.
fn refers_to(node: Option<&Node>, api: &str) -> bool {
    match node {
        Some(n) => Template::reference(n).or(n.as_str()) == Some(api),
        None => false,
    }
}

fn v2_api(t: &Template<'_>, api: &str, report: &mut Report) -> Definition {
    let mut authorizers = Vec::new();
    let mut routes = Vec::new();
    let api_props = t
        .resources()
        .iter()
        .find(|(id, _)| id == api)
        .and_then(|(_, r)| r.get("Properties"));
    let api_path = format!("Resources.{api}.Properties");
    for (id, res) in t.resources() {
        let props = res.get("Properties");
        let path = format!("Resources.{id}");
        let props_path = format!("{path}.Properties");
        let of_api = refers_to(props.and_then(|p| p.get("ApiId")), api);
        match res.get("Type").and_then(Node::as_str) {
            Some("AWS::ApiGatewayV2::Authorizer") if of_api => {
                if let Some(a) = v2_authorizer(t, id, props, &props_path, report) {
                    authorizers.push(a);
                }
            }
            Some("AWS::ApiGatewayV2::Route") if of_api => {
                let Some(props) = props else { continue };
                let key_path = join_path(&props_path, "RouteKey");
                let Some(key) = props.get("RouteKey") else {
                    report.error(&key_path, "missing");
                    continue;
                };
                let Some(key) = ok(report, t.resolve_string(key, &key_path)) else {
                    continue;
                };
                let key = match RouteKey::parse(&key) {
                    Ok(k) => k,
                    Err(why) => {
                        report.error(&key_path, why);
                        continue;
                    }
                };
                if let Some(auth) = v2_route_auth(t, props, &props_path, report) {
                    routes.push(Route {
                        key,
                        source: path,
                        auth,
                    });
                }
            }
            Some("AWS::ApiGatewayV2::ApiGatewayManagedOverrides") if of_api => {
                // Handled with the quick-create route below.
            }
            Some("AWS::ApiGatewayV2::Authorizer" | "AWS::ApiGatewayV2::Route")
                if props
                    .and_then(|p| p.get("ApiId"))
                    .is_some_and(|n| Template::reference(n).is_none()) =>
            {
                report.warning(
                    &path,
                    "its ApiId is not a reference to an API of this template: not read",
                );
            }
            _ => {}
        }
    }
    let Some(api_props) = api_props else {
        return Definition {
            authorizers,
            routes,
            cors: Vec::new(),
        };
    };
    // Quick create: `Target` makes API Gateway create one route
    // (`RouteKey`, default `$default`), configured by
    // ApiGatewayManagedOverrides.
    if api_props.get("Target").is_some() {
        let key_path = join_path(&api_path, "RouteKey");
        let key = match api_props.get("RouteKey") {
            Some(k) => ok(report, t.resolve_string(k, &key_path)),
            None => Some("$default".to_owned()),
        };
        let key = key.and_then(|k| match RouteKey::parse(&k) {
            Ok(k) => Some(k),
            Err(why) => {
                report.error(&key_path, why);
                None
            }
        });
        let overrides = t.resources().iter().find(|(_, r)| {
            r.get("Type").and_then(Node::as_str)
                == Some("AWS::ApiGatewayV2::ApiGatewayManagedOverrides")
                && refers_to(r.get("Properties").and_then(|p| p.get("ApiId")), api)
        });
        let auth = match overrides.and_then(|(id, r)| {
            r.get("Properties")
                .and_then(|p| p.get("Route"))
                .map(|route| (format!("Resources.{id}.Properties.Route"), route))
        }) {
            Some((path, route)) => v2_route_auth(t, route, &path, report),
            None => Some(RouteAuth::Anonymous),
        };
        let source = match overrides {
            Some((id, _)) => format!("{api_path}.Target (quick create) + Resources.{id}"),
            None => format!("{api_path}.Target (quick create)"),
        };
        if let (Some(key), Some(auth)) = (key, auth) {
            routes.push(Route { key, source, auth });
        }
    }
    let mut definition = Definition {
        authorizers,
        routes,
        cors: Vec::new(),
    };
    if let Some(body) = api_props.get("Body") {
        definition.extend(read_openapi(
            body,
            &join_path(&api_path, "Body"),
            Values::TemplateOpenApi(t),
            None,
            report,
        ));
    }
    if api_props.get("BodyS3Location").is_some() {
        report.untranslatable(
            &join_path(&api_path, "BodyS3Location"),
            "the OpenAPI definition is in S3: import that file itself (--from api-gateway FILE)",
        );
    }
    if api_props
        .get("CorsConfiguration")
        .is_some_and(cors_configured)
    {
        definition
            .cors
            .push(join_path(&api_path, "CorsConfiguration"));
    }
    definition
}

/// A CORS configuration that is there: an object, SAM's string of allowed
/// origins or `true`; not SAM's `false`.
fn cors_configured(node: &Node) -> bool {
    !matches!(node, Node::Null) && node.as_bool_lenient() != Some(false)
}

fn v2_authorizer(
    t: &Template<'_>,
    id: &str,
    props: Option<&Node>,
    props_path: &str,
    report: &mut Report,
) -> Option<Authorizer> {
    let source = format!("Resources.{id}");
    let props = props?;
    let ty_path = join_path(props_path, "AuthorizerType");
    let ty = match props.get("AuthorizerType") {
        Some(n) => ok(report, t.resolve_string(n, &ty_path))?,
        None => {
            report.error(&ty_path, "missing");
            return None;
        }
    };
    if !ty.eq_ignore_ascii_case("JWT") {
        return Some(Authorizer {
            key: id.to_owned(),
            source,
            kind: AuthorizerKind::Other(format!(
                "a {ty} (Lambda) authorizer: its decisions are code, with no equivalent here"
            )),
        });
    }
    let jwt_path = join_path(props_path, "JwtConfiguration");
    let Some(jwt) = props.get("JwtConfiguration") else {
        report.error(&jwt_path, "missing for a JWT authorizer");
        return None;
    };
    let issuer_path = join_path(&jwt_path, "Issuer");
    let issuer = match jwt.get("Issuer") {
        Some(n) => ok(report, t.resolve_string(n, &issuer_path)),
        None => {
            report.error(&issuer_path, "missing");
            None
        }
    };
    let audiences = match jwt.get("Audience") {
        Some(n) => ok(
            report,
            t.resolve_strings(n, &join_path(&jwt_path, "Audience")),
        ),
        None => Some(Vec::new()),
    };
    let identity = match props.get("IdentitySource") {
        Some(n) => ok(
            report,
            t.resolve_strings(n, &join_path(props_path, "IdentitySource")),
        ),
        None => Some(vec!["$request.header.Authorization".to_owned()]),
    };
    let kind = match (issuer, audiences, identity) {
        (Some(issuer), Some(audiences), Some(identity)) => AuthorizerKind::Jwt {
            issuer,
            audiences,
            identity,
            default_scopes: Vec::new(),
        },
        _ => AuthorizerKind::Failed,
    };
    Some(Authorizer {
        key: id.to_owned(),
        source,
        kind,
    })
}

/// `AuthorizationType`, `AuthorizerId`, `AuthorizationScopes` of a route
/// (or of ApiGatewayManagedOverrides' `Route`).
fn v2_route_auth(
    t: &Template<'_>,
    props: &Node,
    path: &str,
    report: &mut Report,
) -> Option<RouteAuth> {
    let ty_path = join_path(path, "AuthorizationType");
    let ty = match props.get("AuthorizationType") {
        Some(n) => ok(report, t.resolve_string(n, &ty_path))?,
        None => "NONE".to_owned(),
    };
    match ty.to_ascii_uppercase().as_str() {
        "NONE" => Some(RouteAuth::Anonymous),
        "JWT" => {
            let id_path = join_path(path, "AuthorizerId");
            let Some(id) = props.get("AuthorizerId") else {
                report.error(&id_path, "missing for AuthorizationType JWT");
                return None;
            };
            let authorizer = match Template::reference(id) {
                Some(logical) => logical.to_owned(),
                None => {
                    let text = ok(report, t.resolve_string(id, &id_path))?;
                    return Some(RouteAuth::Untranslatable(format!(
                        "AuthorizerId {text} is not an authorizer of this template"
                    )));
                }
            };
            let scopes = match props.get("AuthorizationScopes") {
                Some(n) => ok(
                    report,
                    t.resolve_strings(n, &join_path(path, "AuthorizationScopes")),
                )?,
                None => Vec::new(),
            };
            Some(RouteAuth::Jwt {
                authorizer,
                scopes: Some(scopes),
            })
        }
        "AWS_IAM" => Some(RouteAuth::Untranslatable(
            "AWS_IAM authorization (SigV4-signed requests) has no equivalent in a JWT policy"
                .into(),
        )),
        "CUSTOM" => Some(RouteAuth::Untranslatable(
            "CUSTOM authorization (a Lambda authorizer) has no equivalent here".into(),
        )),
        other => {
            report.error(&ty_path, format!("unknown AuthorizationType {other}"));
            None
        }
    }
}

// ------------------------------------------------------------ SAM

/// `(function id, event name, event)` for the HttpApi events of `api`.
fn sam_events<'t>(t: &'t Template<'_>, api: &str) -> Vec<(&'t str, &'t str, &'t Node)> {
    let mut out = Vec::new();
    for (id, res) in t.resources() {
        if res.get("Type").and_then(Node::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let events = res
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .map_or(&[][..], Node::entries);
        for (name, event) in events {
            if event.get("Type").and_then(Node::as_str) != Some("HttpApi") {
                continue;
            }
            let api_id = event.get("Properties").and_then(|p| p.get("ApiId"));
            let mine = match api_id {
                None => api == IMPLICIT_SAM_API,
                Some(n) => refers_to(Some(n), api),
            };
            if mine {
                out.push((id.as_str(), name.as_str(), event));
            }
        }
    }
    out
}

fn sam_api(t: &Template<'_>, api: &str, report: &mut Report) -> Definition {
    let props = t
        .resources()
        .iter()
        .find(|(id, _)| id == api)
        .and_then(|(_, r)| r.get("Properties"));
    let api_path = format!("Resources.{api}.Properties");
    let globals = t.root.get("Globals").and_then(|g| g.get("HttpApi"));
    let (auth, auth_path) = match (
        props.and_then(|p| p.get("Auth")),
        globals.and_then(|g| g.get("Auth")),
    ) {
        (Some(a), _) => (Some(a), join_path(&api_path, "Auth")),
        (None, Some(a)) => (Some(a), "Globals.HttpApi.Auth".to_owned()),
        (None, None) => (None, String::new()),
    };
    let mut authorizers = Vec::new();
    if let Some(auth) = auth {
        for (name, def) in auth.get("Authorizers").map_or(&[][..], Node::entries) {
            let path = join_path(&join_path(&auth_path, "Authorizers"), name);
            if let Some(a) = sam_authorizer(t, name, def, &path, report) {
                authorizers.push(a);
            }
        }
        if auth
            .get("EnableIamAuthorizer")
            .and_then(Node::as_bool_lenient)
            == Some(true)
        {
            report.note(
                &join_path(&auth_path, "EnableIamAuthorizer"),
                "routes with Authorizer AWS_IAM have no equivalent (listed below if any)",
            );
        }
    }
    let default = auth
        .and_then(|a| a.get("DefaultAuthorizer"))
        .and_then(Node::as_str)
        .map(str::to_owned);
    let scopes_of = |name: &str| -> Vec<String> {
        authorizers
            .iter()
            .find(|a| a.key == name)
            .and_then(|a| match &a.kind {
                AuthorizerKind::Jwt { default_scopes, .. } => Some(default_scopes.clone()),
                AuthorizerKind::Other(_) | AuthorizerKind::Failed => None,
            })
            .unwrap_or_default()
    };
    let mut routes = Vec::new();
    for (function, event_name, event) in sam_events(t, api) {
        let source = format!("Resources.{function}.Properties.Events.{event_name}");
        let ev = event.get("Properties");
        let ev_path = join_path(&source, "Properties");
        let path = ev.and_then(|p| p.get("Path"));
        let method = ev.and_then(|p| p.get("Method"));
        let key = match (path, method) {
            (None, None) => Ok(RouteKey::Default),
            (path, method) => {
                let path = match path {
                    Some(p) => ok(report, t.resolve_string(p, &join_path(&ev_path, "Path"))),
                    None => {
                        report.error(&join_path(&ev_path, "Path"), "missing (Method is given)");
                        None
                    }
                };
                let method = match method {
                    Some(m) => ok(report, t.resolve_string(m, &join_path(&ev_path, "Method"))),
                    None => {
                        report.error(&join_path(&ev_path, "Method"), "missing (Path is given)");
                        None
                    }
                };
                let (Some(path), Some(method)) = (path, method) else {
                    continue;
                };
                if path == "$default" {
                    Ok(RouteKey::Default)
                } else {
                    RouteKey::from_parts(&method, &path)
                }
            }
        };
        let key = match key {
            Ok(k) => k,
            Err(why) => {
                report.error(&ev_path, why);
                continue;
            }
        };
        let ev_auth = ev.and_then(|p| p.get("Auth"));
        let is_options = matches!(&key, RouteKey::Route { method: Some(m), .. } if m == "OPTIONS");
        let authorizer = match ev_auth {
            Some(a) => a
                .get("Authorizer")
                .and_then(Node::as_str)
                .map(str::to_owned)
                .or_else(|| default.clone()),
            // SAM gives every method but OPTIONS the default authorizer.
            None if !is_options => default.clone(),
            None => None,
        };
        let auth = match authorizer.as_deref() {
            None | Some("NONE") => RouteAuth::Anonymous,
            Some("AWS_IAM") => RouteAuth::Untranslatable(
                "AWS_IAM authorization (SigV4-signed requests) has no equivalent in a JWT policy"
                    .into(),
            ),
            Some(name) => {
                let scopes = match ev_auth.and_then(|a| a.get("AuthorizationScopes")) {
                    Some(n) => ok(
                        report,
                        t.resolve_strings(n, &join_path(&ev_path, "Auth.AuthorizationScopes")),
                    )
                    .unwrap_or_default(),
                    None => Vec::new(),
                };
                // Scopes on the event replace the authorizer's.
                let scopes = if scopes.is_empty() {
                    scopes_of(name)
                } else {
                    scopes
                };
                RouteAuth::Jwt {
                    authorizer: name.to_owned(),
                    scopes: Some(scopes),
                }
            }
        };
        routes.push(Route { key, source, auth });
    }
    let mut inline = Definition::default();
    if let Some(props) = props {
        if let Some(body) = props.get("DefinitionBody") {
            let sam_default = default.as_ref().map(|d| (d.clone(), scopes_of(d)));
            inline.extend(read_openapi(
                body,
                &join_path(&api_path, "DefinitionBody"),
                Values::TemplateOpenApi(t),
                sam_default,
                report,
            ));
        }
        if props.get("DefinitionUri").is_some() {
            report.untranslatable(
                &join_path(&api_path, "DefinitionUri"),
                "the OpenAPI definition is in another file: import that file itself (--from api-gateway FILE)",
            );
        }
    }
    let mut definition = Definition {
        authorizers,
        routes,
        cors: Vec::new(),
    };
    definition.extend(inline);
    // Globals apply to every HttpApi that does not set its own.
    let cors = match (
        props.and_then(|p| p.get("CorsConfiguration")),
        globals.and_then(|g| g.get("CorsConfiguration")),
    ) {
        (Some(c), _) => Some((c, join_path(&api_path, "CorsConfiguration"))),
        (None, Some(c)) => Some((c, "Globals.HttpApi.CorsConfiguration".to_owned())),
        (None, None) => None,
    };
    if let Some((node, source)) = cors
        && cors_configured(node)
    {
        definition.cors.push(source);
    }
    definition
}

fn sam_authorizer(
    t: &Template<'_>,
    name: &str,
    def: &Node,
    path: &str,
    report: &mut Report,
) -> Option<Authorizer> {
    if def.get("FunctionArn").is_some() {
        return Some(Authorizer {
            key: name.to_owned(),
            source: path.to_owned(),
            kind: AuthorizerKind::Other(
                "a Lambda authorizer (FunctionArn): its decisions are code, with no equivalent here".into(),
            ),
        });
    }
    let jwt_path = join_path(path, "JwtConfiguration");
    let Some(jwt) = def.get("JwtConfiguration") else {
        report.error(&jwt_path, "missing (neither a JWT nor a Lambda authorizer)");
        return None;
    };
    // SAM accepts issuer/audience in either case.
    let issuer = match jwt.get_ignore_case("issuer") {
        Some((k, n)) => ok(report, t.resolve_string(n, &join_path(&jwt_path, k))),
        None => {
            report.error(&join_path(&jwt_path, "issuer"), "missing");
            None
        }
    };
    let audiences = match jwt.get_ignore_case("audience") {
        Some((k, n)) => ok(report, t.resolve_strings(n, &join_path(&jwt_path, k))),
        None => Some(Vec::new()),
    };
    let identity = match def.get("IdentitySource") {
        Some(n) => ok(
            report,
            t.resolve_string(n, &join_path(path, "IdentitySource")),
        )
        .map(|s| split_identity(&s)),
        None => Some(vec!["$request.header.Authorization".to_owned()]),
    };
    let scopes = match def.get("AuthorizationScopes") {
        Some(n) => ok(
            report,
            t.resolve_strings(n, &join_path(path, "AuthorizationScopes")),
        ),
        None => Some(Vec::new()),
    };
    let kind = match (issuer, audiences, identity, scopes) {
        (Some(issuer), Some(audiences), Some(identity), Some(default_scopes)) => {
            AuthorizerKind::Jwt {
                issuer,
                audiences,
                identity,
                default_scopes,
            }
        }
        _ => AuthorizerKind::Failed,
    };
    Some(Authorizer {
        key: name.to_owned(),
        source: path.to_owned(),
        kind,
    })
}

fn split_identity(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

// ------------------------------------------------------------ OpenAPI

/// Authorizers and routes of an OpenAPI 3 definition at `base`.
/// `sam_default`: SAM's DefaultAuthorizer and its scopes, for operations
/// without `security`.
fn read_openapi(
    doc: &Node,
    base: &str,
    values: Values<'_>,
    sam_default: Option<(String, Vec<String>)>,
    report: &mut Report,
) -> Definition {
    let mut authorizers = Vec::new();
    let schemes_path = join_path(base, "components.securitySchemes");
    let schemes = doc.get("components").and_then(|c| c.get("securitySchemes"));
    for (name, scheme) in schemes.map_or(&[][..], Node::entries) {
        let path = join_path(&schemes_path, name);
        if let Some(a) = openapi_authorizer(name, scheme, &path, values, report) {
            authorizers.push(a);
        }
    }
    if let Some(servers) = doc.get("servers") {
        for (i, server) in servers.items().iter().enumerate() {
            let base_path = server
                .get("variables")
                .and_then(|v| v.get("basePath"))
                .and_then(|b| b.get("default"))
                .and_then(Node::scalar_text)
                .filter(|b| !b.trim_matches('/').is_empty());
            if let Some(base_path) = base_path {
                report.warning(
                    &join_path(base, &format!("servers[{i}].variables.basePath")),
                    format!(
                        "the API is served under {base_path} (its stage): the rules match the paths as the definition writes them, without it"
                    ),
                );
            }
        }
    }
    let mut cors = Vec::new();
    if doc
        .get("x-amazon-apigateway-cors")
        .is_some_and(cors_configured)
    {
        cors.push(join_path(base, "x-amazon-apigateway-cors"));
    }
    let top_security = doc.get("security");
    let mut routes = Vec::new();
    let paths_path = join_path(base, "paths");
    for (path_key, item) in doc.get("paths").map_or(&[][..], Node::entries) {
        let item_path = format!("{paths_path}.{path_key}");
        for (method, op) in item.entries() {
            if !OPENAPI_METHODS.contains(&method.to_ascii_lowercase().as_str()) {
                continue;
            }
            let op_path = format!("{item_path}.{method}");
            let is_default = path_key == "/$default"
                || op.get("isDefaultRoute").and_then(Node::as_bool_lenient) == Some(true);
            let key = if is_default {
                Ok(RouteKey::Default)
            } else {
                RouteKey::from_parts(method, path_key)
            };
            let key = match key {
                Ok(k) => k,
                Err(why) => {
                    report.error(&op_path, why);
                    continue;
                }
            };
            let is_options = method.eq_ignore_ascii_case("options");
            let auth = match op.get("security").or(top_security) {
                Some(security) => {
                    let sec_path = if op.get("security").is_some() {
                        join_path(&op_path, "security")
                    } else {
                        join_path(base, "security")
                    };
                    security_auth(security, &sec_path, values, report)
                }
                None => match &sam_default {
                    Some((name, scopes)) if !is_options => Some(RouteAuth::Jwt {
                        authorizer: name.clone(),
                        scopes: Some(scopes.clone()),
                    }),
                    _ => Some(RouteAuth::Anonymous),
                },
            };
            if let Some(auth) = auth {
                routes.push(Route {
                    key,
                    source: op_path,
                    auth,
                });
            }
        }
    }
    Definition {
        authorizers,
        routes,
        cors,
    }
}

fn openapi_authorizer(
    name: &str,
    scheme: &Node,
    path: &str,
    values: Values<'_>,
    report: &mut Report,
) -> Option<Authorizer> {
    let other = |why: &str| {
        Some(Authorizer {
            key: name.to_owned(),
            source: path.to_owned(),
            kind: AuthorizerKind::Other(why.to_owned()),
        })
    };
    let Some(ext) = scheme.get("x-amazon-apigateway-authorizer") else {
        let authtype = scheme
            .get("x-amazon-apigateway-authtype")
            .and_then(Node::as_str);
        return if authtype.is_some_and(|a| a.eq_ignore_ascii_case("awsSigv4")) {
            other("AWS_IAM authorization (SigV4-signed requests) has no equivalent in a JWT policy")
        } else {
            other(
                "a security scheme without x-amazon-apigateway-authorizer, which API Gateway does not enforce as a JWT authorizer",
            )
        };
    };
    let ext_path = join_path(path, "x-amazon-apigateway-authorizer");
    let ty = ext.get("type").and_then(Node::as_str).unwrap_or("");
    if !ty.eq_ignore_ascii_case("jwt") {
        return other(&format!(
            "a {ty} (Lambda) authorizer: its decisions are code, with no equivalent here"
        ));
    }
    let jwt = ext.get("jwtConfiguration");
    let jwt_path = join_path(&ext_path, "jwtConfiguration");
    let issuer = match (
        jwt.and_then(|j| j.get("issuer")),
        scheme.get("openIdConnectUrl"),
    ) {
        (Some(n), _) => ok(report, values.string(n, &join_path(&jwt_path, "issuer"))),
        // API Gateway takes the issuer from the discovery URL.
        (None, Some(url)) => ok(
            report,
            values.string(url, &join_path(path, "openIdConnectUrl")),
        )
        .map(|u| {
            u.trim_end_matches('/')
                .trim_end_matches("/.well-known/openid-configuration")
                .to_owned()
        }),
        (None, None) => {
            report.error(
                &join_path(&jwt_path, "issuer"),
                "missing (and no openIdConnectUrl)",
            );
            None
        }
    };
    let audiences = match jwt.and_then(|j| j.get("audience")) {
        Some(n) => ok(report, values.strings(n, &join_path(&jwt_path, "audience"))),
        None => Some(Vec::new()),
    };
    let identity = match ext.get("identitySource") {
        Some(n) => ok(
            report,
            values.string(n, &join_path(&ext_path, "identitySource")),
        )
        .map(|s| split_identity(&s)),
        None => Some(vec!["$request.header.Authorization".to_owned()]),
    };
    let kind = match (issuer, audiences, identity) {
        (Some(issuer), Some(audiences), Some(identity)) => AuthorizerKind::Jwt {
            issuer,
            audiences,
            identity,
            default_scopes: Vec::new(),
        },
        _ => AuthorizerKind::Failed,
    };
    Some(Authorizer {
        key: name.to_owned(),
        source: path.to_owned(),
        kind,
    })
}

/// An OpenAPI `security` list: `[]` anonymous, `[{scheme: [scopes]}]`.
fn security_auth(
    security: &Node,
    path: &str,
    values: Values<'_>,
    report: &mut Report,
) -> Option<RouteAuth> {
    let requirements = security.items();
    match requirements {
        [] => Some(RouteAuth::Anonymous),
        [one] => match one.entries() {
            [] => Some(RouteAuth::Anonymous),
            [(scheme, scopes)] => {
                let scopes = ok(report, values.strings(scopes, &join_path(path, &format!("[0].{scheme}"))))?;
                Some(RouteAuth::Jwt {
                    authorizer: scheme.clone(),
                    scopes: Some(scopes),
                })
            }
            _ => Some(RouteAuth::Untranslatable(
                "several schemes in one security requirement: API Gateway allows one authorizer per route".into(),
            )),
        },
        _ => Some(RouteAuth::Untranslatable(
            "several security requirements: API Gateway allows one authorizer per route".into(),
        )),
    }
}

// ------------------------------------------------------------ policy

/// Token locations of an identity source; `Err` names what has none.
fn locations(identity: &[String]) -> Result<(Option<Vec<HeaderLocation>>, Vec<String>), String> {
    let mut headers = Vec::new();
    let mut params = Vec::new();
    for source in identity {
        if let Some(name) = source.strip_prefix("$request.header.") {
            let name = name.to_ascii_lowercase();
            let prefix = (name == "authorization").then(|| "Bearer ".to_owned());
            headers.push(HeaderLocation { name, prefix });
        } else if let Some(name) = source.strip_prefix("$request.querystring.") {
            params.push(name.to_owned());
        } else {
            return Err(format!(
                "identity source {source}: a JWT authorizer's token comes from a header or a query parameter"
            ));
        }
    }
    let default_only =
        params.is_empty() && matches!(headers.as_slice(), [h] if h.name == "authorization");
    let headers = if default_only || headers.is_empty() {
        None
    } else {
        Some(headers)
    };
    Ok((headers, params))
}

fn is_cognito(issuer: &str) -> bool {
    issuer.starts_with("https://cognito-idp.") && issuer.contains(".amazonaws.com")
}

fn build(
    description: String,
    definition: Definition,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Imported> {
    let Definition {
        authorizers,
        mut routes,
        cors,
    } = definition;
    if routes.is_empty() {
        report.error("", "the API has no routes");
        return None;
    }
    let mut by_key: BTreeMap<&str, &Authorizer> = BTreeMap::new();
    for a in &authorizers {
        by_key.insert(a.key.as_str(), a);
    }
    // Providers, for the JWT authorizers routes use.
    let used: Vec<&str> = routes
        .iter()
        .filter_map(|r| match &r.auth {
            RouteAuth::Jwt { authorizer, .. } => Some(authorizer.as_str()),
            _ => None,
        })
        .collect();
    let mut providers = BTreeMap::new();
    let mut provider_of: BTreeMap<String, String> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for a in &authorizers {
        if !used.contains(&a.key.as_str()) {
            report.note(&a.source, "not used by any route: left out");
            continue;
        }
        let AuthorizerKind::Jwt {
            issuer,
            audiences,
            identity,
            ..
        } = &a.kind
        else {
            continue;
        };
        let name = unique_name(&name_from(&a.key), &names);
        if !issuer.starts_with("https://") && !issuer.starts_with("http://") {
            report.untranslatable(
                &a.source,
                format!(
                    "issuer {issuer} is not a URL: the JWKS location cannot be derived from it"
                ),
            );
            continue;
        }
        let (from_headers, from_params) = match locations(identity) {
            Ok(l) => l,
            Err(why) => {
                report.untranslatable(&a.source, why);
                continue;
            }
        };
        let uri = format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'));
        let cluster = ctx.cluster_for(&name, &uri);
        let provider = Provider {
            issuer: issuer.clone(),
            audiences: audiences.clone(),
            algorithms: Some(RSA_ALGORITHMS.iter().map(|a| (*a).to_owned()).collect()),
            remote_jwks: Some(RemoteJwks {
                cluster: cluster.clone(),
                uri: uri.clone(),
                timeout_ms: None,
                cache_ttl_s: None,
            }),
            from_headers: from_headers.clone(),
            from_params: from_params.clone(),
            ..Provider::default()
        };
        let mut where_ = Vec::new();
        match &from_headers {
            Some(h) => where_.extend(h.iter().map(|h| match &h.prefix {
                Some(p) => format!("header {} ({}<token>)", h.name, p),
                None => format!("header {}", h.name),
            })),
            None if from_params.is_empty() => {
                where_.push("header authorization (Bearer <token>)".to_owned())
            }
            None => {}
        }
        where_.extend(from_params.iter().map(|p| format!("query parameter {p}")));
        report.mapped(
            &a.source,
            format!(
                "providers.{name}: issuer {issuer}, audiences [{}], algorithms {}, keys from {uri} through cluster {cluster}, token in {}",
                audiences.join(", "),
                RSA_ALGORITHMS.join(" "),
                where_.join(" or ")
            ),
        );
        if audiences.is_empty() {
            report.warning(
                &a.source,
                "no audience: tokens issued to any client of the issuer pass",
            );
        }
        if is_cognito(issuer) {
            report.note(
                &a.source,
                "keys at <issuer>/.well-known/jwks.json, where Cognito publishes them; API Gateway does not check token_use, \
                 and neither does this provider: for Cognito access tokens add \"token_use\": \"access\" (else the pool's ID tokens pass too)",
            );
        } else {
            report.warning(
                &a.source,
                format!(
                    "keys assumed at {uri} (Cognito's layout); API Gateway reads jwks_uri from {}/.well-known/openid-configuration: check it there",
                    issuer.trim_end_matches('/')
                ),
            );
        }
        if from_headers
            .as_ref()
            .is_none_or(|h| h.iter().any(|h| h.prefix.is_some()))
            && from_params.is_empty()
        {
            report.note(
                &a.source,
                "API Gateway also takes a bare token in the Authorization header; the filter wants \"Bearer <token>\" (RFC 6750)",
            );
        }
        names.push(name.clone());
        provider_of.insert(a.key.clone(), name.clone());
        providers.insert(name, provider);
    }
    // Rules, most specific first; a repeated route key keeps the first.
    routes.sort_by(|a, b| a.key.specificity(&b.key));
    let mut rules: Vec<Rule> = Vec::new();
    let mut kept: Vec<&Route> = Vec::new();
    let mut rule_names: Vec<String> = Vec::new();
    for route in &routes {
        let route_text = route.key.text();
        let source = format!("{} ({route_text})", route.source);
        if let Some(first) = kept.iter().find(|k| k.key.same_route(&route.key)) {
            report.warning(
                &source,
                format!("the same route as {}: ignored", first.source),
            );
            continue;
        }
        let (allow_anonymous, requires) = match &route.auth {
            RouteAuth::Anonymous => (true, None),
            RouteAuth::Untranslatable(why) => {
                report.untranslatable(&source, why.clone());
                continue;
            }
            RouteAuth::Jwt { authorizer, scopes } => {
                let Some(a) = by_key.get(authorizer.as_str()) else {
                    report.error(&source, format!("authorizer {authorizer} is not defined"));
                    continue;
                };
                match &a.kind {
                    AuthorizerKind::Other(why) => {
                        report.untranslatable(&source, format!("authorizer {authorizer} is {why}"));
                        continue;
                    }
                    // Its errors are reported already.
                    AuthorizerKind::Failed => continue,
                    AuthorizerKind::Jwt { .. } => {}
                }
                let Some(provider) = provider_of.get(authorizer) else {
                    report.untranslatable(
                        &source,
                        format!("authorizer {authorizer} could not be translated (above)"),
                    );
                    continue;
                };
                (
                    false,
                    Some(Requires {
                        provider: Some(provider.clone()),
                        scopes: scopes.clone().unwrap_or_default(),
                        ..Requires::default()
                    }),
                )
            }
        };
        let name = unique_name(&route.key.rule_name(), &rule_names);
        let rule = Rule {
            name: name.clone(),
            match_: route.key.to_match(),
            allow_anonymous,
            allow_missing: false,
            requires,
        };
        report.mapped(
            &source,
            format!("rules[{}] {name}: {}", rules.len(), rule.describe()),
        );
        rule_names.push(name);
        kept.push(route);
        rules.push(rule);
    }
    cors_preflights(&cors, &kept, report);
    if !routes.iter().any(|r| r.key.is_default()) {
        report.note(
            "",
            "requests no route matches: API Gateway answers 404 Not Found, the filter 403 (unmatched: deny)",
        );
    }
    Some(Imported {
        description,
        config: Config {
            providers,
            rules,
            unmatched: Unmatched::Deny,
            bypass_cors_preflight: !cors.is_empty(),
        },
    })
}

/// With CORS configured, API Gateway answers preflights itself, before any
/// authorizer: `bypass_cors_preflight` lets them through without a token.
/// The report says what differs: the service answers them here, and API
/// Gateway hands a preflight to a route that takes `OPTIONS` (`$default`,
/// `ANY`, `OPTIONS`), whose authorizer then refuses it.
fn cors_preflights(cors: &[String], routes: &[&Route], report: &mut Report) {
    let Some(first) = cors.first() else {
        return;
    };
    for source in cors {
        report.mapped(
            source,
            "bypass_cors_preflight: true: CORS preflights (OPTIONS with Origin and Access-Control-Request-Method) \
             pass without a token, before any rule, as API Gateway answers them before any authorizer",
        );
    }
    report.note(
        first,
        "API Gateway answers a preflight itself, with the configured CORS headers; here it goes on to the service, \
         which must answer it (or Envoy's CORS filter): the allowed origins, methods and headers are not carried over",
    );
    let taking_options: Vec<String> = routes
        .iter()
        .filter(|r| r.key.takes_options() && matches!(r.auth, RouteAuth::Jwt { .. }))
        .map(|r| r.key.text())
        .collect();
    if !taking_options.is_empty() {
        report.note(
            first,
            format!(
                "API Gateway hands a preflight that {} matches to that route's authorizer, which refuses it without a token \
                 (AWS's remedy: a route OPTIONS /{{proxy+}} without authorizer); here it passes like every preflight",
                taking_options.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::run_import;
    use super::super::{Level, Source};
    use super::*;

    #[test]
    fn identity_sources() {
        let s = |v: &[&str]| locations(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            s(&["$request.header.Authorization"]).unwrap(),
            (None, vec![])
        );
        assert_eq!(
            s(&["$request.querystring.access_token"]).unwrap(),
            (None, vec!["access_token".to_owned()])
        );
        assert_eq!(
            s(&["$request.header.X-Token"]).unwrap(),
            (
                Some(vec![HeaderLocation {
                    name: "x-token".into(),
                    prefix: None
                }]),
                vec![]
            )
        );
        assert!(s(&["$context.identity.sourceIp"]).is_err());
    }

    #[test]
    fn openapi_minimal() {
        let o = run_import(
            Source::ApiGateway,
            r#"
openapi: "3.0.1"
info: {title: t}
paths:
  /a:
    get:
      security: [{jwt: [s1]}]
    options:
      security: []
components:
  securitySchemes:
    jwt:
      type: oauth2
      x-amazon-apigateway-authorizer:
        type: jwt
        identitySource: $request.header.Authorization
        jwtConfiguration:
          issuer: https://idp.example/
          audience: [aud1]
"#,
            &[],
        );
        let out: serde_json::Value = serde_json::from_str(o.output.as_deref().unwrap()).unwrap();
        assert_eq!(
            out["providers"]["jwt"]["remote_jwks"]["uri"],
            "https://idp.example/.well-known/jwks.json"
        );
        assert_eq!(out["rules"][0]["requires"]["scopes"][0], "s1");
        assert_eq!(out["rules"][1]["allow_anonymous"], true);
        assert!(
            o.report
                .lines
                .iter()
                .any(|l| l.level == Level::Warning && l.text.contains("openid-configuration"))
        );
    }

    fn output(o: &super::super::Outcome) -> serde_json::Value {
        serde_json::from_str(
            o.output
                .as_deref()
                .unwrap_or_else(|| panic!("{}", o.report.render())),
        )
        .unwrap()
    }

    #[test]
    fn sam_implicit_api_with_global_auth() {
        let o = run_import(
            Source::ApiGateway,
            r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  HttpApi:
    Auth:
      DefaultAuthorizer: Main
      Authorizers:
        Main:
          AuthorizationScopes: [read]
          JwtConfiguration: {Issuer: "https://idp.example", Audience: a}
          IdentitySource: $request.header.X-Token
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {Type: HttpApi, Properties: {Path: /items, Method: get}}
        Put: {Type: HttpApi, Properties: {Path: /items, Method: put, Auth: {AuthorizationScopes: [write]}}}
        Options: {Type: HttpApi, Properties: {Path: /items, Method: options}}
        Catch: {Type: HttpApi}
"#,
            &[],
        );
        let out = output(&o);
        assert_eq!(o.description, "SAM template, HTTP API ServerlessHttpApi");
        assert_eq!(
            out["providers"]["main"]["from_headers"],
            serde_json::json!([{"name": "x-token"}])
        );
        let rules: Vec<(String, serde_json::Value)> = out["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_owned(),
                    r["requires"]["scopes"].clone(),
                )
            })
            .collect();
        assert_eq!(
            rules,
            [
                ("get_items".to_owned(), serde_json::json!(["read"])),
                ("options_items".to_owned(), serde_json::Value::Null),
                ("put_items".to_owned(), serde_json::json!(["write"])),
                ("default".to_owned(), serde_json::json!(["read"])),
            ],
            "the authorizer's scopes unless the event has its own; OPTIONS without the default authorizer"
        );
        assert_eq!(out["rules"][1]["allow_anonymous"], true);
    }

    #[test]
    fn inline_openapi_body_through_intrinsics() {
        let o = run_import(
            Source::ApiGateway,
            r#"
Parameters:
  Pool: {Type: String, Default: eu-west-1_abc}
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Body:
        openapi: 3.0.1
        paths:
          /x/{id}:
            delete:
              security: [{cognito: ["${AWS::Region}/admin"]}]
        components:
          securitySchemes:
            cognito:
              x-amazon-apigateway-authorizer:
                type: jwt
                jwtConfiguration:
                  issuer: !Sub "https://cognito-idp.eu-west-1.amazonaws.com/${Pool}"
                  audience: [c]
"#,
            &[("AWS::Region", "eu-west-1")],
        );
        let out = output(&o);
        assert_eq!(
            out["providers"]["cognito"]["issuer"],
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        );
        assert_eq!(
            out["rules"][0]["requires"]["scopes"],
            serde_json::json!(["eu-west-1/admin"])
        );
        assert_eq!(out["rules"][0]["match"]["path_template"], "/x/{id}");
    }

    /// CORS wherever API Gateway reads it becomes `bypass_cors_preflight`;
    /// the report names the source and the routes whose authorizer API
    /// Gateway would hand a preflight to.
    #[test]
    fn cors_configuration_lets_preflights_through() {
        let sam = |api_cors: &str, globals_cors: &str| {
            run_import(
                Source::ApiGateway,
                &format!(
                    r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  HttpApi:
{globals_cors}
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
{api_cors}
      Auth:
        DefaultAuthorizer: Main
        Authorizers:
          Main:
            JwtConfiguration: {{Issuer: "https://idp.example", Audience: a}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Path: /items, Method: get}}}}
        Any: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Path: "/files/{{proxy+}}", Method: any}}}}
"#
                ),
                &[],
            )
        };
        let mapped = |o: &super::super::Outcome| -> Vec<String> {
            o.report
                .lines
                .iter()
                .filter(|l| l.level == Level::Mapped && l.text.starts_with("bypass_cors_preflight"))
                .map(|l| l.source.clone())
                .collect()
        };
        // The API's own setting, then the Globals' one.
        let o = sam(
            "      CorsConfiguration: {AllowOrigins: ['*']}",
            "    Timeout: 5",
        );
        assert_eq!(output(&o)["bypass_cors_preflight"], true);
        assert_eq!(mapped(&o), ["Resources.Api.Properties.CorsConfiguration"]);
        assert!(o.report.lines.iter().any(|l| {
            l.level == Level::Note
                && l.text
                    .starts_with("API Gateway hands a preflight that ANY /files/{proxy+} matches")
        }));
        let o = sam(
            "      Description: x",
            "    CorsConfiguration: \"'https://app.example'\"",
        );
        assert_eq!(output(&o)["bypass_cors_preflight"], true);
        assert_eq!(mapped(&o), ["Globals.HttpApi.CorsConfiguration"]);
        // SAM's `false`, and no CORS at all: preflights need a token.
        for o in [
            sam(
                "      CorsConfiguration: false",
                "    CorsConfiguration: true",
            ),
            sam("      Description: x", "    Timeout: 5"),
        ] {
            assert_eq!(output(&o).get("bypass_cors_preflight"), None);
            assert!(mapped(&o).is_empty());
        }

        let o = run_import(
            Source::ApiGateway,
            r#"
openapi: "3.0.1"
x-amazon-apigateway-cors: {allowOrigins: ["https://app.example"]}
paths:
  /a:
    get:
      security: [{jwt: []}]
components:
  securitySchemes:
    jwt:
      x-amazon-apigateway-authorizer:
        type: jwt
        jwtConfiguration: {issuer: "https://idp.example", audience: [a]}
"#,
            &[],
        );
        assert_eq!(output(&o)["bypass_cors_preflight"], true);
        assert_eq!(mapped(&o), ["x-amazon-apigateway-cors"]);
        assert!(
            !o.report
                .lines
                .iter()
                .any(|l| l.text.starts_with("API Gateway hands a preflight")),
            "no route takes OPTIONS"
        );
    }

    #[test]
    fn several_requirements_are_untranslatable() {
        let o = run_import(
            Source::ApiGateway,
            r#"
openapi: "3.0.1"
paths:
  /a:
    get:
      security: [{a: []}, {b: []}]
"#,
            &[],
        );
        assert_eq!(o.report.count(Level::Untranslatable), 1);
        assert_eq!(o.status, crate::cli::Status::No);
    }
}
