//! Freshly generated keys, their public JWKs, and JWS signing of arbitrary
//! bytes (so tests can mint malformed or hostile tokens).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use rsa::rand_core::{OsRng, RngCore};
use rsa::sha2::{self as sha2_rsa, Digest as _};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Alg {
    pub const ALL: [Alg; 12] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
    ];

    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
        }
    }

    /// The alg with this JOSE name.
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }
}

#[derive(Clone)]
pub enum KeyMaterial {
    Rsa(RsaPrivateKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_compact::KeyPair),
    Hmac(Vec<u8>),
}

#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub material: KeyMaterial,
}

impl TestKey {
    pub fn rsa(kid: &str, bits: usize) -> TestKey {
        let key = RsaPrivateKey::new(&mut OsRng, bits).expect("RSA key generation");
        Self::with(kid, KeyMaterial::Rsa(key))
    }

    pub fn ec_p256(kid: &str) -> TestKey {
        let key = loop {
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&random_bytes(32)) {
                break k;
            }
        };
        Self::with(kid, KeyMaterial::P256(key))
    }

    pub fn ec_p384(kid: &str) -> TestKey {
        let key = loop {
            if let Ok(k) = p384::ecdsa::SigningKey::from_slice(&random_bytes(48)) {
                break k;
            }
        };
        Self::with(kid, KeyMaterial::P384(key))
    }

    pub fn ed25519(kid: &str) -> TestKey {
        let seed: [u8; 32] = random_bytes(32).try_into().unwrap();
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
        Self::with(kid, KeyMaterial::Ed25519(pair))
    }

    pub fn hmac(kid: &str, secret: impl AsRef<[u8]>) -> TestKey {
        Self::with(kid, KeyMaterial::Hmac(secret.as_ref().to_vec()))
    }

    /// A fresh key of the type `alg` needs (RSA: `rsa_bits`; HMAC: 32
    /// random bytes).
    pub fn for_alg(kid: &str, alg: Alg, rsa_bits: usize) -> TestKey {
        match alg {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                Self::rsa(kid, rsa_bits)
            }
            Alg::ES256 => Self::ec_p256(kid),
            Alg::ES384 => Self::ec_p384(kid),
            Alg::EdDSA => Self::ed25519(kid),
            Alg::HS256 | Alg::HS384 | Alg::HS512 => Self::hmac(kid, random_bytes(32)),
        }
    }

    /// A key made elsewhere (e.g. the fuzz targets' fixed keys).
    pub fn from_material(kid: &str, material: KeyMaterial) -> TestKey {
        Self::with(kid, material)
    }

    /// The RSA public key as SubjectPublicKeyInfo PEM (what an attacker
    /// feeds an HMAC verifier in the algorithm-confusion attack).
    pub fn public_pem(&self) -> String {
        use rsa::pkcs8::EncodePublicKey;
        match &self.material {
            KeyMaterial::Rsa(k) => k
                .to_public_key()
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .expect("PEM encoding"),
            _ => panic!("public_pem is for RSA keys"),
        }
    }

    fn with(kid: &str, material: KeyMaterial) -> TestKey {
        TestKey {
            kid: kid.to_string(),
            material,
        }
    }

    /// The public JWK with `kid` and `"use":"sig"` (an HMAC key gives its
    /// secret as `kty:"oct"`, for tests of symmetric keys in a JWKS).
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.material {
            KeyMaterial::Rsa(k) => json!({
                "kty": "RSA",
                "n": b64url(k.n().to_bytes_be()),
                "e": b64url(k.e().to_bytes_be()),
            }),
            KeyMaterial::P256(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                ec_jwk("P-256", &point.as_bytes()[1..])
            }
            KeyMaterial::P384(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                ec_jwk("P-384", &point.as_bytes()[1..])
            }
            KeyMaterial::Ed25519(k) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(*k.pk)}),
            KeyMaterial::Hmac(secret) => json!({"kty": "oct", "k": b64url(secret)}),
        };
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }

    pub fn jwk_with_alg(&self, alg: Alg) -> Value {
        let mut jwk = self.jwk();
        jwk["alg"] = json!(alg.name());
        jwk
    }

    /// The JWS signature of `signing_input` (ECDSA as fixed-size r||s with low S).
    /// Panics if `alg` does not fit the key type.
    pub fn sign(&self, alg: Alg, signing_input: &[u8]) -> Vec<u8> {
        use sha2_rsa::{Sha256, Sha384, Sha512};
        let msg = signing_input;
        match (&self.material, alg) {
            (KeyMaterial::Rsa(k), Alg::RS256) => {
                k.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg))
            }
            (KeyMaterial::Rsa(k), Alg::RS384) => {
                k.sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg))
            }
            (KeyMaterial::Rsa(k), Alg::RS512) => {
                k.sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg))
            }
            (KeyMaterial::Rsa(k), Alg::PS256) => {
                k.sign_with_rng(&mut OsRng, Pss::new::<Sha256>(), &Sha256::digest(msg))
            }
            (KeyMaterial::Rsa(k), Alg::PS384) => {
                k.sign_with_rng(&mut OsRng, Pss::new::<Sha384>(), &Sha384::digest(msg))
            }
            (KeyMaterial::Rsa(k), Alg::PS512) => {
                k.sign_with_rng(&mut OsRng, Pss::new::<Sha512>(), &Sha512::digest(msg))
            }
            (KeyMaterial::P256(k), Alg::ES256) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, msg);
                Ok(low_s(&sig.to_bytes(), alg))
            }
            (KeyMaterial::P384(k), Alg::ES384) => {
                let sig: p384::ecdsa::Signature = p384::ecdsa::signature::Signer::sign(k, msg);
                Ok(low_s(&sig.to_bytes(), alg))
            }
            (KeyMaterial::Ed25519(k), Alg::EdDSA) => Ok(k.sk.sign(msg, None).to_vec()),
            (KeyMaterial::Hmac(s), Alg::HS256) => Ok(hmac_sign::<sha2::Sha256>(s, msg)),
            (KeyMaterial::Hmac(s), Alg::HS384) => Ok(hmac_sign::<sha2::Sha384>(s, msg)),
            (KeyMaterial::Hmac(s), Alg::HS512) => Ok(hmac_sign::<sha2::Sha512>(s, msg)),
            _ => panic!(
                "key {:?} ({}) cannot sign {}",
                self.kid,
                self.kind(),
                alg.name()
            ),
        }
        .expect("signing")
    }

    fn kind(&self) -> &'static str {
        match self.material {
            KeyMaterial::Rsa(_) => "RSA",
            KeyMaterial::P256(_) => "EC P-256",
            KeyMaterial::P384(_) => "EC P-384",
            KeyMaterial::Ed25519(_) => "Ed25519",
            KeyMaterial::Hmac(_) => "HMAC",
        }
    }

    /// `b64url(header).b64url(payload).b64url(sig)` over arbitrary bytes.
    pub fn mint_raw(&self, alg: Alg, header: &[u8], payload: &[u8]) -> String {
        let signing_input = format!("{}.{}", b64url(header), b64url(payload));
        let sig = self.sign(alg, signing_input.as_bytes());
        format!("{signing_input}.{}", b64url(sig))
    }

    pub fn mint(&self, alg: Alg, header: Value, claims: Value) -> String {
        self.mint_raw(
            alg,
            header.to_string().as_bytes(),
            claims.to_string().as_bytes(),
        )
    }

    /// A token with the header exactly `{"kid":"<kid>","alg":"<alg>"}` (Cognito's shape).
    pub fn token(&self, alg: Alg, claims: Value) -> String {
        let header = format!(r#"{{"kid":{},"alg":"{}"}}"#, json!(self.kid), alg.name());
        self.mint_raw(alg, header.as_bytes(), claims.to_string().as_bytes())
    }
}

