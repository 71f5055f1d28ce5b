#![no_main]
//! See `jwt_policy_fuzz::config` (fuzz/src/config.rs) for the input and the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jwt_policy_fuzz::config::run(data);
});
