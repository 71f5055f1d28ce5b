//! Parsing a compact JWS (RFC 7515) carrying JWT claims (RFC 7519), strictly.
//!
//! Nothing here checks a signature or decides whether the claims are
//! acceptable; it only turns bytes into typed values or refuses them as
//! malformed. The rules follow RFC 8725 (JWT best current practices):
//! - exactly three base64url segments, no padding, no whitespace;
//! - header and claims are JSON objects, without duplicate member names and
//!   within the size and depth limits;
//! - `alg` must name an algorithm we implement (`none` never does);
//! - `crit` is refused (we understand no extensions), and so are the key
//!   references `jku`, `jwk`, `x5u`, `x5c`: keys come only from configuration,
//!   and a token that tries to bring its own is not one we want;
//! - `typ`, when present, must be `JWT` or `…+jwt`; nested tokens (`cty: JWT`)
//!   are refused; `kid`, `typ`, `cty`, `x5t` and `x5t#S256` must be strings;
//! - `exp`, `nbf` and `iat` are NumericDates (RFC 7519 §2): numbers, fractions
//!   allowed, in the I-JSON safe range (0 ≤ t < 2^53), rounded toward the
//!   stricter side (`exp` down, `nbf` and `iat` up); `iss`, `sub`, `jti`, `client_id`, `token_use` are strings;
//!   `aud` is a string or an array of strings; `scope` is a string and `scp` an
//!   array of strings or a string.

use std::fmt;

use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::b64;
use crate::json::{self, JsonError};
use crate::limits::Limits;
use crate::text::clip;

/// Why a token could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The token is not a well-formed JWS/JWT; the text says what is wrong.
    Malformed(String),
    /// `alg` is missing, `none`, or not one we implement.
    UnsupportedAlgorithm(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed(why) => f.write_str(why),
            TokenError::UnsupportedAlgorithm(alg) => {
                write!(f, "unsupported algorithm \"{}\"", clip(alg, 16))
            }
        }
    }
}

fn malformed(why: impl Into<String>) -> TokenError {
    TokenError::Malformed(why.into())
}

/// The JOSE header members that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

/// A point in time as seconds since the Unix epoch.
pub type NumericDate = u64;

/// The largest integer every JSON implementation represents exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The claims, with the registered ones type-checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub all: Map<String, Value>,
    pub exp: Option<NumericDate>,
    pub nbf: Option<NumericDate>,
    pub iat: Option<NumericDate>,
    pub iss: Option<String>,
    /// `None` when the token has no `aud`.
    pub aud: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub token_use: Option<String>,
    /// From `scope` (space-delimited) and `scp` (array or string), in order,
    /// without duplicates.
    pub scopes: Vec<String>,
}

impl Claims {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A parsed, not yet verified, token.
#[derive(Debug, Clone)]
pub struct Jws<'t> {
    /// The exact bytes the signature covers: `header.payload`.
    pub signing_input: &'t str,
    pub header: Header,
    pub claims: Claims,
    pub signature: Vec<u8>,
}

/// Reads just the `kid` and `alg` of a token's header, for logs and tools,
/// without judging the rest.
pub fn peek_header(token: &str) -> Option<Map<String, Value>> {
    let (head, _) = token.split_once('.')?;
    let bytes = b64::decode_segment(head)?;
    json::parse_object(&bytes, 4).ok()
}

