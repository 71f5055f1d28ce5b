//! The DataWeave expressions that MuleSoft JWT Validation policies commonly
//! hold, read just far enough to recognise the literal shapes that have an
//! equivalent here; anything else is refused with the reason.
//!
//! Claim expressions (`mandatoryCustomClaims` / `nonMandatoryCustomClaims`
//! values; `vars.claimSet` holds the token's claims):
//!
//! - `vars.claimSet.x == 'v'` (either side, `"v"`, numbers, booleans)
//! - `['a', 'b'] contains vars.claimSet.x` (a value in a list)
//! - `vars.claimSet.x contains 'v'` (an array claim holding `v`; on a string
//!   claim DataWeave tests for a substring, which has no equivalent)
//! - `vars.claimSet.x != null`, `vars.claimSet.x?` (present)
//! - `and` of these, and `or` of equalities on one claim
//! - claims by dotted path (`vars.claimSet.realm_access.roles`) or selector
//!   (`vars.claimSet['cognito:groups']`)
//!
//! Token expressions (`jwtExpression`): `attributes.headers['x']`,
//! `attributes.queryParams['p']` (also `.x` and `."x"`), with or without a
//! `Bearer ` strip (`replace 'Bearer ' with ''`, `replace /^Bearer\s+/ with
//! ''`, `[7 to -1]`, `(… splitBy ' ')[1]`, `substringAfter(…, 'Bearer ')`)
//! and an optional `default ''`.

use serde_json::Value;

/// What a claim expression requires of one claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The claim equals one of the values (or is an array holding one).
    OneOf { claim: String, values: Vec<Value> },
    /// `claim contains value`: an array holding it, or (DataWeave, on a
    /// string) a substring.
    Contains { claim: String, value: Value },
    /// The claim is present.
    Present { claim: String },
}

impl Check {
    pub fn claim(&self) -> &str {
        match self {
            Check::OneOf { claim, .. }
            | Check::Contains { claim, .. }
            | Check::Present { claim } => claim,
        }
    }
}

/// Where a token expression takes the token from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A header; `bearer` when the expression strips a `Bearer ` prefix.
    Header {
        name: String,
        bearer: bool,
    },
    Param(String),
}

/// `#[expr]` -> `expr`; `None` for a plain literal value.
pub fn expression_body(value: &str) -> Option<&str> {
    value
        .trim()
        .strip_prefix("#[")
        .and_then(|rest| rest.strip_suffix(']'))
        .map(str::trim)
}

/// The checks a claim expression makes (empty: always true).
pub fn claim_checks(expression: &str) -> Result<Vec<Check>, String> {
    let ast = parse(expression)?;
    checks_of(&ast)
}

/// Where a token expression reads the token.
pub fn token_source(expression: &str) -> Result<TokenSource, String> {
    let ast = parse(expression)?;
    token_of(&ast, false)
}

// ------------------------------------------------------------ tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Regex(String),
    Sym(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0usize;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        let next = at(i.saturating_add(1));
        if c.is_whitespace() {
            i = i.saturating_add(1);
        } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
                i = i.saturating_add(1);
            }
            toks.push(Tok::Ident(
                chars.get(start..i).unwrap_or_default().iter().collect(),
            ));
        } else if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = i;
            i = i.saturating_add(1);
            while at(i).is_some_and(|c| c.is_ascii_digit() || c == '.') {
                i = i.saturating_add(1);
            }
            let text: String = chars.get(start..i).unwrap_or_default().iter().collect();
            toks.push(match text.parse::<i64>() {
                Ok(n) => Tok::Int(n),
                Err(_) => Tok::Float(text.parse().map_err(|_| format!("bad number {text}"))?),
            });
        } else if c == '\'' || c == '"' || c == '/' {
            let quote = c;
            let mut s = String::new();
            i = i.saturating_add(1);
            loop {
                match at(i) {
                    None => return Err("unterminated string".into()),
                    Some('\\') => {
                        let escaped = at(i.saturating_add(1)).ok_or("unterminated string")?;
                        if quote == '/' {
                            s.push('\\');
                        }
                        s.push(escaped);
                        i = i.saturating_add(2);
                    }
                    Some(q) if q == quote => {
                        i = i.saturating_add(1);
                        break;
                    }
                    Some(other) => {
                        s.push(other);
                        i = i.saturating_add(1);
                    }
                }
            }
            toks.push(if quote == '/' {
                Tok::Regex(s)
            } else {
                Tok::Str(s)
            });
        } else {
            let two: String = [c, next.unwrap_or(' ')].iter().collect();
            let sym = match two.as_str() {
                "==" => Some("=="),
                "!=" => Some("!="),
                _ => None,
            };
            if let Some(sym) = sym {
                toks.push(Tok::Sym(sym));
                i = i.saturating_add(2);
                continue;
            }
            let sym = match c {
                '.' => ".",
                '[' => "[",
                ']' => "]",
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '?' => "?",
                other => return Err(format!("unexpected '{other}'")),
            };
            toks.push(Tok::Sym(sym));
            i = i.saturating_add(1);
        }
    }
    Ok(toks)
}

