//! `jwt-policy schema`: the JSON Schema of the plugin configuration,
//! generated from the types in `src/config.rs` (their doc comments become
//! the descriptions). The repository keeps a copy in
//! `schema/jwt-policy.schema.json` (`make schema`).

use std::io::Write;

use jwt_policy::config::PluginConfig;
use serde_json::Value;

use crate::cli::{Failure, Status, emit};

/// Print the JSON Schema (draft 2020-12) of the plugin configuration.
///
/// Generated from the same Rust types the filter reads its configuration
/// with; the doc comments are the descriptions. Editors use it to complete
/// and check configuration files (see docs/cli.md). The repository keeps a
/// copy in schema/jwt-policy.schema.json: `make schema` rewrites it.
/// Exit status: 0.
#[derive(clap::Args)]
pub struct Args {}

/// The schema document, as `jwt-policy schema` prints it.
pub fn document() -> Result<String, Failure> {
    let mut schema = schemars::schema_for!(PluginConfig);
    schema.insert("title".into(), "jwt-policy plugin configuration".into());
    let mut value = schema.to_value();
    drop_null_defaults(&mut value);
    let mut text = serde_json::to_string_pretty(&value)
        .map_err(|e| format!("cannot serialize the schema: {e}"))?;
    text.push('\n');
    Ok(text)
}

/// schemars gives every `#[serde(default)] Option` field `"default": null`;
/// the real defaults (applied when the policy is compiled) are in the
/// descriptions, and an editor offering `null` would only mislead.
fn drop_null_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            map.values_mut().for_each(drop_null_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_defaults),
        _ => {}
    }
}

pub fn run(_args: &Args, out: &mut dyn Write) -> Result<Status, Failure> {
    emit(out, &document()?);
    Ok(Status::Ok)
}
