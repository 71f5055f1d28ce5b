//! The proxy-wasm layer: adapters that move bytes between Envoy and the
//! core and make hostcalls; no decision is made here. Compiled for wasm32
//! only.
//!
//! | file | adapts |
//! |---|---|
//! | `abi.rs` | the hostcalls, without panicking wrappers |
//! | `root.rs` | the root context: configuration, tick, fetch answers |
//! | `http.rs` | the HTTP context: one request |
//! | `vm.rs` | one VM's core state, and the hostcalls that carry out its decisions |
//! | `host.rs` | shared data and `dispatch_http_call` as the core's store and fetcher |
//! | `request.rs` | the request's header map and route name |
//! | `host_verify.rs` | Envoy's BoringSSL (`verify_signature`) as a verifier |
//! | `metrics.rs` | proxy-wasm metrics for the core's stats |

mod abi;
mod host;
mod host_verify;
mod http;
mod metrics;
mod request;
mod root;
mod vm;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // A panic aborts the VM; say why, at the level operators watch.
    std::panic::set_hook(Box::new(|info| {
        abi::log(abi::Level::Critical, &format!("panic: {info}"));
    }));
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> { Box::new(root::Root::new(context_id)) });
}}