/// Parses a compact JWS.
pub fn parse<'t>(token: &'t str, limits: &Limits) -> Result<Jws<'t>, TokenError> {
    if token.len() > limits.max_token_bytes {
        return Err(malformed(format!(
            "token longer than {} bytes",
            limits.max_token_bytes
        )));
    }
    let mut parts = token.splitn(4, '.');
    let (Some(head), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not a JWS in compact form (three segments)"));
    };
    let header = parse_header(head, limits)?;

    // header.len() + 1 + payload.len() is within token.len(), so this cannot
    // fail; `get` keeps the code free of panicking paths anyway.
    let signing_len = head.len().saturating_add(1).saturating_add(payload.len());
    let signing_input = token
        .get(..signing_len)
        .ok_or_else(|| malformed("not a JWS in compact form"))?;

    let signature =
        b64::decode_segment(sig).ok_or_else(|| malformed("signature is not base64url"))?;
    if signature.is_empty() {
        return Err(malformed("signature is empty"));
    }

    let payload_bytes =
        b64::decode_segment(payload).ok_or_else(|| malformed("payload is not base64url"))?;
    let claims = parse_claims(&payload_bytes, limits)?;
    Ok(Jws {
        signing_input,
        header,
        claims,
        signature,
    })
}

fn json_error(part: &str, e: JsonError) -> TokenError {
    malformed(format!("{part} is {e}"))
}

fn parse_header(segment: &str, limits: &Limits) -> Result<Header, TokenError> {
    // Base64 expands by 4/3; check before decoding.
    if segment.len().saturating_mul(3) / 4 > limits.max_header_bytes {
        return Err(malformed(format!(
            "header longer than {} bytes",
            limits.max_header_bytes
        )));
    }
    let bytes = b64::decode_segment(segment).ok_or_else(|| malformed("header is not base64url"))?;
    if bytes.len() > limits.max_header_bytes {
        return Err(malformed(format!(
            "header longer than {} bytes",
            limits.max_header_bytes
        )));
    }
    let map =
        json::parse_object(&bytes, limits.max_json_depth).map_err(|e| json_error("header", e))?;

    let alg = match map.get("alg") {
        Some(Value::String(name)) => Algorithm::from_name(name)
            .ok_or_else(|| TokenError::UnsupportedAlgorithm(name.clone()))?,
        Some(_) => return Err(malformed("header alg is not a string")),
        None => return Err(TokenError::UnsupportedAlgorithm(String::new())),
    };
    if map.contains_key("crit") {
        return Err(malformed("header has crit: no extensions are supported"));
    }
    for reference in ["jku", "jwk", "x5u", "x5c"] {
        if map.contains_key(reference) {
            return Err(malformed(format!(
                "header has {reference}: keys are never taken from tokens"
            )));
        }
    }
    if map.contains_key("salt") {
        return Err(malformed("header has salt"));
    }
    match map.get("typ") {
        None => {}
        Some(Value::String(t)) => {
            let t = t.to_ascii_uppercase();
            if t != "JWT" && !t.ends_with("+JWT") {
                return Err(malformed("header typ is not JWT"));
            }
        }
        Some(_) => return Err(malformed("header typ is not a string")),
    }
    match map.get("cty") {
        None => {}
        Some(Value::String(c)) if !c.eq_ignore_ascii_case("JWT") => {}
        Some(Value::String(_)) => return Err(malformed("nested tokens (cty) are not supported")),
        Some(_) => return Err(malformed("header cty is not a string")),
    }
    // Registered members that carry text (RFC 7515 §4.1): one type check
    // here, so that every verifier (Envoy's, or the pure-Rust one, whose
    // JOSE header type refuses a non-string) sees the same tokens.
    for member in ["x5t", "x5t#S256"] {
        if map.get(member).is_some_and(|v| !v.is_string()) {
            return Err(malformed(format!("header {member} is not a string")));
        }
    }
    let kid = match map.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(malformed("header kid is not a string")),
    };
    Ok(Header { alg, kid })
}

