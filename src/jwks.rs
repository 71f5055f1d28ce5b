//! JSON Web Key Sets (RFC 7517): parsing into verification keys, and picking
//! the key for a token.
//!
//! Supported keys: RSA (`n`, `e`; 2048–4096 bits), EC P-256 and P-384 (`x`,
//! `y`), OKP Ed25519 (`x`). A key is usable for a token only when its `kty`
//! and `crv` fit the token's `alg`, its `alg` (if any) equals it, its `use`
//! (if any) is `sig` and its `key_ops` (if any) include `verify`.

use std::fmt;
use std::sync::OnceLock;

use jwt_simple::prelude::{ES256PublicKey, ES384PublicKey, Ed25519PublicKey, RS256PublicKey};
use serde_json::{Map, Value};

use crate::algorithm::{Algorithm, KeyFamily};
use crate::b64;
use crate::json;
use crate::limits::Limits;
use crate::text::clip;

/// Public key bytes in the form each verifier wants.
pub enum KeyMaterial {
    Rsa {
        /// Modulus, big-endian, without leading zeros.
        n: Vec<u8>,
        /// Public exponent, big-endian.
        e: Vec<u8>,
    },
    EcP256(ES256PublicKey),
    EcP384(ES384PublicKey),
    Ed25519(Ed25519PublicKey),
}

/// One usable public key from a JWKS.
pub struct VerificationKey {
    pub kid: Option<String>,
    pub family: KeyFamily,
    /// The JWK's `alg`, verbatim, when present.
    pub alg: Option<String>,
    /// False when `use` or `key_ops` rule out signature verification.
    pub for_signatures: bool,
    pub material: KeyMaterial,
    /// DER SubjectPublicKeyInfo (RSA and EC), for hosts that verify natively.
    pub spki_der: Vec<u8>,
    /// Whether the host's native verifier can use `spki_der`; decided once by
    /// the host layer when the key set is installed.
    pub host_usable: OnceLock<bool>,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("alg", &self.alg)
            .field("for_signatures", &self.for_signatures)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.for_signatures
            && self.family == alg.family()
            && self.alg.as_deref().is_none_or(|a| a == alg.name())
    }

    /// RSA modulus length in bytes (the exact length of every signature).
    pub fn rsa_modulus_len(&self) -> Option<usize> {
        match &self.material {
            KeyMaterial::Rsa { n, .. } => Some(n.len()),
            _ => None,
        }
    }
}

/// The keys of one provider at one moment.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

/// The outcome of looking a token's key up.
#[derive(Debug)]
pub enum KeySelection<'k> {
    Found(&'k VerificationKey),
    /// No key has the token's `kid` (or, without a `kid`, none fits `alg`).
    UnknownKid,
    /// The token has no `kid` and several keys fit: refusing beats guessing.
    Ambiguous,
    /// Keys with this `kid` exist, but none may verify this `alg`.
    Incompatible(&'k VerificationKey),
}

impl KeySet {
    pub fn new(keys: Vec<VerificationKey>) -> KeySet {
        KeySet { keys }
    }

    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Picks the key for a token's `kid` and `alg`.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> KeySelection<'_> {
        match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
                let Some(first) = named.next() else {
                    return KeySelection::UnknownKid;
                };
                if first.fits(alg) {
                    return KeySelection::Found(first);
                }
                named
                    .find(|k| k.fits(alg))
                    .map_or(KeySelection::Incompatible(first), KeySelection::Found)
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => KeySelection::Found(only),
                    (None, _) => KeySelection::UnknownKid,
                    (Some(_), Some(_)) => KeySelection::Ambiguous,
                }
            }
        }
    }
}

/// Why a JWKS, or one key in it, was refused. `field` is a path inside the
/// JWKS document, e.g. `keys[1].n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

fn err(field: impl Into<String>, message: impl Into<String>) -> JwksError {
    JwksError {
        field: field.into(),
        message: message.into(),
    }
}

/// A parsed JWKS: the usable keys, and the keys that were left out and why.
#[derive(Debug)]
pub struct ParsedJwks {
    pub keys: KeySet,
    pub skipped: Vec<JwksError>,
}

