//! The deployment files as the tests read them: YAML through the same
//! parser Kubernetes tooling uses (ruamel, in .venv), as JSON values.

use std::process::Command;

use serde_json::Value;
use testkit::{repo_root, venv_bin};

/// All YAML documents of a file (relative to the repository), as JSON values.
pub fn yaml_docs(rel: &str) -> Vec<Value> {
    let script = "import json, sys\n\
                  from ruamel.yaml import YAML\n\
                  with open(sys.argv[1]) as f:\n    \
                      print(json.dumps(list(YAML(typ='safe', pure=True).load_all(f))))\n";
    let out = Command::new(venv_bin("python"))
        .args(["-c", script])
        .arg(repo_root().join(rel))
        .output()
        .expect("run .venv/bin/python");
    assert!(
        out.status.success(),
        "reading {rel}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("YAML as JSON")
}

/// The one YAML document of a file.
pub fn yaml(rel: &str) -> Value {
    let mut docs = yaml_docs(rel);
    assert_eq!(docs.len(), 1, "{rel}: one document");
    docs.remove(0)
}

/// The string at a JSON pointer (panics naming it when there is none).
pub fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

/// Fields of `value` that the (structural) schema does not know: what the
/// API server would prune, and JSON Schema validation lets through.
pub fn unknown_fields(value: &Value, schema: &Value, at: &str, found: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    match value {
        Value::Object(map) => {
            let Some(props) = schema["properties"].as_object() else {
                return;
            };
            for (k, v) in map {
                match props.get(k) {
                    Some(s) => unknown_fields(v, s, &format!("{at}.{k}"), found),
                    None => found.push(format!("{at}.{k}")),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                unknown_fields(v, &schema["items"], &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}
