//! The `testkit` command (src/main.rs): the kit's Envoy launcher and token minting for the Python
//! scripts (bench/bench.py, scripts/demo.py), so that they start Envoy and
//! sign tokens exactly as the Rust tests do.
//!
//! ```text
//! testkit envoy --bootstrap FILE [--dir DIR] [--concurrency N] [-- ENVOY ARGS]
//! testkit mint < spec.json
//! ```
//!
//! `envoy` starts Envoy (ports 0 on 127.0.0.1 are discovered through
//! `--admin-address-path` and admin `/listeners`), prints one JSON line
//! `{"pid","admin_port","listeners":{name:port},"dir","log","argv"}` once it
//! is LIVE and stays in the foreground until Envoy exits; Envoy gets SIGKILL
//! when `testkit` ends, whatever ends it.
//!
//! `mint` reads a JSON spec on stdin and prints the result as JSON:
//!
//! ```text
//! {"keys":    {"<name>": {"alg": "RS256", "kid": "k1", "bits": 2048, "publish": true}},
//!  "tokens":  {"<name>": {"key": "<name>", "claims": {..}, "corrupt_signature": false}},
//!  "batches": [{"key": "<name>", "claims": {..}, "count": 1000, "out": "tokens.txt"}]}
//! ->
//! {"jwks": {"keys": [..]}, "tokens": {"<name>": "<jwt>"},
//!  "batches": [{"out": "tokens.txt", "count": 1000, "token_bytes": 812}]}
//! ```
//!
//! Keys are fresh on every run; the JWKS holds the public JWK (with `alg`)
//! of every key not marked `"publish": false`. Tokens have Cognito's header
//! `{"kid","alg"}`. A batch writes `count` distinct tokens to `out`, one a
//! line: each gets a fresh random `jti` (signed on every core).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::tokens::{corrupt_signature, random_jti};
use crate::{Alg, EnvoyConfig, TestKey};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "testkit",
    about = "jwt-policy's test kit: Envoy launcher and token minting"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start Envoy, print its pid and ports as one JSON line, stay until it exits.
    Envoy {
        /// The bootstrap (YAML or JSON) with an `admin` block; port 0 everywhere is best.
        #[arg(long)]
        bootstrap: PathBuf,
        /// Where Envoy's log, stdout and files go (kept); default: a temp dir, removed.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        concurrency: u32,
        /// Envoy's `-l`.
        #[arg(long, default_value = "info")]
        log_level: String,
        /// Envoy's `--component-log-level` ("" for none).
        #[arg(long, default_value = "wasm:debug")]
        component_log_level: String,
        /// `--file-flush-interval-msec`.
        #[arg(long, default_value_t = 50)]
        file_flush_ms: u32,
        /// More Envoy arguments, after `--`.
        #[arg(last = true)]
        envoy_args: Vec<String>,
    },
    /// Keys, JWKS and tokens from a JSON spec on stdin (see the module docs).
    Mint,
}

/// Runs the command line.
pub fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::Envoy {
            bootstrap,
            dir,
            concurrency,
            log_level,
            component_log_level,
            file_flush_ms,
            envoy_args,
        } => {
            let text = std::fs::read_to_string(&bootstrap)
                .unwrap_or_else(|e| fail(&format!("read {}: {e}", bootstrap.display())));
            let extra: Vec<&str> = envoy_args.iter().map(String::as_str).collect();
            let mut config = EnvoyConfig::raw(text)
                .concurrency(concurrency)
                .log_level(&log_level)
                .component_log_level(&component_log_level)
                .file_flush_ms(file_flush_ms)
                .extra_args(&extra)
                .die_with_parent();
            if let Some(dir) = dir {
                config = config.dir(dir);
            }
            let envoy = config.try_start().unwrap_or_else(|e| fail(&e));
            let dir = envoy.dir().to_path_buf();
            let config_path = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.file_stem().is_some_and(|s| s == "bootstrap"))
                .unwrap_or_default();
            let line = json!({
                "pid": envoy.pid(),
                "admin_port": envoy.admin_port(),
                "listeners": envoy.listeners(),
                "dir": dir,
                "log": dir.join("envoy.log"),
                "argv": std::iter::once(crate::envoy_binary().display().to_string())
                    .chain(config.args(&config_path, &dir))
                    .collect::<Vec<_>>(),
            });
            println!("{line}");
            let _ = std::io::stdout().flush();
            let status = envoy.wait();
            ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1))
        }
        Cmd::Mint => {
            let mut spec = String::new();
            std::io::stdin()
                .read_to_string(&mut spec)
                .unwrap_or_else(|e| fail(&format!("read stdin: {e}")));
            let spec: Value =
                serde_json::from_str(&spec).unwrap_or_else(|e| fail(&format!("spec: {e}")));
            println!("{}", mint(&spec));
            ExitCode::SUCCESS
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("testkit: {msg}");
    std::process::exit(1)
}