/// Parses a JWKS document. Keys that cannot be used are reported in
/// `skipped`; the document itself is refused when it is not a JWKS, is larger
/// than the limits allow, or holds too many keys.
pub fn parse_jwks(doc: &[u8], limits: &Limits) -> Result<ParsedJwks, JwksError> {
    if doc.len() > limits.max_jwks_bytes {
        return Err(err(
            "",
            format!(
                "JWKS is {} bytes, more than the limit of {}",
                doc.len(),
                limits.max_jwks_bytes
            ),
        ));
    }
    let root = json::parse_object(doc, limits.max_json_depth)
        .map_err(|e| err("", format!("JWKS is {e}")))?;
    parse_jwks_object(&root, limits)
}

/// Like [`parse_jwks`] for a document already parsed (inline configuration).
pub fn parse_jwks_object(
    root: &Map<String, Value>,
    limits: &Limits,
) -> Result<ParsedJwks, JwksError> {
    let Some(keys) = root.get("keys") else {
        return Err(err("keys", "missing"));
    };
    let Value::Array(keys) = keys else {
        return Err(err("keys", "must be an array"));
    };
    if keys.len() > limits.max_jwks_keys {
        return Err(err(
            "keys",
            format!(
                "{} keys, more than the limit of {}",
                keys.len(),
                limits.max_jwks_keys
            ),
        ));
    }
    let mut usable = Vec::with_capacity(keys.len());
    let mut skipped = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match parse_jwk(key) {
            Ok(k) => usable.push(k),
            Err(e) => skipped.push(JwksError {
                field: if e.field.is_empty() {
                    format!("keys[{i}]")
                } else {
                    format!("keys[{i}].{}", e.field)
                },
                message: e.message,
            }),
        }
    }
    Ok(ParsedJwks {
        keys: KeySet::new(usable),
        skipped,
    })
}

fn string_member<'a>(
    jwk: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, JwksError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(name, "must be a string")),
    }
}

fn required_bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, JwksError> {
    let s = string_member(jwk, name)?.ok_or_else(|| err(name, "missing"))?;
    let bytes = b64::decode_jwk_member(s).ok_or_else(|| err(name, "is not base64url"))?;
    if bytes.is_empty() {
        return Err(err(name, "is empty"));
    }
    Ok(bytes)
}

