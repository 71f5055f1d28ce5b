//! The deployment files are ones a user can apply as they are:
//! - `envoy.yaml` and `examples/envoy-aws-cognito.yaml` pass
//!   `envoy --mode validate` (which loads the wasm and runs its configure);
//! - every plugin configuration (those two and the Istio WasmPlugin's
//!   `pluginConfig`) is accepted by the filter's own parser, names a JWKS
//!   cluster that exists, and all three carry the same rules;
//! - the Istio manifests match Istio's CRD schemas (`../shared/schemas`, when
//!   present) and wire the callout cluster together (ServiceEntry host and
//!   port, DestinationRule TLS with SNI, `outbound|<port>||<host>`);
//! - `docker-compose.yml` matches the Compose specification and what
//!   `envoy.yaml` expects (services, ports, mounts, pinned versions).
//!
//! YAML is read with the `.venv` Python and the YAML library that
//! check-jsonschema brings (`make setup`).

#![allow(clippy::restriction)] // tests panic by design

mod support;

use support::files::{str_at, unknown_fields, yaml};
use support::venv_bin;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use jwt_policy::policy::{KeySource, Policy, RemoteJwks};
use serde_json::{Value, json};

const WASM_REL: &str = "target/wasm32-wasip1/release/jwt_policy.wasm";
const POOL_PLACEHOLDER: &str = "__DEMO_USER_POOL_ID__";
const CLIENT_PLACEHOLDER: &str = "__DEMO_APP_CLIENT_ID__";

fn root() -> &'static Path {
    support::repo_root()
}

/// The wasm filter's `config` of a bootstrap (one listener, one HCM).
fn wasm_filter(bootstrap: &Value) -> &Value {
    let listeners = bootstrap["static_resources"]["listeners"]
        .as_array()
        .unwrap();
    listeners
        .iter()
        .flat_map(|l| l["filter_chains"].as_array().unwrap())
        .flat_map(|c| c["filters"].as_array().unwrap())
        .flat_map(|f| f["typed_config"]["http_filters"].as_array().unwrap())
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .map(|f| &f["typed_config"]["config"])
        .expect("a wasm filter")
}

/// The plugin configuration text of a bootstrap.
fn plugin_config_text(bootstrap: &Value) -> String {
    let config = &wasm_filter(bootstrap)["configuration"];
    assert_eq!(
        config["@type"], "type.googleapis.com/google.protobuf.StringValue",
        "the plugin configuration is a StringValue (raw JSON for on_configure)"
    );
    str_at(config, "/value").to_string()
}

fn parse_policy(what: &str, json: &[u8]) -> Policy {
    Policy::from_json(json).unwrap_or_else(|e| panic!("{what}: the filter refuses it: {e}"))
}

fn remote_jwks<'p>(policy: &'p Policy, provider: &str) -> &'p RemoteJwks {
    let id = policy.provider_id(provider).expect("provider");
    match &policy.providers[id].keys {
        KeySource::Remote(r) => r,
        other => panic!("provider {provider} must use remote_jwks, has {other:?}"),
    }
}

/// (name, address, port, cluster json) of every STATIC/DNS cluster endpoint.
fn cluster_endpoints(bootstrap: &Value) -> Vec<(String, String, u64, Value)> {
    let mut out = Vec::new();
    for c in bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap()
    {
        for group in c["load_assignment"]["endpoints"].as_array().unwrap() {
            for ep in group["lb_endpoints"].as_array().unwrap() {
                let sa = &ep["endpoint"]["address"]["socket_address"];
                out.push((
                    c["name"].as_str().unwrap().to_string(),
                    sa["address"].as_str().unwrap().to_string(),
                    sa["port_value"].as_u64().unwrap(),
                    c.clone(),
                ));
            }
        }
    }
    out
}

