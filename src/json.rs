//! Strict JSON for attacker-controlled documents (JOSE headers, JWT claims).
//!
//! `serde_json::Value` silently keeps the last of two members with the same
//! name, so `{"iss":"good","iss":"evil"}` means different things to different
//! parsers (RFC 8725 §3.9). Here duplicate member names at any depth are an
//! error, nesting is bounded, and the top level must be an object.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON, or JSON with trailing data.
    Syntax,
    /// The same member name twice in one object.
    DuplicateMember(String),
    /// Nested deeper than allowed.
    TooDeep,
    /// Valid JSON whose top level is not an object.
    NotAnObject,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax => f.write_str("not valid JSON"),
            JsonError::DuplicateMember(name) => {
                write!(f, "duplicate member \"{}\"", crate::text::clip(name, 40))
            }
            JsonError::TooDeep => f.write_str("JSON nested too deeply"),
            JsonError::NotAnObject => f.write_str("not a JSON object"),
        }
    }
}

/// Parses `bytes` as a JSON object with unique member names and at most
/// `max_depth` levels of nesting (the top-level object is level 1).
pub fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut failure = None;
    let seed = StrictSeed {
        depth_left: max_depth,
        failure: &mut failure,
    };
    let parsed = seed.deserialize(&mut de);
    let value = match parsed {
        Ok(v) => v,
        Err(_) => return Err(failure.unwrap_or(JsonError::Syntax)),
    };
    if de.end().is_err() {
        return Err(JsonError::Syntax);
    }
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

/// Builds a `Value` while checking depth and duplicate names. The precise
/// failure is kept aside because serde's error type only carries text.
struct StrictSeed<'f> {
    depth_left: usize,
    failure: &'f mut Option<JsonError>,
}

impl StrictSeed<'_> {
    fn fail<E: de::Error>(&mut self, why: JsonError) -> E {
        let text = why.to_string();
        *self.failure = Some(why);
        E::custom(text)
    }

    fn nested(&mut self) -> StrictSeed<'_> {
        StrictSeed {
            depth_left: self.depth_left.saturating_sub(1),
            failure: self.failure,
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth_left == 0 {
            return Err(self.fail(JsonError::TooDeep));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.nested())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut access: A) -> Result<Value, A::Error> {
        if self.depth_left == 0 {
            return Err(self.fail(JsonError::TooDeep));
        }
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(self.fail(JsonError::DuplicateMember(key)));
            }
            let value = access.next_value_seed(self.nested())?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_objects() {
        let map = parse_object(br#"{"a":1,"b":[true,null,"x"],"c":{"d":1.5}}"#, 4).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map["c"]["d"], serde_json::json!(1.5));
    }

    #[test]
    fn refuses_duplicate_members_at_any_depth() {
        assert_eq!(
            parse_object(br#"{"iss":"a","iss":"b"}"#, 4),
            Err(JsonError::DuplicateMember("iss".into()))
        );
        assert_eq!(
            parse_object(br#"{"a":{"x":1,"x":2}}"#, 4),
            Err(JsonError::DuplicateMember("x".into()))
        );
        // Escapes are decoded before comparing: "\u0069ss" is "iss".
        assert_eq!(
            parse_object(br#"{"iss":"a","\u0069ss":"b"}"#, 4),
            Err(JsonError::DuplicateMember("iss".into()))
        );
    }

    #[test]
    fn bounds_depth() {
        assert!(parse_object(br#"{"a":{"b":{"c":1}}}"#, 3).is_ok());
        assert_eq!(
            parse_object(br#"{"a":{"b":{"c":{}}}}"#, 3),
            Err(JsonError::TooDeep)
        );
        assert_eq!(
            parse_object(br#"{"a":[[[1]]]}"#, 3),
            Err(JsonError::TooDeep)
        );
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_object(deep.as_bytes(), 16), Err(JsonError::TooDeep));
    }

    #[test]
    fn requires_an_object_and_nothing_after_it() {
        assert_eq!(parse_object(b"[1]", 4), Err(JsonError::NotAnObject));
        assert_eq!(parse_object(b"\"x\"", 4), Err(JsonError::NotAnObject));
        assert_eq!(parse_object(b"{} {}", 4), Err(JsonError::Syntax));
        assert_eq!(parse_object(b"{", 4), Err(JsonError::Syntax));
        assert_eq!(parse_object(b"", 4), Err(JsonError::Syntax));
        assert_eq!(parse_object(b"\xff", 4), Err(JsonError::Syntax));
    }
}
