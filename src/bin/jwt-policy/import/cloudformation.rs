//! CloudFormation (and SAM) templates: resources by logical id, and the
//! intrinsic functions that the values the importer reads are written with.
//!
//! Only the values the importer uses are resolved, and each one completely
//! or not at all: `Ref` and `Fn::Sub` (both forms) take their value from
//! `--param NAME=VALUE`, else from the template parameter's `Default`;
//! pseudo parameters (`AWS::Region`...) and resources (whose ids exist only
//! once deployed) only from `--param`. `Fn::GetAtt` takes `--param
//! Res.Attr=...`, or is derived where that is meaningful (a Cognito user
//! pool's `ProviderURL` from its id; an app client's `ClientId`).
//! `Fn::Join`, `Fn::Select`, `Fn::Split` and `Fn::FindInMap` are evaluated.
//! Anything else is a problem naming the value's path in the template and
//! what is missing, never a placeholder.

use std::collections::BTreeMap;

use super::Params;
use super::node::{Node, join_path};

/// Something that could not be resolved, at a path in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: &str, message: impl Into<String>) -> Problem {
        Problem {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// A template's parameters, resources and mappings, for resolving values.
pub struct Template<'a> {
    pub root: &'a Node,
    params: &'a Params,
    parameters: BTreeMap<String, &'a Node>,
    resources: BTreeMap<String, String>,
}

impl<'a> Template<'a> {
    pub fn new(root: &'a Node, params: &'a Params) -> Template<'a> {
        let parameters = root
            .get("Parameters")
            .map(|p| p.entries().iter().map(|(k, v)| (k.clone(), v)).collect())
            .unwrap_or_default();
        let resources = root
            .get("Resources")
            .map(|r| {
                r.entries()
                    .iter()
                    .map(|(id, res)| {
                        let ty = res.get("Type").and_then(Node::as_str).unwrap_or("");
                        (id.clone(), ty.to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Template {
            root,
            params,
            parameters,
            resources,
        }
    }

    /// The `--param` values.
    pub fn params(&self) -> &'a Params {
        self.params
    }

    /// `Resources`, in template order.
    pub fn resources(&self) -> &'a [(String, Node)] {
        self.root.get("Resources").map_or(&[], Node::entries)
    }

    pub fn resource_type(&self, id: &str) -> Option<&str> {
        self.resources.get(id).map(String::as_str)
    }

    /// `node` with every intrinsic function evaluated (`AWS::NoValue`
    /// members and items removed).
    pub fn resolve(&self, node: &Node, path: &str) -> Result<Node, Vec<Problem>> {
        self.eval(node, path, 0, true)
    }

    /// A value that must resolve to a string (numbers and booleans are
    /// taken as their text).
    pub fn resolve_string(&self, node: &Node, path: &str) -> Result<String, Vec<Problem>> {
        let v = self.resolve(node, path)?;
        v.scalar_text().ok_or_else(|| {
            vec![Problem::new(
                path,
                format!("expected a string, found {}", v.kind()),
            )]
        })
    }

    /// A value that must resolve to a list of strings; a single string is a
    /// list of one.
    pub fn resolve_strings(&self, node: &Node, path: &str) -> Result<Vec<String>, Vec<Problem>> {
        match self.resolve(node, path)? {
            Node::Seq(items) => {
                let mut out = Vec::new();
                let mut problems = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.scalar_text() {
                        Some(s) => out.push(s),
                        None => problems.push(Problem::new(
                            &join_path(path, &format!("[{i}]")),
                            format!("expected a string, found {}", item.kind()),
                        )),
                    }
                }
                if problems.is_empty() {
                    Ok(out)
                } else {
                    Err(problems)
                }
            }
            other => other.scalar_text().map(|s| vec![s]).ok_or_else(|| {
                vec![Problem::new(
                    path,
                    format!("expected a list of strings, found {}", other.kind()),
                )]
            }),
        }
    }

    /// The logical id a value refers to: `!Ref X` or `!GetAtt X.Attr`
    /// (how routes name their authorizer and events their API).
    pub fn reference(node: &Node) -> Option<&str> {
        if let Some(target) = node.get("Ref").and_then(Node::as_str) {
            return Some(target);
        }
        let args = node.get("Fn::GetAtt")?;
        match args {
            Node::Seq(items) => items.first().and_then(Node::as_str),
            Node::Str(s) => s.split('.').next(),
            _ => None,
        }
    }

    /// `extend`: paths of members and items are the value's own (`a[1]`);
    /// inside an intrinsic function's arguments they stay the path of the
    /// value the function computes, which is where the user looks.
    fn eval(
        &self,
        node: &Node,
        path: &str,
        depth: u32,
        extend: bool,
    ) -> Result<Node, Vec<Problem>> {
        if depth > 32 {
            return Err(vec![Problem::new(
                path,
                "intrinsic functions nested too deeply",
            )]);
        }
        let deeper = depth.saturating_add(1);
        match node {
            Node::Map(entries) => {
                if let [(key, arg)] = entries.as_slice()
                    && (key == "Ref" || key.starts_with("Fn::"))
                {
                    return self.intrinsic(key, arg, path, deeper);
                }
                let mut out = Vec::new();
                let mut problems = Vec::new();
                for (k, v) in entries {
                    let at = if extend {
                        join_path(path, k)
                    } else {
                        path.to_owned()
                    };
                    match self.eval(v, &at, deeper, extend) {
                        Ok(Node::Null) if is_no_value(v) => {}
                        Ok(v) => out.push((k.clone(), v)),
                        Err(p) => problems.extend(p),
                    }
                }
                if problems.is_empty() {
                    Ok(Node::Map(out))
                } else {
                    Err(problems)
                }
            }
            Node::Seq(items) => {
                let mut out = Vec::new();
                let mut problems = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let at = if extend {
                        join_path(path, &format!("[{i}]"))
                    } else {
                        path.to_owned()
                    };
                    match self.eval(item, &at, deeper, extend) {
                        Ok(Node::Null) if is_no_value(item) => {}
                        Ok(v) => out.push(v),
                        Err(p) => problems.extend(p),
                    }
                }
                if problems.is_empty() {
                    Ok(Node::Seq(out))
                } else {
                    Err(problems)
                }
            }
            other => Ok(other.clone()),
        }
    }

