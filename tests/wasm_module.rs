//! The filter's module as `make wasm` builds it (issue 15). `make test`
//! builds the module before the tests run; `JWT_POLICY_WASM` points at
//! another build.
//!
//! - It stays within 1 MiB: Istio and Envoy fetch and compile it on every
//!   proxy, and it had grown past the bound unnoticed (1,083,825 bytes)
//!   before this test. If this fails: see what grew (bench/PROFILE.md,
//!   "Module size"), and keep cold code small rather than raising the
//!   bound.
//! - It exports only the proxy-wasm callbacks the filter implements
//!   (tools/wasm-trim; `CALLBACKS` in src/filter/mod.rs): Envoy enters the
//!   VM on every request for each callback exported.

#![allow(clippy::restriction)] // tests panic by design

const MAX_WASM_BYTES: u64 = 1024 * 1024;

fn module() -> (std::path::PathBuf, Vec<u8>) {
    // The kit fails, naming the path, when the module is not built.
    let path = testkit::wasm_path();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "filter wasm not found at {} ({e}; set JWT_POLICY_WASM or run `make wasm`)",
            path.display()
        )
    });
    (path, bytes)
}

#[test]
fn the_filter_module_exports_only_the_callbacks_it_implements() {
    let (path, bytes) = module();
    let all: Vec<String> = wasm_trim::exports(&bytes)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    let callbacks: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with(wasm_trim::CALLBACK_PREFIX))
        .collect();
    // What a request costs in VM entries: create, request headers, delete
    // (and its body and trailers, if any: held while it waits for keys).
    // The rest is the root context's (configuration, tick, JWKS answers)
    // and the allocator the host copies data in with.
    assert_eq!(
        callbacks,
        [
            "proxy_on_configure",
            "proxy_on_context_create",
            "proxy_on_delete",
            "proxy_on_http_call_response",
            "proxy_on_memory_allocate",
            "proxy_on_request_body",
            "proxy_on_request_headers",
            "proxy_on_request_trailers",
            "proxy_on_tick",
            "proxy_on_vm_start",
        ],
        "{}: run `make wasm` (it trims the SDK's other entry points)",
        path.display()
    );
    // The ABI version and the memory stay.
    assert!(
        all.iter().any(|n| n == "proxy_abi_version_0_2_1"),
        "{all:?}"
    );
    assert!(all.iter().any(|n| n == "memory"), "{all:?}");
}

#[test]
fn the_filter_module_is_at_most_one_mib() {
    let (path, bytes) = module();
    let size = bytes.len() as u64;
    assert!(
        size <= MAX_WASM_BYTES,
        "{} is {size} bytes, {} over the 1 MiB bound",
        path.display(),
        size.saturating_sub(MAX_WASM_BYTES)
    );
}
