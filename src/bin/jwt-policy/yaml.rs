//! Finding plugin configurations in files: a plain configuration (JSON or
//! YAML), an Envoy bootstrap or Istio `EnvoyFilter` whose
//! `envoy.filters.http.wasm` filters carry it as a
//! `google.protobuf.StringValue`, an Istio `WasmPlugin` (its
//! `spec.pluginConfig`), or an Envoy Gateway `EnvoyExtensionPolicy` (each
//! `spec.wasm[i].config`). YAML files may hold several documents.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The `@type` of the Envoy HTTP wasm filter's configuration.
const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// The `@type` Envoy wants around a plugin configuration given as text.
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";
/// Top-level members that only an Envoy bootstrap has.
const BOOTSTRAP_MEMBERS: [&str; 6] = [
    "static_resources",
    "dynamic_resources",
    "admin",
    "node",
    "layered_runtime",
    "cluster_manager",
];

/// One plugin configuration found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSource {
    /// Where in the file it is, for messages (empty: the whole file).
    pub location: String,
    /// The configuration as the filter receives it: JSON text.
    pub json: Vec<u8>,
    /// True when `json` is text from the file (a JSON file, a StringValue),
    /// false when it was converted from YAML: then the line and column of a
    /// JSON syntax error mean nothing to the reader.
    pub verbatim: bool,
}

impl PluginSource {
    /// An error message about this source, without a line and column that
    /// point into converted text.
    pub fn message(&self, message: &str) -> String {
        if self.verbatim {
            return message.to_owned();
        }
        match message.rsplit_once(" at line ") {
            Some((text, at))
                if at.split(" column ").count() == 2
                    && at
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b" column".contains(&b)) =>
            {
                text.to_owned()
            }
            _ => message.to_owned(),
        }
    }
}

/// What a file holds.
#[derive(Debug, Default)]
pub struct Found {
    pub configs: Vec<PluginSource>,
    /// Things skipped on the way, where and why (a wasm filter whose
    /// configuration is not a StringValue, a WasmPlugin without
    /// `pluginConfig`).
    pub skipped: Vec<(String, String)>,
}

/// Finds every plugin configuration in `bytes`. `Err` when the file is
/// neither JSON nor YAML.
pub fn find_configs(bytes: &[u8]) -> Result<Found, String> {
    let mut found = Found::default();
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(doc) if is_plugin_config(&doc) => found.configs.push(PluginSource {
                location: String::new(),
                json: bytes.to_vec(),
                verbatim: true,
            }),
            Ok(doc) => classify(&doc, "", &mut found),
            // Not JSON at all: let the policy parser name the line and
            // column, as the filter would.
            Err(_) => found.configs.push(PluginSource {
                location: String::new(),
                json: bytes.to_vec(),
                verbatim: true,
            }),
        }
        return Ok(found);
    }
    let docs = yaml_documents(bytes)?;
    let several = docs.len() > 1;
    for (i, doc) in docs.iter().enumerate() {
        let prefix = if several {
            format!("document {}", i.saturating_add(1))
        } else {
            String::new()
        };
        classify(doc, &prefix, &mut found);
    }
    Ok(found)
}

/// Every document of a YAML stream, as JSON values (empty documents left
/// out).
pub fn yaml_documents(bytes: &[u8]) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let mut docs = Vec::new();
    for de in serde_norway::Deserializer::from_str(text) {
        let doc = Value::deserialize(de).map_err(|e| format!("not valid YAML: {e}"))?;
        if !doc.is_null() {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// A document that is itself a plugin configuration: not a Kubernetes
/// resource, not an Envoy bootstrap. Anything else that is an object is
/// taken as one too, so that a typo is reported rather than skipped.
fn is_plugin_config(doc: &Value) -> bool {
    let Some(map) = doc.as_object() else {
        return false;
    };
    if map.contains_key("providers") {
        return true;
    }
    let kubernetes = map.contains_key("apiVersion") && map.contains_key("kind");
    let bootstrap = BOOTSTRAP_MEMBERS.iter().any(|m| map.contains_key(*m));
    !kubernetes && !bootstrap && !has_wasm_filter(doc)
}

fn classify(doc: &Value, prefix: &str, found: &mut Found) {
    if is_plugin_config(doc) {
        push(found, prefix.to_owned(), doc);
        return;
    }
    let Some(map) = doc.as_object() else {
        return;
    };
    match map.get("kind").and_then(Value::as_str) {
        Some("WasmPlugin") => {
            let name = resource_name(map);
            let location = join(prefix, &format!("WasmPlugin {name}"));
            match doc.pointer("/spec/pluginConfig") {
                Some(config) => push(found, join(&location, "spec.pluginConfig"), config),
                None => found
                    .skipped
                    .push((location, "no spec.pluginConfig".to_owned())),
            }
        }
        Some("EnvoyExtensionPolicy") => {
            let location = join(
                prefix,
                &format!("EnvoyExtensionPolicy {}", resource_name(map)),
            );
            extension_policy_wasms(doc, &location, found);
        }
        Some("List") => {
            for (i, item) in map
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                classify(item, &join(prefix, &format!("items[{i}]")), found);
            }
        }
        Some(kind) => {
            let location = join(prefix, &format!("{kind} {}", resource_name(map)));
            walk(doc, &location, "", "", found);
        }
        None => walk(doc, prefix, "", "", found),
    }
}

/// The `config` of each `spec.wasm[i]` of an Envoy Gateway
/// `EnvoyExtensionPolicy`: Envoy Gateway hands it to the filter as JSON text
/// (a StringValue), as Istio does with `pluginConfig`.
fn extension_policy_wasms(doc: &Value, location: &str, found: &mut Found) {
    let wasms = doc.pointer("/spec/wasm").and_then(Value::as_array);
    for (i, wasm) in wasms.into_iter().flatten().enumerate() {
        let plugin = wasm
            .get("name")
            .or_else(|| wasm.get("rootID"))
            .and_then(Value::as_str)
            .map_or_else(String::new, |n| format!(" (plugin {n})"));
        let at = join(location, &format!("spec.wasm[{i}].config{plugin}"));
        match wasm.get("config") {
            Some(config) => push(found, at, config),
            None => found.skipped.push((at, "no config".to_owned())),
        }
    }
}

/// `namespace/name` of a Kubernetes resource.
fn resource_name(map: &Map<String, Value>) -> String {
    let meta = |key: &str| {
        map.get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
    };
    match (meta("namespace"), meta("name")) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_owned(),
        _ => "(unnamed)".to_owned(),
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}, {b}"),
    }
}

