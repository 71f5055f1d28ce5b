//! `jwt-policy decode`: a token's header and claims, with its times as
//! dates. Nothing is verified; the strict parser the filter uses says
//! whether it would even read the token.

use std::io::Write;

use serde_json::{Map, Value, json};

use jwt_policy::b64;
use jwt_policy::limits::Limits;
use jwt_policy::token;

use crate::cli::{Failure, Status, emit, now, read_token};

/// Show a token's header and claims, times as RFC 3339 dates and ages.
///
/// The signature is not checked (use `jwt-policy explain` for that). A
/// leading `Bearer ` is ignored. Exit status: 0 decoded, 1 not a JWT,
/// 2 usage error.
#[derive(clap::Args)]
pub struct Args {
    /// The token, or `-` to read it from standard input.
    #[arg(value_name = "TOKEN|-")]
    token: String,
    /// Ages relative to this time (seconds since the Unix epoch) instead of
    /// now.
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Claims whose values are NumericDates.
const TIME_CLAIMS: [&str; 4] = ["exp", "iat", "nbf", "auth_time"];
/// 9999-12-31T23:59:59Z: later dates are not shown as dates.
const MAX_DATE: u64 = 253_402_300_799;

pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Failure> {
    let token = read_token(&args.token)?;
    let now = args.now.unwrap_or_else(now);
    let decoded = match Decoded::new(&token) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("jwt-policy: not a JWT: {why}");
            return Ok(Status::No);
        }
    };
    let strict = match token::parse(&token, &Limits::default()) {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    if args.json {
        let times: Map<String, Value> = TIME_CLAIMS
            .iter()
            .filter_map(|name| {
                let t = decoded.claims.get(*name)?.as_u64()?;
                Some((
                    (*name).to_owned(),
                    json!({"unix": t, "utc": rfc3339(t), "relative": relative(t, now)}),
                ))
            })
            .collect();
        let doc = json!({
            "header": decoded.header,
            "claims": decoded.claims,
            "signature_bytes": decoded.signature_len,
            "times": times,
            "now": now,
            "malformed": strict,
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        emit(out, &format!("{text}\n"));
        return Ok(Status::Ok);
    }
    let mut text = String::new();
    text.push_str("header\n");
    text.push_str(&render(&decoded.header, None));
    text.push_str("claims\n");
    text.push_str(&render(&decoded.claims, Some(now)));
    text.push_str(&format!(
        "signature\n  {} bytes, not verified (jwt-policy explain checks it)\n",
        decoded.signature_len
    ));
    if let Some(why) = strict {
        text.push_str(&format!(
            "note\n  the filter refuses this token as malformed: {why}\n"
        ));
    }
    emit(out, &text);
    Ok(Status::Ok)
}

struct Decoded {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signature_len: usize,
}

impl Decoded {
    fn new(token: &str) -> Result<Decoded, String> {
        let mut parts = token.split('.');
        let (Some(head), Some(payload), signature) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("expected header.payload.signature".into());
        };
        let object = |part: &str, segment: &str| -> Result<Map<String, Value>, String> {
            let bytes = b64::decode_segment(segment)
                .ok_or_else(|| format!("the {part} is not base64url"))?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(format!("the {part} is not a JSON object")),
                Err(e) => Err(format!("the {part} is not JSON: {e}")),
            }
        };
        Ok(Decoded {
            header: object("header", head)?,
            claims: object("payload", payload)?,
            signature_len: signature
                .and_then(b64::decode_segment)
                .map_or(0, |s| s.len()),
        })
    }
}

