//! The seed corpora (`fuzz/corpus/<target>/seed-*`), generated here and
//! checked in; libFuzzer starts from them and writes what it finds next to
//! them (git keeps only the `seed-*` files).
//!
//! Regenerate after changing the keys, the policies or this list:
//!
//! ```text
//! CARGO_TARGET_DIR=target/fuzz cargo +nightly test --manifest-path fuzz/Cargo.toml \
//!     --lib -- --ignored write_seed_corpora
//! ```
//!
//! (The first run after a change of the RSA key derivation rewrites
//! `fuzz/fixtures/rsa-1.pk8.b64` and asks to be run again.)
//!
//! The seeds are deterministic (fixed keys, RFC 6979 ECDSA, deterministic
//! Ed25519, PSS salts drawn from the message), so regenerating changes no
//! file unless the list does. The other tests check that the files on disk
//! are what this list produces and that every seed is decided as expected
//! by the same `run` function its fuzz target calls.

use std::fs;
use std::path::PathBuf;

use jwt_policy::denial::DenyReason;
use jwt_policy::engine::Outcome;
use serde_json::{Value, json};

use crate::keys::{self, EC_KID, ED_KID, RSA_KID, Signer, b64url};
use crate::{CLIENT, ISSUER, NOW, PARTNER_ISSUER, SCOPE, cognito, request, token};

/// What a seed must produce.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Allow,
    Deny(DenyReason),
    /// `jwks`: the number of usable keys, or `None` when refused.
    Keys(Option<usize>),
    /// `config`: whether it compiles.
    Compiles(bool),
}

struct Seed {
    target: &'static str,
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
}

fn seed(target: &'static str, name: &str, bytes: impl Into<Vec<u8>>, expect: Expect) -> Seed {
    Seed {
        target,
        name: format!("seed-{name}"),
        bytes: bytes.into(),
        expect,
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn claims_with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = cognito(SCOPE);
    f(c.as_object_mut().expect("claims are an object"));
    c
}

/// A token over exact header and payload text with a signature of `sig`.
fn raw(header: &str, payload: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes()),
        b64url(sig)
    )
}