fn push(found: &mut Found, location: String, config: &Value) {
    // Serializing a `Value` cannot fail (its keys are strings).
    let json = serde_json::to_vec(config).unwrap_or_default();
    found.configs.push(PluginSource {
        location,
        json,
        verbatim: false,
    });
}

fn has_wasm_filter(doc: &Value) -> bool {
    let mut probe = Found::default();
    walk(doc, "", "", "", &mut probe);
    !probe.configs.is_empty() || !probe.skipped.is_empty()
}

/// Looks for wasm filter configurations anywhere in `value`: typed as
/// `"@type": ...wasm.v3.Wasm`, or wrapped in a `TypedStruct`
/// (`type_url` + `value`, as Istio's `EnvoyFilter` patches write them).
/// `path` is the JSON path so far; `short` the same place in words
/// (`listener main, http_filters[0]`) when it is under a named listener.
fn walk(value: &Value, location: &str, path: &str, short: &str, found: &mut Found) {
    match value {
        Value::Object(map) => {
            let typed = map.get("@type").and_then(Value::as_str) == Some(WASM_FILTER_TYPE);
            let wrapped = map.get("type_url").and_then(Value::as_str) == Some(WASM_FILTER_TYPE);
            if typed || wrapped {
                let filter = if typed { Some(value) } else { map.get("value") };
                let place = if short.contains("http_filters[") {
                    short
                } else {
                    path
                };
                wasm_filter(filter, &join(location, place), found);
                return;
            }
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (key.as_str(), child) {
                    ("listeners" | "http_filters", Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            let name = item.get("name").and_then(Value::as_str);
                            let item_short = match (key.as_str(), name) {
                                ("listeners", Some(name)) => format!("listener {name}"),
                                ("listeners", None) => format!("listeners[{i}]"),
                                _ => join(short, &format!("http_filters[{i}]")),
                            };
                            walk(
                                item,
                                location,
                                &format!("{child_path}[{i}]"),
                                &item_short,
                                found,
                            );
                        }
                    }
                    _ => walk(child, location, &child_path, short, found),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, location, &format!("{path}[{i}]"), short, found);
            }
        }
        _ => {}
    }
}

