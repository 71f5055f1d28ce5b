//! The `token` target: bytes as a bearer token through the whole decision
//! of [`crate::token_policy`] (`POST /api/v1/order`, scope
//! [`crate::SCOPE`]).
//!
//! Two input forms:
//! - **raw**: the input is the token (`Authorization: Bearer <input>`).
//!   Seeds are valid tokens and attack shapes; mutations of the text reach
//!   the base64 and segment checks, the signature shape checks and the
//!   verifiers.
//! - **structured**: an input that starts with `{` is
//!   `HEADER\nPAYLOAD\nSIGNER`. HEADER and PAYLOAD are used byte for byte as
//!   the JWS header and payload; SIGNER `es`, `ed` or `hs` signs them with
//!   that fuzz key (ES256, EdDSA, HS256), anything else is taken as the
//!   signature bytes.
//!   This is how the fuzzer gets validly signed tokens with arbitrary JSON
//!   past the signature to the JSON, claim, time, audience and scope checks.
//!
//! Invariants: no panic; the decision is the same with and without the
//! verified-token cache (a miss, then a hit); denials are 401 or 403, never
//! 503 or a wait (keys are local); an `Allow` only for a token whose
//! signature passes the reference check under the key of its `alg` and
//! whose claims pass the reference claim check ([`crate::check_allowed_token`]);
//! header hygiene of the response or forwarded request.

use std::borrow::Cow;

use jwt_policy::engine::Outcome;

use crate::keys::{Signer, b64url};
use crate::{FuzzRequest, SCOPE, check_allowed_token, check_outcome, check_plan};

/// The token text for an input (see the module documentation).
pub fn token_bytes(data: &[u8]) -> Cow<'_, [u8]> {
    if !data.starts_with(b"{") {
        return Cow::Borrowed(data);
    }
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let header = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let signer = parts.next().unwrap_or_default();
    let token = match Signer::from_short(signer) {
        Some(s) => s.mint(header, payload),
        None => format!("{}.{}.{}", b64url(header), b64url(payload), b64url(signer)),
    };
    Cow::Owned(token.into_bytes())
}

/// The structured input that [`token_bytes`] signs with `signer`.
pub fn structured(header: &str, payload: &str, signer: Signer) -> Vec<u8> {
    format!("{header}\n{payload}\n{}", signer.short()).into_bytes()
}

/// Runs one input; returns the decision for the seed tests.
pub fn run(data: &[u8]) -> Outcome {
    let policy = crate::token_policy();
    let token = token_bytes(data);
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(&token);
    let req = FuzzRequest::new("POST", "/api/v1/order").with_header("authorization", &value);
    let (eval, plan) = crate::decide_twice(policy, &req);
    check_outcome(&eval, false);
    check_plan(&plan);
    if let Outcome::Allow(grant) = &eval.outcome {
        // The filter takes the header value after the scheme, trimmed.
        let text = std::str::from_utf8(token.trim_ascii()).expect("an allowed token is ASCII");
        check_allowed_token(text, "cognito", &[SCOPE], &[]);
        let client = grant.headers.iter().find(|(h, _)| h == "x-client-id");
        assert_eq!(
            client.map(|(_, v)| v.as_str()),
            Some(crate::CLIENT),
            "x-client-id of an allowed token"
        );
    }
    eval.outcome
}
