//! Envoy's `verify_signature` foreign function (BoringSSL, reachable from
//! wasm): which algorithms it can check, its protobuf messages, and the
//! self-test that proves it works before it is trusted.
//!
//! Messages (Envoy `source/extensions/common/wasm/ext/verify_signature.proto`):
//! `VerifySignatureArguments { string hash_function = 1; bytes public_key = 2
//! (DER SubjectPublicKeyInfo); bytes signature = 3; bytes text = 4; }` and
//! `VerifySignatureResult { bool result = 1; string error = 2; }`. A bad
//! signature, and a key BoringSSL cannot read, both come back as
//! `result = false`: only `result = true` means valid, and every key is
//! probed once (see [`probe_arguments`]) before the host is asked about it.
//! RSA padding is PKCS#1 v1.5 only (no PS*), ECDSA wants DER signatures, and
//! EdDSA does not fit the hash-then-verify call; those stay on the
//! pure-Rust verifier.

use crate::algorithm::{Algorithm, KeyFamily};
use crate::jwks::{self, VerificationKey};
use crate::limits::Limits;
use crate::signature::{self, Key, Verdict};
use crate::token::{self, Jws};

/// The foreign function's name.
pub const FUNCTION: &str = "verify_signature";

/// Whether the host function can check `alg`.
pub fn supports(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::ES256
            | Algorithm::ES384
    )
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).unwrap_or(0));
}

fn put_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | 2);
    put_varint(out, u64::try_from(bytes.len()).unwrap_or(u64::MAX));
    out.extend_from_slice(bytes);
}

/// The encoded arguments for checking `signature` (JWS form) over `text`.
pub fn arguments(
    alg: Algorithm,
    spki_der: &[u8],
    signature: &[u8],
    text: &[u8],
) -> Option<Vec<u8>> {
    if !supports(alg) || spki_der.is_empty() {
        return None;
    }
    let sig = match alg.family() {
        KeyFamily::EcP256 | KeyFamily::EcP384 => signature::ecdsa_der_from_jws(signature)?,
        _ => signature.to_vec(),
    };
    let mut out = Vec::with_capacity(
        spki_der
            .len()
            .saturating_add(sig.len())
            .saturating_add(text.len())
            .saturating_add(24),
    );
    put_bytes(&mut out, 1, alg.hash().name().as_bytes());
    put_bytes(&mut out, 2, spki_der);
    put_bytes(&mut out, 3, &sig);
    put_bytes(&mut out, 4, text);
    Some(out)
}

