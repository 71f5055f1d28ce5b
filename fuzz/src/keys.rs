//! The fuzz policies' keys, signing of arbitrary header and payload bytes,
//! and the reference signature check.
//!
//! Every key is derived from a fixed label, so the keys, the JWKS and the
//! seed tokens are the same on every machine: EC P-256 and Ed25519 from
//! SHA-256 of the label, the HMAC secret is that hash, and the RSA key comes
//! from a SHA-256 counter-mode stream (deterministic for the `rsa` version
//! in `fuzz/Cargo.lock`). Generating the RSA key takes seconds under the
//! sanitizer, so it is kept in `fuzz/fixtures/rsa-1.pk8.b64` (a fuzzing-only
//! key) and a seed test checks that it is still what the generation gives.
//!
//! The reference check verifies with the primitives themselves (RustCrypto
//! `p256`, `rsa`, `hmac` and `ed25519-compact`), not through jwt-simple or
//! the filter's own `signature` module, so an `Allow` the filter gives is
//! checked by code it does not share.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use p256::ecdsa::signature::Verifier as _;
use rsa::pkcs8::DecodePrivateKey;
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::sha2::Digest as _;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use testkit::{Alg, KeyMaterial, TestKey};

pub use testkit::{b64url, b64url_decode};

pub const RSA_KID: &str = "rsa-1";
pub const EC_KID: &str = "ec-1";
pub const ED_KID: &str = "ed-1";

/// The private keys behind the fuzz policies.
pub struct Keys {
    pub rsa: RsaPrivateKey,
    pub ec: p256::ecdsa::SigningKey,
    pub ed: ed25519_compact::KeyPair,
    /// The HS256 shared secret (32 bytes).
    pub secret: Vec<u8>,
    /// The same keys as the test kit's: their JWKs and signatures.
    kit: [TestKey; 4],
}

fn label_hash(label: &str) -> [u8; 32] {
    rsa::sha2::Sha256::digest(format!("jwt-policy fuzz key {label}").as_bytes()).into()
}

/// A deterministic byte stream: SHA-256(seed || counter) blocks. Only for
/// making fuzz keys and PSS salts reproducible; never for real keys.
pub struct Stream {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl Stream {
    pub fn new(seed: &[u8]) -> Stream {
        Stream {
            seed: rsa::sha2::Sha256::digest(seed).into(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

impl RngCore for Stream {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for out in dest {
            if self.used == self.block.len() {
                let mut h = rsa::sha2::Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_le_bytes());
                self.block = h.finalize().into();
                self.counter = self.counter.wrapping_add(1);
                self.used = 0;
            }
            *out = self.block[self.used];
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Stream {}

/// Generates the RSA key from its label. Slow (seconds under the
/// sanitizer), so the fuzz targets load [`RSA_PKCS8`] instead; a seed test
/// checks that the two agree.
pub fn derive_rsa() -> RsaPrivateKey {
    RsaPrivateKey::new(&mut Stream::new(b"jwt-policy fuzz key rsa-1"), 2048)
        .expect("deterministic RSA key")
}

/// [`derive_rsa`]'s key as PKCS#8 DER in base64url: a fuzzing-only key,
/// public on purpose. `fuzz/src/seeds.rs` rewrites it with the seeds.
pub const RSA_PKCS8: &str = include_str!("../fixtures/rsa-1.pk8.b64");

/// The keys, derived once per process.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = RsaPrivateKey::from_pkcs8_der(&b64url_decode(RSA_PKCS8.trim()))
            .expect("fixtures/rsa-1.pk8.b64 is a PKCS#8 RSA key");
        let ec = p256::ecdsa::SigningKey::from_slice(&label_hash(EC_KID)).expect("P-256 scalar");
        let ed =
            ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(label_hash(ED_KID)));
        let secret = label_hash("hs-1").to_vec();
        let kit = [
            TestKey::from_material(RSA_KID, KeyMaterial::Rsa(rsa.clone())),
            TestKey::from_material(EC_KID, KeyMaterial::P256(ec.clone())),
            TestKey::from_material(ED_KID, KeyMaterial::Ed25519(ed.clone())),
            TestKey::hmac("hs-1", &secret),
        ];
        Keys {
            rsa,
            ec,
            ed,
            secret,
            kit,
        }
    })
}

/// The public JWKS of the fuzz keys, in the shape Cognito publishes (`kid`
/// and `use`; the RSA key first) but without `alg` on the RSA key, so that
/// one key serves both RS256 and PS256.
pub fn jwks() -> Value {
    let [rsa, ec, ed, _] = &keys().kit;
    testkit::jwks(&[rsa.jwk(), ec.jwk(), ed.jwk()])
}

/// Who signs a minted token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    Rs256,
    /// PS256 with a salt drawn from the message, so tokens are reproducible.
    Ps256,
    Es256,
    EdDsa,
    Hs256,
}

impl Signer {
    pub const ALL: [Signer; 5] = [
        Signer::Rs256,
        Signer::Ps256,
        Signer::Es256,
        Signer::EdDsa,
        Signer::Hs256,
    ];

