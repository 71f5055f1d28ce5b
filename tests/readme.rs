//! The README is the front door: it names the two commands CI and newcomers
//! use, and its configuration reference documents every field the filter
//! accepts (the JSON Schema generated from `src/config.rs` is the list).

#![allow(clippy::restriction)] // tests panic by design

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every name under a `properties` object anywhere in the schema.
fn schema_fields(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "properties"
                    && let Value::Object(props) = child
                {
                    out.extend(props.keys().cloned());
                }
                schema_fields(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|c| schema_fields(c, out)),
        _ => {}
    }
}

/// The identifiers inside `code spans` of a Markdown text.
fn code_identifiers(markdown: &str) -> BTreeSet<String> {
    markdown
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| {
            span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?} section"));
    let rest = &readme[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn the_configuration_reference_documents_every_field() {
    let schema: Value = serde_json::from_str(&read("schema/jwt-policy.schema.json")).unwrap();
    let mut fields = BTreeSet::new();
    schema_fields(&schema, &mut fields);
    assert!(
        fields.len() > 40,
        "the schema should list the configuration's fields, got {fields:?}"
    );
    let readme = read("README.md");
    let documented = code_identifiers(section(&readme, "\n## Configuration reference\n"));
    let missing: Vec<_> = fields.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "fields of schema/jwt-policy.schema.json missing from the README's configuration reference: {missing:?}"
    );
}

#[test]
fn the_readme_names_the_two_commands_and_ci_runs_the_test_command() {
    let readme = read("README.md");
    for command in ["make demo", "make test"] {
        assert!(readme.contains(command), "README does not name `{command}`");
    }
    let ci = read(".ci/run");
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        commands.contains(&"make test"),
        ".ci/run must run the README's test command, `make test`: {commands:?}"
    );
    let makefile = read("Makefile");
    let test_target = makefile
        .lines()
        .find(|l| l.starts_with("test:"))
        .expect("Makefile has a test target");
    for prerequisite in ["lint", "wasm"] {
        assert!(
            test_target.contains(prerequisite),
            "`make test` must run {prerequisite}: {test_target}"
        );
    }
}

#[test]
fn the_readme_links_only_to_files_that_exist() {
    let readme = read("README.md");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    for part in readme.split("](").skip(1) {
        let Some(end) = part.find(')') else { continue };
        let target = &part[..end];
        if target.starts_with('#') || target.contains("://") {
            continue;
        }
        let file = target.split('#').next().unwrap_or(target);
        if !root.join(file).exists() {
            broken.push(target.to_owned());
        }
    }
    assert!(
        broken.is_empty(),
        "README links to missing files: {broken:?}"
    );
}

/// `(field, default, minimum, maximum)` of every property with a default.
fn schema_defaults(v: &Value, out: &mut Vec<(String, Value, Option<u64>, Option<u64>)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "properties"
                    && let Value::Object(props) = child
                {
                    for (name, spec) in props {
                        if let Some(default) = spec.get("default") {
                            out.push((
                                name.clone(),
                                default.clone(),
                                spec.get("minimum").and_then(Value::as_u64),
                                spec.get("maximum").and_then(Value::as_u64),
                            ));
                        }
                    }
                }
                schema_defaults(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|c| schema_defaults(c, out)),
        _ => {}
    }
}

/// Where the README documents `field`: its table row, or the sentence that
/// introduces it in prose (`` `field` (default …``).
fn documentation_of<'a>(reference: &'a str, field: &str) -> Vec<&'a str> {
    let span = format!("`{field}`");
    let nested = format!(".{field}`");
    let mut places: Vec<&str> = reference
        .lines()
        .filter(|l| {
            l.starts_with('|')
                && l.split('|').nth(1).is_some_and(|cell| {
                    let cell = cell.trim();
                    cell == span || (cell.starts_with('`') && cell.ends_with(&nested))
                })
        })
        .collect();
    let mut rest = reference;
    while let Some(i) = rest.find(&span) {
        let after = &rest[i + span.len()..];
        if after.starts_with(" (default") {
            places.push(&after[..after.find(')').unwrap_or(after.len())]);
        }
        rest = after;
    }
    places
}

/// Every default and bound the filter applies (the constants in
/// src/policy/defaults.rs, carried into the schema) is the one the README's
/// configuration reference states.
#[test]
fn the_configuration_reference_states_the_defaults_the_filter_applies() {
    let schema: Value = serde_json::from_str(&read("schema/jwt-policy.schema.json")).unwrap();
    let mut defaults = Vec::new();
    schema_defaults(&schema, &mut defaults);
    assert!(defaults.len() > 25, "{defaults:?}");
    let readme = read("README.md");
    let reference = section(&readme, "\n## Configuration reference\n");
    let mut wrong = Vec::new();
    for (field, default, min, max) in &defaults {
        let shown = match default {
            Value::Array(a) if a.is_empty() => "[]".to_owned(),
            Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        let places = documentation_of(reference, field);
        let unticked = |p: &str| p.replace('`', "");
        let states_default = places.iter().any(|p| unticked(p).contains(&shown));
        if !states_default {
            wrong.push(format!("{field}: default {shown} not stated in {places:?}"));
        }
        for bound in [min, max].into_iter().flatten().filter(|b| **b > 1) {
            if !places
                .iter()
                .any(|p| unticked(p).contains(&bound.to_string()))
            {
                wrong.push(format!("{field}: bound {bound} not stated in {places:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "README vs the filter's defaults:\n{}",
        wrong.join("\n")
    );
}