fn parse_claims(bytes: &[u8], limits: &Limits) -> Result<Claims, TokenError> {
    let all =
        json::parse_object(bytes, limits.max_json_depth).map_err(|e| json_error("payload", e))?;
    let exp = numeric_date(&all, "exp", Round::Down)?;
    let nbf = numeric_date(&all, "nbf", Round::Up)?;
    let iat = numeric_date(&all, "iat", Round::Up)?;
    let iss = string_claim(&all, "iss")?;
    string_claim(&all, "sub")?;
    string_claim(&all, "jti")?;
    string_claim(&all, "nonce")?;
    let client_id = string_claim(&all, "client_id")?;
    let token_use = string_claim(&all, "token_use")?;
    let aud = match all.get("aud") {
        None => None,
        Some(Value::String(a)) => Some(vec![a.clone()]),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed("claim aud holds a non-string"))?,
        ),
        Some(_) => return Err(malformed("claim aud is not a string or an array")),
    };
    let mut scopes: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if !s.is_empty() && !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_owned());
        }
    };
    match all.get("scope") {
        None => {}
        Some(Value::String(s)) => s.split(' ').for_each(&mut add),
        Some(_) => return Err(malformed("claim scope is not a string")),
    }
    match all.get("scp") {
        None => {}
        Some(Value::String(s)) => s.split(' ').for_each(&mut add),
        Some(Value::Array(items)) => {
            for item in items {
                add(item
                    .as_str()
                    .ok_or_else(|| malformed("claim scp holds a non-string"))?);
            }
        }
        Some(_) => return Err(malformed("claim scp is not a string or an array")),
    }
    Ok(Claims {
        exp,
        nbf,
        iat,
        iss,
        aud,
        client_id,
        token_use,
        scopes,
        all,
    })
}

/// Which way a fractional NumericDate is rounded: toward the stricter
/// side of its check.
#[derive(Clone, Copy)]
enum Round {
    /// `exp`: a token expiring at 10.5 has expired at 10.
    Down,
    /// `nbf`, `iat`: a token valid from 10.5 is not yet valid at 10.
    Up,
}