    fn intrinsic(
        &self,
        name: &str,
        arg: &Node,
        path: &str,
        depth: u32,
    ) -> Result<Node, Vec<Problem>> {
        let fail = |message: String| Err(vec![Problem::new(path, message)]);
        match name {
            "Ref" => match arg.as_str() {
                Some(target) => self.reference_value(target, path, &format!("!Ref {target}")),
                None => fail("!Ref needs the name of a parameter or resource".into()),
            },
            "Fn::Sub" => self.sub(arg, path, depth).map(Node::Str),
            "Fn::Join" => {
                let (Some(delimiter), Some(list)) = (arg.items().first(), arg.items().get(1))
                else {
                    return fail("!Join needs [delimiter, [values...]]".into());
                };
                let delimiter = self.eval(delimiter, path, depth, false)?;
                let Some(delimiter) = delimiter.as_str().map(str::to_owned) else {
                    return fail("!Join's delimiter is not a string".into());
                };
                let parts = self.resolve_strings_at(list, path, depth)?;
                Ok(Node::Str(parts.join(&delimiter)))
            }
            "Fn::Select" => {
                let (Some(index), Some(list)) = (arg.items().first(), arg.items().get(1)) else {
                    return fail("!Select needs [index, [values...]]".into());
                };
                let index = self.eval(index, path, depth, false)?;
                let Some(index) = index.as_u64_lenient() else {
                    return fail("!Select's index is not a number".into());
                };
                let list = self.eval(list, path, depth, false)?;
                match usize::try_from(index).ok().and_then(|i| list.items().get(i)) {
                    Some(v) => Ok(v.clone()),
                    None => fail(format!("!Select index {index} is out of range")),
                }
            }
            "Fn::Split" => {
                let (Some(delimiter), Some(text)) = (arg.items().first(), arg.items().get(1))
                else {
                    return fail("!Split needs [delimiter, string]".into());
                };
                let delimiter = self.eval(delimiter, path, depth, false)?;
                let text = self.eval(text, path, depth, false)?;
                match (delimiter.as_str(), text.as_str()) {
                    (Some(d), Some(t)) if !d.is_empty() => Ok(Node::Seq(
                        t.split(d).map(|s| Node::Str(s.to_owned())).collect(),
                    )),
                    _ => fail("!Split needs a delimiter and a string".into()),
                }
            }
            "Fn::FindInMap" => {
                let keys = self.resolve_strings_at(arg, path, depth)?;
                let [map, top, second] = keys.as_slice() else {
                    return fail("!FindInMap needs [map, top-level key, second-level key]".into());
                };
                let found = self
                    .root
                    .get("Mappings")
                    .and_then(|m| m.get(map))
                    .and_then(|m| m.get(top))
                    .and_then(|m| m.get(second));
                match found {
                    Some(v) => self.eval(v, path, depth, false),
                    None => fail(format!("!FindInMap: Mappings.{map}.{top}.{second} does not exist")),
                }
            }
            "Fn::GetAtt" => {
                let (resource, attribute) = match arg {
                    Node::Seq(items) => match (
                        items.first().and_then(Node::as_str),
                        items.get(1).and_then(Node::as_str),
                    ) {
                        (Some(r), Some(a)) => (r, a),
                        _ => return fail("!GetAtt needs [resource, attribute]".into()),
                    },
                    Node::Str(s) => match s.split_once('.') {
                        Some((r, a)) => (r, a),
                        None => return fail("!GetAtt needs Resource.Attribute".into()),
                    },
                    _ => return fail("!GetAtt needs [resource, attribute]".into()),
                };
                self.get_att(resource, attribute, path, &format!("!GetAtt {resource}.{attribute}"))
            }
            "Fn::If" => fail(
                "cannot resolve !If: conditions are not evaluated (write the value, or pass it with --param through a parameter)"
                    .into(),
            ),
            "Fn::ImportValue" => {
                let export = self.eval(arg, path, depth, false).ok();
                let export = export.as_ref().and_then(Node::as_str).unwrap_or("...");
                match self.params.get(export) {
                    Some(v) => Ok(Node::Str(v)),
                    None => fail(format!(
                        "unresolved !ImportValue {export} (another stack's export; pass --param {export}=...)"
                    )),
                }
            }
            other => fail(format!(
                "cannot resolve {} here",
                other.replacen("Fn::", "!", 1)
            )),
        }
    }

