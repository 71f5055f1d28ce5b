//! The filter delivered as Istio delivers it: through ECDS (extension
//! config discovery), with the configuration rendered from
//! `deploy/istio/wasmplugin.yaml` the way istiod renders a WasmPlugin, and
//! pushed again whenever the policy changes.
//!
//! istiod's rendering (istio/istio `pilot/pkg/model/extensions.go`,
//! `convertToWasmPluginWrapper` and `buildVMConfig`; the failure policy in
//! `BuildHTTPWasmFilter`): a `TypedExtensionConfig` named
//! `<namespace>.<name>` holding an `envoy.extensions.filters.http.wasm.v3.Wasm`
//! whose plugin `name` is that too, `root_id` the WasmPlugin's `pluginName`,
//! `configuration` the `pluginConfig` as JSON in a `StringValue`, a VM with
//! the V8 runtime, no `vm_id`, the module (istio-agent has fetched the
//! `oci://` image and rewritten the source to a local file), and the
//! environment variable `ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION` set to
//! the WasmPlugin's resource version; `failStrategy` `FAIL_CLOSE` becomes
//! `failure_policy: FAIL_CLOSED`, `FAIL_OPEN` `FAIL_OPEN`. The listener
//! refers to it by name through `config_discovery`; here the config source
//! is a watched file instead of istiod's gRPC stream (Envoy applies both
//! the same way), and Envoy has a node id and cluster as a sidecar does.
//!
//! What must hold: pushes under load fail no request both policies allow
//! and are in force within 2 s; a refused push keeps the old policy
//! deciding, names the field in the log and is counted (Envoy's
//! `update_rejected` and the filter's `config_refused`, with the
//! `config_version` gauge still the old one); a rules-only push fetches no
//! JWKS again; no cached decision outlives a push; two instances with the
//! same provider name and different JWKS stay apart.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use jwt_policy::config_version::ConfigVersion;
use serde_json::{Value, json};
use support::cases::{CLIENT, ISSUER};
use support::{
    Alg, EchoServer, Envoy, EnvoyConfig, JwksServer, Request, TestKey, WAIT_TIMEOUT,
    cognito_access_claims, eventually, jwks, now, send,
};

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// `deploy/istio/wasmplugin.yaml`'s WasmPlugin (the first such document).
fn shipped_wasm_plugin() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/istio/wasmplugin.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .find(|doc: &Value| doc["kind"] == "WasmPlugin")
        .expect("a WasmPlugin in deploy/istio/wasmplugin.yaml")
}

/// What istiod sends for `plugin` at `resource_version`: the ECDS resource.
fn rendered(plugin: &Value, resource_version: u64) -> Value {
    let name = format!(
        "{}.{}",
        plugin["metadata"]["namespace"].as_str().unwrap(),
        plugin["metadata"]["name"].as_str().unwrap()
    );
    let spec = &plugin["spec"];
    let failure_policy = match spec["failStrategy"].as_str().unwrap_or("FAIL_CLOSE") {
        "FAIL_OPEN" => "FAIL_OPEN",
        "FAIL_RELOAD" => "FAIL_RELOAD",
        _ => "FAIL_CLOSED",
    };
    json!({
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": name,
        "typed_config": {
            "@type": WASM_TYPE,
            "config": {
                "name": name,
                "root_id": spec["pluginName"],
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": spec["pluginConfig"].to_string(),
                },
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": support::wasm_path().to_str().unwrap()}},
                    "environment_variables": {"key_values": {
                        "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": resource_version.to_string(),
                    }},
                },
                "failure_policy": failure_policy,
            },
        },
    })
}

fn extension_name(plugin: &Value) -> String {
    format!(
        "{}.{}",
        plugin["metadata"]["namespace"].as_str().unwrap(),
        plugin["metadata"]["name"].as_str().unwrap()
    )
}

