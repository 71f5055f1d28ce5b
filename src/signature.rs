//! Signature verification: the shape checks every path shares, the pure-Rust
//! verifier (jwt-simple), and the seam where a host-accelerated verifier
//! (Envoy's BoringSSL through `verify_signature`) plugs in.
//!
//! The shape checks run before any verifier so that all verifiers see the
//! same inputs and must agree: an RSA signature is exactly as long as the
//! modulus; an ECDSA signature is `r || s` of the curve's size with
//! `0 < r, s < n`; Ed25519 signatures are 64 bytes; HMAC tags are as long as
//! the hash.
//!
//! ECDSA signatures are malleable: `(r, n - s)` verifies wherever `(r, s)`
//! does. Most signers (BoringSSL, OpenSSL, AWS KMS, RustCrypto's P-256) do not
//! normalise `s`, so half of all genuine ES256 tokens carry a "high" `s`, and
//! refusing them would refuse valid tokens. The twin carries the same claims
//! from the same signer, so accepting it grants nothing new; a provider whose
//! signer normalises, and which wants one encoding per token, sets
//! `require_low_s`.

use jwt_simple::prelude::{Duration, UnixTimeStamp};
use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ECDSAP384PublicKeyLike, EdDSAPublicKeyLike, HS256Key, HS384Key,
    HS512Key, MACLike, NoCustomClaims, PS256PublicKey, PS384PublicKey, PS512PublicKey,
    RS256PublicKey, RS384PublicKey, RS512PublicKey, RSAPublicKeyLike, VerificationOptions,
};

use crate::algorithm::{Algorithm, KeyFamily};
use crate::jwks::{KeyMaterial, VerificationKey};
use crate::token::Jws;

/// The key a token is checked with.
#[derive(Clone, Copy)]
pub enum Key<'k> {
    Public(&'k VerificationKey),
    /// An HMAC shared secret.
    Secret(&'k [u8]),
}

/// What a verifier concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    /// This verifier cannot handle the algorithm or key; ask the next one.
    /// Never a conclusion about the token.
    CannotVerify,
}

/// Something that checks a JWS signature.
pub trait Verifier {
    /// `token` is the whole compact token and `jws` its parsed form; the
    /// signature covers `jws.signing_input`.
    fn verify(&self, alg: Algorithm, key: Key<'_>, jws: &Jws<'_>, token: &str) -> Verdict;

    /// A key set is about to be used (local keys at start, fetched keys
    /// when they arrive): a verifier that must learn about keys first (the
    /// host's, which probes each once) does it here.
    fn prepare(&self, _keys: &crate::jwks::KeySet) {}
}

/// Why a signature was refused before or by a verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// Wrong length, zero or out-of-range values, high-S.
    BadShape(&'static str),
    /// The signature does not verify.
    Mismatch,
}

impl SignatureError {
    pub fn description(self) -> &'static str {
        match self {
            SignatureError::BadShape(why) => why,
            SignatureError::Mismatch => "signature does not verify",
        }
    }
}

/// Checks the signature of `jws` with `key`: shape checks, then `preferred`
/// (e.g. the host's native verifier), falling back to the pure-Rust one
/// when `preferred` cannot verify this algorithm or key.
pub fn check(
    alg: Algorithm,
    key: Key<'_>,
    jws: &Jws<'_>,
    token: &str,
    preferred: &dyn Verifier,
    require_low_s: bool,
) -> Result<(), SignatureError> {
    check_shape(alg, key, &jws.signature, require_low_s).map_err(SignatureError::BadShape)?;
    let verdict = match preferred.verify(alg, key, jws, token) {
        Verdict::CannotVerify => PureRust.verify(alg, key, jws, token),
        v => v,
    };
    match verdict {
        Verdict::Valid => Ok(()),
        // The pure-Rust verifier handles everything; "cannot" is a failure.
        Verdict::Invalid | Verdict::CannotVerify => Err(SignatureError::Mismatch),
    }
}

/// P-256 group order, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// P-384 group order, big-endian.
const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// The checks every verifier relies on; see the module documentation.
pub fn check_shape(
    alg: Algorithm,
    key: Key<'_>,
    sig: &[u8],
    require_low_s: bool,
) -> Result<(), &'static str> {
    match (alg.family(), key) {
        (KeyFamily::Rsa, Key::Public(k)) => {
            if Some(sig.len()) != k.rsa_modulus_len() {
                return Err("RSA signature length differs from the key's modulus");
            }
            Ok(())
        }
        (KeyFamily::EcP256, Key::Public(_)) => check_ecdsa(sig, &P256_ORDER, require_low_s),
        (KeyFamily::EcP384, Key::Public(_)) => check_ecdsa(sig, &P384_ORDER, require_low_s),
        (KeyFamily::Ed25519, Key::Public(_)) => {
            if sig.len() != 64 {
                return Err("Ed25519 signature is not 64 bytes");
            }
            Ok(())
        }
        (KeyFamily::Hmac, Key::Secret(_)) => {
            if sig.len() != alg.hash().output_len() {
                return Err("HMAC tag length differs from the hash length");
            }
            Ok(())
        }
        _ => Err("key does not fit the algorithm"),
    }
}

