//! The filter's module stays within 1 MiB (issue 15): Istio and Envoy
//! fetch and compile it on every proxy, and it had grown past the bound
//! unnoticed (1,083,825 bytes) before this test. `make test` builds the
//! module (`make wasm`) before the tests run; `JWT_POLICY_WASM` points at
//! another build.
//!
//! If this fails: see what grew (bench/PROFILE.md, "Module size"), and
//! keep cold code small rather than raising the bound.

#![allow(clippy::restriction)] // tests panic by design

const MAX_WASM_BYTES: u64 = 1024 * 1024;

#[test]
fn the_filter_module_is_at_most_one_mib() {
    // The kit fails, naming the path, when the module is not built.
    let path = testkit::wasm_path();
    let size = std::fs::metadata(&path)
        .unwrap_or_else(|e| {
            panic!(
                "filter wasm not found at {} ({e}; set JWT_POLICY_WASM or run `make wasm`)",
                path.display()
            )
        })
        .len();
    assert!(
        size <= MAX_WASM_BYTES,
        "{} is {size} bytes, {} over the 1 MiB bound",
        path.display(),
        size.saturating_sub(MAX_WASM_BYTES)
    );
}