/// One watched ECDS file per WasmPlugin, and the pushes to it.
struct Ecds {
    dir: PathBuf,
    file: PathBuf,
    plugin: Value,
    resource_version: u64,
}

impl Ecds {
    fn new(dir: &Path, plugin: Value) -> Ecds {
        let sub = dir.join(extension_name(&plugin));
        std::fs::create_dir_all(&sub).unwrap();
        let mut e = Ecds {
            file: sub.join("ecds.json"),
            dir: sub,
            plugin,
            resource_version: 1000,
        };
        e.write();
        e
    }

    /// Writes the discovery response as istiod would push it (atomically:
    /// Envoy reads the file when it is moved into the watched directory).
    fn write(&mut self) {
        let response = json!({
            "version_info": self.resource_version.to_string(),
            "resources": [rendered(&self.plugin, self.resource_version)],
        });
        let tmp = self.dir.join(".ecds.json.tmp");
        std::fs::write(&tmp, response.to_string()).unwrap();
        std::fs::rename(&tmp, &self.file).unwrap();
    }

    /// Edits `pluginConfig` and pushes it with a new resource version.
    fn push(&mut self, edit: impl FnOnce(&mut Value)) {
        edit(&mut self.plugin["spec"]["pluginConfig"]);
        self.resource_version += 1;
        self.write();
    }

    fn version(&self) -> ConfigVersion {
        ConfigVersion::of(
            self.plugin["spec"]["pluginConfig"].to_string().as_bytes(),
            Some(&self.resource_version.to_string()),
        )
    }

    /// The HTTP filter entry that refers to this extension config.
    fn filter(&self) -> Value {
        json!({
            "name": extension_name(&self.plugin),
            "config_discovery": {
                "config_source": {
                    "resource_api_version": "V3",
                    "path_config_source": {
                        "path": self.file.to_str().unwrap(),
                        "watched_directory": {"path": self.dir.to_str().unwrap()},
                    },
                },
                "type_urls": [WASM_TYPE],
            },
        })
    }
}

fn listener(name: &str, filters: Vec<Value>) -> Value {
    let mut http_filters = filters;
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    json!({
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"name": name, "virtual_hosts": [{"name": "all", "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]},
                "http_filters": http_filters,
            },
        }]}],
    })
}

fn cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
        ]}]},
    })
}