    /// The name a structured fuzz input uses (see `token::structured`).
    pub fn short(self) -> &'static str {
        match self {
            Signer::Rs256 => "rs",
            Signer::Ps256 => "ps",
            Signer::Es256 => "es",
            Signer::EdDsa => "ed",
            Signer::Hs256 => "hs",
        }
    }

    /// The signers a structured fuzz input may name: not the RSA ones,
    /// whose signing takes some 50 ms under the sanitizer and would slow
    /// every run that picks them to a crawl. The checks after the signature
    /// do not depend on the algorithm, and RSA verification is reached by
    /// the raw RS256 and PS256 seeds.
    pub fn from_short(name: &[u8]) -> Option<Signer> {
        [Signer::Es256, Signer::EdDsa, Signer::Hs256]
            .into_iter()
            .find(|s| s.short().as_bytes() == name)
    }

    pub fn alg(self) -> &'static str {
        match self {
            Signer::Rs256 => "RS256",
            Signer::Ps256 => "PS256",
            Signer::Es256 => "ES256",
            Signer::EdDsa => "EdDSA",
            Signer::Hs256 => "HS256",
        }
    }

    pub fn kid(self) -> Option<&'static str> {
        match self {
            Signer::Rs256 | Signer::Ps256 => Some(RSA_KID),
            Signer::Es256 => Some(EC_KID),
            Signer::EdDsa => Some(ED_KID),
            Signer::Hs256 => None,
        }
    }

    /// The JWS signature of `input` (ECDSA as r||s with low S, as the test
    /// kit signs).
    pub fn sign(self, input: &[u8]) -> Vec<u8> {
        let k = keys();
        let [rsa, ec, ed, hs] = &k.kit;
        match self {
            Signer::Rs256 => rsa.sign(Alg::RS256, input),
            // The kit draws PSS salts at random; the seeds need them
            // reproducible.
            Signer::Ps256 => k
                .rsa
                .sign_with_rng(
                    &mut Stream::new(input),
                    Pss::new::<rsa::sha2::Sha256>(),
                    &rsa::sha2::Sha256::digest(input),
                )
                .expect("PS256 signature"),
            Signer::Es256 => ec.sign(Alg::ES256, input),
            Signer::EdDsa => ed.sign(Alg::EdDSA, input),
            Signer::Hs256 => hs.sign(Alg::HS256, input),
        }
    }

    /// `b64url(header).b64url(payload).b64url(signature)` over the exact bytes.
    pub fn mint(self, header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", b64url(header), b64url(payload));
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64url(sig))
    }

    /// A token with the header `{"alg":…,"kid":…}` (Cognito's shape) over `claims`.
    pub fn token(self, claims: &Value) -> String {
        let header = match self.kid() {
            Some(kid) => json!({"alg": self.alg(), "kid": kid}),
            None => json!({"alg": self.alg(), "typ": "JWT"}),
        };
        self.mint(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }
}

/// Splits a compact token into its signing input, decoded header and
/// decoded signature, independently of the filter's parser.
fn pieces(token: &str) -> Result<(&str, Value, Vec<u8>), String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not three segments".into());
    };
    let input = token
        .get(..h.len() + 1 + p.len())
        .ok_or("no signing input")?;
    let header = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|e| format!("header base64: {e}"))?;
    let header: Value = serde_json::from_slice(&header).map_err(|e| format!("header JSON: {e}"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| format!("signature base64: {e}"))?;
    Ok((input, header, sig))
}

/// Whether `token`'s signature verifies, under the key its header's `alg`
/// calls for, with the reference implementations. `Err` says why not.
pub fn reference_verify(token: &str) -> Result<(), String> {
    let (input, header, sig) = pieces(token)?;
    let k = keys();
    let msg = input.as_bytes();
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let ok = match alg {
        "RS256" => RsaPublicKey::from(&k.rsa)
            .verify(
                Pkcs1v15Sign::new::<rsa::sha2::Sha256>(),
                &rsa::sha2::Sha256::digest(msg),
                &sig,
            )
            .is_ok(),
        "PS256" => RsaPublicKey::from(&k.rsa)
            .verify(
                Pss::new::<rsa::sha2::Sha256>(),
                &rsa::sha2::Sha256::digest(msg),
                &sig,
            )
            .is_ok(),
        "ES256" => p256::ecdsa::Signature::from_slice(&sig)
            .is_ok_and(|s| k.ec.verifying_key().verify(msg, &s).is_ok()),
        "EdDSA" => ed25519_compact::Signature::from_slice(&sig)
            .is_ok_and(|s| k.ed.pk.verify(msg, &s).is_ok()),
        "HS256" => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&k.secret).expect("HMAC key");
            mac.update(msg);
            mac.verify_slice(&sig).is_ok()
        }
        other => return Err(format!("no reference key for alg {other:?}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{alg} signature does not verify"))
    }
}

/// The decoded header and payload of a token, for reference claim checks.
pub fn decoded(token: &str) -> Result<(Value, Value), String> {
    let (_, header, _) = pieces(token)?;
    let payload = token.split('.').nth(1).ok_or("no payload")?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| format!("payload base64: {e}"))?;
    let payload: Value =
        serde_json::from_slice(&payload).map_err(|e| format!("payload JSON: {e}"))?;
    Ok((header, payload))
}
