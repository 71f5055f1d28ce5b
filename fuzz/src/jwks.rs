//! The `jwks` target: bytes as a JWKS document through
//! `jwt_policy::jwks::parse_jwks` with the default limits.
//!
//! Invariants: no panic; a parsed set holds at most `max_jwks_keys` keys,
//! and usable plus skipped keys are the whole `keys` array; RSA and EC keys
//! carry a non-empty SPKI DER that an independent decoder reads back as the
//! same key, and the host-probe arguments can be built for them; RSA moduli
//! are 2048 to 4096 bits; no JWKS yields an HMAC key; skipped keys name
//! their place (`keys[i]…`); key selection only ever returns a key that
//! fits the algorithm, and finds every usable key by its own `kid`; the
//! same document parses the same way twice; and with a one-key limit a
//! bigger set is refused.

use jwt_policy::algorithm::{Algorithm, KeyFamily};
use jwt_policy::jwks::{KeyMaterial, KeySelection, ParsedJwks, parse_jwks};
use jwt_policy::limits::Limits;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;

/// What a parse produced, comparable across runs.
fn summary(p: &Result<ParsedJwks, jwt_policy::jwks::JwksError>) -> String {
    match p {
        Err(e) => format!("error {e}"),
        Ok(p) => {
            let keys: Vec<String> = p
                .keys
                .keys()
                .iter()
                .map(|k| format!("{k:?} {:?}", k.spki_der))
                .collect();
            format!("keys {keys:?} skipped {:?}", p.skipped)
        }
    }
}

/// Runs one input; returns the number of usable keys (or `None` when the
/// document is refused) for the seed tests.
pub fn run(data: &[u8]) -> Option<usize> {
    let limits = Limits::default();
    let parsed = parse_jwks(data, &limits);
    assert_eq!(
        summary(&parsed),
        summary(&parse_jwks(data, &limits)),
        "parsing is deterministic"
    );
    let small = Limits {
        max_jwks_keys: 1,
        ..limits
    };
    if let Ok(p) = parse_jwks(data, &small) {
        assert!(p.keys.len() + p.skipped.len() <= 1, "the key limit holds");
    }
    let parsed = match parsed {
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
        Ok(p) => p,
    };
    assert!(data.len() <= limits.max_jwks_bytes);
    let total = parsed.keys.len() + parsed.skipped.len();
    assert!(total <= limits.max_jwks_keys, "{total} keys");
    for s in &parsed.skipped {
        assert!(s.field.starts_with("keys["), "skipped key at {:?}", s.field);
        let _ = s.to_string();
    }
    for k in parsed.keys.keys() {
        check_key(k);
        for alg in Algorithm::ALL {
            if k.fits(alg) {
                match parsed.keys.select(k.kid.as_deref(), alg) {
                    KeySelection::Found(f) => {
                        assert!(f.fits(alg), "selected a key that does not fit {alg}");
                        assert_eq!(f.kid, k.kid, "selected another kid");
                    }
                    KeySelection::Ambiguous if k.kid.is_none() => {}
                    other => panic!("usable key {k:?} not found for {alg}: {other:?}"),
                }
            }
        }
    }
    for kid in parsed
        .keys
        .keys()
        .iter()
        .map(|k| k.kid.as_deref())
        .chain([None, Some("")])
    {
        for alg in Algorithm::ALL {
            match parsed.keys.select(kid, alg) {
                KeySelection::Found(f) => assert!(f.fits(alg)),
                KeySelection::Incompatible(f) => {
                    assert_eq!(f.kid.as_deref(), kid);
                    assert!(!f.fits(alg));
                }
                KeySelection::UnknownKid | KeySelection::Ambiguous => {}
            }
        }
    }
    Some(parsed.keys.len())
}

fn check_key(k: &jwt_policy::jwks::VerificationKey) {
    match (&k.material, k.family) {
        (KeyMaterial::Rsa { n, e }, KeyFamily::Rsa) => {
            assert!(
                (256..=512).contains(&n.len()),
                "RSA modulus of {} bytes",
                n.len()
            );
            assert!(!e.is_empty());
            let spki = rsa::RsaPublicKey::from_public_key_der(&k.spki_der)
                .expect("the RSA SPKI DER decodes");
            assert_eq!(&spki.n().to_bytes_be(), n, "SPKI modulus");
            assert_eq!(&spki.e().to_bytes_be(), e, "SPKI exponent");
            assert_eq!(k.rsa_modulus_len(), Some(n.len()));
        }
        (KeyMaterial::EcP256(_), KeyFamily::EcP256) => {
            <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(
                &k.spki_der,
            )
            .expect("the P-256 SPKI DER decodes");
        }
        (KeyMaterial::EcP384(_), KeyFamily::EcP384) => {
            <p384::ecdsa::VerifyingKey as p384::pkcs8::DecodePublicKey>::from_public_key_der(
                &k.spki_der,
            )
            .expect("the P-384 SPKI DER decodes");
        }
        (KeyMaterial::Ed25519(_), KeyFamily::Ed25519) => {}
        (_, family) => panic!("key material does not match its family {family:?}"),
    }
    if k.family != KeyFamily::Ed25519 {
        assert!(
            jwt_policy::envoy_crypto::probe_arguments(k).is_some(),
            "no host probe for {k:?}"
        );
    }
}
