//! `testkit envoy ...` and `testkit mint`: see src/cli.rs.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    testkit::cli::main()
}

// `cargo build --target wasm32-wasip1` builds every binary of the workspace.
#[cfg(target_arch = "wasm32")]
fn main() {}
