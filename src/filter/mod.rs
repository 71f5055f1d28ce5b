//! The proxy-wasm layer: moves bytes between the host and the core, and
//! nothing else. Compiled for wasm32 only.
//!
//! | file | concern |
//! |---|---|
//! | `abi.rs` | the hostcalls, without panicking wrappers |
//! | `root.rs` | configuration, tick, JWKS callouts |
//! | `http.rs` | one request |
//! | `vm.rs` | per-VM state: decide and act, waiting requests, fetch driving |
//! | `remote.rs` | one provider's remote JWKS in shared data |
//! | `request.rs` | lazy request view over header hostcalls |
//! | `host_verify.rs` | signature checks through Envoy's BoringSSL |
//! | `metrics.rs` | stats |

mod abi;
mod host_verify;
mod http;
mod metrics;
mod remote;
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
