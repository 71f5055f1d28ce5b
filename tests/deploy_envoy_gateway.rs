//! The Envoy Gateway manifests (`deploy/envoy-gateway/`) are ones a user can
//! apply as they are:
//! - each `EnvoyExtensionPolicy` matches the CRD's schema
//!   (`../shared/schemas`, when present; fields the schema does not know are
//!   reported), and the CEL rules that concern it hold;
//! - its `config` is accepted by the filter's own parser and is
//!   `deploy/istio/wasmplugin.yaml`'s `pluginConfig` but for the JWKS
//!   cluster, which is the one `envoypatchpolicy.yaml` adds: a TLS cluster
//!   to the host and port of `remote_jwks.uri`;
//! - the policies target the route and Gateway shipped beside them;
//! - Envoy 1.40 accepts that cluster next to the filter configured as
//!   Envoy Gateway configures it (`envoy --mode validate`, which runs the
//!   filter's configure).
//!
//! YAML is read with the `.venv` Python and the YAML library that
//! check-jsonschema brings (`make setup`), as in tests/deploy_files.rs.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use support::files::{str_at, unknown_fields, yaml, yaml_docs};
use support::venv_bin;

use std::fs;
use std::path::Path;
use std::process::Command;

use jwt_policy::policy::{KeySource, Policy, RemoteJwks};
use serde_json::{Value, json};

const DIR: &str = "deploy/envoy-gateway";
const EXTENSION_POLICY: &str = "deploy/envoy-gateway/envoyextensionpolicy.yaml";
const PATCH_POLICY: &str = "deploy/envoy-gateway/envoypatchpolicy.yaml";
const ROUTE: &str = "deploy/envoy-gateway/httproute.yaml";
const GATEWAY: &str = "deploy/envoy-gateway/gateway.yaml";
const ISTIO_PLUGIN: &str = "deploy/istio/wasmplugin.yaml";
const SCHEMA: &str = "envoy-gateway-envoyextensionpolicy.schema.json";
const API_VERSION: &str = "gateway.envoyproxy.io/v1alpha1";
const GATEWAY_API: &str = "gateway.networking.k8s.io";
const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const TLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

fn root() -> &'static Path {
    support::repo_root()
}

/// Every document of every manifest in deploy/envoy-gateway, with its file.
fn all_manifests() -> Vec<(String, Value)> {
    let mut files: Vec<String> = fs::read_dir(root().join(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("{DIR}/{n}"))
        .collect();
    files.sort();
    files
        .into_iter()
        .flat_map(|rel| yaml_docs(&rel).into_iter().map(move |d| (rel.clone(), d)))
        .collect()
}

fn of_kind(kind: &str) -> Vec<(String, Value)> {
    all_manifests()
        .into_iter()
        .filter(|(_, d)| d["kind"] == kind)
        .collect()
}

fn remote_jwks<'p>(policy: &'p Policy, provider: &str) -> &'p RemoteJwks {
    let id = policy.provider_id(provider).expect("provider");
    match &policy.providers[id].keys {
        KeySource::Remote(r) => r,
        other => panic!("provider {provider} must use remote_jwks, has {other:?}"),
    }
}

/// The one wasm extension of the EnvoyExtensionPolicy.
fn wasm_extension(policy: &Value) -> &Value {
    let wasm = policy["spec"]["wasm"].as_array().expect("spec.wasm");
    assert_eq!(wasm.len(), 1, "one wasm extension");
    &wasm[0]
}

/// The Cluster resource the EnvoyPatchPolicy adds (JSONPatch `add` with no
/// path: Envoy Gateway adds the value as a whole resource).
fn patched_cluster(patch_policy: &Value) -> &Value {
    let patches = patch_policy["spec"]["jsonPatches"]
        .as_array()
        .expect("jsonPatches");
    let adds: Vec<&Value> = patches
        .iter()
        .filter(|p| p["type"] == CLUSTER_TYPE)
        .collect();
    assert_eq!(adds.len(), 1, "one Cluster patch: {patches:?}");
    let patch = adds[0];
    let op = &patch["operation"];
    assert_eq!(op["op"], "add");
    assert!(
        op.get("path").is_none_or(|p| p == "") && op.get("jsonPath").is_none(),
        "no path: the value is a whole new resource"
    );
    let cluster = &op["value"];
    assert_eq!(
        patch["name"], cluster["name"],
        "the patch is named after the cluster"
    );
    cluster
}