    fn resolve_strings_at(
        &self,
        node: &Node,
        path: &str,
        depth: u32,
    ) -> Result<Vec<String>, Vec<Problem>> {
        let v = self.eval(node, path, depth, false)?;
        let mut out = Vec::new();
        for item in v.items() {
            match item.scalar_text() {
                Some(s) => out.push(s),
                None => {
                    return Err(vec![Problem::new(
                        path,
                        format!("expected a list of strings, found {} in it", item.kind()),
                    )]);
                }
            }
        }
        if let Node::Seq(_) = v {
            Ok(out)
        } else {
            Err(vec![Problem::new(
                path,
                format!("expected a list, found {}", v.kind()),
            )])
        }
    }

    /// The value of `Ref target`; `what` names the reference in messages.
    fn reference_value(&self, target: &str, path: &str, what: &str) -> Result<Node, Vec<Problem>> {
        if target == "AWS::NoValue" {
            return Ok(Node::Null);
        }
        let is_list = self
            .parameters
            .get(target)
            .and_then(|p| p.get("Type"))
            .and_then(Node::as_str)
            .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"));
        let as_value = |text: String| {
            if is_list {
                Node::Seq(
                    text.split(',')
                        .map(|s| Node::Str(s.trim().to_owned()))
                        .collect(),
                )
            } else {
                Node::Str(text)
            }
        };
        if let Some(v) = self.params.get(target) {
            return Ok(as_value(v));
        }
        if let Some(default) = self.parameters.get(target).and_then(|p| p.get("Default")) {
            return match default {
                Node::Seq(_) => Ok(default.clone()),
                other => match other.scalar_text() {
                    Some(text) => Ok(as_value(text)),
                    None => Err(vec![Problem::new(
                        path,
                        format!("{what}: the parameter's Default is not a value"),
                    )]),
                },
            };
        }
        let why = if self.parameters.contains_key(target) {
            String::new()
        } else if target.starts_with("AWS::") {
            ", a pseudo parameter".to_owned()
        } else if let Some(ty) = self.resource_type(target) {
            format!(", the id of the {ty} resource, known once deployed")
        } else {
            ", no such parameter or resource in the template".to_owned()
        };
        Err(vec![Problem::new(
            path,
            format!("unresolved {what}{why} (pass --param {target}=...)"),
        )])
    }