pub fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

fn ec_jwk(crv: &str, xy: &[u8]) -> Value {
    let (x, y) = xy.split_at(xy.len() / 2);
    json!({"kty": "EC", "crv": crv, "x": b64url(x), "y": b64url(y)})
}

fn hmac_sign<D: hmac::EagerHash>(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<D>::new_from_slice(secret).expect("HMAC key");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// The group order n of the alg's curve, big-endian.
pub fn curve_order(alg: Alg) -> Vec<u8> {
    let hex = match alg {
        Alg::ES256 => "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
        Alg::ES384 => concat!(
            "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf",
            "581a0db248b0a77aecec196accc52973"
        ),
        _ => panic!("{} is not an ECDSA alg", alg.name()),
    };
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// `n - s` for equal-length big-endian numbers with `s < n`.
fn order_minus(n: &[u8], s: &[u8]) -> Vec<u8> {
    let mut out = vec![0; n.len()];
    let mut borrow = 0i16;
    for i in (0..n.len()).rev() {
        let d = n[i] as i16 - s[i] as i16 - borrow;
        borrow = (d < 0) as i16;
        out[i] = d.rem_euclid(256) as u8;
    }
    out
}

/// r||s with s replaced by n - s when that is smaller.
fn low_s(sig: &[u8], alg: Alg) -> Vec<u8> {
    let order = curve_order(alg);
    let (r, s) = sig.split_at(order.len());
    let twin = order_minus(&order, s);
    let s = if twin.as_slice() < s { &twin[..] } else { s };
    [r, s].concat()
}

/// The malleated twin of an ES256/ES384 r||s signature: s replaced by n - s.
/// It still verifies mathematically; since `sign` emits low S, this is the high-S form.
pub fn es_high_s(sig: &[u8], alg: Alg) -> Vec<u8> {
    let order = curve_order(alg);
    assert_eq!(
        sig.len(),
        2 * order.len(),
        "es_high_s: {} signature must be r||s",
        alg.name()
    );
    let (r, s) = sig.split_at(order.len());
    [r, &order_minus(&order, s)[..]].concat()
}

pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s)
        .unwrap_or_else(|e| panic!("not base64url (no padding): {s:?}: {e}"))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A random version-4 UUID, as Cognito's `jti`.
pub fn random_jti() -> String {
    let r = random_bytes(16);
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// `token` with one bit of its signature flipped (still valid base64url).
pub fn corrupt_signature(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').expect("a compact JWS");
    let mut sig = b64url_decode(sig);
    let middle = sig.len() / 2;
    sig[middle] ^= 0x01;
    format!("{input}.{}", b64url(sig))
}

/// Claims shaped like a Cognito client-credentials access token (no `aud`).
pub fn cognito_access_claims(issuer: &str, client_id: &str, scope: &str, now: u64) -> Value {
    let jti = random_jti();
    json!({
        "sub": client_id,
        "token_use": "access",
        "scope": scope,
        "auth_time": now,
        "iss": issuer,
        "exp": now + 3600,
        "iat": now,
        "version": 2,
        "jti": jti,
        "client_id": client_id,
    })
}