fn check_ecdsa(sig: &[u8], order: &[u8], require_low_s: bool) -> Result<(), &'static str> {
    let size = order.len();
    if sig.len() != size.saturating_mul(2) {
        return Err("ECDSA signature has the wrong length");
    }
    let (r, s) = sig.split_at(size);
    if r.iter().all(|b| *b == 0) || s.iter().all(|b| *b == 0) {
        return Err("ECDSA signature has a zero component");
    }
    if r >= order || s >= order {
        return Err("ECDSA signature component out of range");
    }
    if require_low_s && !is_low_half(s, order) {
        return Err("ECDSA signature is not in low-S form");
    }
    Ok(())
}

/// Whether `2 * s < n` for big-endian `s` and odd `n` of the same length.
fn is_low_half(s: &[u8], n: &[u8]) -> bool {
    // Compare (s << 1) with n, most significant byte first, carrying the
    // shifted-out top bit of s as a leading byte.
    let mut doubled = Vec::with_capacity(s.len().saturating_add(1));
    doubled.push(s.first().map_or(0, |b| b >> 7));
    for (i, b) in s.iter().enumerate() {
        let next_top = s.get(i.saturating_add(1)).map_or(0, |n| n >> 7);
        doubled.push((b << 1) | next_top);
    }
    let mut padded_n = Vec::with_capacity(n.len().saturating_add(1));
    padded_n.push(0);
    padded_n.extend_from_slice(n);
    doubled < padded_n
}

/// The ECDSA JWS signature `r || s` as the DER `SEQUENCE { r, s }` that
/// OpenSSL-style verifiers take. `None` when the input cannot be split.
pub fn ecdsa_der_from_jws(sig: &[u8]) -> Option<Vec<u8>> {
    if sig.is_empty() || !sig.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = sig.split_at(sig.len() / 2);
    let mut body = Vec::with_capacity(sig.len().saturating_add(6));
    for int in [r, s] {
        let first_nonzero = int.iter().position(|b| *b != 0)?;
        let digits = int.get(first_nonzero..)?;
        let pad = digits.first().is_some_and(|b| b & 0x80 != 0);
        let len = digits.len().saturating_add(usize::from(pad));
        body.push(0x02);
        body.push(u8::try_from(len).ok().filter(|l| *l < 0x80)?);
        if pad {
            body.push(0);
        }
        body.extend_from_slice(digits);
    }
    let mut der = Vec::with_capacity(body.len().saturating_add(2));
    der.push(0x30);
    der.push(u8::try_from(body.len()).ok().filter(|l| *l < 0x80)?);
    der.extend_from_slice(&body);
    Some(der)
}

/// Verifies with jwt-simple's pure-Rust implementations (RustCrypto `rsa`,
/// `p256`, `p384`, ed25519-compact, HMAC). Works on every host; slow for RSA
/// inside a wasm VM (about 2 ms per RS256 verification in V8).
///
/// jwt-simple 0.15 verifies only whole compact tokens (`verify_token`): it
/// decodes the header and claims again itself, after [`crate::token`] has
/// parsed them. Its API offers no way to verify a signature over given
/// bytes, so that second parse stays; it costs microseconds next to the
/// milliseconds of pure-Rust RSA, only on cache misses, and only where the
/// host cannot verify. What could make the two parses disagree is checked
/// once, before either verifier: every registered header member jwt-simple
/// types must have that type ([`crate::token`]), and the claims it types
/// (`exp`, `nbf`, `iat`, `iss`, `sub`, `aud`, `jti`, `nonce`) are checked
/// as strictly or more.
pub struct PureRust;

impl PureRust {
    /// Options under which jwt-simple checks only the signature: every claim
    /// decision is ours, made after the signature is known to be good.
    fn signature_only() -> VerificationOptions {
        VerificationOptions {
            accept_future: true,
            time_tolerance: Some(Duration::from_secs(0)),
            artificial_time: Some(UnixTimeStamp::from_secs(0)),
            max_token_length: None,
            max_header_length: Some(usize::MAX),
            ..VerificationOptions::default()
        }
    }
}

