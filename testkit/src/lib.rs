//! The jwt-policy test kit: everything the tests, the fuzz targets, the
//! bench and the demo need around the filter, written once.
//!
//! | module | what |
//! |---|---|
//! | [`envoy`] | a real Envoy: bootstrap generation, start-up with port discovery, logs, stats, polling |
//! | [`http`] | a raw HTTP/1.1 client (every byte under control) and the message readers the servers share |
//! | [`servers`] | an echo upstream, a switchable JWKS server, a Python WSGI upstream (python/) |
//! | [`tokens`] | fresh keys, their JWKs, JWS signing of arbitrary bytes, Cognito-shaped claims |
//! | [`poll`] | waiting for a condition with a deadline (never a fixed sleep) |
//!
//! The `testkit` binary ([`cli`]) gives the Python scripts the same
//! launcher (`testkit envoy`) and minting (`testkit mint`).
//!
//! Without the default `envoy` feature only [`tokens`], [`poll`] and the
//! path helpers are built (what the fuzz targets use).

// A test kit reports trouble by panicking: the workspace's deny list is for
// the filter.
#![allow(clippy::restriction)]
// Native only (the wasm build of the workspace builds an empty kit).
#![cfg(not(target_arch = "wasm32"))]

#[cfg(feature = "envoy")]
pub mod cli;
#[cfg(feature = "envoy")]
pub mod envoy;
#[cfg(feature = "envoy")]
pub mod http;
pub mod poll;
#[cfg(feature = "envoy")]
pub mod servers;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(feature = "envoy")]
pub use envoy::{
    Envoy, EnvoyConfig, FILTER_STATS, Hcm, WAIT_TIMEOUT, envoy_binary, refusal, validate_config,
    wasm_path,
};
#[cfg(feature = "envoy")]
pub use http::{Request, Response, UpstreamView, send, send_and_abort, send_h2, try_send};
pub use poll::{eventually, poll_until};
#[cfg(feature = "envoy")]
pub use servers::{EchoServer, EchoedRequest, JwksMode, JwksServer, WsgiUpstream, WsgiView};
pub use tokens::{
    Alg, KeyMaterial, TestKey, b64url, b64url_decode, cognito_access_claims, es_high_s, jwks, now,
};

/// The repository's root directory (the kit lives in `<root>/testkit`).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ has a parent")
}

/// `<root>/<rel>`.
pub fn repo_path(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

/// `<root>/.venv/bin/<name>` (installed by `make setup`); panics saying so
/// when it is missing.
pub fn venv_bin(name: &str) -> PathBuf {
    let path = repo_root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} not found (run `make setup`)",
        path.display()
    );
    path
}

/// `<root>/.venv/bin/python`.
pub fn venv_python() -> PathBuf {
    venv_bin("python")
}

/// A fresh, empty directory under the system's temp dir, named after
/// `prefix`, this process and a counter.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A file with `contents` in a fresh [`scratch_dir`].
pub fn temp_file(prefix: &str, name: &str, contents: &[u8]) -> PathBuf {
    let path = scratch_dir(prefix).join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}