fn token_seeds() -> Vec<Seed> {
    use DenyReason::*;
    use Expect::{Allow, Deny};
    let t = |name: &str, token: String, expect: Expect| seed("token", name, token, expect);
    let good = cognito(SCOPE);
    let es_header = json!({"alg": "ES256", "kid": EC_KID}).to_string();
    let es =
        |header: &str, payload: &str| Signer::Es256.mint(header.as_bytes(), payload.as_bytes());
    let mut out = Vec::new();

    for s in Signer::ALL {
        out.push(t(
            &format!("valid-{}", s.alg().to_lowercase()),
            s.token(&good),
            Allow,
        ));
    }
    out.push(t(
        "valid-es256-no-kid",
        es(r#"{"alg":"ES256"}"#, &good.to_string()),
        Allow,
    ));
    out.push(t(
        "valid-at-jwt-typ",
        Signer::EdDsa.mint(
            json!({"alg": "EdDSA", "kid": ED_KID, "typ": "at+jwt"})
                .to_string()
                .as_bytes(),
            good.to_string().as_bytes(),
        ),
        Allow,
    ));
    let valid = Signer::Es256.token(&good);
    let (input, sig) = valid.rsplit_once('.').expect("three segments");
    let sig = crate::keys::b64url_decode(sig);
    let twin = testkit::es_high_s(&sig, testkit::Alg::ES256);
    out.push(t(
        "valid-es256-other-s",
        format!("{input}.{}", b64url(&twin)),
        Allow,
    ));
    out.push(t(
        "valid-scp-array",
        Signer::Rs256.token(&claims_with(|c| {
            c.remove("scope");
            c.insert("scp".into(), json!([SCOPE, "order/get.order"]));
        })),
        Allow,
    ));
    out.push(t(
        "valid-aud-array",
        Signer::Es256.token(&claims_with(|c| {
            c.insert("aud".into(), json!(["other", CLIENT]));
        })),
        Allow,
    ));

    // Valid signatures, claims that fail.
    let claim_cases: Vec<(&str, Value, DenyReason)> = vec![
        ("scope-missing", cognito("order/get.order"), Scope),
        (
            "expired",
            claims_with(|c| {
                c.insert("exp".into(), json!(NOW - 120));
            }),
            Expired,
        ),
        (
            "no-exp",
            claims_with(|c| {
                c.remove("exp");
            }),
            Expired,
        ),
        (
            "not-yet-valid",
            claims_with(|c| {
                c.insert("nbf".into(), json!(NOW + 600));
            }),
            NotYetValid,
        ),
        (
            "iat-future",
            claims_with(|c| {
                c.insert("iat".into(), json!(NOW + 600));
            }),
            NotYetValid,
        ),
        (
            "wrong-issuer",
            claims_with(|c| {
                c.insert("iss".into(), json!("https://evil.example.com"));
            }),
            Issuer,
        ),
        (
            "wrong-audience",
            claims_with(|c| {
                c.insert("aud".into(), json!("other"));
            }),
            Audience,
        ),
        (
            "id-token",
            claims_with(|c| {
                c.insert("token_use".into(), json!("id"));
            }),
            TokenUse,
        ),
        (
            "wrong-client",
            claims_with(|c| {
                c.insert("client_id".into(), json!("someone-else"));
                c.insert("aud".into(), json!(CLIENT));
            }),
            Claim,
        ),
    ];
    for (name, claims, reason) in claim_cases {
        out.push(t(name, Signer::Es256.token(&claims), Deny(reason)));
    }

    // RFC 8725 / OWASP shapes.
    let payload = good.to_string();
    for (name, alg) in [
        ("none", "none"),
        ("none-caps", "NONE"),
        ("none-mixed", "nOnE"),
    ] {
        out.push(t(
            &format!("alg-{name}"),
            format!(
                "{}.{}.",
                b64url(json!({"alg": alg}).to_string()),
                b64url(&payload)
            ),
            Deny(Algorithm),
        ));
        out.push(t(
            &format!("alg-{name}-with-signature"),
            raw(&json!({"alg": alg}).to_string(), &payload, b"sig"),
            Deny(Algorithm),
        ));
    }
    out.push(t(
        "alg-missing",
        raw("{}", &payload, b"sig"),
        Deny(Algorithm),
    ));
    out.push(t(
        "alg-rs256-lowercase",
        raw(r#"{"alg":"rs256"}"#, &payload, b"sig"),
        Deny(Algorithm),
    ));
    for (name, header) in [
        (
            "crit",
            json!({"alg": "ES256", "kid": EC_KID, "crit": ["exp"], "exp": 1}),
        ),
        (
            "jku",
            json!({"alg": "ES256", "kid": EC_KID, "jku": "https://evil.example.com/jwks.json"}),
        ),
        (
            "jwk",
            json!({"alg": "ES256", "kid": EC_KID, "jwk": keys::jwks()["keys"][1]}),
        ),
        (
            "x5u",
            json!({"alg": "ES256", "kid": EC_KID, "x5u": "https://evil.example.com/cert.pem"}),
        ),
        (
            "x5c",
            json!({"alg": "ES256", "kid": EC_KID, "x5c": ["MIIBszCCAVmgAwIBAgIJ"]}),
        ),
        (
            "typ-jwe",
            json!({"alg": "ES256", "kid": EC_KID, "typ": "JWE"}),
        ),
        (
            "cty-nested",
            json!({"alg": "ES256", "kid": EC_KID, "cty": "JWT"}),
        ),
        ("kid-number", json!({"alg": "ES256", "kid": 1})),
    ] {
        out.push(t(name, es(&header.to_string(), &payload), Deny(Malformed)));
    }
    for (name, kid) in [
        ("kid-path", "../../../../../../dev/null"),
        ("kid-sql", "x' UNION SELECT 'secret' --"),
        ("kid-empty", ""),
    ] {
        out.push(t(
            name,
            es(&json!({"alg": "ES256", "kid": kid}).to_string(), &payload),
            Deny(UnknownKid),
        ));
    }
    out.push(t(
        "kid-of-other-family",
        es(
            &json!({"alg": "ES256", "kid": RSA_KID}).to_string(),
            &payload,
        ),
        Deny(Algorithm),
    ));
    out.push(t(
        "duplicate-header-alg",
        es(r#"{"alg":"ES256","kid":"ec-1","alg":"HS256"}"#, &payload),
        Deny(Malformed),
    ));
    let dup_iss = payload.replacen('{', r#"{"iss":"https://evil.example.com","#, 1);
    out.push(t(
        "duplicate-payload-iss",
        es(&es_header, &dup_iss),
        Deny(Malformed),
    ));
    let escaped_dup = payload.replacen('{', r#"{"\u0069ss":"https://evil.example.com","#, 1);
    out.push(t(
        "duplicate-payload-escaped",
        es(&es_header, &escaped_dup),
        Deny(Malformed),
    ));
    for (name, p) in [
        ("payload-array", "[1,2]".to_string()),
        ("payload-string", r#""claims""#.to_string()),
        ("payload-null", "null".to_string()),
        ("payload-trailing", format!("{payload} x")),
        ("payload-not-json", "not json".to_string()),
    ] {
        out.push(t(name, es(&es_header, &p), Deny(Malformed)));
    }
    for (name, exp, expect) in [
        (
            "exp-string",
            json!(format!("{}", NOW + 3600)),
            Deny(Malformed),
        ),
        // NumericDates may have fractions (RFC 7519 §2).
        ("exp-float", json!(1_750_003_600.5), Allow),
        ("exp-exponent", json!(1.75e9 + 3600.0), Allow),
        ("exp-float-expired", json!(1_749_999_900.9), Deny(Expired)),
        ("exp-negative", json!(-1), Deny(Malformed)),
        ("exp-negative-fraction", json!(-0.5), Deny(Malformed)),
        (
            "exp-2-pow-53",
            json!(9_007_199_254_740_992u64),
            Deny(Malformed),
        ),
        ("exp-u64-max", json!(u64::MAX), Deny(Malformed)),
        ("exp-null", Value::Null, Deny(Malformed)),
    ] {
        let c = claims_with(|c| {
            c.insert("exp".into(), exp);
        });
        out.push(t(name, Signer::Es256.token(&c), expect));
    }
    // A registered header member of the wrong type: the same verdict for
    // every verifier.
    out.push(t(
        "header-x5t-object",
        es(
            &format!(r#"{{"alg":"ES256","kid":"{EC_KID}","x5t":{{"a":1}}}}"#),
            &payload,
        ),
        Deny(Malformed),
    ));
    out.push(t(
        "exp-1e400",
        es(
            &es_header,
            &payload.replacen(&format!("\"exp\":{}", NOW + 3600), "\"exp\":1e400", 1),
        ),
        Deny(Malformed),
    ));
    let deep = format!(
        "{{\"iss\":\"{ISSUER}\",\"a\":{}1{}}}",
        "[".repeat(40),
        "]".repeat(40)
    );
    out.push(t("deep-nesting", es(&es_header, &deep), Deny(Malformed)));
    out.push(t(
        "big-header",
        es(
            &json!({"alg": "ES256", "kid": EC_KID, "x": "a".repeat(1100)}).to_string(),
            &payload,
        ),
        Deny(Malformed),
    ));
    out.push(t(
        "too-long",
        Signer::Es256.token(&claims_with(|c| {
            c.insert("pad".into(), json!("p".repeat(9000)));
        })),
        Deny(Malformed),
    ));

    // Encodings.
    let (h, rest) = valid.split_once('.').expect("segments");
    out.push(t("padding", format!("{h}=.{rest}"), Deny(Malformed)));
    out.push(t(
        "padding-signature",
        format!("{valid}=="),
        Deny(Malformed),
    ));
    out.push(t(
        "standard-alphabet",
        format!("{}+/.{rest}", &h[..h.len() - 2]),
        Deny(Malformed),
    ));
    out.push(t(
        "whitespace-inside",
        format!("{h}. {rest}"),
        Deny(Malformed),
    ));
    out.push(t("four-segments", format!("{valid}.e30"), Deny(Malformed)));
    out.push(t("two-segments", input.to_string(), Deny(Malformed)));
    out.push(t("empty-signature", format!("{input}."), Deny(Malformed)));
    out.push(t("two-tokens", format!("{valid},{valid}"), Deny(Malformed)));
    out.push(t("empty", String::new(), Deny(Malformed)));
    out.push(seed(
        "token",
        "not-ascii",
        [
            &valid.as_bytes()[..20],
            b"\xff\xfe",
            &valid.as_bytes()[20..],
        ]
        .concat(),
        Deny(Malformed),
    ));

    // Signatures of the wrong shape or from the wrong key.
    let es_input = |p: &str| format!("{}.{}", b64url(&es_header), b64url(p));
    let zero = format!("{}.{}", es_input(&payload), b64url([0u8; 64]));
    out.push(t("es256-zero-signature", zero, Deny(Signature)));
    out.push(t(
        "es256-short-signature",
        format!("{}.{}", es_input(&payload), b64url(&sig[..63])),
        Deny(Signature),
    ));
    let n = testkit::tokens::curve_order(testkit::Alg::ES256);
    let r_is_n = [&n[..], &sig[32..]].concat();
    out.push(t(
        "es256-r-is-n",
        format!("{input}.{}", b64url(r_is_n)),
        Deny(Signature),
    ));
    out.push(t(
        "es256-tampered-payload",
        format!(
            "{}.{}",
            es_input(&cognito("order/post.order order/admin").to_string()),
            b64url(&sig)
        ),
        Deny(Signature),
    ));
    let rs = Signer::Rs256.token(&good);
    let (rs_input, rs_sig) = rs.rsplit_once('.').expect("segments");
    let rs_sig = crate::keys::b64url_decode(rs_sig);
    out.push(t(
        "rs256-short-signature",
        format!("{rs_input}.{}", b64url(&rs_sig[1..])),
        Deny(Signature),
    ));
    out.push(t(
        "rs256-long-signature",
        format!("{rs_input}.{}", b64url([&[0u8][..], &rs_sig].concat())),
        Deny(Signature),
    ));
    out.push(t(
        "rs256-as-ps256",
        format!(
            "{}.{}.{}",
            b64url(json!({"alg": "PS256", "kid": RSA_KID}).to_string()),
            rs_input.split_once('.').expect("segments").1,
            b64url(&rs_sig)
        ),
        Deny(Signature),
    ));
    // Algorithm confusion: HS256 keyed with the RSA public key's bytes.
    let jwk = &keys::jwks()["keys"][0];
    let n_text = jwk["n"].as_str().expect("n").to_string();
    let hs_header = json!({"alg": "HS256", "kid": RSA_KID}).to_string();
    let confused_input = format!("{}.{}", b64url(&hs_header), b64url(&payload));
    let confused_tag = hmac_tag(n_text.as_bytes(), confused_input.as_bytes());
    out.push(t(
        "hs256-keyed-with-rsa-key",
        format!("{confused_input}.{}", b64url(confused_tag)),
        Deny(Signature),
    ));
    let hs_as_es = Signer::Hs256.sign(es_input(&payload).as_bytes());
    out.push(t(
        "es256-header-hmac-signature",
        format!("{}.{}", es_input(&payload), b64url(hs_as_es)),
        Deny(Signature),
    ));
    out.push(t(
        "eddsa-signed-by-ec-key",
        Signer::Es256.mint(
            json!({"alg": "EdDSA", "kid": ED_KID})
                .to_string()
                .as_bytes(),
            payload.as_bytes(),
        ),
        Deny(Signature),
    ));

    // Structured inputs: the harness signs header and payload as given.
    let st = |name: &str, header: &str, payload: &str, signer: Signer, expect: Expect| {
        seed(
            "token",
            &format!("structured-{name}"),
            token::structured(header, payload, signer),
            expect,
        )
    };
    for s in [Signer::Es256, Signer::EdDsa, Signer::Hs256] {
        let header = match s.kid() {
            Some(kid) => json!({"alg": s.alg(), "kid": kid}),
            None => json!({"alg": s.alg()}),
        };
        out.push(st(
            &s.alg().to_lowercase(),
            &header.to_string(),
            &payload,
            s,
            Allow,
        ));
    }
    out.push(st(
        "duplicate-scope",
        &es_header,
        &payload.replacen('{', r#"{"scope":"order/admin","#, 1),
        Signer::Es256,
        Deny(Malformed),
    ));
    out.push(st(
        "crit",
        r#"{"alg":"EdDSA","kid":"ed-1","crit":["b64"],"b64":false}"#,
        &payload,
        Signer::EdDsa,
        Deny(Malformed),
    ));
    out.push(st(
        "hs256-header-ec-signer",
        r#"{"alg":"HS256"}"#,
        &payload,
        Signer::Es256,
        Deny(Signature),
    ));
    out.push(seed(
        "token",
        "structured-junk-signature",
        format!("{es_header}\n{payload}\nnot a signer"),
        Deny(Signature),
    ));
    out
}

fn hmac_tag(key: &[u8], msg: &[u8]) -> Vec<u8> {
    testkit::TestKey::hmac("", key).sign(testkit::Alg::HS256, msg)
}

/// RFC 7517 appendix A.1 keys and RFC 8037 appendix A.2.
const RFC_RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

fn rfc_ec() -> Value {
    json!({"kty":"EC","crv":"P-256","kid":"rfc-ec",
           "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
           "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"})
}

fn rfc_ed() -> Value {
    json!({"kty":"OKP","crv":"Ed25519","kid":"rfc-ed",
           "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
}

fn p384_jwk() -> Value {
    use sha2::Digest as _;
    let scalar = sha2::Sha384::digest(b"jwt-policy fuzz key ec384-1");
    let key = p384::ecdsa::SigningKey::from_slice(&scalar).expect("P-384 scalar");
    let point = key.verifying_key().to_sec1_point(false);
    let xy = &point.as_bytes()[1..];
    let (x, y) = xy.split_at(48);
    json!({"kty":"EC","crv":"P-384","kid":"ec384-1","x":b64url(x),"y":b64url(y)})
}

fn jwks_seeds() -> Vec<Seed> {
    use Expect::Keys;
    let j = |name: &str, doc: Value, expect: Expect| seed("jwks", name, doc.to_string(), expect);
    let ours = keys::jwks();
    let mut cognito_rsa = ours["keys"][0].clone();
    cognito_rsa["alg"] = json!("RS256");
    cognito_rsa["kid"] = json!("4ZrtMq6zd1ODvjRl0yLFw+LrwdqkLvsgDxp5jGyqZyw=");
    let mut second = json!({"alg":"RS256","e":"AQAB","kid":"cDbhykSMOtd/5NM2zoGNKYJ43k4fu3Ee3Trcy5Y2Y7M=","kty":"RSA","n":RFC_RSA_N,"use":"sig"});
    let mut out = vec![
        j("fuzz-keys", ours.clone(), Keys(Some(3))),
        j(
            "cognito-rsa-pair",
            json!({"keys": [cognito_rsa, second.clone()]}),
            Keys(Some(2)),
        ),
        j(
            "every-curve",
            json!({"keys": [rfc_ec(), p384_jwk(), rfc_ed()]}),
            Keys(Some(3)),
        ),
        j("empty-set", json!({"keys": []}), Keys(Some(0))),
    ];
    let padded_n = {
        let n = crate::keys::b64url_decode(RFC_RSA_N);
        let mut p = vec![0u8];
        p.extend_from_slice(&n);
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE, p)
    };
    second["n"] = json!(padded_n);
    second["e"] = json!("AQAB");
    out.push(j(
        "padded-members",
        json!({"keys": [second]}),
        Keys(Some(1)),
    ));
    let mut off_curve = rfc_ec();
    off_curve["y"] = json!(b64url([7u8; 32]));
    let broken = json!({"keys": [
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "too-small"},
        {"kty": "RSA", "e": "AQAB"},
        {"kty": "RSA", "n": "not base64!", "e": "AQAB"},
        {"kty": "RSA", "n": RFC_RSA_N, "e": "AQAB", "alg": "XS999"},
        {"kty": "RSA", "n": RFC_RSA_N, "e": "AQAB", "kid": 7},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        off_curve,
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kid": "no-kty"},
        "not an object",
        null,
        {"kty": "RSA", "n": RFC_RSA_N, "e": "AQAB", "use": "enc", "alg": "RSA-OAEP"},
        {"kty": "RSA", "n": RFC_RSA_N, "e": "AQAB", "key_ops": ["encrypt"]},
        {"kty": "RSA", "n": RFC_RSA_N, "e": "AQAB", "key_ops": "verify"}
    ]});
    out.push(j("broken-members", broken, Keys(Some(2))));
    let many: Vec<Value> = (0..65)
        .map(|i| {
            let mut k = rfc_ed();
            k["kid"] = json!(format!("k{i}"));
            k
        })
        .collect();
    out.push(j("too-many-keys", json!({"keys": many}), Keys(None)));
    let mut dup_kids = rfc_ec();
    dup_kids["kid"] = json!("same");
    let mut dup_rsa = ours["keys"][0].clone();
    dup_rsa["kid"] = json!("same");
    out.push(j(
        "duplicate-kids",
        json!({"keys": [dup_kids, dup_rsa, {"kty": "OKP", "crv": "Ed25519", "x": rfc_ed()["x"]}]}),
        Keys(Some(3)),
    ));
    for (name, text) in [
        ("not-an-object", "[]".to_string()),
        ("keys-not-array", r#"{"keys":{}}"#.to_string()),
        ("no-keys", "{}".to_string()),
        (
            "duplicate-keys-member",
            r#"{"keys":[],"keys":[]}"#.to_string(),
        ),
        (
            "deep-nesting",
            format!(r#"{{"keys":[],"x":{}{}}}"#, "[".repeat(30), "]".repeat(30)),
        ),
        ("trailing", r#"{"keys":[]} {}"#.to_string()),
        ("not-json", "keys".to_string()),
    ] {
        out.push(seed("jwks", name, text, Keys(None)));
    }
    out
}

/// tests/support/cases.rs `config()` with the fuzz keys.
fn cases_config() -> Value {
    json!({
      "providers": {
        "cognito": {
          "issuer": ISSUER,
          "audiences": [CLIENT],
          "token_use": "access",
          "algorithms": ["RS256", "PS256", "ES256", "EdDSA"],
          "local_jwks": keys::jwks(),
          "clock_skew_s": 60,
          "require_exp": true,
          "from_headers": [{ "name": "authorization", "prefix": "Bearer " }],
          "from_params": ["access_token"],
          "from_cookies": ["session_token"],
          "claims": [{ "claim": "client_id", "one_of": [CLIENT], "required": true }],
          "claims_to_headers": [
            { "claim": "client_id", "header": "x-client-id" },
            { "claim": "scope", "header": "x-scopes" }
          ],
          "forward_token": true
        }
      },
      "rules": [
        { "match": { "path": "/healthz" }, "allow_anonymous": true },
        { "match": { "prefix": "/api/v1/order", "methods": ["POST"] },
          "requires": { "provider": "cognito", "scopes": ["order/post.order"] } },
        { "match": { "prefix": "/api/v1/order", "methods": ["GET"] },
          "requires": { "provider": "cognito", "scopes": ["order/get.order", "order/admin"] } },
        { "match": { "route": "admin_route" },
          "requires": { "provider": "cognito", "all_scopes": ["order/admin", "order/audit"] } }
      ],
      "unmatched": "deny",
      "route_check": true
    })
}

fn config_seeds() -> Vec<Seed> {
    use Expect::Compiles;
    let c = |name: &str, v: Value, ok: bool| seed("config", name, v.to_string(), Compiles(ok));
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = cases_config();
        f(&mut v);
        v
    };
    let small_jwks = json!({"keys": [rfc_ec(), rfc_ed()]});
    let remote = json!({
        "cluster": "cognito_idp",
        "uri": format!("{ISSUER}/.well-known/jwks.json"),
        "timeout_ms": 3000, "cache_ttl_s": 600, "max_stale_s": 3600, "refetch_cooldown_s": 10
    });
    let mut out = vec![
        c("cases", cases_config(), true),
        c("token-policy", crate::token_policy_json(), true),
        c("request-policy", crate::request_policy_json(), true),
        c(
            "small-jwks",
            edit(&|v| v["providers"]["cognito"]["local_jwks"] = small_jwks.clone()),
            true,
        ),
        c(
            "jwks-as-string",
            edit(&|v| v["providers"]["cognito"]["local_jwks"] = json!(small_jwks.to_string())),
            true,
        ),
        c(
            "remote-jwks",
            edit(&|v| {
                let p = v["providers"]["cognito"].as_object_mut().expect("provider");
                p.remove("local_jwks");
                p.insert("remote_jwks".into(), remote.clone());
            }),
            true,
        ),
        c(
            "remote-jwks-minimal",
            json!({"providers": {"idp": {"issuer": "https://idp.example.com",
                    "remote_jwks": {"cluster": "idp", "uri": "http://[::1]:8080/jwks?x=1"}}},
                   "rules": [{"match": {}, "requires": {}}]}),
            true,
        ),
        c(
            "remote-jwks-bad-uri",
            edit(&|v| {
                let p = v["providers"]["cognito"].as_object_mut().expect("provider");
                p.remove("local_jwks");
                p.insert(
                    "remote_jwks".into(),
                    json!({"cluster": "c", "uri": "https://user@host:0/j#f"}),
                );
            }),
            false,
        ),
        c(
            // local_jwks beside remote_jwks: bootstrap keys.
            "remote-with-bootstrap-keys",
            edit(&|v| v["providers"]["cognito"]["remote_jwks"] = remote.clone()),
            true,
        ),
        c(
            "mesh-wide",
            edit(&|v| {
                v["providers"]["partners"] = v["providers"]["cognito"].clone();
                v["providers"]["partners"]["issuer"] = json!("https://partners.example.com");
                v["providers"]["partners"]["from_headers"] = json!([{"name": "x-partner-token"}]);
                v["providers"]["cognito"]["claims_to_filter_state"] =
                    json!([{"claim": "client_id", "name": "client_id"}]);
                v["rules"] = json!([
                    {"match": {"hosts": ["api.example.com", "*.internal.example.com:8443"],
                               "path_template": "/orders/{id}"},
                     "requires": {"providers": ["cognito", "partners"], "scopes": ["a"]}},
                    {"match": {"path_template": "/files/{proxy+}"}, "requires": {"provider": "cognito"}},
                    {"match": {"prefix": "/catalog"}, "requires": {"provider": "cognito"},
                     "allow_missing": true},
                    {"match": {}, "requires": {"provider": "cognito",
                     "claims": [{"claim": "tenant"}]}}
                ]);
                v["bypass_cors_preflight"] = json!(true);
                v["decision_to_filter_state"] = json!(true);
            }),
            true,
        ),
        c(
            "template-greedy-not-last",
            edit(&|v| v["rules"][1]["match"] = json!({"path_template": "/a/{b+}/c"})),
            false,
        ),
        c(
            "providers-with-one-issuer",
            edit(&|v| {
                v["providers"]["twin"] = v["providers"]["cognito"].clone();
                v["rules"][1]["requires"] = json!({"providers": ["cognito", "twin"]});
            }),
            false,
        ),
        c(
            "hs256-only",
            json!({"providers": {"h": {"issuer": "i", "algorithms": ["HS256", "HS512"],
                    "shared_secret_base64": base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD, [7u8; 64])}},
                   "rules": [{"match": {"methods": ["get", "POST"]}, "requires": {"all_scopes": ["a", "b"]}}],
                   "unmatched": "allow"}),
            true,
        ),
        c(
            "report-everything",
            edit(&|v| {
                v["mode"] = json!("report");
                v["decision_header"] = json!("X-Would-Deny");
                v["realm"] = json!("orders");
                v["rules"][1]["mode"] = json!("enforce");
                v["rules"][1]["name"] = json!("post-orders");
            }),
            true,
        ),
        c(
            "limits-and-cache",
            edit(&|v| {
                v["limits"] = json!({"max_token_bytes": 4096, "max_header_bytes": 512,
                    "max_json_depth": 8, "max_jwks_bytes": 65536, "max_jwks_keys": 8});
                v["token_cache"] = json!({"max_entries": 0, "max_bytes": 0});
                v["use_host_crypto"] = json!(false);
            }),
            true,
        ),
        // Once a harness false positive: `$` is a tchar.
        c(
            "claim-header-tchar",
            edit(&|v| {
                v["providers"]["cognito"]["claims_to_headers"][0]["header"] = json!("x-client$id")
            }),
            true,
        ),
        c(
            "claims-and-headers",
            edit(&|v| {
                v["providers"]["cognito"]["claims"] = json!([
                    {"claim": "org.tenant", "one_of": ["t1", 2, true], "required": false}]);
                v["providers"]["cognito"]["known_scopes"] = json!(["order/post.order"]);
                v["rules"][2]["requires"]["claims"] =
                    json!([{"claim": "https://example.com/roles", "one_of": ["admin"]}]);
            }),
            true,
        ),
    ];
    let bad: Vec<(&str, Value)> = vec![
        (
            "unknown-field",
            edit(&|v| v["providers"]["cognito"]["audience"] = json!("x")),
        ),
        (
            "alg-none",
            edit(&|v| v["providers"]["cognito"]["algorithms"] = json!(["none"])),
        ),
        (
            "hs-without-secret",
            edit(&|v| v["providers"]["cognito"]["algorithms"] = json!(["HS256"])),
        ),
        (
            "short-secret",
            json!({"providers": {"h": {"issuer": "i", "algorithms": ["HS256"],
                    "shared_secret_base64": "c2hvcnQ="}}, "rules": []}),
        ),
        (
            "empty-issuer",
            edit(&|v| v["providers"]["cognito"]["issuer"] = json!("")),
        ),
        (
            "unknown-provider",
            edit(&|v| v["rules"][1]["requires"]["provider"] = json!("nope")),
        ),
        (
            "duplicate-rule-names",
            edit(&|v| {
                v["rules"][0]["name"] = json!("x");
                v["rules"][1]["name"] = json!("x");
            }),
        ),
        (
            "prefix-without-slash",
            edit(&|v| v["rules"][1]["match"]["prefix"] = json!("api")),
        ),
        (
            "claim-header-authorization",
            edit(&|v| {
                v["providers"]["cognito"]["claims_to_headers"][0]["header"] = json!("Authorization")
            }),
        ),
        (
            "broken-local-key",
            edit(&|v| v["providers"]["cognito"]["local_jwks"]["keys"][0]["n"] = json!("AQAB")),
        ),
        (
            "limits-out-of-range",
            edit(&|v| v["limits"] = json!({"max_json_depth": 1000})),
        ),
        (
            "negative-skew",
            edit(&|v| v["providers"]["cognito"]["clock_skew_s"] = json!(-1)),
        ),
    ];
    for (name, v) in bad {
        out.push(c(name, v, false));
    }
    for (name, text) in [
        ("not-json", "{providers".to_string()),
        ("trailing", format!("{} x", cases_config())),
        ("empty-object", "{}".to_string()),
        ("null", "null".to_string()),
        (
            "deep-nesting",
            format!(
                r#"{{"providers":{{}},"x":{}{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            ),
        ),
        (
            "duplicate-member",
            r#"{"providers":{},"providers":{}}"#.to_string(),
        ),
    ] {
        out.push(seed("config", name, text, Compiles(false)));
    }
    out
}

fn request_seeds() -> Vec<Seed> {
    use DenyReason::*;
    use Expect::{Allow, Deny};
    let r = |name: &str, bytes: Vec<u8>, expect: Expect| seed("request", name, bytes, expect);
    let post = Signer::Es256.token(&cognito(SCOPE));
    let bearer = format!("Bearer {post}");
    let admin = Signer::EdDsa.token(&cognito("order/admin order/audit"));
    let tenant = Signer::Rs256.token(&claims_with(|c| {
        c.insert("org".into(), json!({"tenant": "t1"}));
    }));
    let partner = Signer::Hs256.token(&json!({"iss": PARTNER_ISSUER, "sub": "partner-7"}));
    let forged_partner = Signer::Es256.token(&json!({"iss": PARTNER_ISSUER}));
    let render = request::render;
    vec![
        r(
            "bearer",
            render("POST", "/api/v1/order", "", &[("authorization", &bearer)]),
            Allow,
        ),
        r(
            "bearer-wrong-scope",
            render("GET", "/api/v1/order/7", "", &[("Authorization", &bearer)]),
            Deny(Scope),
        ),
        r(
            "param",
            render(
                "POST",
                &format!("/api/v1/order?a=1&access_token={post}&b=%41"),
                "",
                &[],
            ),
            Allow,
        ),
        r(
            "cookie",
            render(
                "POST",
                "/api/v1/order",
                "",
                &[(
                    "cookie",
                    &format!("theme=dark; session_token=\"{post}\"; x=1"),
                )],
            ),
            Allow,
        ),
        r(
            "two-places",
            render(
                "POST",
                &format!("/api/v1/order?access_token={post}"),
                "",
                &[("authorization", &bearer)],
            ),
            Deny(Malformed),
        ),
        r(
            "two-authorization-headers",
            render(
                "POST",
                "/api/v1/order",
                "",
                &[("authorization", &bearer), ("authorization", &bearer)],
            ),
            Deny(Malformed),
        ),
        r(
            "two-cookies",
            render(
                "POST",
                "/api/v1/order",
                "",
                &[("cookie", &format!("session_token={post};session_token=x"))],
            ),
            Deny(Malformed),
        ),
        r(
            "healthz",
            render(
                "GET",
                "/healthz?probe=1",
                "",
                &[("authorization", "Bearer junk"), ("x-client-id", "spoofed")],
            ),
            Allow,
        ),
        r(
            "traversal",
            render("POST", "/healthz/../api/v1/order", "", &[]),
            Deny(Missing),
        ),
        r(
            "encoded-path",
            render(
                "POST",
                "//%61pi/./v1/%6Frder/",
                "",
                &[("authorization", &bearer)],
            ),
            Allow,
        ),
        r(
            "admin-route",
            render(
                "GET",
                "/admin/users",
                "admin_route",
                &[("authorization", &format!("bearer   {admin}"))],
            ),
            Allow,
        ),
        r(
            "tenant-claim",
            render(
                "DELETE",
                "/tenant/t1",
                "",
                &[("authorization", &format!("Bearer {tenant}"))],
            ),
            Allow,
        ),
        r(
            "partner",
            render("PUT", "/partner/x", "", &[("x-partner-token", &partner)]),
            Allow,
        ),
        r(
            "partner-forged-report",
            render(
                "PUT",
                "/partner/x",
                "",
                &[("x-partner-token", &forged_partner)],
            ),
            Deny(Algorithm),
        ),
        r(
            "unmatched",
            render("GET", "/elsewhere", "", &[("authorization", &bearer)]),
            Deny(Unmatched),
        ),
        r(
            "not-utf8",
            [
                b"POST\n/api/v1/order\n\nauthorization: Bearer \xff\xfe".as_slice(),
                post.as_bytes(),
            ]
            .concat(),
            Deny(Malformed),
        ),
        // Once harness false positives: the client's own control bytes kept
        // in the rewritten :path, and a malformed escape.
        r(
            "control-bytes-in-query",
            [
                b"POST\n/api/v1/order?a=1&b\x03\x00=3&access_token=".as_slice(),
                post.as_bytes(),
            ]
            .concat(),
            Allow,
        ),
        r(
            "malformed-escape",
            b"GET\n/api/v1/order/%4%41?x=%\n\nauthorization: Bearer x".to_vec(),
            Deny(Path),
        ),
        // The request seam: paths upstreams read differently are refused,
        // dot segments are removed as RFC 3986 says, tokens are counted in
        // every value and twin of a location.
        r(
            "rfc3986-empty-segments",
            render(
                "DELETE",
                "/api/v1/order/42/////../../../../healthz",
                "",
                &[],
            ),
            Deny(Unmatched),
        ),
        r(
            "encoded-slash",
            render("GET", "/healthz/..%2Fapi/v1/order", "", &[]),
            Deny(Path),
        ),
        r(
            "tomcat-path-parameter",
            render("GET", "/healthz/..;/api/v1/order", "", &[]),
            Deny(Path),
        ),
        r(
            "backslash",
            render("GET", "/healthz\\..\\api/v1/order", "", &[]),
            Deny(Path),
        ),
        r(
            "underscore-twins",
            render(
                "GET",
                "/healthz",
                "",
                &[
                    ("x_client_id", "spoofed"),
                    ("x_jwt_policy_decision", "allow"),
                ],
            ),
            Allow,
        ),
        r(
            "partner-token-twice",
            render(
                "PUT",
                "/partner/x",
                "",
                &[("x-partner-token", &partner), ("x_partner_token", &partner)],
            ),
            Deny(Malformed),
        ),
        r(
            "two-cookie-lines",
            render(
                "POST",
                "/api/v1/order",
                "",
                &[
                    ("cookie", &format!("session_token={post}")),
                    ("cookie", &format!("a=1; session_token={post}")),
                ],
            ),
            Deny(Malformed),
        ),
        r(
            "doc-meta",
            b"1 1750000000000 1750003600000".to_vec(),
            Deny(Path),
        ),
        r(
            "doc-record",
            format!("3 1750000000000 1750003600000\n{}", keys::jwks()).into_bytes(),
            Deny(Path),
        ),
        r(
            "fetch-state",
            b"7 1750000005000 2 1750000001000 1749999990000 1749999999000".to_vec(),
            Deny(Path),
        ),
        r(
            "verify-result",
            b"\x08\x00\x12\x26Failed to verify digest. Error code: 0".to_vec(),
            Deny(Path),
        ),
    ]
}

fn all_seeds() -> Vec<Seed> {
    let mut all = token_seeds();
    all.extend(jwks_seeds());
    all.extend(config_seeds());
    all.extend(request_seeds());
    all
}

fn existing_seed_files(target: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(corpus_dir(target))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("seed-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

const TARGETS: [&str; 4] = ["token", "jwks", "config", "request"];

fn rsa_fixture() -> String {
    use rsa::pkcs8::EncodePrivateKey;
    let der = keys::derive_rsa().to_pkcs8_der().expect("PKCS#8");
    format!("{}\n", b64url(der.as_bytes()))
}

#[test]
fn rsa_fixture_is_the_derived_key() {
    assert!(
        keys::RSA_PKCS8 == rsa_fixture(),
        "fuzz/fixtures/rsa-1.pk8.b64 is stale: regenerate the seeds"
    );
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by hand (see the module docs)"]
fn write_seed_corpora() {
    let fixture = rsa_fixture();
    if keys::RSA_PKCS8 != fixture {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/rsa-1.pk8.b64");
        fs::write(&path, fixture).expect("write the RSA key");
        panic!("rewrote {}: run the generator once more", path.display());
    }
    for target in TARGETS {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).expect("corpus directory");
        for old in existing_seed_files(target) {
            fs::remove_file(dir.join(old)).expect("remove an old seed");
        }
    }
    for s in all_seeds() {
        fs::write(corpus_dir(s.target).join(&s.name), &s.bytes).expect("write a seed");
    }
}

#[test]
fn seed_files_are_what_the_generator_writes() {
    let seeds = all_seeds();
    for target in TARGETS {
        let mut want: Vec<String> = seeds
            .iter()
            .filter(|s| s.target == target)
            .map(|s| s.name.clone())
            .collect();
        want.sort();
        assert_eq!(
            existing_seed_files(target),
            want,
            "fuzz/corpus/{target}: regenerate the seeds (see fuzz/src/seeds.rs)"
        );
    }
    for s in &seeds {
        let on_disk = fs::read(corpus_dir(s.target).join(&s.name)).expect("seed file");
        assert!(
            on_disk == s.bytes,
            "{}/{} differs from the generator",
            s.target,
            s.name
        );
    }
}

fn reason(o: &Outcome) -> Expect {
    match o {
        Outcome::Allow(_) => Expect::Allow,
        Outcome::Deny(d) => Expect::Deny(d.reason),
        Outcome::Wait(w) => panic!("wait {w:?}"),
    }
}

#[test]
fn every_seed_is_decided_as_expected() {
    let mut wrong = Vec::new();
    for s in all_seeds() {
        let got = match s.target {
            "token" => reason(&token::run(&s.bytes)),
            "request" => reason(&request::run(&s.bytes)),
            "jwks" => Expect::Keys(crate::jwks::run(&s.bytes)),
            "config" => Expect::Compiles(crate::config::run(&s.bytes)),
            other => panic!("unknown target {other}"),
        };
        if got != s.expect {
            wrong.push(format!(
                "{}/{}: expected {:?}, got {got:?}",
                s.target, s.name, s.expect
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
