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

/// The proxy-wasm callbacks this filter implements, for `make wasm`
/// (tools/wasm-trim): the SDK exports every callback of the ABI, and Envoy
/// enters the VM on every request for each one a module exports: response
/// headers, response body, `on_log` and `on_done` each cost Envoy CPU on
/// every request (bench/PROFILE.md, "Entry points") to run the SDK's
/// defaults. The build removes every `proxy_on_*` export not named here;
/// the host then applies the same defaults (continue; done) without
/// entering the VM. Implementing another callback means naming it here,
/// or it is never called (tests/wasm_module.rs lists them too). The root
/// context: `on_vm_start`, `on_configure`, `on_tick`,
/// `on_http_call_response`; the HTTP context: the request's headers, and
/// its body and trailers (held while the request waits for keys); both:
/// create and delete, and the allocator the host copies data in with.
#[used]
#[unsafe(link_section = "wasm_trim.callbacks")]
static CALLBACKS: [u8; 216] = *b"proxy_on_memory_allocate proxy_on_context_create proxy_on_delete \
proxy_on_vm_start proxy_on_configure proxy_on_tick proxy_on_http_call_response \
proxy_on_request_headers proxy_on_request_body proxy_on_request_trailers";

proxy_wasm::main! {{
    // A panic aborts the VM; say why, at the level operators watch.
    std::panic::set_hook(Box::new(|info| {
        abi::log(abi::Level::Critical, &format!("panic: {info}"));
    }));
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> { Box::new(root::Root::new(context_id)) });
}}