/// `envoy --mode validate` on a repository file, from the repository root
/// (the files name the wasm by its relative build path). When the wasm was
/// built elsewhere (`JWT_POLICY_WASM`), a copy naming that file is checked.
fn envoy_validate(rel: &str) {
    let wasm = support::wasm_path();
    let mut path = root().join(rel);
    if !root().join(WASM_REL).exists() {
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(WASM_REL), "{rel} names {WASM_REL}");
        path = std::env::temp_dir().join(format!(
            "jwt-policy-validate-{}-{}",
            std::process::id(),
            rel.replace('/', "_")
        ));
        fs::write(&path, text.replace(WASM_REL, wasm.to_str().unwrap())).unwrap();
    }
    let log = support::validate_config(&path)
        .unwrap_or_else(|log| panic!("envoy --mode validate {rel}:\n{log}"));
    assert!(log.contains("OK"), "{log}");
    // Validation runs the filter's on_configure: it must have accepted it.
    assert!(
        log.contains("jwt_policy: configured 1 provider(s), 3 rule(s)"),
        "{rel}: the filter configured itself:\n{log}"
    );
}

#[test]
fn envoy_yaml_passes_envoy_validate() {
    envoy_validate("envoy.yaml");
}

#[test]
fn aws_example_passes_envoy_validate() {
    envoy_validate("examples/envoy-aws-cognito.yaml");
}