impl Verifier for PureRust {
    fn verify(&self, alg: Algorithm, key: Key<'_>, _jws: &Jws<'_>, token: &str) -> Verdict {
        let options = Some(Self::signature_only());
        let outcome = match (key, alg) {
            (Key::Secret(secret), Algorithm::HS256) => HS256Key::from_bytes(secret)
                .verify_token::<NoCustomClaims>(token, options)
                .is_ok(),
            (Key::Secret(secret), Algorithm::HS384) => HS384Key::from_bytes(secret)
                .verify_token::<NoCustomClaims>(token, options)
                .is_ok(),
            (Key::Secret(secret), Algorithm::HS512) => HS512Key::from_bytes(secret)
                .verify_token::<NoCustomClaims>(token, options)
                .is_ok(),
            (Key::Public(k), alg) => match (&k.material, alg) {
                (KeyMaterial::Rsa { n, e }, alg) => verify_rsa(alg, n, e, token, options),
                (KeyMaterial::EcP256(pk), Algorithm::ES256) => {
                    pk.verify_token::<NoCustomClaims>(token, options).is_ok()
                }
                (KeyMaterial::EcP384(pk), Algorithm::ES384) => {
                    pk.verify_token::<NoCustomClaims>(token, options).is_ok()
                }
                (KeyMaterial::Ed25519(pk), Algorithm::EdDSA) => {
                    pk.verify_token::<NoCustomClaims>(token, options).is_ok()
                }
                _ => false,
            },
            (Key::Secret(_), _) => false,
        };
        if outcome {
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    }
}

fn verify_rsa(
    alg: Algorithm,
    n: &[u8],
    e: &[u8],
    token: &str,
    options: Option<VerificationOptions>,
) -> bool {
    macro_rules! with {
        ($key:ty) => {
            <$key>::from_components(n, e)
                .map(|k| k.verify_token::<NoCustomClaims>(token, options).is_ok())
                .unwrap_or(false)
        };
    }
    match alg {
        Algorithm::RS256 => with!(RS256PublicKey),
        Algorithm::RS384 => with!(RS384PublicKey),
        Algorithm::RS512 => with!(RS512PublicKey),
        Algorithm::PS256 => with!(PS256PublicKey),
        Algorithm::PS384 => with!(PS384PublicKey),
        Algorithm::PS512 => with!(PS512PublicKey),
        _ => false,
    }
}

/// A verifier that defers everything to [`PureRust`]; what native tools and
/// hosts without a crypto extension use.
pub struct NoAcceleration;

impl Verifier for NoAcceleration {
    fn verify(&self, _: Algorithm, _: Key<'_>, _: &Jws<'_>, _: &str) -> Verdict {
        Verdict::CannotVerify
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_s_boundary() {
        let n = P256_ORDER;
        // n/2 rounded down is the largest low s.
        let mut half = [0u8; 32];
        let mut carry = 0u8;
        for (i, b) in n.iter().enumerate() {
            half[i] = (b >> 1) | (carry << 7);
            carry = b & 1;
        }
        assert!(is_low_half(&half, &n));
        let mut above = half;
        above[31] += 1;
        assert!(!is_low_half(&above, &n));
        assert!(is_low_half(&[0u8; 32], &n));
        assert!(!is_low_half(&[0xffu8; 32], &n));
    }

    #[test]
    fn ecdsa_shape() {
        let mut sig = [1u8; 64];
        assert!(check_ecdsa(&sig, &P256_ORDER, true).is_ok());
        assert!(check_ecdsa(&sig[..63], &P256_ORDER, false).is_err());
        assert!(check_ecdsa(&[0u8; 64], &P256_ORDER, false).is_err());
        sig[32..].copy_from_slice(&P256_ORDER);
        assert!(check_ecdsa(&sig, &P256_ORDER, false).is_err(), "s = n");
        sig[32] = 0x80;
        assert!(check_ecdsa(&sig, &P256_ORDER, true).is_err(), "high s");
        assert!(
            check_ecdsa(&sig, &P256_ORDER, false).is_ok(),
            "high s, tolerated"
        );
        let mut r_eq_n = [1u8; 64];
        r_eq_n[..32].copy_from_slice(&P256_ORDER);
        assert!(check_ecdsa(&r_eq_n, &P256_ORDER, false).is_err(), "r = n");
    }

    #[test]
    fn der_encoding_of_ecdsa_signatures() {
        let mut sig = [0u8; 64];
        sig[31] = 1;
        sig[32] = 0x80;
        let der = ecdsa_der_from_jws(&sig).unwrap();
        // SEQUENCE { INTEGER 1, INTEGER 0x0080…00 (33 bytes with pad) }
        assert_eq!(&der[..5], &[0x30, 3 + 2 + 33, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 33, 0x00]);
        assert_eq!(der[8], 0x80);
        assert_eq!(der.len(), 2 + 3 + 2 + 33);
        assert!(ecdsa_der_from_jws(&[0u8; 64]).is_none(), "zero r");
        assert!(ecdsa_der_from_jws(&[1u8; 63]).is_none());
    }
}
