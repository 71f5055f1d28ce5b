//! Keys and tokens for the core's unit tests, generated once per test run.

use std::sync::OnceLock;

use jwt_simple::prelude::*;
use serde_json::{Value, json};

use crate::b64;

pub const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pO0zNXTot";
pub const CLIENT: &str = "14aq5ll5b1it6f62uefem6aqhn";
pub const NOW: u64 = 1_750_000_000;

pub struct Keys {
    pub rsa: RS256KeyPair,
    pub ps: PS256KeyPair,
    pub rsa_other: RS256KeyPair,
    pub ec: ES256KeyPair,
    pub ec384: ES384KeyPair,
    pub ed: Ed25519KeyPair,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1");
        let ps = PS256KeyPair::from_der(&rsa.to_der().unwrap())
            .unwrap()
            .with_key_id("rsa-1");
        Keys {
            rsa,
            ps,
            rsa_other: RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1"),
            ec: ES256KeyPair::generate().with_key_id("ec-1"),
            ec384: ES384KeyPair::generate().with_key_id("ec384-1"),
            ed: Ed25519KeyPair::generate().with_key_id("ed-1"),
        }
    })
}

fn rsa_jwk(kid: &str, pk: &RS256PublicKey) -> Value {
    let c = pk.to_components();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64::encode(&c.n), "e": b64::encode(&c.e)})
}

fn ec_jwk(kid: &str, crv: &str, uncompressed: &[u8]) -> Value {
    let coord = (uncompressed.len() - 1) / 2;
    json!({"kty": "EC", "crv": crv, "kid": kid,
           "x": b64::encode(&uncompressed[1..1 + coord]),
           "y": b64::encode(&uncompressed[1 + coord..])})
}

/// The public JWKS of every test key.
pub fn jwks() -> Value {
    let k = keys();
    json!({"keys": [
        rsa_jwk("rsa-1", &k.rsa.public_key()),
        ec_jwk("ec-1", "P-256", &k.ec.public_key().public_key().to_bytes_uncompressed()),
        ec_jwk("ec384-1", "P-384", &k.ec384.public_key().public_key().to_bytes_uncompressed()),
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": b64::encode(&k.ed.public_key().to_bytes())},
    ]})
}

/// The public JWKS of a second issuer's key ([`Keys::rsa_other`]).
pub fn other_jwks() -> Value {
    json!({"keys": [rsa_jwk("rsa-1", &keys().rsa_other.public_key())]})
}

fn claims(custom: Value) -> JWTClaims<Value> {
    JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom,
    }
}

/// Claims of a Cognito client-credentials access token issued at [`NOW`].
pub fn cognito(scope: &str) -> Value {
    json!({
        "sub": CLIENT, "token_use": "access", "scope": scope, "auth_time": NOW,
        "iss": ISSUER, "exp": NOW + 3600, "iat": NOW, "version": 2,
        "jti": "0f6e3b27-8a7c-4f7a-9d0e-000000000000", "client_id": CLIENT
    })
}

pub fn rs256(c: Value) -> String {
    keys().rsa.sign(claims(c)).unwrap()
}

/// Signed with the second issuer's key ([`other_jwks`]).
pub fn rs256_other(c: Value) -> String {
    keys().rsa_other.sign(claims(c)).unwrap()
}

pub fn ps256(c: Value) -> String {
    keys().ps.sign(claims(c)).unwrap()
}

pub fn es256(c: Value) -> String {
    keys().ec.sign(claims(c)).unwrap()
}

pub fn es384(c: Value) -> String {
    keys().ec384.sign(claims(c)).unwrap()
}

pub fn eddsa(c: Value) -> String {
    keys().ed.sign(claims(c)).unwrap()
}

/// A token with the given header and claims and a signature of junk.
pub fn unsigned(header: Value, c: Value) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(c.to_string().as_bytes()),
        b64::encode(&[1u8; 256])
    )
}

/// HMAC-SHA256 JWS over `header.claims` with `secret`.
pub fn hs256_raw(header: Value, c: Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(c.to_string().as_bytes())
    );
    let tag = hmac_sha256::HMAC::mac(input.as_bytes(), secret);
    format!("{input}.{}", b64::encode(&tag))
}
