//! Signature verification through Envoy's BoringSSL (`verify_signature`
//! foreign function): about 35 µs for RS256 instead of about 2 ms in the
//! pure-Rust verifier inside V8.
//!
//! Trusted only after proof: at start the function must verify the
//! self-test tokens and refuse their corrupted twins, and each key is
//! probed once per key set to learn whether BoringSSL can read it. A host
//! error is never a verdict: the request falls back to the pure-Rust
//! verifier.

use std::cell::Cell;

use crate::algorithm::Algorithm;
use crate::envoy_crypto;
use crate::jwks::{KeySet, VerificationKey};
use crate::signature::{Key, Verdict, Verifier};
use crate::stats::VerifiedBy;
use crate::token::Jws;

use super::abi::{self, Level};

pub struct HostVerifier {
    available: bool,
    last: Cell<Option<VerifiedBy>>,
}

fn ask(alg: Algorithm, key: &VerificationKey, jws: &Jws<'_>) -> Verdict {
    let Some(args) = envoy_crypto::arguments(
        alg,
        &key.spki_der,
        &jws.signature,
        jws.signing_input.as_bytes(),
    ) else {
        return Verdict::CannotVerify;
    };
    match abi::call_foreign(envoy_crypto::FUNCTION, &args).map(|r| envoy_crypto::parse_result(&r)) {
        Ok(Some(r)) if r.result => Verdict::Valid,
        Ok(Some(_)) => Verdict::Invalid,
        Ok(None) | Err(_) => Verdict::CannotVerify,
    }
}

impl HostVerifier {
    /// Checks whether the host offers a working `verify_signature`.
    /// `wanted: false` (configuration) keeps everything on pure Rust.
    pub fn detect(wanted: bool) -> HostVerifier {
        let available = wanted
            && match envoy_crypto::self_test(|alg, key, jws, _| ask(alg, key, jws)) {
                Ok(()) => {
                    abi::log(
                        Level::Debug,
                        "host signature verification (verify_signature) passed its self-test",
                    );
                    true
                }
                Err(why) => {
                    abi::log(
                        Level::Info,
                        &format!(
                            "host signature verification unavailable ({why}); using the pure-Rust verifier"
                        ),
                    );
                    false
                }
            };
        HostVerifier {
            available,
            last: Cell::new(None),
        }
    }

    /// Which verifier checked the last signature (and forget it).
    pub fn take_path(&self) -> Option<VerifiedBy> {
        self.last.take()
    }
}

impl Verifier for HostVerifier {
    /// Probes each key of a new key set once.
    fn prepare(&self, keys: &KeySet) {
        for key in keys.keys() {
            let usable = self.available
                && envoy_crypto::probe_arguments(key)
                    .and_then(|args| abi::call_foreign(envoy_crypto::FUNCTION, &args).ok())
                    .and_then(|r| envoy_crypto::parse_result(&r))
                    .is_some_and(|r| envoy_crypto::probe_says_readable(&r));
            // A key set is prepared once; a second call finds it decided.
            let _ = key.host_usable.set(usable);
            if self.available && !usable && !key.spki_der.is_empty() {
                abi::log(
                    Level::Info,
                    &format!(
                        "key {} is not readable by the host verifier; it is checked in pure Rust",
                        key.kid.as_deref().unwrap_or("(no kid)")
                    ),
                );
            }
        }
    }

    fn verify(&self, alg: Algorithm, key: Key<'_>, jws: &Jws<'_>, _token: &str) -> Verdict {
        // Until proven otherwise, the pure-Rust verifier (the fallback) runs.
        self.last.set(Some(VerifiedBy::Pure));
        let Key::Public(key) = key else {
            return Verdict::CannotVerify;
        };
        if !self.available || !envoy_crypto::supports(alg) || key.host_usable.get() != Some(&true) {
            return Verdict::CannotVerify;
        }
        let verdict = ask(alg, key, jws);
        if verdict != Verdict::CannotVerify {
            self.last.set(Some(VerifiedBy::Host));
        }
        verdict
    }
}