fn str_of<'v>(v: &'v Value, field: &str, what: &str) -> &'v str {
    v[field]
        .as_str()
        .unwrap_or_else(|| fail(&format!("{what}: `{field}` must be a string")))
}

fn mint(spec: &Value) -> Value {
    let mut keys: BTreeMap<&str, (TestKey, Alg)> = BTreeMap::new();
    let mut published = Vec::new();
    for (name, k) in spec["keys"].as_object().into_iter().flatten() {
        let what = format!("key {name}");
        let alg = Alg::from_name(str_of(k, "alg", &what))
            .unwrap_or_else(|| fail(&format!("{what}: unknown alg {}", k["alg"])));
        let kid = str_of(k, "kid", &what);
        let bits = k["bits"].as_u64().unwrap_or(2048) as usize;
        let key = TestKey::for_alg(kid, alg, bits);
        if k["publish"] != json!(false) {
            published.push(key.jwk_with_alg(alg));
        }
        keys.insert(name, (key, alg));
    }
    let key_of = |t: &Value, what: &str| {
        let name = str_of(t, "key", what);
        keys.get(name)
            .unwrap_or_else(|| fail(&format!("{what}: no key {name:?}")))
    };

    let mut tokens = serde_json::Map::new();
    for (name, t) in spec["tokens"].as_object().into_iter().flatten() {
        let (key, alg) = key_of(t, &format!("token {name}"));
        let mut token = key.token(*alg, t["claims"].clone());
        if t["corrupt_signature"] == json!(true) {
            token = corrupt_signature(&token);
        }
        tokens.insert(name.clone(), json!(token));
    }

    let mut batches = Vec::new();
    for (i, b) in spec["batches"].as_array().into_iter().flatten().enumerate() {
        let what = format!("batch {i}");
        let (key, alg) = key_of(b, &what);
        let count = b["count"].as_u64().unwrap_or(1) as usize;
        let out = str_of(b, "out", &what);
        let minted = mint_batch(key, *alg, &b["claims"], count);
        let mut text = minted.join("\n");
        text.push('\n');
        std::fs::write(out, text).unwrap_or_else(|e| fail(&format!("write {out}: {e}")));
        batches.push(json!({
            "out": out,
            "count": minted.len(),
            "token_bytes": minted.first().map_or(0, String::len),
        }));
    }
    json!({"jwks": crate::jwks(&published), "tokens": tokens, "batches": batches})
}

/// `count` tokens over `claims`, each with a fresh `jti`, on every core.
fn mint_batch(key: &TestKey, alg: Alg, claims: &Value, count: usize) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = count.div_ceil(threads.max(1));
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let n = per.min(count.saturating_sub(t * per));
                s.spawn(move || {
                    (0..n)
                        .map(|_| {
                            let mut c = claims.clone();
                            c["jti"] = json!(random_jti());
                            key.token(alg, c)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("minting thread"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_makes_the_keys_tokens_and_batches_of_a_spec() {
        let out = crate::scratch_dir("testkit-mint").join("tokens.txt");
        let claims = json!({"iss": "https://issuer.example", "jti": "x"});
        let spec = json!({
            "keys": {
                "main": {"alg": "ES256", "kid": "k1"},
                "other": {"alg": "ES256", "kid": "k1", "publish": false}
            },
            "tokens": {
                "valid": {"key": "main", "claims": claims},
                "tampered": {"key": "main", "claims": claims, "corrupt_signature": true},
                "forged": {"key": "other", "claims": claims}
            },
            "batches": [{"key": "main", "claims": claims, "count": 5, "out": out}]
        });
        let got = mint(&spec);
        let keys = got["jwks"]["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "only published keys: {keys:?}");
        assert_eq!(
            (keys[0]["kid"].as_str(), keys[0]["alg"].as_str()),
            (Some("k1"), Some("ES256"))
        );
        let token = |name: &str| got["tokens"][name].as_str().unwrap().to_string();
        let (valid, tampered) = (token("valid"), token("tampered"));
        assert_eq!(
            valid.rsplit_once('.').unwrap().0,
            tampered.rsplit_once('.').unwrap().0
        );
        assert_ne!(valid, tampered);
        assert!(valid.starts_with(&crate::b64url(r#"{"kid":"k1","alg":"ES256"}"#)));
        let lines: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(got["batches"][0]["count"], 5);
        assert_eq!(lines.len(), 5);
        let jtis: std::collections::BTreeSet<String> = lines
            .iter()
            .map(|t| {
                let payload = crate::b64url_decode(t.split('.').nth(1).unwrap());
                serde_json::from_slice::<Value>(&payload).unwrap()["jti"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(jtis.len(), 5, "each batch token has its own jti");
    }
}