/// A NumericDate (RFC 7519 §2): any JSON number of seconds, fractions
/// included (issuers that stamp `time.time()` or `Date.now() / 1000` emit
/// them), that is finite, not negative and below 2^53, the range every JSON
/// implementation reads exactly.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
    round: Round,
) -> Result<Option<NumericDate>, TokenError> {
    let out_of_range = || malformed(format!("claim {name} is out of range"));
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(t) = n.as_u64() {
                return if t <= MAX_SAFE_INTEGER {
                    Ok(Some(t))
                } else {
                    Err(out_of_range())
                };
            }
            let f = n.as_f64().ok_or_else(out_of_range)?;
            if !f.is_finite() || f.is_sign_negative() {
                return Err(malformed(format!("claim {name} is negative")));
            }
            let whole = match round {
                Round::Down => f.floor(),
                Round::Up => f.ceil(),
            };
            // MAX_SAFE_INTEGER is exactly representable as f64.
            #[allow(clippy::cast_precision_loss)]
            if whole > MAX_SAFE_INTEGER as f64 {
                return Err(out_of_range());
            }
            // In range and whole: the cast is exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(whole as u64))
        }
        Some(_) => Err(malformed(format!("claim {name} is not a number"))),
    }
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(format!("claim {name} is not a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seg(v: &[u8]) -> String {
        b64::encode(v)
    }

    fn tok(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.{}",
            seg(header.as_bytes()),
            seg(payload.as_bytes()),
            seg(b"sig")
        )
    }

    fn parse_ok(header: &str, payload: &str) -> Claims {
        let t = tok(header, payload);
        parse(&t, &Limits::default()).unwrap().claims
    }

    fn parse_err(header: &str, payload: &str) -> TokenError {
        let t = tok(header, payload);
        parse(&t, &Limits::default()).unwrap_err()
    }

    const H: &str = r#"{"alg":"RS256","kid":"k1"}"#;

    #[test]
    fn parses_a_cognito_access_token() {
        let t = tok(
            H,
            r#"{"sub":"c1","token_use":"access","scope":"order/post.order order/get.order",
                "auth_time":1700000000,"iss":"https://cognito-idp.us-east-1.amazonaws.com/p",
                "exp":1700003600,"iat":1700000000,"version":2,"jti":"j","client_id":"c1"}"#,
        );
        let jws = parse(&t, &Limits::default()).unwrap();
        assert_eq!(jws.header.alg, Algorithm::RS256);
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        assert_eq!(jws.signature, b"sig");
        assert_eq!(jws.signing_input, t.rsplit_once('.').unwrap().0);
        let c = jws.claims;
        assert_eq!(c.exp, Some(1_700_003_600));
        assert_eq!(c.iat, Some(1_700_000_000));
        assert_eq!(c.nbf, None);
        assert_eq!(c.aud, None);
        assert_eq!(c.client_id.as_deref(), Some("c1"));
        assert_eq!(c.token_use.as_deref(), Some("access"));
        assert_eq!(c.scopes, ["order/post.order", "order/get.order"]);
    }

    #[test]
    fn audience_forms_and_scopes_from_scp() {
        assert_eq!(parse_ok(H, r#"{"aud":"a"}"#).aud, Some(vec!["a".into()]));
        assert_eq!(
            parse_ok(H, r#"{"aud":["a","b"]}"#).aud,
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_ok(H, r#"{"aud":[]}"#).aud, Some(vec![]));
        assert_eq!(
            parse_ok(H, r#"{"scp":["x","y"],"scope":"y z"}"#).scopes,
            ["y", "z", "x"]
        );
        assert_eq!(parse_ok(H, r#"{"scope":"  a  b "}"#).scopes, ["a", "b"]);
        assert_eq!(parse_ok(H, r#"{"scp":"a b"}"#).scopes, ["a", "b"]);
    }

    #[test]
    fn refuses_bad_shapes() {
        let limits = Limits::default();
        for t in ["", "a", "a.b", "a.b.c.d", "..", "a..c"] {
            assert!(
                matches!(parse(t, &limits), Err(TokenError::Malformed(_))),
                "{t:?}"
            );
        }
        let good = tok(H, "{}");
        // Padding, the standard alphabet and whitespace are not base64url.
        let (h, rest) = good.split_once('.').unwrap();
        for bad in [
            format!("{h}=.{rest}"),
            format!("{}.{rest}", h.replacen('e', "+", 1)),
            format!(" {good}"),
            format!("{h}.{rest}="),
        ] {
            assert!(
                matches!(parse(&bad, &limits), Err(TokenError::Malformed(_))),
                "{bad:?}"
            );
        }
        // An empty signature is malformed, not unsigned.
        let unsigned = format!("{}.{}.", seg(H.as_bytes()), seg(b"{}"));
        assert!(matches!(
            parse(&unsigned, &limits),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_none_and_unknown_algorithms_in_any_casing() {
        for alg in ["none", "None", "NONE", "nOnE", "rs256", "HS1", ""] {
            let h = json!({"alg": alg}).to_string();
            assert!(
                matches!(parse_err(&h, "{}"), TokenError::UnsupportedAlgorithm(_)),
                "{alg}"
            );
        }
        assert!(matches!(
            parse_err("{}", "{}"),
            TokenError::UnsupportedAlgorithm(_)
        ));
        assert!(matches!(
            parse_err(r#"{"alg":1}"#, "{}"),
            TokenError::Malformed(_)
        ));
    }

    #[test]
    fn refuses_dangerous_header_members() {
        for h in [
            r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"RS256","jku":"https://evil/jwks"}"#,
            r#"{"alg":"RS256","jwk":{"kty":"oct","k":"AA"}}"#,
            r#"{"alg":"RS256","x5u":"https://evil/cert"}"#,
            r#"{"alg":"RS256","x5c":["MIIB"]}"#,
            r#"{"alg":"RS256","typ":"JWE"}"#,
            r#"{"alg":"RS256","typ":5}"#,
            r#"{"alg":"RS256","cty":"JWT"}"#,
            r#"{"alg":"RS256","kid":["a"]}"#,
            r#"{"alg":"RS256","x5t":{"a":1}}"#,
            r#"{"alg":"RS256","x5t":5}"#,
            r#"{"alg":"RS256","x5t#S256":["a"]}"#,
            r#"{"alg":"RS256","cty":5}"#,
            r#"{"alg":"RS256","alg":"none"}"#,
            r#"{"alg":"RS256","salt":"AA"}"#,
            r#"["alg","RS256"]"#,
            "not json",
        ] {
            assert!(
                matches!(parse_err(h, "{}"), TokenError::Malformed(_)),
                "{h}"
            );
        }
        assert!(
            parse(
                &tok(r#"{"alg":"RS256","typ":"at+jwt","x5t":"abc"}"#, "{}"),
                &Limits::default()
            )
            .is_ok()
        );
        assert!(
            parse(
                &tok(r#"{"alg":"RS256","typ":"jwt","cty":"json"}"#, "{}"),
                &Limits::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn numeric_dates_may_have_fractions() {
        let c = parse_ok(
            H,
            r#"{"exp":1767229200.5,"nbf":1767229100.25,"iat":1767229000.0}"#,
        );
        assert_eq!(c.exp, Some(1_767_229_200), "exp rounds down");
        assert_eq!(c.nbf, Some(1_767_229_101), "nbf rounds up");
        assert_eq!(c.iat, Some(1_767_229_000));
        assert_eq!(parse_ok(H, r#"{"exp":1.7e9}"#).exp, Some(1_700_000_000));
        assert_eq!(parse_ok(H, r#"{"iat":0.1}"#).iat, Some(1));
        assert_eq!(
            parse_ok(H, r#"{"exp":9007199254740990.5}"#).exp,
            Some(9_007_199_254_740_990)
        );
    }

    #[test]
    fn refuses_bad_claims() {
        for p in [
            r#"{"exp":"1700000000"}"#,
            r#"{"exp":-1}"#,
            r#"{"exp":-0.5}"#,
            r#"{"exp":-0.0}"#,
            r#"{"nbf":9007199254740992.0}"#,
            r#"{"nbf":9007199254740991.5}"#,
            r#"{"nbf":9007199254740992}"#,
            r#"{"iat":18446744073709551615}"#,
            r#"{"iat":1e400}"#,
            r#"{"exp":null}"#,
            r#"{"iss":["a"]}"#,
            r#"{"aud":5}"#,
            r#"{"aud":["a",5]}"#,
            r#"{"scope":["a"]}"#,
            r#"{"scp":[1]}"#,
            r#"{"client_id":1}"#,
            r#"{"token_use":true}"#,
            r#"{"sub":{}}"#,
            r#"{"iss":"a","iss":"b"}"#,
            r#"[1,2]"#,
            r#""str""#,
            r#"123"#,
            r#"{"a":1} trailing"#,
        ] {
            assert!(matches!(parse_err(H, p), TokenError::Malformed(_)), "{p}");
        }
        assert_eq!(
            parse_ok(H, r#"{"exp":9007199254740991}"#).exp,
            Some(MAX_SAFE_INTEGER)
        );
    }

    #[test]
    fn enforces_limits() {
        let limits = Limits {
            max_token_bytes: 100,
            max_header_bytes: 40,
            max_json_depth: 3,
            ..Limits::default()
        };
        let long = tok(H, &format!(r#"{{"x":"{}"}}"#, "a".repeat(100)));
        assert!(parse(&long, &limits).is_err());
        let big_header = tok(
            &format!(r#"{{"alg":"RS256","x":"{}"}}"#, "a".repeat(40)),
            "{}",
        );
        assert!(parse(&big_header, &limits).is_err());
        let deep = tok(H, r#"{"a":{"b":{"c":{}}}}"#);
        assert!(parse(&deep, &limits).is_err());
        let nested_ok = tok(H, r#"{"a":{"b":1}}"#);
        assert!(parse(&nested_ok, &limits).is_ok());
    }

    #[test]
    fn peeks_at_headers_for_tools() {
        let t = tok(r#"{"alg":"none","kid":"x"}"#, "{}");
        let h = peek_header(&t).unwrap();
        assert_eq!(h["kid"], json!("x"));
        assert!(peek_header("garbage").is_none());
    }
}