/// A JSON object pretty-printed, each time claim followed by its date and
/// age when `now` is given.
fn render(map: &Map<String, Value>, now: Option<u64>) -> String {
    let mut out = String::from("{\n");
    let count = map.len();
    for (i, (key, value)) in map.iter().enumerate() {
        let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
        let name = serde_json::to_string(key).unwrap_or_default();
        let comma = if i.saturating_add(1) < count { "," } else { "" };
        out.push_str(&format!(
            "  {name}: {}{comma}",
            pretty.replace('\n', "\n  ")
        ));
        let time = now.filter(|_| TIME_CLAIMS.contains(&key.as_str()));
        if let (Some(now), Some(t)) = (time, value.as_u64()) {
            match rfc3339(t) {
                Some(date) => out.push_str(&format!("  // {date}, {}", relative(t, now))),
                None => out.push_str("  // out of range"),
            }
        }
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (up to year
/// 9999), by the days-from-civil algorithm run backwards (H. Hinnant).
pub fn rfc3339(secs: u64) -> Option<String> {
    if secs > MAX_DATE {
        return None;
    }
    let days = secs.checked_div(86_400)?;
    let rem = secs.checked_rem(86_400)?;
    // Days since 0000-03-01 in the proleptic Gregorian calendar.
    let z = days.checked_add(719_468)?;
    let era = z.checked_div(146_097)?;
    let doe = z.checked_rem(146_097)?;
    let yoe = doe
        .checked_sub(doe.checked_div(1_460)?)?
        .checked_add(doe.checked_div(36_524)?)?
        .checked_sub(doe.checked_div(146_096)?)?
        .checked_div(365)?;
    let doy = doe.checked_sub(
        yoe.checked_mul(365)?
            .checked_add(yoe.checked_div(4)?)?
            .checked_sub(yoe.checked_div(100)?)?,
    )?;
    let mp = doy.checked_mul(5)?.checked_add(2)?.checked_div(153)?;
    let day = doy
        .checked_sub(mp.checked_mul(153)?.checked_add(2)?.checked_div(5)?)?
        .checked_add(1)?;
    let month = if mp < 10 {
        mp.checked_add(3)?
    } else {
        mp.checked_sub(9)?
    };
    let year = era
        .checked_mul(400)?
        .checked_add(yoe)?
        .checked_add(u64::from(month <= 2))?;
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem.checked_div(3_600)?,
        rem.checked_rem(3_600)?.checked_div(60)?,
        rem.checked_rem(60)?
    ))
}

/// "in 59m", "2h 3m ago", "now": the two largest units of the distance
/// from `now` to `t`.
pub fn relative(t: u64, now: u64) -> String {
    if t == now {
        return "now".into();
    }
    let (distance, future) = if t > now {
        (t.saturating_sub(now), true)
    } else {
        (now.saturating_sub(t), false)
    };
    let text = duration(distance);
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

fn duration(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, name) in UNITS {
        let n = rest.checked_div(size).unwrap_or(0);
        rest = rest.checked_rem(size).unwrap_or(0);
        if n > 0 || !parts.is_empty() {
            parts.push((n, name));
        }
        if parts.len() == 2 {
            break;
        }
    }
    let shown: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n}{name}"))
        .collect();
    shown.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399).unwrap(), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(MAX_DATE).unwrap(), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(MAX_DATE + 1), None);
    }

    #[test]
    fn ages() {
        assert_eq!(relative(100, 100), "now");
        assert_eq!(relative(100 + 3_540, 100), "in 59m");
        assert_eq!(relative(100 + 3_599, 100), "in 59m 59s");
        assert_eq!(relative(100, 100 + 7_380), "2h 3m ago");
        assert_eq!(relative(100, 100 + 7_205), "2h ago");
        assert_eq!(relative(100 + 90_061, 100), "in 1d 1h");
        assert_eq!(relative(100, 142), "42s ago");
    }

    #[test]
    fn renders_times_inline() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"exp": 1700003600, "scope": "a b", "x": {"y": [1]}}"#)
                .unwrap();
        assert_eq!(
            render(&claims, Some(1_700_000_000)),
            "{\n  \"exp\": 1700003600,  // 2023-11-14T23:13:20Z, in 1h\n  \"scope\": \"a b\",\n  \
             \"x\": {\n    \"y\": [\n      1\n    ]\n  }\n}\n"
        );
    }
}