    fn get_att(
        &self,
        resource: &str,
        attribute: &str,
        path: &str,
        what: &str,
    ) -> Result<Node, Vec<Problem>> {
        let key = format!("{resource}.{attribute}");
        if let Some(v) = self.params.get(&key) {
            return Ok(Node::Str(v));
        }
        let derived = match (self.resource_type(resource), attribute) {
            (Some("AWS::Cognito::UserPool"), "UserPoolId") => Some(None),
            (Some("AWS::Cognito::UserPool"), "ProviderURL") => Some(Some("https://")),
            (Some("AWS::Cognito::UserPool"), "ProviderName") => Some(Some("")),
            (Some("AWS::Cognito::UserPoolClient"), "ClientId") => Some(None),
            _ => None,
        };
        let Some(scheme) = derived else {
            return Err(vec![Problem::new(
                path,
                format!("unresolved {what} (pass --param {key}=...)"),
            )]);
        };
        let id = match self.reference_value(
            resource,
            path,
            &format!("{what} (from the id of {resource})"),
        ) {
            Ok(Node::Str(id)) => id,
            Ok(_) => {
                return Err(vec![Problem::new(
                    path,
                    format!("{what}: the id of {resource} is not a string"),
                )]);
            }
            Err(_) => {
                return Err(vec![Problem::new(
                    path,
                    format!(
                        "unresolved {what} (pass --param {resource}=<its id>, or --param {key}=...)"
                    ),
                )]);
            }
        };
        let Some(scheme) = scheme else {
            return Ok(Node::Str(id));
        };
        // A pool id is `<region>_<suffix>`; `--param AWS::Region` wins.
        let region = self
            .params
            .get("AWS::Region")
            .or_else(|| id.split_once('_').map(|(r, _)| r.to_owned()));
        match region {
            Some(region) => Ok(Node::Str(format!(
                "{scheme}cognito-idp.{region}.amazonaws.com/{id}"
            ))),
            None => Err(vec![Problem::new(
                path,
                format!(
                    "unresolved {what}: no region in the pool id {id} (pass --param AWS::Region=...)"
                ),
            )]),
        }
    }

    /// `Fn::Sub`: a string, or `[string, {Var: value}]`.
    fn sub(&self, arg: &Node, path: &str, depth: u32) -> Result<String, Vec<Problem>> {
        let (text, vars) = match arg {
            Node::Str(s) => (s.as_str(), None),
            Node::Seq(items) => match (items.first().and_then(Node::as_str), items.get(1)) {
                (Some(s), vars) => (s, vars),
                _ => {
                    return Err(vec![Problem::new(
                        path,
                        "!Sub needs a string or [string, {variables}]",
                    )]);
                }
            },
            _ => {
                return Err(vec![Problem::new(
                    path,
                    "!Sub needs a string or [string, {variables}]",
                )]);
            }
        };
        substitute(text, |name| {
            if let Some(literal) = name.strip_prefix('!') {
                return Ok(format!("${{{literal}}}"));
            }
            if let Some(v) = vars.and_then(|m| m.get(name)) {
                let v = self.eval(v, path, depth, false)?;
                return v.scalar_text().ok_or_else(|| {
                    vec![Problem::new(
                        path,
                        format!("!Sub variable {name} is not a string"),
                    )]
                });
            }
            let what = format!("${{{name}}} in !Sub");
            let value = match name.split_once('.') {
                Some((resource, attribute)) if self.resources.contains_key(resource) => {
                    self.get_att(resource, attribute, path, &what)?
                }
                _ => self.reference_value(name, path, &what)?,
            };
            value
                .scalar_text()
                .ok_or_else(|| vec![Problem::new(path, format!("{what} is not a string"))])
        })
    }

