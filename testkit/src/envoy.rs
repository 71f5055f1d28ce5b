//! Launching a real Envoy with a generated (or raw) bootstrap.
//!
//! Everything binds 127.0.0.1 port 0: Envoy writes its admin address to
//! `--admin-address-path`, and the listeners' real ports are read from admin
//! `GET /listeners?format=json`. A raw bootstrap must therefore have an
//! `admin` block (any port, 0 is best); [`Envoy::port`] is the port of its
//! listener named `main`, [`Envoy::listener_port`] that of any other.
//!
//! Nothing here sleeps for a fixed time: stats and log lines are waited for
//! with [`Envoy::expect_stat`], [`Envoy::wait_for_stat`] and
//! [`Envoy::wait_for_log`], which poll until the condition holds.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{Request, Response, try_send};
use crate::poll::poll_until;
use crate::repo_path;
use crate::servers::EchoServer;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stat or log line is waited for before a test fails.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The prefix of the filter's own stats (custom metrics).
pub const FILTER_STATS: &str = "wasmcustom.jwt_policy.";
const LOG_FORMAT: &str = "[%Y-%m-%d %T.%e][%t][%l][%n] %v";

/// Log lines that mean the wasm VM failed. As Envoy 1.40 logs them: a Rust
/// panic (proxy-wasm's panic hook, `[critical][wasm] wasm log <plugin> ...:
/// panicked at src/..`), the V8 trap that follows (`[error][wasm] Function:
/// proxy_on_request_headers failed: Uncaught RuntimeError: unreachable` plus
/// `Proxy-Wasm plugin in-VM backtrace:`), and load/configure failures
/// (`Wasm VM failed Failed to configure base Wasm plugin`, `Plugin configured
/// to fail closed failed to load`, `Unable to create Wasm plugin jwt_policy`).
const WASM_FAILURE_MARKERS: &[&str] = &[
    "panicked at",
    "wasm trap",
    "Function: proxy_on_",
    "failed: Uncaught",
    "Proxy-Wasm plugin in-VM backtrace",
    "Wasm VM failed",
    "Plugin configured to fail closed",
    "Internal wasm failure",
    "Failed to load Wasm",
    "Unable to create Wasm",
];

/// `$ENVOY_BIN`, else `<crate>/.venv/envoy`.
pub fn envoy_binary() -> PathBuf {
    let path = std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path(".venv/envoy"));
    assert!(
        path.exists(),
        "Envoy binary not found at {} (set ENVOY_BIN or run `make setup`)",
        path.display()
    );
    path
}

/// `$JWT_POLICY_WASM`, else `<crate>/target/wasm32-wasip1/release/jwt_policy.wasm`.
pub fn wasm_path() -> PathBuf {
    let path = std::env::var_os("JWT_POLICY_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/wasm32-wasip1/release/jwt_policy.wasm"));
    assert!(
        path.exists(),
        "filter wasm not found at {} (set JWT_POLICY_WASM or run `make wasm`)",
        path.display()
    );
    path
}

