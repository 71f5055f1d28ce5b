#![no_main]
//! See `jwt_policy_fuzz::request` (fuzz/src/request.rs) for the input and the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jwt_policy_fuzz::request::run(data);
});
