//! `jwt-policy schema`: the JSON Schema of the plugin configuration,
//! generated from the types in `src/config.rs` (their doc comments become
//! the descriptions). The repository keeps a copy in
//! `schema/jwt-policy.schema.json` (`make schema`).

use std::io::Write;

use jwt_policy::config::PluginConfig;

use crate::cli::{Failure, Status, emit};

/// Print the JSON Schema (draft 2020-12) of the plugin configuration.
///
/// Editors validate configurations with it: point VS Code's `json.schemas`
/// at it, or add `"$schema"`-style modelines where the language server
/// supports them. `make schema` rewrites the copy in the repository.
#[derive(clap::Args)]
pub struct Args {}

/// The schema document, as `jwt-policy schema` prints it.
pub fn document() -> Result<String, Failure> {
    let mut schema = schemars::schema_for!(PluginConfig);
    schema.insert("title".into(), "jwt-policy plugin configuration".into());
    let mut text = serde_json::to_string_pretty(&schema)
        .map_err(|e| format!("cannot serialize the schema: {e}"))?;
    text.push('\n');
    Ok(text)
}

pub fn run(_args: &Args, out: &mut dyn Write) -> Result<Status, Failure> {
    emit(out, &document()?);
    Ok(Status::Ok)
}