/// `envoy --mode validate -c <path>`, run from the repository root (its files
/// name the wasm by its relative path); both `Ok` and `Err` carry Envoy's output.
pub fn validate_config(path: impl AsRef<Path>) -> Result<String, String> {
    let out = Command::new(envoy_binary())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(path.as_ref())
        // Repository files name the wasm by its path from the root.
        .current_dir(crate::repo_root())
        .output()
        .expect("run envoy --mode validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// The reason on the filter's refusal line in an Envoy log: the text after
/// `configuration refused (<version>, plugin <p>, refusal <n>): ` (or after
/// `configuration refused: ` when the configuration could not be read),
/// without the closing note about the configuration accepted before.
pub fn refusal(log: &str) -> Option<&str> {
    let line = log.lines().find(|l| l.contains("configuration refused"))?;
    let (_, rest) = line.split_once("configuration refused")?;
    let reason = match rest.strip_prefix(": ") {
        Some(r) => r,
        None => rest.split_once("): ")?.1,
    };
    Some(
        reason
            .split_once("; the configuration accepted before")
            .map_or(reason, |(r, _)| r),
    )
}

/// The HTTP connection manager's request-path and header handling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hcm {
    pub normalize_path: bool,
    pub merge_slashes: bool,
    /// `path_with_escaped_slashes_action` (`None`: Envoy's default).
    pub escaped_slashes: Option<String>,
    /// `common_http_protocol_options.headers_with_underscores_action`.
    pub underscores: Option<String>,
}

impl Hcm {
    /// Envoy's own defaults: no normalisation at all.
    pub fn envoy_defaults() -> Hcm {
        Hcm {
            normalize_path: false,
            merge_slashes: false,
            escaped_slashes: None,
            underscores: None,
        }
    }

    /// What Istio sets on sidecars by default (`pathNormalization: BASE`):
    /// RFC 3986 normalisation, slashes not merged.
    pub fn istio_defaults() -> Hcm {
        Hcm {
            normalize_path: true,
            ..Hcm::envoy_defaults()
        }
    }

    /// The settings of the repository's `envoy.yaml`, read from it.
    pub fn shipped() -> Hcm {
        let path = repo_path("envoy.yaml");
        let text = fs::read_to_string(&path).expect("read envoy.yaml");
        let doc: Value = serde_norway::from_str(&text).expect("envoy.yaml is YAML");
        let hcm = &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
        assert!(hcm["stat_prefix"].is_string(), "no HCM found in envoy.yaml");
        let text = |v: &Value| v.as_str().map(str::to_string);
        Hcm {
            normalize_path: hcm["normalize_path"].as_bool().unwrap_or(false),
            merge_slashes: hcm["merge_slashes"].as_bool().unwrap_or(false),
            escaped_slashes: text(&hcm["path_with_escaped_slashes_action"]),
            underscores: text(
                &hcm["common_http_protocol_options"]["headers_with_underscores_action"],
            ),
        }
    }

    /// What the harness has always used: normalised, merged.
    pub fn harness() -> Hcm {
        Hcm {
            normalize_path: true,
            merge_slashes: true,
            escaped_slashes: None,
            underscores: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EnvoyConfig {
    /// The plugin configuration string (`None`: no wasm filter).
    plugin_config: Option<String>,
    raw: Option<String>,
    upstream_port: u16,
    clusters: Vec<(String, u16)>,
    routes: Vec<(String, String)>,
    /// Routes matched on a header value: (name, header, value, cluster).
    header_routes: Vec<(String, String, String, String)>,
    hcm: Hcm,
    concurrency: u32,
    wasm: Option<PathBuf>,
    log_level: String,
    component_log_level: String,
    extra_args: Vec<String>,
    /// An access log line format (file `access.log` in the Envoy's dir).
    access_log: Option<String>,
    /// Envoy's files go here (kept afterwards) instead of a temp dir.
    dir: Option<PathBuf>,
    /// Envoy gets SIGKILL when the thread that started it ends.
    die_with_parent: bool,
    file_flush_ms: u32,
}

impl EnvoyConfig {
    /// Listener `main` → wasm filter `jwt_policy` with this plugin config → router.
    pub fn new(plugin_config: Value) -> Self {
        Self::with_raw_plugin_config(&plugin_config.to_string())
    }

    /// Like `new`, with the configuration string passed verbatim (e.g. invalid JSON).
    pub fn with_raw_plugin_config(text: &str) -> Self {
        EnvoyConfig {
            plugin_config: Some(text.to_string()),
            raw: None,
            // Nothing listens on port 1: without `.upstream()` proxied requests get 503.
            upstream_port: 1,
            clusters: Vec::new(),
            routes: Vec::new(),
            header_routes: Vec::new(),
            hcm: Hcm::harness(),
            concurrency: 1,
            wasm: None,
            log_level: "info".into(),
            component_log_level: "wasm:debug".into(),
            extra_args: Vec::new(),
            access_log: None,
            dir: None,
            die_with_parent: false,
            file_flush_ms: 50,
        }
    }

    /// Same bootstrap with no wasm filter at all (router only).
    pub fn without_filter() -> Self {
        EnvoyConfig {
            plugin_config: None,
            ..Self::with_raw_plugin_config("")
        }
    }

    /// A fully custom bootstrap (JSON if it starts with `{`, else YAML). See
    /// the module docs for the admin / listener `main` conventions. Only the
    /// command-line settings (concurrency, log levels, extra args) still apply.
    pub fn raw(bootstrap: String) -> Self {
        EnvoyConfig {
            raw: Some(bootstrap),
            ..Self::without_filter()
        }
    }

    /// Port of the `upstream` cluster (127.0.0.1) that the default routes use.
    pub fn upstream(mut self, port: u16) -> Self {
        self.upstream_port = port;
        self
    }

    /// An extra STATIC HTTP/1.1 cluster on 127.0.0.1:`port` (e.g. `jwks`).
    pub fn cluster(mut self, name: &str, port: u16) -> Self {
        self.clusters.push((name.into(), port));
        self
    }

    /// A named prefix route to `upstream`, matched before `admin_route`
    /// (`/admin`) and `default_route` (`/`), in the order added.
    pub fn route(mut self, name: &str, prefix: &str) -> Self {
        self.routes.push((name.into(), prefix.into()));
        self
    }

    /// A route taken when `header` equals `value` (matched before every
    /// other route), to `cluster` (`upstream` or one added with `.cluster`).
    pub fn header_route(mut self, name: &str, header: &str, value: &str, cluster: &str) -> Self {
        self.header_routes
            .push((name.into(), header.into(), value.into(), cluster.into()));
        self
    }

    /// The HTTP connection manager's path and header settings.
    pub fn hcm(mut self, hcm: Hcm) -> Self {
        self.hcm = hcm;
        self
    }

    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// Use this wasm file instead of `wasm_path()`.
    pub fn wasm(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm = Some(path.into());
        self
    }

    /// Envoy's global `-l` level (default `info`).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    /// `--component-log-level` (default `wasm:debug`).
    pub fn component_log_level(mut self, spec: &str) -> Self {
        self.component_log_level = spec.into();
        self
    }

    /// Logs every request to `access.log` with this format (a newline is
    /// added); read it with [`Envoy::access_log`].
    pub fn access_log(mut self, format: &str) -> Self {
        self.access_log = Some(format.into());
        self
    }

    pub fn extra_args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Writes the bootstrap, `envoy.log`, `stdout.log` and `admin_address`
    /// into `dir` (created if needed, not emptied, kept after the Envoy
    /// stops) instead of a fresh temp dir.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// `--file-flush-interval-msec` (default 50: [`Envoy::wait_for_log`]
    /// sees a line that soon).
    pub fn file_flush_ms(mut self, ms: u32) -> Self {
        self.file_flush_ms = ms;
        self
    }

    /// Envoy gets SIGKILL when the thread that started it ends (Linux
    /// `PR_SET_PDEATHSIG`): for a launcher whose main thread owns the Envoy,
    /// as `testkit envoy` does, never for a test thread.
    pub fn die_with_parent(mut self) -> Self {
        self.die_with_parent = true;
        self
    }

    /// The bootstrap Envoy gets, as JSON (or the raw text).
    pub fn bootstrap(&self) -> String {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let route = |name: &str, prefix: &str| json!({"name": name, "match": {"prefix": prefix}, "route": {"cluster": "upstream"}});
        let mut routes: Vec<Value> = self
            .header_routes
            .iter()
            .map(|(name, header, value, cluster)| {
                json!({"name": name, "match": {"prefix": "/", "headers": [
                    {"name": header, "string_match": {"exact": value}}
                ]}, "route": {"cluster": cluster}})
            })
            .collect();
        routes.extend(self.routes.iter().map(|(n, p)| route(n, p)));
        routes.push(route("admin_route", "/admin"));
        routes.push(route("default_route", "/"));

        let mut http_filters = Vec::new();
        if let Some(plugin) = &self.plugin_config {
            let wasm = self.wasm.clone().unwrap_or_else(wasm_path);
            let filter = json!({
                "name": "envoy.filters.http.wasm",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": {
                        "name": "jwt_policy",
                        "root_id": "jwt_policy",
                        "failure_policy": "FAIL_RELOAD",
                        "vm_config": {
                            "vm_id": "jwt_policy",
                            "runtime": "envoy.wasm.runtime.v8",
                            "code": {"local": {"filename": wasm.to_str().expect("UTF-8 wasm path")}},
                        },
                        "configuration": {
                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                            "value": plugin,
                        },
                    },
                },
            });
            http_filters.push(filter.clone());
            // `route_check`: the README's chain, a filter that makes Envoy
            // select the route again, then the filter's second pass.
            let route_check = serde_json::from_str::<Value>(plugin)
                .is_ok_and(|c| c["route_check"] == json!(true));
            if route_check {
                http_filters.push(json!({
                    "name": "envoy.filters.http.header_mutation",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                        "mutations": {},
                    },
                }));
                let mut second = filter;
                second["typed_config"]["config"]["name"] = json!("jwt_policy_route_check");
                http_filters.push(second);
            }
        }
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }));

        let clusters: Vec<Value> = std::iter::once(("upstream", self.upstream_port))
            .chain(self.clusters.iter().map(|(n, p)| (n.as_str(), *p)))
            .map(|(name, port)| {
                json!({
                    "name": name,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                        {"endpoint": {"address": socket_address(port)}}
                    ]}]},
                })
            })
            .collect();

        json!({
            "admin": {"address": socket_address(0)},
            "static_resources": {
                "listeners": [{
                    "name": "main",
                    "address": socket_address(0),
                    "filter_chains": [{"filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "ingress",
                            "codec_type": "AUTO",
                            "normalize_path": self.hcm.normalize_path,
                            "merge_slashes": self.hcm.merge_slashes,
                            "path_with_escaped_slashes_action": self.hcm.escaped_slashes.clone().unwrap_or_else(|| "IMPLEMENTATION_SPECIFIC_DEFAULT".into()),
                            "common_http_protocol_options": {
                                "headers_with_underscores_action": self.hcm.underscores.clone().unwrap_or_else(|| "ALLOW".into()),
                            },
                            // Below the client's 10 s read timeout, so a stuck
                            // request shows up as Envoy's 408/504, not an I/O error.
                            "request_timeout": "8s",
                            "stream_idle_timeout": "8s",
                            "access_log": self.access_log.iter().map(|format| json!({
                                "name": "envoy.access_loggers.file",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                                    "path": ACCESS_LOG_PLACEHOLDER,
                                    "log_format": {"text_format_source": {"inline_string": format!("{format}\n")}},
                                },
                            })).collect::<Vec<_>>(),
                            "route_config": {"name": "local", "virtual_hosts": [
                                {"name": "all", "domains": ["*"], "routes": routes}
                            ]},
                            "http_filters": http_filters,
                        },
                    }]}],
                }],
                "clusters": clusters,
            },
        })
        .to_string()
    }

    /// Starts an [`EchoServer`] and this Envoy with it as the upstream.
    pub fn start_with_echo(self) -> (Envoy, EchoServer) {
        let upstream = EchoServer::start();
        let envoy = self.upstream(upstream.port()).start();
        (envoy, upstream)
    }

    pub fn start(&self) -> Envoy {
        self.try_start()
            .unwrap_or_else(|e| panic!("Envoy did not start: {e}"))
    }

    /// Starts Envoy and waits for admin `/ready` = `LIVE`. `Err` (with the
    /// log) if it exits first, e.g. because a configuration was rejected.
    pub fn try_start(&self) -> Result<Envoy, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let (dir, keep) = match &self.dir {
            Some(dir) => (dir.clone(), true),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "jwt-policy-envoy-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::SeqCst)
                ));
                let _ = fs::remove_dir_all(&dir);
                (dir, false)
            }
        };
        fs::create_dir_all(&dir).expect("create Envoy dir");
        // A stale address from an earlier run in a kept dir would be read
        // as this one's.
        let _ = fs::remove_file(dir.join("admin_address"));
        let bootstrap = self.bootstrap().replace(
            ACCESS_LOG_PLACEHOLDER,
            dir.join("access.log").to_str().expect("UTF-8 Envoy dir"),
        );
        let ext = if bootstrap.trim_start().starts_with('{') {
            "json"
        } else {
            "yaml"
        };
        let config_path = dir.join(format!("bootstrap.{ext}"));
        fs::write(&config_path, &bootstrap).expect("write bootstrap");
        let output = File::create(dir.join("stdout.log")).expect("create stdout.log");

        let mut command = Command::new(envoy_binary());
        command
            .args(self.args(&config_path, &dir))
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("stdout.log"))
            .stderr(output);
        if self.die_with_parent {
            die_with_parent(&mut command);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", envoy_binary().display()));
        let mut envoy = Envoy {
            child: Mutex::new(child),
            dir,
            keep,
            listeners: BTreeMap::new(),
            admin_port: 0,
        };

        let ready = poll_until(STARTUP_TIMEOUT, || {
            if let Some(status) = envoy.child.lock().unwrap().try_wait().unwrap() {
                return Some(Err(format!(
                    "Envoy exited during startup ({status}); log:\n{}",
                    envoy.log()
                )));
            }
            if envoy.admin_port == 0 {
                envoy.admin_port = fs::read_to_string(envoy.dir.join("admin_address"))
                    .ok()
                    .and_then(|a| a.trim().rsplit(':').next()?.parse().ok())
                    .unwrap_or(0);
            }
            (envoy.admin_port != 0
                && try_send(envoy.admin_port, &Request::get("/ready"))
                    .is_ok_and(|r| r.status == 200 && r.body_str().trim() == "LIVE"))
            .then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => {
                return Err(format!(
                    "Envoy not LIVE after {STARTUP_TIMEOUT:?}; log tail:\n{}",
                    tail(&envoy.log(), 40)
                ));
            }
        }

        let listeners = envoy.admin("GET", "/listeners?format=json").json();
        envoy.listeners = listeners["listener_statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| {
                let port = l["local_address"]["socket_address"]["port_value"].as_u64()?;
                Some((l["name"].as_str()?.to_string(), u16::try_from(port).ok()?))
            })
            .collect();
        if self.raw.is_none() && !envoy.listeners.contains_key("main") {
            return Err(format!(
                "no listener named `main` in admin /listeners: {listeners}"
            ));
        }
        Ok(envoy)
    }

    /// Envoy's arguments for this bootstrap file and dir.
    pub fn args(&self, config_path: &Path, dir: &Path) -> Vec<String> {
        let path = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
        let mut args = vec![
            "-c".to_string(),
            path(config_path),
            "--use-dynamic-base-id".into(),
            "--disable-hot-restart".into(),
            "--concurrency".into(),
            self.concurrency.to_string(),
            "--admin-address-path".into(),
            path(&dir.join("admin_address")),
            "--log-path".into(),
            path(&dir.join("envoy.log")),
            // The log file is flushed every 10 s by default: too slow for wait_for_log.
            "--file-flush-interval-msec".into(),
            self.file_flush_ms.to_string(),
            "-l".into(),
            self.log_level.clone(),
            "--log-format".into(),
            LOG_FORMAT.into(),
        ];
        if !self.component_log_level.is_empty() {
            args.push("--component-log-level".into());
            args.push(self.component_log_level.clone());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// SIGKILL for the child when the spawning thread ends (Linux only).
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Where the access log goes, filled in when the Envoy's dir is known.
const ACCESS_LOG_PLACEHOLDER: &str = "__ACCESS_LOG_PATH__";

fn socket_address(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A running Envoy; killed on drop. Its temp dir (bootstrap, `envoy.log`,
/// `stdout.log`) is removed then, unless the thread is panicking,
/// `KEEP_ENVOY_LOGS=1` or the dir was given ([`EnvoyConfig::dir`]).
pub struct Envoy {
    child: Mutex<Child>,
    dir: PathBuf,
    keep: bool,
    listeners: BTreeMap<String, u16>,
    admin_port: u16,
}

impl Envoy {
    /// Port of the listener `main`.
    pub fn port(&self) -> u16 {
        self.listener_port("main")
    }

    /// Port of the listener with this name.
    pub fn listener_port(&self, name: &str) -> u16 {
        *self
            .listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name:?}; listeners: {:?}", self.listeners))
    }

    /// Every listener's port, by name.
    pub fn listeners(&self) -> &BTreeMap<String, u16> {
        &self.listeners
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_running(&self) -> bool {
        self.child.lock().unwrap().try_wait().unwrap().is_none()
    }

    /// Waits for Envoy to exit by itself.
    pub fn wait(&self) -> std::process::ExitStatus {
        self.child.lock().unwrap().wait().expect("wait for Envoy")
    }

    /// A request to the admin interface, e.g. `admin("POST", "/logging?wasm=trace")`.
    pub fn admin(&self, method: &str, path: &str) -> Response {
        try_send(self.admin_port, &Request::new(method, path))
            .unwrap_or_else(|e| panic!("Envoy admin {method} {path}: {e}"))
    }

    /// The whole Envoy log, followed by anything Envoy wrote to stdout/stderr.
    pub fn log(&self) -> String {
        let read = |name: &str| {
            String::from_utf8_lossy(&fs::read(self.dir.join(name)).unwrap_or_default()).into_owned()
        };
        let (log, output) = (read("envoy.log"), read("stdout.log"));
        if output.trim().is_empty() {
            log
        } else {
            format!("{log}\n--- stdout/stderr ---\n{output}")
        }
    }

    /// The access log written so far (see [`EnvoyConfig::access_log`]).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    /// Polls the log until it contains `needle` (true) or `timeout` passes (false).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        poll_until(timeout, || self.log().contains(needle).then_some(())).is_some()
    }

    /// Returns once every line Envoy logged before this call is in the log
    /// file: it has the admin logger log a line and waits for it (the file
    /// is written every `--file-flush-interval-msec`).
    pub fn flush_log(&self) {
        const MARK: &str = "change log level: name='admin'";
        let marks = |log: &str| log.matches(MARK).count();
        let before = marks(&self.log());
        // The line is logged at info, at the level in force before the
        // change: raise a quieter admin logger to info first (that change
        // may log nothing), then log the line, then put the level back.
        let listing = self.admin("POST", "/logging").body_str();
        let level = listing
            .lines()
            .find_map(|l| l.trim().strip_prefix("admin: "))
            .unwrap_or("info")
            .trim()
            .to_string();
        let loud = matches!(level.as_str(), "trace" | "debug" | "info");
        if !loud {
            self.admin("POST", "/logging?admin=info");
        }
        let set = if loud { level.as_str() } else { "info" };
        self.admin("POST", &format!("/logging?admin={set}"));
        let flushed = poll_until(WAIT_TIMEOUT, || (marks(&self.log()) > before).then_some(()));
        if !loud {
            self.admin("POST", &format!("/logging?admin={level}"));
        }
        assert!(
            flushed.is_some() || !self.is_running(),
            "Envoy's log did not show the admin logger's line within {WAIT_TIMEOUT:?}"
        );
    }

    /// Integer counters and gauges from admin `/stats` (histograms
    /// skipped), as they are now. The filter hands its request counters to
    /// Envoy within about 100 ms of a request (src/filter/metrics.rs): to
    /// see a request's counts, wait for them ([`Self::expect_stat`],
    /// [`Self::wait_for_stat`]).
    pub fn stats(&self) -> BTreeMap<String, u64> {
        self.admin("GET", "/stats")
            .body_str()
            .lines()
            .filter_map(|line| {
                let (name, value) = line.rsplit_once(": ")?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// One stat now, 0 if absent.
    pub fn stat(&self, name: &str) -> u64 {
        self.stats().get(name).copied().unwrap_or(0)
    }

    /// One of the filter's stats now: `stat("wasmcustom.jwt_policy.<leaf>")`.
    pub fn filter_stat(&self, leaf: &str) -> u64 {
        self.stat(&format!("{FILTER_STATS}{leaf}"))
    }

    /// Polls the stat until `ok(value)` holds and returns the value; panics
    /// with the last value after [`WAIT_TIMEOUT`].
    pub fn wait_for_stat(&self, name: &str, ok: impl Fn(u64) -> bool) -> u64 {
        let mut last = 0;
        poll_until(WAIT_TIMEOUT, || {
            last = self.stat(name);
            ok(last).then_some(last)
        })
        .unwrap_or_else(|| {
            panic!("stat {name} is {last}, still not as expected after {WAIT_TIMEOUT:?}")
        })
    }

    /// Waits until the stat equals `want` (panics after [`WAIT_TIMEOUT`]).
    /// Counts land together per request, so after a non-zero expectation
    /// an `expect_stat(.., 0)` about the same request is meaningful;
    /// alone it passes at once.
    pub fn expect_stat(&self, name: &str, want: u64) {
        let mut last = 0;
        let got = poll_until(WAIT_TIMEOUT, || {
            last = self.stat(name);
            (last == want).then_some(())
        });
        assert!(
            got.is_some(),
            "stat {name}: expected {want}, still {last} after {WAIT_TIMEOUT:?}"
        );
    }

    /// [`Self::expect_stat`] of `wasmcustom.jwt_policy.<leaf>`.
    pub fn expect_filter_stat(&self, leaf: &str, want: u64) {
        self.expect_stat(&format!("{FILTER_STATS}{leaf}"), want);
    }

    /// [`Self::wait_for_stat`] of `wasmcustom.jwt_policy.<leaf>`.
    pub fn wait_for_filter_stat(&self, leaf: &str, ok: impl Fn(u64) -> bool) -> u64 {
        self.wait_for_stat(&format!("{FILTER_STATS}{leaf}"), ok)
    }

    /// The filter's decisions counted so far: `allowed` plus every
    /// `denied.<reason>` and `report.would_deny.<reason>`. Each decided
    /// request adds exactly one, in the same batch as all its other
    /// counts.
    pub fn decisions(&self) -> u64 {
        let prefixes = ["denied.", "report.would_deny."].map(|p| format!("{FILTER_STATS}{p}"));
        self.stats()
            .iter()
            .filter(|(name, _)| {
                name.strip_prefix(FILTER_STATS) == Some("allowed")
                    || prefixes.iter().any(|p| {
                        name.strip_prefix(p.as_str())
                            .is_some_and(|r| !r.contains('.'))
                    })
            })
            .map(|(_, v)| *v)
            .sum()
    }

    /// Waits until the filter has counted exactly `n` decisions (see
    /// [`Self::decisions`]): then every count of those requests is in
    /// `/stats`, zeros included. Panics after [`WAIT_TIMEOUT`].
    pub fn expect_decisions(&self, n: u64) {
        let mut last = 0;
        let got = poll_until(WAIT_TIMEOUT, || {
            last = self.decisions();
            (last == n).then_some(())
        });
        assert!(
            got.is_some(),
            "expected {n} decisions counted, still {last} after {WAIT_TIMEOUT:?}"
        );
    }

    /// Panics if Envoy died or its log shows a wasm panic, trap or VM failure.
    pub fn assert_no_wasm_panic(&self) {
        // A VM that crashed and was reloaded (FAIL_RELOAD) shows in the stats
        // even if its log lines were missed.
        let reloads: u64 = self
            .stats()
            .iter()
            .filter(|(name, _)| name.starts_with("wasm.") && name.contains("vm_reload"))
            .map(|(_, v)| *v)
            .sum();
        if self.is_running() {
            self.flush_log();
        }
        let log = self.log();
        assert_eq!(
            reloads,
            0,
            "a wasm VM was reloaded after a failure; log tail:\n{}",
            tail(&log, 40)
        );
        let excerpts = wasm_failures(&log);
        if !excerpts.is_empty() {
            panic!(
                "wasm failure in the Envoy log:\n{}",
                excerpts.join("\n...\n")
            );
        }
        assert!(
            self.is_running(),
            "Envoy is no longer running; log tail:\n{}",
            tail(&log, 40)
        );
    }
}

/// Up to ten excerpts of `log` (a marker line and the four after it) that
/// show a wasm panic, trap or VM failure ([`WASM_FAILURE_MARKERS`]).
pub fn wasm_failures(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut excerpts = Vec::new();
    let mut i = 0;
    while i < lines.len() && excerpts.len() < 10 {
        if WASM_FAILURE_MARKERS.iter().any(|m| lines[i].contains(m)) {
            let end = (i + 5).min(lines.len());
            excerpts.push(lines[i..end].join("\n"));
            i = end;
        } else {
            i += 1;
        }
    }
    excerpts
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        if thread::panicking() {
            eprintln!(
                "Envoy log kept in {}; tail:\n{}",
                self.dir.display(),
                tail(&self.log(), 40)
            );
        } else if self.keep {
        } else if std::env::var("KEEP_ENVOY_LOGS").as_deref() == Ok("1") {
            eprintln!("Envoy log kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