// ---------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------

/// The CRD's openAPIV3Schema made a whole-manifest schema, as the Istio
/// schemas in ../shared are: apiVersion and kind fixed, a named object, a
/// spec.
fn manifest_schema(crd_schema: &Value) -> Value {
    let mut schema = crd_schema.clone();
    schema["properties"]["apiVersion"]["const"] = json!(API_VERSION);
    schema["properties"]["kind"]["const"] = json!("EnvoyExtensionPolicy");
    schema["properties"]["metadata"]["required"] = json!(["name"]);
    schema["required"] = json!(["apiVersion", "kind", "metadata", "spec"]);
    schema
}

#[test]
fn extension_policies_match_the_crd_schema() {
    let schema_path = root().join("../shared/schemas").join(SCHEMA);
    if !schema_path.is_file() {
        eprintln!(
            "skipped: ../shared/schemas/{SCHEMA} not found (Envoy Gateway's CRD schema); \
             the parser, cluster and Envoy checks of this file still run"
        );
        return;
    }
    let crd: Value =
        serde_json::from_str(&fs::read_to_string(&schema_path).unwrap()).expect("schema JSON");
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let wrapped = scratch.join(format!("eep-manifest-{}.schema.json", std::process::id()));
    fs::write(&wrapped, manifest_schema(&crd).to_string()).unwrap();

    let policies = of_kind("EnvoyExtensionPolicy");
    assert!(!policies.is_empty(), "an EnvoyExtensionPolicy in {DIR}");
    for (i, (rel, policy)) in policies.iter().enumerate() {
        // check-jsonschema reads one document per file: give it this one.
        let doc = scratch.join(format!("eep-{}-{i}.json", std::process::id()));
        fs::write(&doc, policy.to_string()).unwrap();
        let out = Command::new(venv_bin("check-jsonschema"))
            .arg("--schemafile")
            .arg(&wrapped)
            .arg(&doc)
            .output()
            .expect("run check-jsonschema");
        assert!(
            out.status.success(),
            "{rel} against {SCHEMA}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = fs::remove_file(&doc);

        let mut unknown = Vec::new();
        unknown_fields(
            &policy["spec"],
            &crd["properties"]["spec"],
            "spec",
            &mut unknown,
        );
        assert!(
            unknown.is_empty(),
            "{rel}: fields Envoy Gateway does not know: {unknown:?}"
        );

        // CEL rules of the CRD (x-kubernetes-validations), which JSON Schema
        // validators do not run: targetRefs are Gateway API kinds, and a
        // code source of type Image has `image` and no `http`.
        for target in policy["spec"]["targetRefs"].as_array().expect("targetRefs") {
            assert_eq!(target["group"], GATEWAY_API, "{rel}");
            let kind = str_at(target, "/kind");
            assert!(
                [
                    "Gateway",
                    "ListenerSet",
                    "HTTPRoute",
                    "GRPCRoute",
                    "UDPRoute",
                    "TCPRoute",
                    "TLSRoute"
                ]
                .contains(&kind),
                "{rel}: targetRef kind {kind}"
            );
        }
        assert!(
            policy["spec"].get("targetRef").is_none(),
            "{rel}: targetRefs only"
        );
        for wasm in policy["spec"]["wasm"].as_array().unwrap() {
            let code = &wasm["code"];
            assert_eq!(code["type"], "Image", "{rel}");
            assert!(
                code["image"].is_object() && code.get("http").is_none(),
                "{rel}"
            );
        }
    }
    let _ = fs::remove_file(&wrapped);
}

// ---------------------------------------------------------------------------
// The policy and its cluster (always run)
// ---------------------------------------------------------------------------

#[test]
fn extension_policy_loads_the_pinned_image_and_fails_closed() {
    let policy = yaml(EXTENSION_POLICY);
    assert_eq!(policy["apiVersion"], API_VERSION);
    let wasm = wasm_extension(&policy);
    assert_eq!(wasm["rootID"], "jwt_policy", "the filter's root id");
    assert_eq!(wasm["failOpen"], false, "never fail open");
    let code = &wasm["code"];
    assert_eq!(code["type"], "Image");
    let url = str_at(code, "/image/url");
    assert!(
        !url.contains("://") || url.starts_with("oci://"),
        "an image reference: {url}"
    );
    assert!(
        url.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
        "{url}: the tag `make oci` gives (the crate version)"
    );
    let sha = str_at(code, "/image/sha256");
    assert!(
        sha.len() == 64
            && sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "sha256 is a manifest digest's 64 lowercase hex digits: {sha}"
    );
    // The same image as the Istio WasmPlugin's.
    let istio = yaml(ISTIO_PLUGIN);
    assert_eq!(
        str_at(&istio, "/spec/url").trim_start_matches("oci://"),
        url.trim_start_matches("oci://")
    );
}

#[test]
fn extension_policy_config_is_the_istio_policy_but_for_the_cluster() {
    let config = wasm_extension(&yaml(EXTENSION_POLICY))["config"].clone();
    let mut istio = yaml(ISTIO_PLUGIN)["spec"]["pluginConfig"].clone();
    let cluster = str_at(&config, "/providers/cognito/remote_jwks/cluster");
    assert_ne!(
        cluster,
        str_at(&istio, "/providers/cognito/remote_jwks/cluster"),
        "Envoy Gateway has no Istio outbound|... clusters"
    );
    istio["providers"]["cognito"]["remote_jwks"]["cluster"] = json!(cluster);
    assert_eq!(
        config, istio,
        "{EXTENSION_POLICY}'s config and {ISTIO_PLUGIN}'s pluginConfig differ beyond remote_jwks.cluster"
    );
}

#[test]
fn extension_policy_config_is_accepted_and_its_cluster_is_the_patched_one() {
    let policy = yaml(EXTENSION_POLICY);
    let patch = yaml(PATCH_POLICY);

    // The filter's parser takes the config as Envoy Gateway hands it over:
    // the JSON text of spec.wasm[].config in a StringValue.
    let text = serde_json::to_vec(&wasm_extension(&policy)["config"]).unwrap();
    let parsed = Policy::from_json(&text)
        .unwrap_or_else(|e| panic!("{EXTENSION_POLICY} config: the filter refuses it: {e}"));
    let jwks = remote_jwks(&parsed, "cognito");

    // The cluster the patch adds is the one the config names ...
    assert_eq!(patch["apiVersion"], API_VERSION);
    assert_eq!(patch["kind"], "EnvoyPatchPolicy");
    assert_eq!(patch["spec"]["type"], "JSONPatch");
    let cluster = patched_cluster(&patch);
    assert_eq!(
        str_at(cluster, "/name"),
        jwks.cluster,
        "remote_jwks.cluster is the cluster {PATCH_POLICY} adds"
    );
    assert_eq!(cluster["load_assignment"]["cluster_name"], cluster["name"]);

    // ... a DNS cluster to the host and port of remote_jwks.uri ...
    let host = jwks.authority.as_str();
    assert!(
        jwks.uri.starts_with(&format!("https://{host}/")),
        "{}",
        jwks.uri
    );
    assert!(matches!(
        cluster["type"].as_str(),
        Some("STRICT_DNS" | "LOGICAL_DNS")
    ));
    let endpoints = cluster["load_assignment"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    let lb = endpoints[0]["lb_endpoints"].as_array().unwrap();
    assert_eq!(lb.len(), 1);
    let sa = &lb[0]["endpoint"]["address"]["socket_address"];
    assert_eq!(
        (sa["address"].as_str(), sa["port_value"].as_u64()),
        (Some(host), Some(443))
    );

    // ... speaking TLS with SNI, checking the certificate and its name.
    let socket = &cluster["transport_socket"];
    assert_eq!(socket["name"], "envoy.transport_sockets.tls");
    let tls = &socket["typed_config"];
    assert_eq!(tls["@type"], TLS_TYPE);
    assert_eq!(tls["sni"], host);
    let validation = &tls["common_tls_context"]["validation_context"];
    assert_eq!(
        validation["trusted_ca"]["filename"], "/etc/ssl/certs/ca-certificates.crt",
        "the system CA bundle (Envoy Gateway's own system trust store path)"
    );
    assert_eq!(
        validation["match_typed_subject_alt_names"],
        json!([{"san_type": "DNS", "matcher": {"exact": host}}])
    );

    // The patch name cannot collide with a cluster Envoy Gateway generates
    // (those contain a '/').
    assert!(!jwks.cluster.contains('/'), "{}", jwks.cluster);
}

#[test]
fn policies_target_the_route_and_gateway_shipped_beside_them() {
    let policy = yaml(EXTENSION_POLICY);
    let patch = yaml(PATCH_POLICY);
    let route = yaml(ROUTE);
    let gateway_docs = yaml_docs(GATEWAY);
    let find = |kind: &str| {
        gateway_docs
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("{GATEWAY}: a {kind}"))
    };
    let (class, gateway) = (find("GatewayClass"), find("Gateway"));
    let ns = str_at(&policy, "/metadata/namespace");

    // EnvoyExtensionPolicy -> HTTPRoute (local reference: same namespace).
    let targets = policy["spec"]["targetRefs"].as_array().unwrap();
    assert_eq!(
        targets,
        &vec![
            json!({"group": GATEWAY_API, "kind": "HTTPRoute", "name": route["metadata"]["name"]})
        ]
    );
    assert_eq!(route["metadata"]["namespace"], ns);

    // HTTPRoute -> Gateway -> GatewayClass of Envoy Gateway's controller.
    assert_eq!(
        route["spec"]["parentRefs"][0]["name"],
        gateway["metadata"]["name"]
    );
    assert_eq!(gateway["metadata"]["namespace"], ns);
    assert_eq!(
        gateway["spec"]["gatewayClassName"],
        class["metadata"]["name"]
    );
    assert_eq!(
        class["spec"]["controllerName"],
        "gateway.envoyproxy.io/gatewayclass-controller"
    );

    // EnvoyPatchPolicy -> that Gateway, from its namespace.
    assert_eq!(
        patch["spec"]["targetRef"],
        json!({"group": GATEWAY_API, "kind": "Gateway", "name": gateway["metadata"]["name"]})
    );
    assert_eq!(patch["metadata"]["namespace"], ns);

    // Every manifest here is one of these kinds, in that namespace.
    for (rel, doc) in all_manifests() {
        let kind = str_at(&doc, "/kind");
        assert!(
            [
                "GatewayClass",
                "Gateway",
                "HTTPRoute",
                "EnvoyExtensionPolicy",
                "EnvoyPatchPolicy"
            ]
            .contains(&kind),
            "{rel}: unexpected {kind}"
        );
        if kind != "GatewayClass" {
            assert_eq!(doc["metadata"]["namespace"], ns, "{rel}: {kind}");
        }
    }
}

/// What Envoy Gateway gives Envoy for this policy (internal/xds/translator/
/// wasm.go: the config as a StringValue, vm_id = the extension's name,
/// root_id, fail_open; the module is served by Envoy Gateway, here the local
/// build) with the patched cluster: Envoy 1.40 must load both and the
/// filter must configure itself.
#[test]
fn patched_cluster_and_filter_pass_envoy_validate() {
    let policy = yaml(EXTENSION_POLICY);
    let wasm = wasm_extension(&policy);
    let cluster = patched_cluster(&yaml(PATCH_POLICY)).clone();
    let name = str_at(wasm, "/name");
    let filter = json!({
        "name": format!("envoy.filters.http.wasm/{name}"),
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": wasm["rootID"],
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": support::wasm_path()}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": wasm["config"].to_string(),
                },
                "fail_open": wasm["failOpen"],
            },
        },
    });
    let bootstrap = json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "http-80",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "http-80",
                        "route_config": {"name": "http-80", "virtual_hosts": [{
                            "name": "orders", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "orders"}}],
                        }]},
                        "http_filters": [filter, {
                            "name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                        }],
                    },
                }]}],
            }],
            "clusters": [cluster, {
                "name": "orders",
                "type": "STATIC",
                "load_assignment": {"cluster_name": "orders", "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 8080}}}}
                ]}]},
            }],
        },
    });
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "envoy-gateway-validate-{}.json",
        std::process::id()
    ));
    fs::write(&path, bootstrap.to_string()).unwrap();
    let log = support::validate_config(&path)
        .unwrap_or_else(|log| panic!("envoy --mode validate:\n{log}"));
    assert!(
        // The filter prefixes its log lines with the plugin's name.
        log.contains(&format!("{name}: configured 1 provider(s), 3 rule(s)")),
        "the filter configured itself:\n{log}"
    );
    let _ = fs::remove_file(&path);
}
