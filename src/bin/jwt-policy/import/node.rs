//! The source documents as a tree that keeps what the importer needs and
//! `serde_json::Value` loses: the order of mapping keys (report lines follow
//! the file) and CloudFormation's short-form tags (`!Ref X`), which become
//! their long form (`{"Ref": "X"}`, `{"Fn::Sub": ...}`) on the way in, so
//! YAML and JSON templates are read by the same code.

use serde::Deserialize;

/// One node of a YAML or JSON document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The member `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The member whose key equals `key` ignoring ASCII case (SAM accepts
    /// `issuer` and `Issuer` alike), with the key as written.
    pub fn get_ignore_case(&self, key: &str) -> Option<(&str, &Node)> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(k, v)| (k.as_str(), v)),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text (numbers and booleans as YAML writes them), for
    /// values that templates may write either way (`60` or `"60"`).
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Str(s) => Some(s.clone()),
            Node::Bool(b) => Some(b.to_string()),
            Node::Int(i) => Some(i.to_string()),
            Node::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }

    /// A boolean, also when written as the string `"true"`/`"false"`.
    pub fn as_bool_lenient(&self) -> Option<bool> {
        match self {
            Node::Bool(b) => Some(*b),
            Node::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Node::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// An integer, also when written as a string.
    pub fn as_u64_lenient(&self) -> Option<u64> {
        match self {
            Node::Int(i) => u64::try_from(*i).ok(),
            Node::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// What kind of node this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }

    /// The node as JSON (key order becomes JSON's sorted order).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Every document of a YAML stream (JSON is YAML too; a JSON file that the
/// YAML reader refuses, such as one indented with tabs, is read as JSON).
/// Empty documents are left out.
pub fn parse_documents(bytes: &[u8]) -> Result<Vec<Node>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let mut docs = Vec::new();
    let mut yaml_error = None;
    for de in serde_norway::Deserializer::from_str(text) {
        match serde_norway::Value::deserialize(de) {
            Ok(v) => {
                let node = from_yaml(v);
                if node != Node::Null {
                    docs.push(node);
                }
            }
            Err(e) => {
                yaml_error = Some(e.to_string());
                break;
            }
        }
    }
    let Some(yaml_error) = yaml_error else {
        return Ok(docs);
    };
    if text.trim_start().starts_with(['{', '[']) {
        return serde_json::from_str::<serde_json::Value>(text)
            .map(|v| vec![from_json(v)])
            .map_err(|e| format!("not valid JSON: {e}"));
    }
    Err(format!("not valid YAML: {yaml_error}"))
}

fn from_json(v: serde_json::Value) -> Node {
    use serde_json::Value;
    match v {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Node::Int(i),
            None => Node::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Node::Str(s),
        Value::Array(items) => Node::Seq(items.into_iter().map(from_json).collect()),
        Value::Object(map) => Node::Map(map.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
    }
}

fn from_yaml(v: serde_norway::Value) -> Node {
    use serde_norway::Value;
    match v {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Node::Int(i),
            None => Node::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Node::Str(s),
        Value::Sequence(items) => Node::Seq(items.into_iter().map(from_yaml).collect()),
        Value::Mapping(map) => Node::Map(
            map.into_iter()
                .map(|(k, v)| (key_text(k), from_yaml(v)))
                .collect(),
        ),
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let inner = from_yaml(tagged.value);
            long_form(tag.trim_start_matches('!'), inner)
        }
    }
}

/// `!Ref X` -> `{"Ref": X}`, `!GetAtt A.B` -> `{"Fn::GetAtt": [A, B]}`,
/// `!Condition C` -> `{"Condition": C}`, any other `!Name v` ->
/// `{"Fn::Name": v}` (CloudFormation's short forms). Tags of other YAML
/// dialects become the same shape and are refused where they are used.
fn long_form(tag: &str, inner: Node) -> Node {
    match tag {
        "Ref" | "Condition" => Node::Map(vec![(tag.to_owned(), inner)]),
        "GetAtt" => {
            let args = match inner {
                Node::Str(s) => match s.split_once('.') {
                    Some((resource, attribute)) => Node::Seq(vec![
                        Node::Str(resource.to_owned()),
                        Node::Str(attribute.to_owned()),
                    ]),
                    None => Node::Str(s),
                },
                other => other,
            };
            Node::Map(vec![("Fn::GetAtt".to_owned(), args)])
        }
        _ => Node::Map(vec![(format!("Fn::{tag}"), inner)]),
    }
}

fn key_text(k: serde_norway::Value) -> String {
    use serde_norway::Value;
    match k {
        Value::String(s) => s,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_owned(),
        other => serde_norway::to_string(&other)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
    }
}

/// `a.b` joined for source paths; `[i]` is appended without a dot.
pub fn join_path(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else if key.starts_with('[') {
        format!("{base}{key}")
    } else {
        format!("{base}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_tags_become_long_form() {
        let docs = parse_documents(
            b"a: !Ref Pool\nb: !GetAtt Pool.ProviderURL\nc: !Sub 'x-${Pool}'\nd: !Join ['/', [a, !Ref B]]\n",
        )
        .unwrap();
        let doc = &docs[0];
        assert_eq!(
            doc.get("a"),
            Some(&Node::Map(vec![("Ref".into(), Node::Str("Pool".into()))]))
        );
        assert_eq!(
            doc.get("b").unwrap().get("Fn::GetAtt"),
            Some(&Node::Seq(vec![
                Node::Str("Pool".into()),
                Node::Str("ProviderURL".into())
            ]))
        );
        assert_eq!(
            doc.get("c").unwrap().get("Fn::Sub"),
            Some(&Node::Str("x-${Pool}".into()))
        );
        let join = doc.get("d").unwrap().get("Fn::Join").unwrap();
        assert_eq!(
            join.items()[1].items()[1].get("Ref").unwrap().as_str(),
            Some("B")
        );
    }

    #[test]
    fn order_is_kept_and_json_is_read() {
        let docs = parse_documents(b"z: 1\na: 2\n").unwrap();
        let keys: Vec<&str> = docs[0].entries().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a"]);
        let docs = parse_documents(b"{\n\t\"z\": 1,\n\t\"a\": [true, 2.5]\n}").unwrap();
        assert_eq!(docs[0].get("a").unwrap().items()[1], Node::Float(2.5));
        let docs = parse_documents(b"---\na: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(parse_documents(b"a: [\n").is_err());
        assert!(parse_documents(b"\xff").is_err());
    }

    #[test]
    fn numeric_keys_are_text() {
        let docs = parse_documents(b"responses:\n  200: {description: ok}\n").unwrap();
        assert!(docs[0].get("responses").unwrap().get("200").is_some());
    }
}
