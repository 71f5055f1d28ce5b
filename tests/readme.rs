//! The README is the front door: it names the two commands CI and newcomers
//! use, and its configuration reference documents every field the filter
//! accepts (the JSON Schema generated from `src/config.rs` is the list).

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
