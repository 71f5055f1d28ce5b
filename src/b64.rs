//! Base64url as JWS uses it (RFC 7515 §2): URL-safe alphabet, no padding, no
//! whitespace, canonical trailing bits. Anything else in a token is malformed.
//! JWKS members are decoded a little more leniently (padding tolerated),
//! because they come from the configured issuer, not from the client.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes one segment of a compact JWS.
pub fn decode_segment(s: &str) -> Option<Vec<u8>> {
    STRICT.decode(s).ok()
}

/// Decodes a base64url member of a JWK (`n`, `e`, `x`, `y`).
pub fn decode_jwk_member(s: &str) -> Option<Vec<u8>> {
    LENIENT.decode(s).ok()
}

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    STRICT.encode(bytes)
}

/// Decodes standard base64 (with or without padding), as used for secrets in
/// configuration files.
pub fn decode_standard(s: &str) -> Option<Vec<u8>> {
    const STANDARD_ANY: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    STANDARD_ANY.decode(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_decoding_is_strict() {
        assert_eq!(decode_segment("eyJhIjoxfQ").unwrap(), br#"{"a":1}"#);
        assert!(decode_segment("eyJhIjoxfQ==").is_none(), "padding");
        assert!(decode_segment("eyJh+joxfQ").is_none(), "standard alphabet");
        assert!(decode_segment("eyJh/joxfQ").is_none(), "standard alphabet");
        assert!(decode_segment("eyJh IjoxfQ").is_none(), "whitespace");
        assert!(
            decode_segment("eyJhIjoxfR").is_none(),
            "non-canonical trailing bits"
        );
        assert!(decode_segment("e").is_none(), "impossible length");
        assert_eq!(decode_segment("").unwrap(), b"");
    }

    #[test]
    fn jwk_members_tolerate_padding() {
        assert_eq!(decode_jwk_member("AQAB").unwrap(), [1, 0, 1]);
        assert_eq!(decode_jwk_member("AQ==").unwrap(), [1]);
        assert_eq!(decode_jwk_member("AQ").unwrap(), [1]);
        assert!(decode_jwk_member("A+Q").is_none());
    }

    #[test]
    fn round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_segment(&encode(&bytes)).unwrap(), bytes);
        assert_eq!(decode_standard("c2VjcmV0").unwrap(), b"secret");
        assert_eq!(decode_standard("c2VjcmV0IQ==").unwrap(), b"secret!");
    }
}
