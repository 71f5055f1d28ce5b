//! Integration-test harness: a real Envoy, raw HTTP/1.1, test servers, tokens.
//! Used from each test binary with `mod support;`.
#![allow(dead_code)]

pub mod cases;
pub mod envoy;
pub mod http;
pub mod mesh_cases;
pub mod servers;
pub mod tokens;

// Each test binary uses a subset.
#[allow(unused_imports)]
pub use envoy::{Envoy, EnvoyConfig, Hcm, envoy_binary, refusal, validate_config, wasm_path};
#[allow(unused_imports)]
pub use http::{Request, Response, UpstreamView, send, send_and_abort, send_h2, try_send};
#[allow(unused_imports)]
pub use servers::{
    EchoServer, EchoedRequest, JwksMode, JwksServer, WsgiUpstream, WsgiView, venv_python,
};
#[allow(unused_imports)]
pub use tokens::{
    Alg, KeyMaterial, TestKey, b64url, b64url_decode, cognito_access_claims, es_high_s, jwks, now,
};
