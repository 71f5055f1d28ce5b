//! jwt-policy: an API manager's JWT validation policy (AWS Cognito access
//! tokens first) as a proxy-wasm HTTP filter for Envoy and Istio.
//!
//! The crate is a host-independent core, unit-tested natively, and a thin
//! proxy-wasm layer ([`filter`], wasm32 only) that moves bytes between the
//! host and the core:
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | the plugin configuration JSON as written |
//! | [`config_version`] | which configuration is in force: its hash, Istio's resource version |
//! | [`policy`] | the configuration checked and compiled |
//! | [`request`] | the request as received: header entries, route name |
//! | [`path`] | the path decided on and forwarded: normal form, ambiguity |
//! | [`percent`] | percent-escapes, read in one place |
//! | [`rules`] | which rule a request falls under |
//! | [`path_template`] | API Gateway route-key paths (`/orders/{id}`) |
//! | [`hashing`] | a fast hasher for keys the filter chooses |
//! | [`hosts`] | host patterns (`*.example.com`) |
//! | [`extract`] | where the token is in a request |
//! | [`token`] | strict parsing of a compact JWS / JWT |
//! | [`jwks`] | JSON Web Key Sets and key selection |
//! | [`signature`] | signature checks: shape, pure-Rust, host seam |
//! | [`claims`] | every claim check: time, issuer, audience, `token_use`, claims, scopes |
//! | [`engine`] | the decision for one request: path, rule, authenticate, validate, authorize |
//! | [`plan`] | what the host does with the decision |
//! | [`filter_state`] | what a decision publishes for access logs and later filters |
//! | [`route_check`] | route-name rules re-decided on the route Envoy forwards on |
//! | [`denial`] | denials and their RFC 6750 responses |
//! | [`envoy_crypto`] | Envoy's `verify_signature` messages and self-test |
//! | [`token_cache`] | the verified-token cache |
//! | [`remote_jwks`] | keys fetched from the issuer, shared by all VMs: records, lease, refresh, back-off |
//! | [`waiters`] | requests held until keys arrive |
//! | [`tick`] | how often a VM's root context ticks |
//! | [`stats`] | stat names, what a decision counts, batching |
//! | [`words`] | byte strings compared and scanned a word at a time |

// The deny list is the workspace's (`[workspace.lints]` in Cargo.toml);
// unit tests panic by design.
#![cfg_attr(test, allow(clippy::restriction))]

pub mod algorithm;
pub mod b64;
pub mod claims;
pub mod config;
pub mod config_version;
pub mod denial;
pub mod engine;
pub mod envoy_crypto;
pub mod extract;
pub mod filter_state;
pub mod hashing;
pub mod hosts;
pub mod json;
pub mod jwks;
pub mod limits;
pub mod path;
pub mod path_template;
pub mod percent;
pub mod plan;
pub mod policy;
pub mod remote_jwks;
pub mod request;
pub mod route_check;
pub mod rules;
pub mod signature;
pub mod stats;
pub mod text;
pub mod tick;
pub mod token;
pub mod token_cache;
pub mod trace;
pub mod waiters;
pub mod words;

#[cfg(test)]
mod testkit;

#[cfg(target_arch = "wasm32")]
mod filter;
