//! A PEM public key (what MuleSoft's `textKey` holds, with or without its
//! `-----BEGIN PUBLIC KEY-----` lines) as a JWK for `local_jwks`, with the
//! RFC 7638 thumbprint as its `kid`.

use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ECDSAP384PublicKeyLike, ES256PublicKey, ES384PublicKey, RS256PublicKey,
};
use serde_json::{Value, json};

/// The key family the signing method expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
}

/// The JWK of `pem` for `alg`, or why it cannot be read.
pub fn pem_to_jwk(pem: &str, kind: KeyKind, alg: &str) -> Result<Value, String> {
    let pem = normalize_pem(pem)?;
    let mut jwk = match kind {
        KeyKind::Rsa => {
            let key = RS256PublicKey::from_pem(&pem).map_err(|e| {
                format!("not an RSA public key in PEM (2048 to 4096 bits, exponent 65537): {e}")
            })?;
            let c = key.to_components();
            json!({"kty": "RSA", "n": b64url(&c.n), "e": b64url(&c.e)})
        }
        KeyKind::P256 => {
            let key = ES256PublicKey::from_pem(&pem)
                .map_err(|e| format!("not a P-256 public key in PEM: {e}"))?;
            ec_jwk("P-256", &key.public_key().to_bytes_uncompressed(), 32)?
        }
        KeyKind::P384 => {
            let key = ES384PublicKey::from_pem(&pem)
                .map_err(|e| format!("not a P-384 public key in PEM: {e}"))?;
            ec_jwk("P-384", &key.public_key().to_bytes_uncompressed(), 48)?
        }
    };
    let kid = thumbprint(&jwk)?;
    if let Some(map) = jwk.as_object_mut() {
        map.insert("kid".into(), Value::String(kid));
        map.insert("alg".into(), Value::String(alg.to_owned()));
        map.insert("use".into(), Value::String("sig".into()));
    }
    Ok(jwk)
}

/// Adds the armour lines MuleSoft's documentation tells users to remove,
/// and refuses certificates and private keys with a hint.
fn normalize_pem(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.contains("BEGIN CERTIFICATE") {
        return Err(
            "a certificate, not a public key (extract it with `openssl x509 -pubkey -noout`)"
                .into(),
        );
    }
    if text.contains("PRIVATE KEY") {
        return Err("a private key: give the public key only".into());
    }
    if text.starts_with("-----BEGIN") {
        return Ok(text.to_owned());
    }
    let body: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    {
        return Err("neither a PEM public key nor its base64 body".into());
    }
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    let chars: Vec<char> = body.chars().collect();
    for line in chars.chunks(64) {
        pem.extend(line);
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    Ok(pem)
}

fn ec_jwk(crv: &str, point: &[u8], size: usize) -> Result<Value, String> {
    match point.split_first() {
        Some((0x04, xy)) if xy.len() == size.saturating_mul(2) => {
            let (x, y) = xy.split_at(size);
            Ok(json!({"kty": "EC", "crv": crv, "x": b64url(x), "y": b64url(y)}))
        }
        _ => Err("unexpected EC point encoding".into()),
    }
}

fn b64url(bytes: &[u8]) -> String {
    jwt_policy::b64::encode(bytes)
}

/// RFC 7638: SHA-256 of the required members in lexicographic order,
/// without whitespace, base64url.
pub fn thumbprint(jwk: &Value) -> Result<String, String> {
    let member = |k: &str| {
        jwk.get(k)
            .and_then(Value::as_str)
            .map(|v| format!("\"{k}\":{}", Value::String(v.to_owned())))
            .ok_or_else(|| format!("JWK without {k}"))
    };
    let members: &[&str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        _ => return Err("JWK of an unknown kty".into()),
    };
    let parts = members
        .iter()
        .map(|k| member(k))
        .collect::<Result<Vec<_>, _>>()?;
    let canonical = format!("{{{}}}", parts.join(","));
    Ok(b64url(&hmac_sha256::Hash::hash(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const RSA_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAslxvtMP22KfuS7484x0Z
JldZw5Lwu9jV5kIz+EryIyoyKESqJayZWaOU6EzajyMav5l5vK6AxyLCO7JbpO6K
4YRWjXwr665Kq+RMlvOKGUD7g8hqfvNJ/2X2DygTOafFaGDKipQNXRmsNNnS2YHX
9a3+/CMUS8+oUe3UtVoYybLgMQqUT/+Bq3eSFcfAh9iv16sneluNA5kXw2KWdaO1
1I/6LcQi3utOWJYU8NRCb9QznLh+Sq8zzCA/QAfqmTBEv7xHJzqQGvaPUVdbJvoO
GULbNxzBe6hqSo8WD202u0hGwdbw4l4AA7C2fy2RMuyTbRgAgRxJfZ/bf4xwtlM3
rQIDAQAB
-----END PUBLIC KEY-----";

    const EC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9TzzHFLS5qDJytjTsKBxzcmhMOax
lsZ3xwjPXeZ0O29eR4KjqFQ9OtO+3o3YbhXJZhML4Evgab7wq4BXBBgiXw==
-----END PUBLIC KEY-----";

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rsa_pem_with_and_without_armour() {
        let jwk = pem_to_jwk(RSA_PEM, KeyKind::Rsa, "RS256").unwrap();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], thumbprint(&jwk).unwrap());
        let body: String = RSA_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("");
        assert_eq!(pem_to_jwk(&body, KeyKind::Rsa, "RS256").unwrap(), jwk);
        // The filter accepts the key it makes.
        let keys = json!({"keys": [jwk]});
        let config = json!({"providers": {"p": {"issuer": "i", "algorithms": ["RS256"], "local_jwks": keys}}});
        jwt_policy::policy::Policy::from_json(config.to_string().as_bytes()).unwrap();
    }

    #[test]
    fn ec_pem() {
        let jwk = pem_to_jwk(EC_PEM, KeyKind::P256, "ES256").unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(
            jwt_policy::b64::decode_jwk_member(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        let keys = json!({"keys": [jwk]});
        let config = json!({"providers": {"p": {"issuer": "i", "algorithms": ["ES256"], "local_jwks": keys}}});
        jwt_policy::policy::Policy::from_json(config.to_string().as_bytes()).unwrap();
        assert!(pem_to_jwk(EC_PEM, KeyKind::Rsa, "RS256").is_err());
        assert!(pem_to_jwk(EC_PEM, KeyKind::P384, "ES384").is_err());
    }

    #[test]
    fn refusals() {
        assert!(
            pem_to_jwk(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                KeyKind::Rsa,
                "RS256"
            )
            .unwrap_err()
            .contains("certificate")
        );
        assert!(
            pem_to_jwk("-----BEGIN PRIVATE KEY-----\nAAAA\n", KeyKind::Rsa, "RS256")
                .unwrap_err()
                .contains("private")
        );
        assert!(pem_to_jwk("not a key!", KeyKind::Rsa, "RS256").is_err());
        assert!(pem_to_jwk("AAAA", KeyKind::Rsa, "RS256").is_err());
    }
}