/// A decoded `VerifySignatureResult`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyResult {
    pub result: bool,
    pub error: String,
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos = pos.checked_add(1)?;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes a `VerifySignatureResult`; `None` when it is not one.
pub fn parse_result(bytes: &[u8]) -> Option<VerifyResult> {
    let mut out = VerifyResult::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let tag = get_varint(bytes, &mut pos)?;
        match (tag >> 3, tag & 7) {
            (1, 0) => out.result = get_varint(bytes, &mut pos)? != 0,
            (field, 2) => {
                let len = usize::try_from(get_varint(bytes, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                let data = bytes.get(pos..end)?;
                if field == 2 {
                    out.error = String::from_utf8_lossy(data).into_owned();
                }
                pos = end;
            }
            (_, 0) => {
                get_varint(bytes, &mut pos)?;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Arguments that ask the host about `key` with a signature that cannot be
/// valid: a readable key gives "does not verify", an unreadable one an error
/// about the key.
pub fn probe_arguments(key: &VerificationKey) -> Option<Vec<u8>> {
    let (alg, sig) = match key.family {
        KeyFamily::Rsa => (Algorithm::RS256, vec![1u8; key.rsa_modulus_len()?]),
        KeyFamily::EcP256 => (
            Algorithm::ES256,
            [[0u8; 31].as_slice(), &[1], &[0u8; 31], &[1]].concat(),
        ),
        KeyFamily::EcP384 => (
            Algorithm::ES384,
            [[0u8; 47].as_slice(), &[1], &[0u8; 47], &[1]].concat(),
        ),
        _ => return None,
    };
    arguments(alg, &key.spki_der, &sig, b"jwt-policy key probe")
}

/// Whether a probe's answer shows the host read the key: it refused the
/// impossible signature as a signature, not the key.
pub fn probe_says_readable(result: &VerifyResult) -> bool {
    !result.result && !result.error.to_ascii_lowercase().contains("initialize")
}

const RSA_JWK: &str = r#"{"e":"AQAB","kid":"self-test-rsa","kty":"RSA","n":"oWqHmjX36Ir-QENU1FWDuPS3ezx6WnU-btqHUTTKxUFff3keDPfC8HfXXPktYYsoOSOgZrQC_a_Om45XYOjP6Qt0Mf0tHLHsA33NOrzyLOficIb_3o5cuUHHlY-CZitl7S7Q9hb0XiDgjENF86oPDjkQQXukU-PMAKHhmOsfCR88ETGPu7ow4gog7jSFvBhuaBPVniKVgc1C5jm9lonvBtf_dyWhCUEFDw4hyiuBdJwAArTJtgL-tkw3RQUB2cNBkeId54-o00UipCN45hHO6FH7DqHL95VFqMU1OZh5pgXS93asU3igByp_r2Dpg-LxIbqI7dzyP2pw4ro7BQhoVw"}"#;
const RSA_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InNlbGYtdGVzdC1yc2EiLCJ0eXAiOiJKV1QifQ.eyJwdXJwb3NlIjoiand0LXBvbGljeSBob3N0IHZlcmlmaWVyIHNlbGYtdGVzdCJ9.J9sm7o7bDuFHJQP4Y7IndX7ySercaMtDO1W14z4Aim4mAOVQZsItb4ScMBzrx3T94r27uB7USrs10d1NkX-9GNVEj3cZXiv1gdqUeP3qEnaTjI0Eynz60PjIiFk_arVu_ZdC2Xh9NUm221piQtP-WpFfA4KrEq3OijlJc6SZAfRLmHcFKd8-9NaMA_aDR-j6oEUnvQsL5n3KbMaCx1atuFm3ppHw8V15J7VAXdk0wnvV_mTCUd4NHfDf8vtqNAaPQNfFStG8N0chdAOClEVg39WXipceiJPA7fZOPyVhrfzPfqW7rljtVPTRSKGQx8z9RIRegWSl3lSq-g6sG0wnPQ";
const EC_JWK: &str = r#"{"crv":"P-256","kid":"self-test-ec","kty":"EC","x":"skk25kcAeWTYXXE76cabydeKm1keth9q4ZMjiBQIjwk","y":"h3-o5bwgOPQMb4C1pYFpKwslYbXEyzVGI1P45rrKYzg"}"#;
const EC_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6InNlbGYtdGVzdC1lYyIsInR5cCI6IkpXVCJ9.eyJwdXJwb3NlIjoiand0LXBvbGljeSBob3N0IHZlcmlmaWVyIHNlbGYtdGVzdCJ9.ZLu7ZnEG0OKc_91MiWoEi5hanrXoavwxFa6E5jeC_6gTfIcXHCQXf4URmkltkMsa-hV3t1PrFcNcB0iSvqLoXw";

/// Proves a verifier right on known tokens before it is trusted: RS256 and
/// ES256 tokens must verify, and the same tokens with one signature bit
/// flipped must not.
pub fn self_test(
    mut verify: impl FnMut(Algorithm, &VerificationKey, &Jws<'_>, &str) -> Verdict,
) -> Result<(), String> {
    let limits = Limits::default();
    for (jwk, token) in [(RSA_JWK, RSA_TOKEN), (EC_JWK, EC_TOKEN)] {
        let value: serde_json::Value = serde_json::from_str(jwk).map_err(|e| e.to_string())?;
        let key = jwks::parse_jwk(&value).map_err(|e| e.to_string())?;
        let jws = token::parse(token, &limits).map_err(|e| e.to_string())?;
        let alg = jws.header.alg;
        signature::check_shape(alg, Key::Public(&key), &jws.signature, false)?;
        match verify(alg, &key, &jws, token) {
            Verdict::Valid => {}
            other => return Err(format!("{alg}: a valid signature gave {other:?}")),
        }
        let mut sig = jws.signature.clone();
        if let Some(last) = sig.last_mut() {
            *last ^= 1;
        }
        let corrupted = format!("{}.{}", jws.signing_input, crate::b64::encode(&sig));
        let bad = token::parse(&corrupted, &limits).map_err(|e| e.to_string())?;
        match verify(alg, &key, &bad, &corrupted) {
            Verdict::Invalid => {}
            other => return Err(format!("{alg}: a corrupted signature gave {other:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{PureRust, Verifier};

    #[test]
    fn encodes_arguments_as_protobuf() {
        let args = arguments(Algorithm::RS256, &[0x30, 0x01], &[9, 9], b"hi").unwrap();
        assert_eq!(
            args,
            [
                0x0a, 6, b's', b'h', b'a', b'2', b'5', b'6', 0x12, 2, 0x30, 1, 0x1a, 2, 9, 9, 0x22,
                2, b'h', b'i'
            ]
        );
        assert!(arguments(Algorithm::PS256, &[1], &[1], b"x").is_none());
        assert!(arguments(Algorithm::EdDSA, &[1], &[1], b"x").is_none());
        let long = arguments(Algorithm::RS256, &[7u8; 300], &[1], b"").unwrap();
        assert_eq!(&long[8..11], &[0x12, 0xac, 0x02], "two-byte varint length");
    }

    #[test]
    fn decodes_results() {
        assert_eq!(
            parse_result(&[0x08, 1]),
            Some(VerifyResult {
                result: true,
                error: String::new()
            })
        );
        let r = parse_result(&[0x08, 0, 0x12, 3, b'b', b'a', b'd']).unwrap();
        assert!(!r.result);
        assert_eq!(r.error, "bad");
        assert_eq!(
            parse_result(&[]),
            Some(VerifyResult::default()),
            "all defaults: false"
        );
        assert_eq!(parse_result(&[0x12, 5, b'a']), None, "truncated");
        assert_eq!(
            parse_result(&[0x0d, 0, 0, 0, 0]),
            None,
            "unexpected wire type"
        );
        assert_eq!(
            parse_result(&[0x18, 5, 0x08, 1]).map(|r| r.result),
            Some(true),
            "unknown varint field skipped"
        );
    }

    #[test]
    fn probes_say_which_keys_were_read() {
        assert!(probe_says_readable(&VerifyResult {
            result: false,
            error: "Failed to verify digest. Error code: 0".into()
        }));
        assert!(!probe_says_readable(&VerifyResult {
            result: false,
            error: "Failed to initialize digest verify.".into()
        }));
        assert!(!probe_says_readable(&VerifyResult {
            result: true,
            error: String::new()
        }));
    }

    #[test]
    fn self_test_vectors_hold_for_the_pure_rust_verifier() {
        self_test(|alg, key, jws, token| PureRust.verify(alg, Key::Public(key), jws, token))
            .unwrap();
        // A verifier that says yes to everything fails the self-test.
        assert!(self_test(|_, _, _, _| Verdict::Valid).is_err());
        assert!(self_test(|_, _, _, _| Verdict::CannotVerify).is_err());
    }
}