/// Parses one JWK into a verification key.
pub fn parse_jwk(value: &Value) -> Result<VerificationKey, JwksError> {
    let Value::Object(jwk) = value else {
        return Err(err("", "key must be an object"));
    };
    let kty = string_member(jwk, "kty")?.ok_or_else(|| err("kty", "missing"))?;
    let kid = string_member(jwk, "kid")?.map(str::to_owned);
    let alg = string_member(jwk, "alg")?.map(str::to_owned);
    let use_ok = string_member(jwk, "use")?.is_none_or(|u| u == "sig");
    let ops_ok = match jwk.get("key_ops") {
        None => true,
        Some(Value::Array(ops)) => ops.iter().any(|op| op.as_str() == Some("verify")),
        Some(_) => return Err(err("key_ops", "must be an array")),
    };
    // An encryption key (`RSA-OAEP`, `ECDH-ES`) is fine to keep (it fits no
    // token); a signing key with an algorithm we do not know is not usable.
    if let Some(a) = &alg
        && use_ok
        && Algorithm::from_name(a).is_none()
    {
        return Err(err(
            "alg",
            format!("unsupported algorithm \"{}\"", clip(a, 20)),
        ));
    }

    let (family, material, spki_der) = match kty {
        "RSA" => {
            let n = strip_leading_zeros(required_bytes(jwk, "n")?);
            let e = strip_leading_zeros(required_bytes(jwk, "e")?);
            let key = RS256PublicKey::from_components(&n, &e)
                .map_err(|_| err("n", "is not a usable RSA key (2048 to 4096 bits)"))?;
            let der = key
                .to_der()
                .map_err(|_| err("n", "cannot be encoded as DER"))?;
            (KeyFamily::Rsa, KeyMaterial::Rsa { n, e }, der)
        }
        "EC" => {
            let crv = string_member(jwk, "crv")?.ok_or_else(|| err("crv", "missing"))?;
            let x = required_bytes(jwk, "x")?;
            let y = required_bytes(jwk, "y")?;
            let size: usize = match crv {
                "P-256" => 32,
                "P-384" => 48,
                other => {
                    return Err(err(
                        "crv",
                        format!("unsupported curve \"{}\"", clip(other, 20)),
                    ));
                }
            };
            if x.len() != size || y.len() != size {
                return Err(err(
                    "x",
                    format!("coordinates must be {size} bytes for {crv}"),
                ));
            }
            let mut sec1 = Vec::with_capacity(97);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            if crv == "P-256" {
                let key = ES256PublicKey::from_bytes(&sec1)
                    .map_err(|_| err("x", "is not a point on P-256"))?;
                let der = key
                    .to_der()
                    .map_err(|_| err("x", "cannot be encoded as DER"))?;
                (KeyFamily::EcP256, KeyMaterial::EcP256(key), der)
            } else {
                let key = ES384PublicKey::from_bytes(&sec1)
                    .map_err(|_| err("x", "is not a point on P-384"))?;
                let der = key
                    .to_der()
                    .map_err(|_| err("x", "cannot be encoded as DER"))?;
                (KeyFamily::EcP384, KeyMaterial::EcP384(key), der)
            }
        }
        "OKP" => {
            let crv = string_member(jwk, "crv")?.ok_or_else(|| err("crv", "missing"))?;
            if crv != "Ed25519" {
                return Err(err(
                    "crv",
                    format!("unsupported curve \"{}\"", clip(crv, 20)),
                ));
            }
            let x = required_bytes(jwk, "x")?;
            let key = Ed25519PublicKey::from_bytes(&x)
                .map_err(|_| err("x", "is not an Ed25519 public key"))?;
            (KeyFamily::Ed25519, KeyMaterial::Ed25519(key), Vec::new())
        }
        other => {
            return Err(err(
                "kty",
                format!("unsupported key type \"{}\"", clip(other, 20)),
            ));
        }
    };
    Ok(VerificationKey {
        kid,
        family,
        alg,
        for_signatures: use_ok && ops_ok,
        material,
        spki_der,
        host_usable: OnceLock::new(),
    })
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    if zeros > 0 && zeros < bytes.len() {
        bytes.drain(..zeros);
    }
    bytes
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7517 appendix A.1 RSA key (2048 bits).
    pub const RFC_RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    pub fn rsa_jwk(kid: &str) -> Value {
        json!({"kty":"RSA","kid":kid,"use":"sig","n":RFC_RSA_N,"e":"AQAB"})
    }

    /// RFC 7517 appendix A.1 EC P-256 key.
    pub fn ec_jwk(kid: &str) -> Value {
        json!({"kty":"EC","crv":"P-256","kid":kid,
               "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
               "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"})
    }

    /// RFC 8037 appendix A.2 Ed25519 key.
    pub fn ed_jwk(kid: &str) -> Value {
        json!({"kty":"OKP","crv":"Ed25519","kid":kid,
               "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    }

    fn parse(v: Value) -> ParsedJwks {
        parse_jwks(v.to_string().as_bytes(), &Limits::default()).unwrap()
    }

    #[test]
    fn parses_every_supported_key_type() {
        let p = parse(json!({"keys":[rsa_jwk("r"), ec_jwk("e"), ed_jwk("d")]}));
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(p.keys.len(), 3);
        let rsa = &p.keys.keys()[0];
        assert_eq!(rsa.family, KeyFamily::Rsa);
        assert_eq!(rsa.rsa_modulus_len(), Some(256));
        assert!(!rsa.spki_der.is_empty());
        assert_eq!(p.keys.keys()[1].family, KeyFamily::EcP256);
        assert_eq!(p.keys.keys()[2].family, KeyFamily::Ed25519);
    }

    #[test]
    fn selects_by_kid_and_algorithm() {
        let p = parse(json!({"keys":[rsa_jwk("a"), ec_jwk("b"), ed_jwk("c")]}));
        assert!(
            matches!(p.keys.select(Some("a"), Algorithm::RS256), KeySelection::Found(k) if k.kid.as_deref() == Some("a"))
        );
        assert!(matches!(
            p.keys.select(Some("a"), Algorithm::PS384),
            KeySelection::Found(_)
        ));
        assert!(matches!(
            p.keys.select(Some("b"), Algorithm::ES256),
            KeySelection::Found(_)
        ));
        assert!(matches!(
            p.keys.select(Some("b"), Algorithm::RS256),
            KeySelection::Incompatible(_)
        ));
        assert!(matches!(
            p.keys.select(Some("b"), Algorithm::ES384),
            KeySelection::Incompatible(_)
        ));
        assert!(matches!(
            p.keys.select(Some("zz"), Algorithm::RS256),
            KeySelection::UnknownKid
        ));
        assert!(matches!(
            p.keys.select(None, Algorithm::EdDSA),
            KeySelection::Found(_)
        ));
        let two = parse(json!({"keys":[rsa_jwk("a"), rsa_jwk("b")]}));
        assert!(matches!(
            two.keys.select(None, Algorithm::RS256),
            KeySelection::Ambiguous
        ));
        assert!(matches!(
            two.keys.select(None, Algorithm::ES256),
            KeySelection::UnknownKid
        ));
    }

    #[test]
    fn key_alg_use_and_ops_restrict_use() {
        let mut k = rsa_jwk("a");
        k["alg"] = json!("RS256");
        let p = parse(json!({"keys":[k]}));
        assert!(matches!(
            p.keys.select(Some("a"), Algorithm::RS256),
            KeySelection::Found(_)
        ));
        assert!(matches!(
            p.keys.select(Some("a"), Algorithm::PS256),
            KeySelection::Incompatible(_)
        ));

        let mut enc = rsa_jwk("e");
        enc["use"] = json!("enc");
        enc["alg"] = json!("RSA-OAEP");
        let mut ops = rsa_jwk("o");
        ops["key_ops"] = json!(["encrypt"]);
        let p = parse(json!({"keys":[enc, ops]}));
        assert!(p.skipped.is_empty());
        assert!(matches!(
            p.keys.select(Some("e"), Algorithm::RS256),
            KeySelection::Incompatible(_)
        ));
        assert!(matches!(
            p.keys.select(Some("o"), Algorithm::RS256),
            KeySelection::Incompatible(_)
        ));
    }

    #[test]
    fn duplicate_kids_pick_the_fitting_key() {
        let p = parse(json!({"keys":[ec_jwk("same"), rsa_jwk("same")]}));
        assert!(
            matches!(p.keys.select(Some("same"), Algorithm::RS256), KeySelection::Found(k) if k.family == KeyFamily::Rsa)
        );
    }

    #[test]
    fn reports_unusable_keys_with_their_field() {
        let mut small = rsa_jwk("s");
        small["n"] = json!("AQAB");
        let mut bad_b64 = ec_jwk("b");
        bad_b64["x"] = json!("not base64!");
        let mut off_curve = ec_jwk("c");
        off_curve["y"] = json!(b64::encode(&[7u8; 32]));
        let p = parse(json!({"keys":[
            small, bad_b64, off_curve,
            {"kty":"oct","k":"AAAA"},
            {"kty":"EC","crv":"P-521","x":"AA","y":"AA"},
            {"kty":"OKP","crv":"X25519","x":"AA"},
            {"kid":"no-kty"},
            {"kty":"RSA","e":"AQAB"},
            {"kty":"RSA","n":RFC_RSA_N,"e":"AQAB","alg":"XS999"},
            "not an object",
            {"kty":"RSA","n":RFC_RSA_N,"e":"AQAB","kid":7}
        ]}));
        assert_eq!(p.keys.len(), 0);
        let fields: Vec<&str> = p.skipped.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "keys[0].n",
                "keys[1].x",
                "keys[2].x",
                "keys[3].kty",
                "keys[4].crv",
                "keys[5].crv",
                "keys[6].kty",
                "keys[7].n",
                "keys[8].alg",
                "keys[9]",
                "keys[10].kid"
            ]
        );
    }

    #[test]
    fn refuses_documents_that_are_not_key_sets_or_too_big() {
        let limits = Limits::default();
        assert!(parse_jwks(b"[]", &limits).is_err());
        assert!(parse_jwks(b"{}", &limits).is_err());
        assert!(parse_jwks(br#"{"keys":{}}"#, &limits).is_err());
        assert!(parse_jwks(b"not json", &limits).is_err());
        let small = Limits {
            max_jwks_keys: 1,
            ..Limits::default()
        };
        let two = json!({"keys":[ed_jwk("a"), ed_jwk("b")]}).to_string();
        assert!(parse_jwks(two.as_bytes(), &small).is_err());
        let tiny = Limits {
            max_jwks_bytes: 10,
            ..Limits::default()
        };
        assert!(parse_jwks(two.as_bytes(), &tiny).is_err());
    }

    #[test]
    fn tolerates_padding_and_leading_zeros_in_jwk_members() {
        let mut k = rsa_jwk("a");
        let n = b64::decode_jwk_member(RFC_RSA_N).unwrap();
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n);
        k["n"] = json!(b64::encode(&padded));
        k["e"] = json!("AQAB");
        let p = parse(json!({"keys":[k]}));
        assert_eq!(p.keys.keys()[0].rsa_modulus_len(), Some(256));
    }
}