fn wasm_filter(filter: Option<&Value>, place: &str, found: &mut Found) {
    let config = filter.and_then(|f| f.get("config"));
    let plugin = config
        .and_then(|c| c.get("name").or_else(|| c.get("root_id")))
        .and_then(Value::as_str)
        .map_or_else(String::new, |n| format!(" (plugin {n})"));
    let at = format!("{place}{plugin}");
    let Some(configuration) = config.and_then(|c| c.get("configuration")) else {
        found
            .skipped
            .push((at, "wasm filter without config.configuration".to_owned()));
        return;
    };
    let is_string_value =
        configuration.get("@type").and_then(Value::as_str) == Some(STRING_VALUE_TYPE);
    match configuration.get("value").and_then(Value::as_str) {
        Some(text) if is_string_value => found.configs.push(PluginSource {
            location: at,
            json: text.as_bytes().to_vec(),
            verbatim: true,
        }),
        _ => found.skipped.push((
            at,
            "config.configuration is not a google.protobuf.StringValue with a value".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_is_taken_verbatim() {
        let f = find_configs(b" {\"providers\": {}} ").unwrap();
        assert_eq!(f.configs.len(), 1);
        assert_eq!(f.configs[0].json, b" {\"providers\": {}} ");
        let f = find_configs(b"{not json").unwrap();
        assert_eq!(f.configs[0].json, b"{not json");
    }

    #[test]
    fn envoy_bootstrap_string_values() {
        let yaml = br#"
static_resources:
  listeners:
  - name: main
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: jwt_policy
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {"providers": {}}
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                configuration:
                  "@type": type.googleapis.com/google.protobuf.BytesValue
                  value: e30=
          - name: envoy.filters.http.router
"#;
        let f = find_configs(yaml).unwrap();
        assert_eq!(f.configs.len(), 1);
        assert_eq!(f.configs[0].json, b"{\"providers\": {}}\n");
        assert_eq!(
            f.configs[0].location,
            "listener main, http_filters[0] (plugin jwt_policy)"
        );
        assert_eq!(f.skipped.len(), 1, "{:?}", f.skipped);
    }

    #[test]
    fn wasm_plugins_in_a_stream() {
        let yaml = br#"
apiVersion: v1
kind: Service
metadata: {name: x}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: jwt-policy, namespace: orders}
spec:
  pluginConfig:
    providers: {}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: empty}
spec: {}
"#;
        let f = find_configs(yaml).unwrap();
        assert_eq!(f.configs.len(), 1);
        assert_eq!(
            f.configs[0].location,
            "document 2, WasmPlugin orders/jwt-policy, spec.pluginConfig"
        );
        assert_eq!(f.configs[0].json, b"{\"providers\":{}}");
        assert_eq!(
            f.skipped,
            [(
                "document 3, WasmPlugin empty".to_owned(),
                "no spec.pluginConfig".to_owned()
            )]
        );
    }

    #[test]
    fn istio_envoy_filter_typed_struct() {
        let yaml = br#"
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: jwt-policy, namespace: orders}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.wasm
        typed_config:
          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
          type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
          value:
            config:
              root_id: jwt_policy
              configuration:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: '{"providers": {}}'
"#;
        let f = find_configs(yaml).unwrap();
        assert_eq!(f.configs.len(), 1, "{:?}", f.skipped);
        assert_eq!(
            f.configs[0].location,
            "EnvoyFilter orders/jwt-policy, spec.configPatches[0].patch.value.typed_config (plugin jwt_policy)"
        );
        assert_eq!(f.configs[0].json, b"{\"providers\": {}}");
    }

    #[test]
    fn envoy_gateway_extension_policy_wasm_configs() {
        let yaml = br#"
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: jwt-policy, namespace: orders}
spec:
  targetRefs:
  - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: orders}
  wasm:
  - name: jwt-policy
    rootID: jwt_policy
    code: {type: Image, image: {url: ghcr.io/example/jwt-policy:0.1.0}}
    config:
      providers: {}
  - rootID: other
    code: {type: HTTP, http: {url: https://example.com/x.wasm}}
"#;
        let f = find_configs(yaml).unwrap();
        assert_eq!(f.configs.len(), 1, "{:?}", f.skipped);
        assert_eq!(
            f.configs[0].location,
            "EnvoyExtensionPolicy orders/jwt-policy, spec.wasm[0].config (plugin jwt-policy)"
        );
        assert_eq!(f.configs[0].json, b"{\"providers\":{}}");
        assert!(!f.configs[0].verbatim, "converted from YAML");
        assert_eq!(
            f.skipped,
            [(
                "EnvoyExtensionPolicy orders/jwt-policy, spec.wasm[1].config (plugin other)"
                    .to_owned(),
                "no config".to_owned()
            )]
        );
        // An extension policy without wasm (ext_proc, Lua) holds none.
        let f = find_configs(
            b"apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyExtensionPolicy\nmetadata: {name: p}\nspec: {lua: []}\n",
        )
        .unwrap();
        assert!(f.configs.is_empty() && f.skipped.is_empty());
    }

    #[test]
    fn line_and_column_only_for_text_as_written() {
        let mut s = PluginSource {
            location: String::new(),
            json: Vec::new(),
            verbatim: false,
        };
        assert_eq!(
            s.message("unknown field `a` at line 1 column 35"),
            "unknown field `a`"
        );
        assert_eq!(s.message("bad at line one"), "bad at line one");
        s.verbatim = true;
        assert_eq!(
            s.message("unknown field `a` at line 1 column 35"),
            "unknown field `a` at line 1 column 35"
        );
    }

    #[test]
    fn yaml_plugin_config_and_typos() {
        let f = find_configs(b"provider: {}\nrules: []\n").unwrap();
        assert_eq!(f.configs.len(), 1, "a typo is still checked");
        assert!(find_configs(b"a: [\n").is_err());
        assert!(find_configs(b"\xff\xfe").is_err());
    }
}