    /// `${Name}` in a plain string, as API Gateway resolves AWS variables
    /// (`${AWS::Region}`...) when it imports an OpenAPI definition: from
    /// `--param` only.
    pub fn openapi_vars(params: &Params, text: &str, path: &str) -> Result<String, Vec<Problem>> {
        substitute(text, |name| {
            params.get(name).ok_or_else(|| {
                vec![Problem::new(
                    path,
                    format!("unresolved ${{{name}}} (pass --param {name}=...)"),
                )]
            })
        })
    }
}

fn is_no_value(node: &Node) -> bool {
    node.get("Ref").and_then(Node::as_str) == Some("AWS::NoValue")
}

/// Replaces each `${name}` with `value(name)`, collecting every problem.
fn substitute(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, Vec<Problem>>,
) -> Result<String, Vec<Problem>> {
    let mut out = String::new();
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let (before, after) = rest.split_at(start);
        out.push_str(before);
        let after = after.get(2..).unwrap_or("");
        let Some(end) = after.find('}') else {
            out.push_str("${");
            rest = after;
            continue;
        };
        let (name, tail) = after.split_at(end);
        match value(name.trim()) {
            Ok(v) => out.push_str(&v),
            Err(p) => problems.extend(p),
        }
        rest = tail.get(1..).unwrap_or("");
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::super::node::parse_documents;
    use super::*;

    fn template(yaml: &str) -> Node {
        parse_documents(yaml.as_bytes()).unwrap().remove(0)
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs)
    }

    const T: &str = r#"
Parameters:
  UserPoolId: {Type: String}
  Stage: {Type: String, Default: prod}
  Audiences: {Type: CommaDelimitedList, Default: "a, b"}
Mappings:
  Regions: {us-east-1: {Pool: us-east-1_map}}
Resources:
  Pool: {Type: AWS::Cognito::UserPool}
  Client: {Type: AWS::Cognito::UserPoolClient}
  Auth:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      Issuer: !Sub https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPoolId}
      Long: {"Fn::Sub": ["https://x/${P}/${Stage}", {P: !Ref UserPoolId}]}
      Join: !Join ["/", ["https:/", !Ref Stage, !Select [1, !Ref Audiences]]]
      Att: !GetAtt Pool.ProviderURL
      AttSub: !Sub "${Pool.ProviderURL}"
      ClientId: !GetAtt Client.ClientId
      Map: !FindInMap [Regions, !Ref "AWS::Region", Pool]
      Escaped: !Sub "${!Literal}-${Stage}"
      Split: !Select [0, !Split [",", "x,y"]]
      List: [a, !Ref "AWS::NoValue", b]
      If: !If [C, a, b]
      Other: !Base64 x