// ------------------------------------------------------------ syntax

#[derive(Debug, Clone, PartialEq)]
enum Ast {
    /// `a.b['c']."d"`: a selector chain from an identifier.
    Path(Vec<String>),
    Lit(Value),
    Regex(String),
    List(Vec<Ast>),
    Index(Box<Ast>, i64),
    Range(Box<Ast>, i64, i64),
    Exists(Box<Ast>),
    Bin(&'static str, Box<Ast>, Box<Ast>),
    Replace(Box<Ast>, Box<Ast>, Box<Ast>),
    Call(String, Vec<Ast>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn parse(text: &str) -> Result<Ast, String> {
    let mut p = Parser {
        toks: tokenize(text)?,
        pos: 0,
    };
    let ast = p.or()?;
    match p.peek() {
        None => Ok(ast),
        Some(t) => Err(format!("unexpected {} after the expression", describe(t))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Int(n) => n.to_string(),
        Tok::Float(f) => f.to_string(),
        Tok::Regex(r) => format!("/{r}/"),
        Tok::Sym(s) => format!("`{s}`"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos = self.pos.saturating_add(1);
        t
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.pos = self.pos.saturating_add(1);
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(w)) if w == word) {
            self.pos = self.pos.saturating_add(1);
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), String> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(t) => format!("expected `{sym}`, found {}", describe(t)),
                None => format!("expected `{sym}` at the end"),
            })
        }
    }