#[test]
fn envoy_yaml_is_the_demo_configuration() {
    let boot = yaml("envoy.yaml");
    let wasm = wasm_filter(&boot);
    assert_eq!(wasm["failure_policy"], "FAIL_RELOAD", "never fail open");
    assert_eq!(wasm["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    assert_eq!(str_at(wasm, "/vm_config/code/local/filename"), WASM_REL);

    let hcm =
        &boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["normalize_path"], true);
    assert_eq!(hcm["merge_slashes"], true);
    assert_eq!(
        boot["admin"]["address"]["socket_address"]["address"], "127.0.0.1",
        "the admin interface stays on loopback"
    );

    // The two placeholders the demo fills in, and only in the provider.
    let text = plugin_config_text(&boot);
    assert!(text.contains(POOL_PLACEHOLDER) && text.contains(CLIENT_PLACEHOLDER));
    let policy = parse_policy("envoy.yaml", text.as_bytes());
    let p = &policy.providers[policy.provider_id("cognito").unwrap()];
    assert_eq!(
        p.issuer,
        format!("https://cognito-idp.us-east-1.amazonaws.com/{POOL_PLACEHOLDER}"),
        "the emulator's tokens carry the AWS issuer"
    );
    assert_eq!(p.audiences, [CLIENT_PLACEHOLDER]);
    assert_eq!(p.token_use.as_deref(), Some("access"));

    // remote_jwks goes through a cluster of this file, to the host:port of its uri.
    let jwks = remote_jwks(&policy, "cognito");
    assert_eq!(
        jwks.path,
        format!("/{POOL_PLACEHOLDER}/.well-known/jwks.json")
    );
    let endpoints = cluster_endpoints(&boot);
    let (_, host, port, _) = endpoints
        .iter()
        .find(|(name, ..)| *name == jwks.cluster)
        .unwrap_or_else(|| panic!("no cluster {}", jwks.cluster));
    assert_eq!(jwks.authority, format!("{host}:{port}"));
}

#[test]
fn aws_example_fetches_the_jwks_from_cognito_over_tls() {
    let boot = yaml("examples/envoy-aws-cognito.yaml");
    assert_eq!(wasm_filter(&boot)["failure_policy"], "FAIL_RELOAD");
    let text = plugin_config_text(&boot);
    let policy = parse_policy("examples/envoy-aws-cognito.yaml", text.as_bytes());
    let p = &policy.providers[policy.provider_id("cognito").unwrap()];
    let jwks = remote_jwks(&policy, "cognito");
    let host = "cognito-idp.us-east-1.amazonaws.com";
    assert_eq!(jwks.authority, host);
    assert_eq!(format!("https://{host}{}", jwks.path), jwks.uri);
    assert_eq!(format!("{}/.well-known/jwks.json", p.issuer), jwks.uri);

    let endpoints = cluster_endpoints(&boot);
    let (_, address, port, cluster) = endpoints
        .iter()
        .find(|(name, ..)| *name == jwks.cluster)
        .unwrap_or_else(|| panic!("no cluster {}", jwks.cluster));
    assert_eq!((address.as_str(), *port), (host, 443));
    assert!(matches!(
        cluster["type"].as_str(),
        Some("STRICT_DNS" | "LOGICAL_DNS")
    ));
    let tls = &cluster["transport_socket"]["typed_config"];
    assert_eq!(
        tls["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    );
    assert_eq!(tls["sni"], host);
    let validation = &tls["common_tls_context"]["validation_context"];
    assert!(
        validation["trusted_ca"]["filename"].is_string(),
        "the server certificate is verified against a CA bundle"
    );
}

/// The policy in every file is the same: only where the keys come from and
/// whose tokens they are (issuer, audiences, remote_jwks) differ.
#[test]
fn every_deployment_carries_the_same_policy() {
    let mut configs: Vec<(&str, Value)> = Vec::new();
    for rel in ["envoy.yaml", "examples/envoy-aws-cognito.yaml"] {
        let text = plugin_config_text(&yaml(rel));
        configs.push((rel, serde_json::from_str(&text).unwrap()));
    }
    let plugin = yaml("deploy/istio/wasmplugin.yaml")["spec"]["pluginConfig"].clone();
    configs.push(("deploy/istio/wasmplugin.yaml", plugin));

    let strip = |c: &Value| {
        let mut c = c.clone();
        for p in c["providers"].as_object_mut().unwrap().values_mut() {
            let p = p.as_object_mut().unwrap();
            for field in ["issuer", "audiences", "remote_jwks"] {
                p.remove(field);
            }
        }
        c
    };
    let (first, reference) = &configs[0];
    for (rel, config) in &configs[1..] {
        assert_eq!(
            strip(config),
            strip(reference),
            "{rel} and {first} differ beyond issuer, audiences and remote_jwks"
        );
        for field in [
            "timeout_ms",
            "cache_ttl_s",
            "max_stale_s",
            "refetch_cooldown_s",
        ] {
            assert_eq!(
                config["providers"]["cognito"]["remote_jwks"][field],
                reference["providers"]["cognito"]["remote_jwks"][field],
                "{rel}: remote_jwks.{field}"
            );
        }
        let text = config.to_string();
        assert!(
            !text.contains(POOL_PLACEHOLDER) && !text.contains(CLIENT_PLACEHOLDER),
            "{rel}: the demo placeholders belong to envoy.yaml only"
        );
    }
}

// ---------------------------------------------------------------------------
// Istio
// ---------------------------------------------------------------------------

const ISTIO_MANIFESTS: [(&str, &str); 3] = [
    (
        "deploy/istio/wasmplugin.yaml",
        "istio-wasmplugin.schema.json",
    ),
    (
        "deploy/istio/serviceentry.yaml",
        "istio-serviceentry.schema.json",
    ),
    (
        "deploy/istio/destinationrule.yaml",
        "istio-destinationrule.schema.json",
    ),
];

#[test]
fn istio_manifests_match_istio_schemas() {
    let schemas = root().join("../shared/schemas");
    if !schemas.is_dir() {
        eprintln!(
            "skipped: ../shared/schemas not found (Istio CRD schemas); \
             the other Istio checks still run"
        );
        return;
    }
    for (rel, schema) in ISTIO_MANIFESTS {
        let schema_path = schemas.join(schema);
        let out = Command::new(venv_bin("check-jsonschema"))
            .arg("--schemafile")
            .arg(&schema_path)
            .arg(root().join(rel))
            .output()
            .expect("run check-jsonschema");
        assert!(
            out.status.success(),
            "{rel} against {schema}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let schema: Value =
            serde_json::from_str(&fs::read_to_string(&schema_path).unwrap()).expect("schema JSON");
        let mut unknown = Vec::new();
        unknown_fields(
            &yaml(rel)["spec"],
            &schema["properties"]["spec"],
            "spec",
            &mut unknown,
        );
        assert!(
            unknown.is_empty(),
            "{rel}: fields Istio does not know: {unknown:?}"
        );
    }
}

/// The project's JSON Schema of the plugin configuration (schema/, what
/// editors use through the file's modeline) accepts the pluginConfig too.
#[test]
fn istio_plugin_config_matches_the_project_schema() {
    let wrapper = root().join("schema/wasmplugin.schema.json");
    assert!(wrapper.exists(), "schema/wasmplugin.schema.json not found");
    let out = Command::new(venv_bin("check-jsonschema"))
        .arg("--schemafile")
        .arg(&wrapper)
        .arg(root().join("deploy/istio/wasmplugin.yaml"))
        .output()
        .expect("run check-jsonschema");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn istio_plugin_config_is_accepted_and_its_cluster_exists() {
    let plugin = yaml("deploy/istio/wasmplugin.yaml");
    let entry = yaml("deploy/istio/serviceentry.yaml");
    let rule = yaml("deploy/istio/destinationrule.yaml");

    let spec = &plugin["spec"];
    assert_eq!(spec["phase"], "AUTHN");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert_eq!(spec["pluginName"], "jwt_policy", "the filter's root id");
    assert!(spec["selector"]["matchLabels"].is_object(), "a selector");
    assert_eq!(spec["match"][0]["mode"], "SERVER");
    let url = str_at(spec, "/url");
    assert!(
        url.starts_with("oci://") || (url.starts_with("https://") && spec["sha256"].is_string()),
        "an OCI image, or HTTPS with sha256: {url}"
    );

    // The filter's parser takes the pluginConfig as Istio hands it over (JSON).
    let config = serde_json::to_vec(&spec["pluginConfig"]).unwrap();
    let policy = parse_policy("WasmPlugin pluginConfig", &config);
    let jwks = remote_jwks(&policy, "cognito");

    // outbound|<port>|<subset>|<host>: a port and host of the ServiceEntry.
    let parts: Vec<&str> = jwks.cluster.split('|').collect();
    assert_eq!(parts.len(), 4, "{}", jwks.cluster);
    let (direction, port, subset, host) = (parts[0], parts[1], parts[2], parts[3]);
    assert_eq!((direction, subset), ("outbound", ""));
    let hosts: Vec<&str> = entry["spec"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(
        hosts.contains(&host),
        "{host} in ServiceEntry hosts {hosts:?}"
    );
    let port: u64 = port.parse().unwrap();
    assert!(
        entry["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["number"] == port),
        "port {port} in the ServiceEntry"
    );
    assert_eq!(entry["spec"]["resolution"], "DNS");
    assert_eq!(entry["spec"]["location"], "MESH_EXTERNAL");
    assert_eq!(jwks.authority, host, "the fetch's :authority is the host");
    assert!(jwks.uri.starts_with(&format!("https://{host}/")));

    // The DestinationRule makes that cluster speak TLS with SNI to the host.
    assert_eq!(rule["spec"]["host"], host);
    let tls = rule["spec"]["trafficPolicy"]["portLevelSettings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["port"]["number"] == port)
        .map(|s| &s["tls"])
        .expect("TLS settings for the callout port");
    assert_eq!(tls["mode"], "SIMPLE");
    assert_eq!(tls["sni"], host);
    for (what, manifest) in [("ServiceEntry", &entry), ("DestinationRule", &rule)] {
        assert_eq!(
            manifest["metadata"]["namespace"], plugin["metadata"]["namespace"],
            "{what} in the WasmPlugin's namespace"
        );
    }
}

/// The EnvoyFilter that makes the workload's sidecar refuse headers with
/// `_` patches the inbound HTTP connection managers of the workload the
/// WasmPlugin selects, and its value is an HCM setting Envoy accepts.
#[test]
fn istio_sidecar_refuses_headers_with_underscores() {
    let plugin = yaml("deploy/istio/wasmplugin.yaml");
    let filter = yaml("deploy/istio/envoyfilter-headers.yaml");
    assert_eq!(filter["kind"], "EnvoyFilter");
    assert_eq!(
        filter["metadata"]["namespace"],
        plugin["metadata"]["namespace"]
    );
    assert_eq!(
        filter["spec"]["workloadSelector"]["labels"], plugin["spec"]["selector"]["matchLabels"],
        "the workload the WasmPlugin runs in"
    );
    let patch = &filter["spec"]["configPatches"][0];
    assert_eq!(patch["applyTo"], "NETWORK_FILTER");
    assert_eq!(patch["match"]["context"], "SIDECAR_INBOUND");
    assert_eq!(
        patch["match"]["listener"]["filterChain"]["filter"]["name"],
        "envoy.filters.network.http_connection_manager"
    );
    assert_eq!(patch["patch"]["operation"], "MERGE");
    let hcm = &patch["patch"]["value"]["typed_config"];
    assert_eq!(
        hcm["common_http_protocol_options"]["headers_with_underscores_action"],
        "REJECT_REQUEST"
    );
    // The patched fields form a valid HTTP connection manager.
    let mut full = hcm.clone();
    full["stat_prefix"] = json!("inbound");
    full["route_config"] = json!({"virtual_hosts": []});
    full["http_filters"] = json!([{"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]);
    let bootstrap = json!({"static_resources": {"listeners": [{
        "name": "inbound", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
            "typed_config": full}]}]}]}});
    let dir = std::env::temp_dir().join(format!("jwt-policy-hcm-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hcm.json");
    fs::write(&path, bootstrap.to_string()).unwrap();
    support::validate_config(&path).unwrap_or_else(|e| panic!("Envoy refuses the patch: {e}"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn istio_dockerfile_follows_the_wasm_image_convention() {
    let text = fs::read_to_string(root().join("deploy/istio/Dockerfile")).unwrap();
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        instructions,
        ["FROM scratch", "COPY jwt_policy.wasm ./plugin.wasm"],
        "a scratch image with plugin.wasm at its root"
    );
    // The build context the Dockerfile documents is the wasm output directory.
    assert!(text.contains("target/wasm32-wasip1/release"));
    assert!(WASM_REL.ends_with("/jwt_policy.wasm"));
}

// ---------------------------------------------------------------------------
// docker-compose
// ---------------------------------------------------------------------------

#[test]
fn compose_file_matches_the_compose_specification() {
    let out = Command::new(venv_bin("check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(root().join("docker-compose.yml"))
        .output()
        .expect("run check-jsonschema");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `VAR=value` line of a setup script.
fn pinned(script: &str, var: &str) -> String {
    let text = fs::read_to_string(root().join(script)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{var}=")))
        .unwrap_or_else(|| panic!("{var}= in {script}"))
        .trim()
        .to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The value after `flag` in a command list.
fn arg_after(command: &[String], flag: &str) -> String {
    let i = command
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} in {command:?}"));
    command[i + 1].clone()
}

/// (source, target) of a service's short-syntax volumes.
fn mounts(service: &Value) -> Vec<(String, String)> {
    strings(&service["volumes"])
        .iter()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            (parts[0].to_string(), parts[1].to_string())
        })
        .collect()
}

fn port_of(url: &str) -> u64 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn compose_file_matches_envoy_yaml() {
    let compose = yaml("docker-compose.yml");
    let boot = yaml("envoy.yaml");
    let services = compose["services"].as_object().unwrap();
    let service = |name: &str| {
        services
            .get(name)
            .unwrap_or_else(|| panic!("compose service {name}"))
    };

    // Pinned to the versions `make setup` installs and `make test` runs.
    let envoy = service("envoy");
    assert_eq!(
        envoy["image"],
        format!(
            "envoyproxy/envoy:v{}",
            pinned("scripts/setup.sh", "ENVOY_VERSION")
        )
    );
    let ministack_image = format!(
        "ministackorg/ministack:{}",
        pinned("scripts/setup-demo.sh", "MINISTACK_VERSION")
    );
    for name in ["ministack", "cognito-setup", "walkthrough"] {
        assert_eq!(service(name)["image"], ministack_image.as_str(), "{name}");
    }

    // Every cluster address of envoy.yaml is a service exposing that port.
    let mut hosts = BTreeSet::new();
    for (cluster, host, port, _) in cluster_endpoints(&boot) {
        let s = service(&host);
        assert!(
            strings(&s["expose"]).contains(&port.to_string()),
            "cluster {cluster}: service {host} exposes {port}"
        );
        hosts.insert(host);
    }
    assert_eq!(
        hosts,
        BTreeSet::from(["ministack".to_string(), "upstream".to_string()])
    );
    assert_eq!(
        service("ministack")["environment"]["GATEWAY_PORT"],
        "4566",
        "ministack listens where envoy.yaml's cognito_jwks cluster points"
    );
    let upstream_cmd = strings(&service("upstream")["command"]);
    assert_eq!(arg_after(&upstream_cmd, "--port"), "8080");
    assert_eq!(arg_after(&upstream_cmd, "--host"), "0.0.0.0");

    // The listener's port is published (on the host's loopback only), the
    // admin port is not published at all.
    let listener = &boot["static_resources"]["listeners"][0]["address"]["socket_address"];
    assert_eq!(
        listener["address"], "0.0.0.0",
        "reachable from outside the container"
    );
    let listener_port = listener["port_value"].as_u64().unwrap();
    let admin_port = boot["admin"]["address"]["socket_address"]["port_value"]
        .as_u64()
        .unwrap();
    let published = strings(&envoy["ports"]);
    assert_eq!(
        published,
        [format!("127.0.0.1:{listener_port}:{listener_port}")]
    );

    // The wasm: envoy.yaml's relative path, from the working directory, is
    // the build output mounted read-only.
    let working_dir = str_at(envoy, "/working_dir");
    let wasm_rel = str_at(wasm_filter(&boot), "/vm_config/code/local/filename");
    assert!(!wasm_rel.starts_with('/'));
    assert!(
        strings(&envoy["volumes"]).contains(&format!("./{wasm_rel}:{working_dir}/{wasm_rel}:ro")),
        "envoy mounts ./{wasm_rel} at {working_dir}/{wasm_rel}"
    );

    // envoy.yaml itself: cognito-setup reads the mounted file and writes the
    // filled-in copy into the shared volume, which Envoy runs.
    let setup = service("cognito-setup");
    let setup_cmd = strings(&setup["command"]);
    let envoy_yaml_in = arg_after(&setup_cmd, "--envoy-yaml");
    assert!(mounts(setup).contains(&("./envoy.yaml".into(), envoy_yaml_in)));
    let rendered = arg_after(&setup_cmd, "--out");
    let state = arg_after(&setup_cmd, "--state");
    let envoy_cmd = strings(&envoy["command"]);
    assert_eq!(arg_after(&envoy_cmd, "-c"), rendered);
    let volume_of = |s: &Value, path: &str| {
        mounts(s)
            .into_iter()
            .find(|(_, target)| path.starts_with(&format!("{target}/")))
            .map(|(source, _)| source)
            .unwrap_or_else(|| panic!("no volume holds {path}"))
    };
    let shared = volume_of(setup, &rendered);
    assert!(
        compose["volumes"].get(&shared).is_some(),
        "named volume {shared}"
    );
    assert_eq!(volume_of(envoy, &rendered), shared);
    assert_eq!(
        envoy["depends_on"]["cognito-setup"]["condition"],
        "service_completed_successfully"
    );

    // The walkthrough shares Envoy's network namespace: listener and admin on
    // loopback, the state the set-up wrote.
    let walk = service("walkthrough");
    assert_eq!(walk["network_mode"], "service:envoy");
    let walk_cmd = strings(&walk["command"]);
    assert_eq!(port_of(&arg_after(&walk_cmd, "--envoy")), listener_port);
    assert_eq!(port_of(&arg_after(&walk_cmd, "--admin")), admin_port);
    assert_eq!(arg_after(&walk_cmd, "--state"), state);
    assert_eq!(volume_of(walk, &state), shared);
    for s in [setup, walk] {
        assert_eq!(
            port_of(&arg_after(&strings(&s["command"]), "--ministack")),
            4566
        );
    }

    // Every bind-mounted file exists in the repository (the wasm after `make wasm`).
    for (name, s) in services {
        for (source, _) in mounts(s) {
            if let Some(rel) = source.strip_prefix("./") {
                assert!(
                    rel == WASM_REL || root().join(rel).exists(),
                    "{name}: ./{rel} does not exist"
                );
            }
        }
    }
}