/// A sidecar's bootstrap: node identity, listeners, clusters.
fn sidecar(listeners: Vec<Value>, clusters: Vec<Value>) -> Envoy {
    let boot = json!({
        "node": {"id": "sidecar~127.0.0.1~orders-7d9f.orders~orders.svc.cluster.local",
                 "cluster": "orders.orders"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    });
    EnvoyConfig::raw(boot.to_string()).start()
}

fn listener_port(envoy: &Envoy, name: &str) -> u16 {
    let listeners = envoy.admin("GET", "/listeners?format=json").json();
    listeners["listener_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
        .unwrap() as u16
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jwt-policy-ecds-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn plugin_stat(envoy: &Envoy, ecds: &Ecds, leaf: &str) -> u64 {
    let name = jwt_policy::config_version::stat_component(&extension_name(&ecds.plugin));
    envoy.stat(&format!("wasmcustom.jwt_policy.plugin.{name}.{leaf}"))
}

/// The shipped WasmPlugin with its JWKS served by `idp` (the cluster name
/// stays Istio's `outbound|443||cognito-idp…`; only its endpoint is local).
struct Mesh {
    key: TestKey,
    idp: JwksServer,
    upstream: EchoServer,
    ecds: Ecds,
    envoy: Envoy,
    dir: PathBuf,
}

impl Mesh {
    fn start(tag: &str) -> Mesh {
        let key = TestKey::rsa("pool-key", 2048);
        let idp = JwksServer::start(jwks(&[key.jwk()]).to_string());
        let upstream = EchoServer::start();
        let dir = temp_dir(tag);
        let plugin = shipped_wasm_plugin();
        let jwks_cluster =
            plugin["spec"]["pluginConfig"]["providers"]["cognito"]["remote_jwks"]["cluster"]
                .as_str()
                .unwrap()
                .to_owned();
        let ecds = Ecds::new(&dir, plugin);
        let envoy = sidecar(
            vec![listener("main", vec![ecds.filter()])],
            vec![
                cluster("upstream", upstream.port()),
                cluster(&jwks_cluster, idp.port()),
            ],
        );
        let mesh = Mesh {
            key,
            idp,
            upstream,
            ecds,
            envoy,
            dir,
        };
        // The first request waits for the first JWKS fetch.
        eventually("the first policy", Duration::from_secs(10), || {
            mesh.get("order/get.order").status == 200
        });
        mesh
    }

    fn token(&self, scope: &str) -> String {
        self.key.token(
            Alg::RS256,
            cognito_access_claims(ISSUER, CLIENT, scope, now()),
        )
    }

    fn get(&self, scope: &str) -> support::Response {
        send(
            self.envoy.port(),
            &Request::get("/api/v1/order").bearer(&self.token(scope)),
        )
    }

    fn stat(&self, name: &str) -> u64 {
        self.envoy.stat(name)
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Requests both policies allow, sent without pause from `threads`
/// threads until stopped; returns (sent, failures).
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    handles: Vec<std::thread::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(port: u16, requests: Vec<Request>, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(requests);
        let handles = (0..threads)
            .map(|t| {
                let (stop, sent, requests) = (stop.clone(), sent.clone(), requests.clone());
                std::thread::spawn(move || {
                    let mut failures = Vec::new();
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        let req = &requests[i % requests.len()];
                        sent.fetch_add(1, Ordering::Relaxed);
                        let r = match support::try_send(port, req) {
                            Ok(r) => r,
                            Err(e) => {
                                failures.push(format!("I/O error: {e}"));
                                continue;
                            }
                        };
                        if r.status != 200 {
                            failures.push(format!(
                                "{} {} -> {} {}",
                                req.method,
                                String::from_utf8_lossy(&req.path),
                                r.status,
                                r.body_str()
                            ));
                        }
                        i += 1;
                    }
                    failures
                })
            })
            .collect();
        Load {
            stop,
            sent,
            handles,
        }
    }

    fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self
            .handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        (self.sent.load(Ordering::Relaxed), failures)
    }
}

#[test]
fn pushes_under_load_fail_nothing_both_policies_allow_and_land_within_two_seconds() {
    let mut mesh = Mesh::start("load");
    let reader = mesh.token("order/get.order");
    let load = Load::start(
        mesh.envoy.port(),
        vec![
            Request::get("/api/v1/order").bearer(&reader),
            Request::get("/healthz"),
        ],
        2,
    );
    // Three pushes, each telling itself apart by whether POST needs
    // order/post.order (A) or order/write (B): a probe token with only
    // order/write is 403 under A and 200 under B.
    let writer = mesh.token("order/write");
    let probe = || {
        send(
            mesh.envoy.port(),
            &Request::post("/api/v1/order").bearer(&writer),
        )
        .status
    };
    assert_eq!(probe(), 403);
    let mut landed = Vec::new();
    for (push, scope, want) in [
        (1, "order/write", 200),
        (2, "order/post.order", 403),
        (3, "order/write", 200),
    ] {
        mesh.ecds
            .push(|c| c["rules"][1]["requires"]["scopes"] = json!([scope]));
        let took = eventually(
            &format!("push {push} in force"),
            Duration::from_secs(2),
            || probe() == want,
        );
        landed.push(took);
        // The filter says which configuration decides.
        let version = mesh.ecds.version();
        eventually("the version gauges", Duration::from_secs(2), || {
            plugin_stat(&mesh.envoy, &mesh.ecds, "config_version") == version.gauge()
                && plugin_stat(&mesh.envoy, &mesh.ecds, "resource_version")
                    == mesh.ecds.resource_version
        });
        assert!(
            mesh.envoy.wait_for_log(&version.describe(), WAIT_TIMEOUT),
            "the configure log line names the version"
        );
        eprintln!("push {push}: in force {took:?} after the file was written");
        // Traffic on the new policy before the next push.
        let sent = load.sent();
        eventually("traffic between pushes", Duration::from_secs(10), || {
            load.sent() >= sent + 500
        });
    }
    let (sent, failures) = load.finish();
    eprintln!("{sent} requests under load across 3 pushes; landed after {landed:?}");
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(sent >= 1500, "the load ran ({sent} requests)");
    mesh.envoy.assert_no_wasm_panic();
}

#[test]
fn a_refused_push_keeps_the_old_policy_deciding_and_says_so() {
    let mut mesh = Mesh::start("refused");
    let good = mesh.ecds.version();
    // What `jwt-policy check` says of the shipped manifest is the version
    // the filter logs and publishes for it.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_jwt-policy"))
        .args(["check", "deploy/istio/wasmplugin.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let check = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.contains(&format!("; version {})", good.hex())),
        "{check}"
    );
    assert_eq!(
        plugin_stat(&mesh.envoy, &mesh.ecds, "config_version"),
        good.gauge()
    );
    let name = extension_name(&mesh.ecds.plugin);
    let rejected = format!("extension_config_discovery.http_filter.{name}.update_rejected");
    let before = mesh.stat(&rejected);
    let load = Load::start(
        mesh.envoy.port(),
        vec![Request::get("/api/v1/order").bearer(&mesh.token("order/get.order"))],
        2,
    );
    // A push with two mistakes: the policy in force must go on deciding.
    mesh.ecds.push(|c| {
        c["rules"][1]["requires"]["provider"] = json!("okta");
        c["providers"]["cognito"]["audiences"] = json!([""]);
    });
    eventually("Envoy rejecting the push", Duration::from_secs(5), || {
        mesh.stat(&rejected) > before
    });
    eventually(
        "the refusal counted by the filter",
        Duration::from_secs(5),
        || plugin_stat(&mesh.envoy, &mesh.ecds, "config_refused") == 1,
    );
    // Traffic goes on while the push is refused.
    let sent = load.sent();
    eventually("traffic after the refusal", Duration::from_secs(10), || {
        load.sent() >= sent + 500
    });
    assert!(
        mesh.envoy
            .wait_for_log("configuration refused", WAIT_TIMEOUT)
    );
    let log = mesh.envoy.log();
    let line = log
        .lines()
        .find(|l| l.contains("configuration refused"))
        .expect("a refusal in the log");
    assert!(
        line.contains("providers.cognito.audiences[0]")
            && line.contains("rules[1].requires.provider: unknown provider \"okta\"")
            && line.contains(&format!("resourceVersion {}", mesh.ecds.resource_version)),
        "{line}"
    );
    // The old policy still decides, and its version is what the gauge says.
    assert_eq!(mesh.get("order/get.order").status, 200);
    assert_eq!(mesh.get("order/post.order").status, 403);
    assert_eq!(
        plugin_stat(&mesh.envoy, &mesh.ecds, "config_version"),
        good.gauge()
    );
    assert_eq!(
        plugin_stat(&mesh.envoy, &mesh.ecds, "resource_version"),
        mesh.ecds.resource_version - 1
    );
    let (sent, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    eprintln!("{sent} requests passed while the refused push was rejected");
    // The refused plugin is Envoy's expected "Failed to configure base
    // Wasm plugin"; nothing may have panicked.
    mesh.envoy.flush_log();
    assert!(!mesh.envoy.log().contains("panicked"), "a VM panicked");
}

#[test]
fn a_rules_only_push_fetches_no_jwks_and_no_cached_decision_survives_a_push() {
    let mut mesh = Mesh::start("rules");
    let fetches = mesh.idp.count();
    assert_eq!(fetches, 1, "one fetch at start");
    // The token is verified and cached under the first policy...
    let token = mesh.token("order/get.order");
    let get = || {
        send(
            mesh.envoy.port(),
            &Request::get("/api/v1/order").bearer(&token),
        )
    };
    assert_eq!(get().status, 200);
    assert_eq!(get().status, 200);
    // ...and the push changes only rules: GET now needs order/admin.
    mesh.ecds
        .push(|c| c["rules"][2]["requires"]["scopes"] = json!(["order/admin"]));
    eventually("the new rules deciding", Duration::from_secs(2), || {
        get().status == 403
    });
    // The same token, a cache hit before: decided by the new policy at once.
    let r = get();
    assert_eq!(r.status, 403, "{}", r.body_str());
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("scope=\"order/admin\"")
    );
    // The keys other VMs fetched serve the new configuration: no refetch.
    assert_eq!(
        mesh.idp.count(),
        fetches,
        "a rules-only push fetched the JWKS again"
    );
    assert!(mesh.upstream.count() > 0);
    mesh.envoy.assert_no_wasm_panic();
}

#[test]
fn two_instances_with_one_provider_name_and_different_jwks_stay_apart() {
    let dir = temp_dir("two");
    let key_a = TestKey::rsa("pool-key", 2048);
    let key_b = TestKey::rsa("pool-key", 2048);
    let idp_a = JwksServer::start(jwks(&[key_a.jwk()]).to_string());
    let idp_b = JwksServer::start(jwks(&[key_b.jwk()]).to_string());
    let upstream = EchoServer::start();
    // Two teams' WasmPlugins: same provider name and issuer, their own
    // JWKS URL and cluster.
    let team = |ns: &str, cluster: &str, port: u16| {
        let mut p = shipped_wasm_plugin();
        p["metadata"]["namespace"] = json!(ns);
        let jwks = &mut p["spec"]["pluginConfig"]["providers"]["cognito"]["remote_jwks"];
        jwks["cluster"] = json!(cluster);
        jwks["uri"] = json!(format!("http://127.0.0.1:{port}/{ns}/jwks.json"));
        Ecds::new(&dir, p)
    };
    let a = team("team-a", "jwks_a", idp_a.port());
    let b = team("team-b", "jwks_b", idp_b.port());
    let envoy = sidecar(
        vec![
            listener("main", vec![a.filter()]),
            listener("team_b", vec![b.filter()]),
        ],
        vec![
            cluster("upstream", upstream.port()),
            cluster("jwks_a", idp_a.port()),
            cluster("jwks_b", idp_b.port()),
        ],
    );
    let port_b = listener_port(&envoy, "team_b");
    let get = |port: u16, key: &TestKey| {
        let token = key.token(
            Alg::RS256,
            cognito_access_claims(ISSUER, CLIENT, "order/get.order", now()),
        );
        send(port, &Request::get("/api/v1/order").bearer(&token)).status
    };
    eventually("both instances ready", Duration::from_secs(10), || {
        get(envoy.port(), &key_a) == 200 && get(port_b, &key_b) == 200
    });
    for _ in 0..3 {
        assert_eq!(
            get(envoy.port(), &key_b),
            401,
            "team A's instance took team B's key"
        );
        assert_eq!(
            get(port_b, &key_a),
            401,
            "team B's instance took team A's key"
        );
        assert_eq!(get(envoy.port(), &key_a), 200);
        assert_eq!(get(port_b, &key_b), 200);
    }
    // Each fetched its own JWKS once.
    assert_eq!((idp_a.count(), idp_b.count()), (1, 1));
    envoy.assert_no_wasm_panic();
    let _ = std::fs::remove_dir_all(&dir);
}