    fn or(&mut self) -> Result<Ast, String> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            let right = self.and()?;
            left = Ast::Bin("or", Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Ast, String> {
        let mut left = self.cmp()?;
        while self.eat_word("and") {
            let right = self.cmp()?;
            left = Ast::Bin("and", Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn cmp(&mut self) -> Result<Ast, String> {
        let left = self.binop()?;
        for op in ["==", "!="] {
            if self.eat_sym(op) {
                let right = self.binop()?;
                let op = if op == "==" { "==" } else { "!=" };
                return Ok(Ast::Bin(op, Box::new(left), Box::new(right)));
            }
        }
        Ok(left)
    }

    fn binop(&mut self) -> Result<Ast, String> {
        let mut left = self.postfix()?;
        loop {
            if self.eat_word("contains") {
                left = Ast::Bin("contains", Box::new(left), Box::new(self.postfix()?));
            } else if self.eat_word("default") {
                left = Ast::Bin("default", Box::new(left), Box::new(self.postfix()?));
            } else if self.eat_word("splitBy") {
                left = Ast::Bin("splitBy", Box::new(left), Box::new(self.postfix()?));
            } else if self.eat_word("replace") {
                let pattern = self.postfix()?;
                if !self.eat_word("with") {
                    return Err("`replace` without `with`".into());
                }
                let with = self.postfix()?;
                left = Ast::Replace(Box::new(left), Box::new(pattern), Box::new(with));
            } else {
                return Ok(left);
            }
        }
    }

    fn postfix(&mut self) -> Result<Ast, String> {
        let mut node = self.primary()?;
        loop {
            if self.eat_sym(".") {
                let key = match self.next() {
                    Some(Tok::Ident(s) | Tok::Str(s)) => s,
                    _ => return Err("expected a name after `.`".into()),
                };
                node = select(node, key)?;
            } else if self.eat_sym("[") {
                match self.next() {
                    Some(Tok::Str(key)) => {
                        self.expect_sym("]")?;
                        node = select(node, key)?;
                    }
                    Some(Tok::Int(from)) => {
                        if self.eat_word("to") {
                            let Some(Tok::Int(to)) = self.next() else {
                                return Err("expected a number after `to`".into());
                            };
                            self.expect_sym("]")?;
                            node = Ast::Range(Box::new(node), from, to);
                        } else {
                            self.expect_sym("]")?;
                            node = Ast::Index(Box::new(node), from);
                        }
                    }
                    _ => return Err("unsupported selector `[...]`".into()),
                }
            } else if self.eat_sym("?") {
                node = Ast::Exists(Box::new(node));
            } else {
                return Ok(node);
            }
        }
    }

    fn primary(&mut self) -> Result<Ast, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Ast::Lit(Value::String(s))),
            Some(Tok::Int(n)) => Ok(Ast::Lit(Value::from(n))),
            Some(Tok::Float(f)) => Ok(Ast::Lit(
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            )),
            Some(Tok::Regex(r)) => Ok(Ast::Regex(r)),
            Some(Tok::Ident(w)) => match w.as_str() {
                "true" => Ok(Ast::Lit(Value::Bool(true))),
                "false" => Ok(Ast::Lit(Value::Bool(false))),
                "null" => Ok(Ast::Lit(Value::Null)),
                _ if self.eat_sym("(") => {
                    let mut args = Vec::new();
                    if !self.eat_sym(")") {
                        loop {
                            args.push(self.or()?);
                            if self.eat_sym(")") {
                                break;
                            }
                            self.expect_sym(",")?;
                        }
                    }
                    Ok(Ast::Call(w, args))
                }
                _ => Ok(Ast::Path(vec![w])),
            },
            Some(Tok::Sym("(")) => {
                let inner = self.or()?;
                self.expect_sym(")")?;
                Ok(inner)
            }
            Some(Tok::Sym("[")) => {
                let mut items = Vec::new();
                if !self.eat_sym("]") {
                    loop {
                        items.push(self.or()?);
                        if self.eat_sym("]") {
                            break;
                        }
                        self.expect_sym(",")?;
                    }
                }
                Ok(Ast::List(items))
            }
            Some(t) => Err(format!("unexpected {}", describe(&t))),
            None => Err("empty expression".into()),
        }
    }
}

fn select(node: Ast, key: String) -> Result<Ast, String> {
    match node {
        Ast::Path(mut keys) => {
            keys.push(key);
            Ok(Ast::Path(keys))
        }
        _ => Err(format!(
            "selector .{key} on something other than a variable"
        )),
    }
}

// ------------------------------------------------------------ meaning

/// `vars.claimSet.a.b` -> `a.b`.
fn claim_of(ast: &Ast) -> Option<String> {
    match ast {
        Ast::Path(keys) => match keys.as_slice() {
            [vars, set, rest @ ..] if vars == "vars" && set == "claimSet" && !rest.is_empty() => {
                Some(rest.join("."))
            }
            _ => None,
        },
        _ => None,
    }
}

fn literal(ast: &Ast) -> Option<&Value> {
    match ast {
        Ast::Lit(v) if !v.is_null() => Some(v),
        _ => None,
    }
}

fn checks_of(ast: &Ast) -> Result<Vec<Check>, String> {
    match ast {
        Ast::Lit(Value::Bool(true)) => Ok(Vec::new()),
        Ast::Bin("and", a, b) => {
            let mut checks = checks_of(a)?;
            checks.extend(checks_of(b)?);
            Ok(checks)
        }
        Ast::Bin("or", a, b) => {
            let (a, b) = (checks_of(a)?, checks_of(b)?);
            match (a.as_slice(), b.as_slice()) {
                (
                    [
                        Check::OneOf {
                            claim: c1,
                            values: v1,
                        },
                    ],
                    [
                        Check::OneOf {
                            claim: c2,
                            values: v2,
                        },
                    ],
                ) if c1 == c2 => {
                    let mut values = v1.clone();
                    values.extend(v2.iter().filter(|v| !v1.contains(v)).cloned());
                    Ok(vec![Check::OneOf {
                        claim: c1.clone(),
                        values,
                    }])
                }
                _ => Err("`or` of anything but equalities on one claim has no equivalent".into()),
            }
        }
        Ast::Bin("==", a, b) => match (claim_of(a), claim_of(b), literal(a), literal(b)) {
            (Some(claim), _, _, Some(v)) | (_, Some(claim), Some(v), _) => Ok(vec![Check::OneOf {
                claim,
                values: vec![v.clone()],
            }]),
            _ => Err("`==` other than between a claim and a literal value".into()),
        },
        Ast::Bin("!=", a, b) => match (claim_of(a), claim_of(b), a.as_ref(), b.as_ref()) {
            (Some(claim), _, _, Ast::Lit(Value::Null))
            | (_, Some(claim), Ast::Lit(Value::Null), _) => Ok(vec![Check::Present { claim }]),
            _ => Err("`!=` a value: a claim that must differ has no equivalent".into()),
        },
        Ast::Exists(inner) => match claim_of(inner) {
            Some(claim) => Ok(vec![Check::Present { claim }]),
            None => Err("`?` on something other than a claim".into()),
        },
        Ast::Bin("contains", a, b) => {
            if let (Ast::List(items), Some(claim)) = (a.as_ref(), claim_of(b)) {
                let values = items
                    .iter()
                    .map(|i| literal(i).cloned())
                    .collect::<Option<Vec<Value>>>()
                    .ok_or("a list holding something other than literal values")?;
                if values.is_empty() {
                    return Err("an empty list: no value can be in it".into());
                }
                return Ok(vec![Check::OneOf { claim, values }]);
            }
            match (claim_of(a), literal(b)) {
                (Some(claim), Some(v)) => Ok(vec![Check::Contains {
                    claim,
                    value: v.clone(),
                }]),
                _ => Err(
                    "`contains` other than [literals] contains claim, or claim contains literal"
                        .into(),
                ),
            }
        }
        Ast::Call(name, _) => Err(format!("function call {name}(...)")),
        Ast::Regex(_) => Err("a regular expression".into()),
        Ast::Path(keys) => match claim_of(ast) {
            Some(c) => Err(format!(
                "the claim {c} alone is not a test (write == 'value')"
            )),
            None => Err(format!(
                "`{}` is not a claim of vars.claimSet",
                keys.join(".")
            )),
        },
        Ast::Lit(_) => Err("a constant that is not true".into()),
        _ => Err("an expression of a shape with no equivalent".into()),
    }
}

fn source_of(ast: &Ast) -> Option<TokenSource> {
    let Ast::Path(keys) = ast else { return None };
    match keys.as_slice() {
        [attributes, kind, name] if attributes == "attributes" => match kind.as_str() {
            "headers" => Some(TokenSource::Header {
                name: name.to_ascii_lowercase(),
                bearer: false,
            }),
            "queryParams" => Some(TokenSource::Param(name.clone())),
            _ => None,
        },
        _ => None,
    }
}

fn is_bearer_prefix(text: &str) -> bool {
    text.eq_ignore_ascii_case("bearer ")
}

/// `^Bearer\s+`, `Bearer `, `^Bearer `, `(?i)bearer\s*`...
fn is_bearer_regex(re: &str) -> bool {
    let re = re.trim_start_matches("(?i)").trim_start_matches('^');
    let Some(rest) = re.get(..6).filter(|p| p.eq_ignore_ascii_case("bearer")) else {
        return false;
    };
    let tail = re.get(rest.len()..).unwrap_or("");
    matches!(tail, " " | "\\s" | "\\s+" | "\\s*" | " +" | " *" | "\\s{1}")
}

fn empty_string(ast: &Ast) -> bool {
    matches!(ast, Ast::Lit(Value::String(s)) if s.is_empty())
}

fn header_with_bearer(inner: &Ast) -> Result<TokenSource, String> {
    match token_of(inner, true)? {
        TokenSource::Header { name, .. } => Ok(TokenSource::Header { name, bearer: true }),
        TokenSource::Param(_) => Err("a `Bearer ` strip on a query parameter".into()),
    }
}

fn token_of(ast: &Ast, stripping: bool) -> Result<TokenSource, String> {
    if let Some(source) = source_of(ast) {
        return Ok(source);
    }
    match ast {
        Ast::Bin("default", inner, fallback)
            if empty_string(fallback) || matches!(fallback.as_ref(), Ast::Lit(Value::Null)) =>
        {
            token_of(inner, stripping)
        }
        Ast::Replace(inner, pattern, with) if empty_string(with) => {
            let strips = match pattern.as_ref() {
                Ast::Lit(Value::String(p)) => is_bearer_prefix(p),
                Ast::Regex(re) => is_bearer_regex(re),
                _ => false,
            };
            if strips && !stripping {
                header_with_bearer(inner)
            } else {
                Err("a `replace` other than removing the `Bearer ` prefix".into())
            }
        }
        Ast::Range(inner, 7, -1) if !stripping => header_with_bearer(inner),
        Ast::Index(split, 1 | -1) if !stripping => match split.as_ref() {
            Ast::Bin("splitBy", inner, sep) if matches!(sep.as_ref(), Ast::Lit(Value::String(s)) if s == " ") => {
                header_with_bearer(inner)
            }
            _ => Err("an index other than the token after `splitBy ' '`".into()),
        },
        Ast::Call(name, args) if name == "substringAfter" && !stripping => match args.as_slice() {
            [inner, Ast::Lit(Value::String(p))] if is_bearer_prefix(p) => header_with_bearer(inner),
            _ => Err("substringAfter(...) other than after 'Bearer '".into()),
        },
        Ast::Path(keys) => Err(format!(
            "`{}` is not attributes.headers['name'] or attributes.queryParams['name']",
            keys.join(".")
        )),
        _ => Err("not a header or query parameter, with or without a `Bearer ` strip".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one_of(claim: &str, values: Value) -> Check {
        Check::OneOf {
            claim: claim.into(),
            values: values.as_array().unwrap().clone(),
        }
    }

    #[test]
    fn expression_bodies() {
        assert_eq!(
            expression_body("#[vars.claimSet.a == 'b']"),
            Some("vars.claimSet.a == 'b'")
        );
        assert_eq!(expression_body("  #[ x ] "), Some("x"));
        assert_eq!(expression_body("literal"), None);
    }

    #[test]
    fn equalities() {
        assert_eq!(
            claim_checks("vars.claimSet.scope == 'order/post.order'").unwrap(),
            [one_of("scope", json!(["order/post.order"]))]
        );
        assert_eq!(
            claim_checks("\"v\" == vars.claimSet.x").unwrap(),
            [one_of("x", json!(["v"]))]
        );
        assert_eq!(
            claim_checks("vars.claimSet.n == 3").unwrap(),
            [one_of("n", json!([3]))]
        );
        assert_eq!(
            claim_checks("vars.claimSet.admin == true").unwrap(),
            [one_of("admin", json!([true]))]
        );
        assert_eq!(
            claim_checks("vars.claimSet['cognito:groups'] == 'a'").unwrap(),
            [one_of("cognito:groups", json!(["a"]))]
        );
        assert_eq!(
            claim_checks("vars.claimSet.realm_access.\"roles\" == 'a'").unwrap(),
            [one_of("realm_access.roles", json!(["a"]))]
        );
        assert_eq!(
            claim_checks(
                "vars.claimSet.x == 'a' or vars.claimSet.x == \"b\" or vars.claimSet.x == 'a'"
            )
            .unwrap(),
            [one_of("x", json!(["a", "b"]))]
        );
        assert_eq!(
            claim_checks("(vars.claimSet.x == 'a') and vars.claimSet.y == 'b'").unwrap(),
            [one_of("x", json!(["a"])), one_of("y", json!(["b"]))]
        );
        assert_eq!(claim_checks("true").unwrap(), []);
    }

    #[test]
    fn lists_contains_and_presence() {
        assert_eq!(
            claim_checks("['a', 'b'] contains vars.claimSet.x").unwrap(),
            [one_of("x", json!(["a", "b"]))]
        );
        assert_eq!(
            claim_checks("vars.claimSet.groups contains 'admin'").unwrap(),
            [Check::Contains {
                claim: "groups".into(),
                value: json!("admin")
            }]
        );
        assert_eq!(
            claim_checks("vars.claimSet.x != null").unwrap(),
            [Check::Present { claim: "x".into() }]
        );
        assert_eq!(
            claim_checks("vars.claimSet.x?").unwrap(),
            [Check::Present { claim: "x".into() }]
        );
    }

    #[test]
    fn refused_shapes_say_why() {
        for (expr, why) in [
            ("vars.claimSet.x == 'a' or vars.claimSet.y == 'b'", "`or`"),
            ("vars.claimSet.x != 'a'", "`!=`"),
            ("vars.claimSet.exp > 5", "unexpected '>'"),
            ("upper(vars.claimSet.x) == 'A'", "`==` other than"),
            ("sizeOf(vars.claimSet.x)", "function call sizeOf"),
            ("vars.claimSet.x", "alone is not a test"),
            ("attributes.headers.x == 'a'", "`==` other than"),
            ("vars.claimSet.x matches /a.*/", "unexpected `matches`"),
            (
                "[vars.claimSet.a] contains vars.claimSet.x",
                "literal values",
            ),
            ("vars.claimSet.x == 'a", "unterminated"),
            ("", "empty expression"),
            ("false", "not true"),
        ] {
            let err = claim_checks(expr).unwrap_err();
            assert!(err.contains(why), "{expr}: {err}");
        }
    }

    #[test]
    fn token_sources() {
        let header = |name: &str, bearer: bool| TokenSource::Header {
            name: name.into(),
            bearer,
        };
        assert_eq!(
            token_source("attributes.headers['jwt']").unwrap(),
            header("jwt", false)
        );
        assert_eq!(
            token_source("attributes.headers.'X-Token'").unwrap(),
            header("x-token", false)
        );
        assert_eq!(
            token_source("attributes.headers.jwt").unwrap(),
            header("jwt", false)
        );
        assert_eq!(
            token_source("attributes.queryParams['access_token']").unwrap(),
            TokenSource::Param("access_token".into())
        );
        for bearer in [
            "attributes.headers['Authorization'] replace 'Bearer ' with ''",
            "(attributes.headers['authorization'] default '') replace /^Bearer\\s+/ with ''",
            "attributes.headers['authorization'] replace /(?i)bearer / with \"\"",
            "attributes.headers['authorization'][7 to -1]",
            "(attributes.headers['authorization'] splitBy ' ')[1]",
            "substringAfter(attributes.headers['authorization'], 'Bearer ')",
        ] {
            assert_eq!(
                token_source(bearer).unwrap(),
                header("authorization", true),
                "{bearer}"
            );
        }
        for bad in [
            "attributes.headers['a'] replace 'Token ' with ''",
            "attributes.queryParams['a'] replace 'Bearer ' with ''",
            "attributes.headers['a'][8 to -1]",
            "payload.token",
            "vars.claimSet.x",
            "attributes.headers['a'] ++ 'x'",
        ] {
            assert!(token_source(bad).is_err(), "{bad}");
        }
    }
}