"#;

    fn at<'n>(doc: &'n Node, key: &str) -> &'n Node {
        doc.get("Resources")
            .unwrap()
            .get("Auth")
            .unwrap()
            .get("Properties")
            .unwrap()
            .get(key)
            .unwrap()
    }

    #[test]
    fn resolves_refs_subs_joins_and_attributes() {
        let doc = template(T);
        let p = params(&[
            ("AWS::Region", "us-east-1"),
            ("UserPoolId", "us-east-1_abc"),
            ("Pool", "eu-west-1_pool"),
            ("Client", "client123"),
        ]);
        let t = Template::new(&doc, &p);
        let s = |k: &str| t.resolve_string(at(&doc, k), k).unwrap();
        assert_eq!(
            s("Issuer"),
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"
        );
        assert_eq!(s("Long"), "https://x/us-east-1_abc/prod");
        assert_eq!(s("Join"), "https://prod/b");
        // The region comes from --param when given, else from the pool id.
        assert_eq!(
            s("Att"),
            "https://cognito-idp.us-east-1.amazonaws.com/eu-west-1_pool"
        );
        assert_eq!(
            s("AttSub"),
            "https://cognito-idp.us-east-1.amazonaws.com/eu-west-1_pool"
        );
        assert_eq!(s("ClientId"), "client123");
        assert_eq!(s("Map"), "us-east-1_map");
        assert_eq!(s("Escaped"), "${Literal}-prod");
        assert_eq!(s("Split"), "x");
        assert_eq!(
            t.resolve_strings(at(&doc, "List"), "List").unwrap(),
            ["a", "b"]
        );
        let no_region = params(&[("Pool", "eu-west-1_pool")]);
        let t = Template::new(&doc, &no_region);
        assert_eq!(
            t.resolve_string(at(&doc, "Att"), "Att").unwrap(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_pool"
        );
    }

    #[test]
    fn unresolved_names_the_path_and_the_param() {
        let doc = template(T);
        let p = params(&[]);
        let t = Template::new(&doc, &p);
        let path = "Resources.Auth.Properties.Issuer";
        let err = t.resolve_string(at(&doc, "Issuer"), path).unwrap_err();
        let messages: Vec<String> = err
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(
            messages,
            [
                "Resources.Auth.Properties.Issuer: unresolved ${AWS::Region} in !Sub, a pseudo parameter (pass --param AWS::Region=...)",
                "Resources.Auth.Properties.Issuer: unresolved ${UserPoolId} in !Sub (pass --param UserPoolId=...)",
            ]
        );
        let err = t.resolve_string(at(&doc, "Long"), "L").unwrap_err();
        assert_eq!(
            err[0].message,
            "unresolved !Ref UserPoolId (pass --param UserPoolId=...)"
        );
        let err = t.resolve_string(at(&doc, "ClientId"), "C").unwrap_err();
        assert_eq!(
            err[0].message,
            "unresolved !GetAtt Client.ClientId (pass --param Client=<its id>, or --param Client.ClientId=...)"
        );
        let err = t.resolve_string(at(&doc, "If"), "I").unwrap_err();
        assert!(err[0].message.starts_with("cannot resolve !If"), "{err:?}");
        let err = t.resolve_string(at(&doc, "Other"), "O").unwrap_err();
        assert_eq!(err[0].message, "cannot resolve !Base64 here");
        let r = Node::Map(vec![("Ref".into(), Node::Str("Pool".into()))]);
        assert_eq!(
            t.resolve_string(&r, "R").unwrap_err()[0].message,
            "unresolved !Ref Pool, the id of the AWS::Cognito::UserPool resource, known once deployed (pass --param Pool=...)"
        );
    }

    #[test]
    fn list_parameters() {
        let doc = template(T);
        let p = params(&[("Audiences", "x,y ,z")]);
        let t = Template::new(&doc, &p);
        let r = Node::Map(vec![("Ref".into(), Node::Str("Audiences".into()))]);
        assert_eq!(t.resolve_strings(&r, "A").unwrap(), ["x", "y", "z"]);
        let p = params(&[]);
        let t = Template::new(&doc, &p);
        assert_eq!(t.resolve_strings(&r, "A").unwrap(), ["a", "b"]);
    }

    #[test]
    fn openapi_variables() {
        let p = params(&[("AWS::Region", "eu-west-1")]);
        assert_eq!(
            Template::openapi_vars(
                &p,
                "https://cognito-idp.${AWS::Region}.amazonaws.com/x",
                "i"
            )
            .unwrap(),
            "https://cognito-idp.eu-west-1.amazonaws.com/x"
        );
        let err = Template::openapi_vars(&p, "${AWS::AccountId}", "i").unwrap_err();
        assert_eq!(
            err[0].message,
            "unresolved ${AWS::AccountId} (pass --param AWS::AccountId=...)"
        );
        assert_eq!(
            Template::openapi_vars(&p, "no vars ${", "i").unwrap(),
            "no vars ${"
        );
    }
}
