//! `jwt-policy import`: a policy written for another gateway, as a plugin
//! configuration.
//!
//! Sources: an API Gateway HTTP API with JWT authorizers
//! ([`api_gateway`]: CloudFormation, SAM or an OpenAPI 3 export) or a
//! MuleSoft JWT Validation policy ([`mulesoft`]: a Flex Gateway
//! `PolicyBinding` or its bare parameters). The configuration goes to
//! standard output ([`emit`]: JSON, an Envoy bootstrap or an Istio
//! `WasmPlugin`); a report to standard error says, one line per source
//! element, what each became, and lists the warnings, the notes where the
//! source gateway behaves differently, and what could not be translated.
//!
//! Exit status: 0 imported; 1 something has no equivalent (unless
//! `--allow-partial`, which emits the rest); 2 usage error, unreadable input,
//! or a value that cannot be resolved (`--param` names what is missing).
//!
//! The result is compiled with the filter's own `Policy::from_json` before
//! it is emitted: a configuration the filter would refuse is an error.

mod api_gateway;
mod cloudformation;
mod dataweave;
mod emit;
mod jwk;
mod model;
mod mulesoft;
mod node;
mod routes;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

use crate::cli::{Failure, Status, emit as write_out, read_input};

pub use cloudformation::Problem;

/// Translate an API Gateway or MuleSoft JWT policy into a plugin configuration.
///
/// API Gateway: a CloudFormation or SAM template (YAML with short-form tags,
/// or JSON) or an OpenAPI 3 export of an HTTP API with JWT authorizers;
/// routes become rules ordered so that the first match is the route API
/// Gateway would pick. MuleSoft: a Flex Gateway PolicyBinding of
/// jwt-validation-flex (or an ApiInstance with it inline), or the policy's
/// bare parameters (JSON or YAML).
///
/// The configuration goes to standard output, the report (what each source
/// element became, warnings, differences, untranslatable items) to standard
/// error. Values the file leaves open (template parameters without a
/// default, pseudo parameters such as AWS::Region, resource ids, Flex
/// environment variables) come from --param NAME=VALUE; anything still
/// unresolved is an error naming where it is.
///
/// Exit status: 0 imported; 1 some element has no equivalent (the report
/// lists them; --allow-partial emits the rest); 2 usage error, unreadable
/// input or unresolved values.
#[derive(clap::Args)]
pub struct Args {
    /// What the file is.
    #[arg(long, value_enum, value_name = "SOURCE")]
    from: Source,
    /// The template, OpenAPI definition, PolicyBinding or parameters (`-`: standard input).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// A value for a template parameter, pseudo parameter (AWS::Region),
    /// resource id or attribute (Pool.ProviderURL), OpenAPI variable, Flex
    /// environment variable, or (MuleSoft) `issuer`. Repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// The Envoy cluster the JWKS fetch goes through (default: jwks_<provider>;
    /// with --emit wasmplugin: Istio's outbound|443||<host>).
    #[arg(long, value_name = "NAME")]
    jwks_cluster: Option<String>,
    /// Output: the plugin configuration (json), an Envoy bootstrap running it
    /// (envoy), or Istio manifests (wasmplugin).
    #[arg(long, value_enum, default_value = "json")]
    emit: Emit,
    /// Emit what can be translated even when some elements cannot (exit 0).
    #[arg(long)]
    allow_partial: bool,
    /// The API to import when the template defines several (its logical id).
    #[arg(long, value_name = "LOGICAL_ID")]
    api: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Source {
    /// AWS API Gateway HTTP API (CloudFormation, SAM, OpenAPI 3).
    ApiGateway,
    /// MuleSoft JWT Validation (Flex Gateway jwt-validation-flex).
    Mulesoft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    Json,
    Envoy,
    Wasmplugin,
}

/// `--param` values, remembering which were used.
#[derive(Debug, Default)]
pub struct Params {
    given: BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
}

impl Params {
    fn parse(args: &[String]) -> Result<Params, Failure> {
        let mut given = BTreeMap::new();
        for arg in args {
            let Some((name, value)) = arg.split_once('=') else {
                return Err(format!("--param {arg}: expected NAME=VALUE").into());
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("--param {arg}: the name is empty").into());
            }
            given.insert(name.to_owned(), value.to_owned());
        }
        Ok(Params {
            given,
            used: RefCell::new(BTreeSet::new()),
        })
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Params {
        Params {
            given: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            used: RefCell::new(BTreeSet::new()),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let v = self.given.get(name)?;
        if let Ok(mut used) = self.used.try_borrow_mut() {
            used.insert(name.to_owned());
        }
        Some(v.clone())
    }

    fn unused(&self) -> Vec<String> {
        let used = self
            .used
            .try_borrow()
            .map(|u| u.clone())
            .unwrap_or_default();
        self.given
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect()
    }
}

/// What every translator needs besides the document.
pub struct Context<'a> {
    pub params: &'a Params,
    pub jwks_cluster: Option<&'a str>,
    pub emit: Emit,
    pub api: Option<&'a str>,
}

impl Context<'_> {
    /// The cluster a provider's JWKS is fetched through.
    pub fn cluster_for(&self, provider: &str, uri: &str) -> String {
        if let Some(c) = self.jwks_cluster {
            return c.to_owned();
        }
        match (self.emit, emit::host_port(uri)) {
            (Emit::Wasmplugin, Some((host, port))) => format!("outbound|{port}||{host}"),
            _ => format!("jwks_{provider}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Mapped,
    Note,
    Warning,
    Untranslatable,
    Error,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Mapped => "mapped",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Untranslatable => "untranslatable",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub level: Level,
    pub source: String,
    pub text: String,
}

/// The report: one line per source element and per finding, in order.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    fn push(&mut self, level: Level, source: &str, text: impl Into<String>) {
        self.lines.push(Line {
            level,
            source: source.to_owned(),
            text: text.into(),
        });
    }

    /// `source -> target: detail`.
    pub fn mapped(&mut self, source: &str, text: impl Into<String>) {
        self.push(Level::Mapped, source, text);
    }

    /// Where the source gateway behaves differently from the translation.
    pub fn note(&mut self, source: &str, text: impl Into<String>) {
        self.push(Level::Note, source, text);
    }

    pub fn warning(&mut self, source: &str, text: impl Into<String>) {
        self.push(Level::Warning, source, text);
    }

    /// An element with no equivalent: the import fails without
    /// `--allow-partial`.
    pub fn untranslatable(&mut self, source: &str, text: impl Into<String>) {
        self.push(Level::Untranslatable, source, text);
    }

    /// Unusable input: the import fails whatever the flags.
    pub fn error(&mut self, source: &str, text: impl Into<String>) {
        self.push(Level::Error, source, text);
    }

    pub fn problems(&mut self, problems: Vec<Problem>) {
        for p in problems {
            self.error(&p.path, p.message);
        }
    }

    pub fn count(&self, level: Level) -> usize {
        self.lines.iter().filter(|l| l.level == level).count()
    }

    /// The lines; with errors, only the problems (what was mapped does not
    /// matter until the input is usable).
    fn render(&self) -> String {
        let failed = self.count(Level::Error) > 0;
        let mut out = String::new();
        for l in &self.lines {
            if failed && matches!(l.level, Level::Mapped | Level::Note) {
                continue;
            }
            let label = l.level.label();
            match (l.source.is_empty(), l.level) {
                (true, _) => out.push_str(&format!("{label}: {}\n", l.text)),
                (false, Level::Mapped) => {
                    out.push_str(&format!("{label}: {} -> {}\n", l.source, l.text))
                }
                (false, _) => out.push_str(&format!("{label}: {}: {}\n", l.source, l.text)),
            }
        }
        out
    }
}

/// A translated policy, before it is emitted.
pub struct Imported {
    /// What was read (`CloudFormation template, API OrdersApi`).
    pub description: String,
    pub config: model::Config,
}

/// Runs the command. The report goes to standard error.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Status, Failure> {
    let bytes = read_input(&args.file)?;
    let params = Params::parse(&args.params)?;
    if let Some(c) = &args.jwks_cluster
        && c.trim().is_empty()
    {
        return Err("--jwks-cluster: the name is empty".into());
    }
    let file = if args.file.as_os_str() == "-" {
        "<stdin>".to_owned()
    } else {
        args.file.display().to_string()
    };
    let ctx = Context {
        params: &params,
        jwks_cluster: args.jwks_cluster.as_deref(),
        emit: args.emit,
        api: args.api.as_deref(),
    };
    let outcome = import(args.from, &bytes, &ctx, args.allow_partial);
    let mut err = std::io::stderr().lock();
    let _ =
        err.write_all(format!("jwt-policy import: {file}: {}\n", outcome.description).as_bytes());
    let _ = err.write_all(outcome.report.render().as_bytes());
    let _ = err.write_all(format!("{}\n", outcome.summary).as_bytes());
    if let Some(text) = &outcome.output {
        write_out(out, text);
    }
    Ok(outcome.status)
}

/// The result of an import, whatever the output channel.
pub struct Outcome {
    pub description: String,
    pub report: Report,
    pub summary: String,
    pub output: Option<String>,
    pub status: Status,
}

fn import(from: Source, bytes: &[u8], ctx: &Context<'_>, allow_partial: bool) -> Outcome {
    let mut report = Report::default();
    let imported = match node::parse_documents(bytes) {
        Err(why) => {
            report.error("", why);
            None
        }
        Ok(docs) if docs.is_empty() => {
            report.error("", "the file is empty");
            None
        }
        Ok(docs) => match from {
            Source::ApiGateway => api_gateway::import(&docs, ctx, &mut report),
            Source::Mulesoft => mulesoft::import(&docs, ctx, &mut report),
        },
    };
    for name in ctx.params.unused() {
        report.warning("", format!("--param {name}: not used"));
    }
    let description = imported
        .as_ref()
        .map_or_else(|| "not imported".to_owned(), |i| i.description.clone());
    let fail = |report: Report, summary: String, status: Status| Outcome {
        description: description.clone(),
        report,
        summary,
        output: None,
        status,
    };
    let Some(imported) = imported.filter(|_| report.count(Level::Error) == 0) else {
        let n = report.count(Level::Error).max(1);
        return fail(
            report,
            format!("not imported: {}", plural(n, "error")),
            Status::Usage,
        );
    };
    let untranslatable = report.count(Level::Untranslatable);
    if untranslatable > 0 && !allow_partial {
        return fail(
            report,
            format!(
                "not imported: {} (--allow-partial emits the rest)",
                plural(untranslatable, "untranslatable item")
            ),
            Status::No,
        );
    }
    verify(&imported.config, &mut report);
    if let Err(why) = emit::check_clusters(&imported.config) {
        report.error("--jwks-cluster", why);
    }
    if report.count(Level::Error) > 0 {
        let n = report.count(Level::Error);
        return fail(
            report,
            format!("not imported: {}", plural(n, "error")),
            Status::Usage,
        );
    }
    let output = emit::render(&imported.config, ctx.emit);
    let mut summary = format!(
        "imported: {}, {}, {}, {}",
        plural(imported.config.providers.len(), "provider"),
        plural(imported.config.rules.len(), "rule"),
        plural(report.count(Level::Note), "note"),
        plural(report.count(Level::Warning), "warning"),
    );
    if untranslatable > 0 {
        summary.push_str(&format!(
            "; {} left out (--allow-partial)",
            plural(untranslatable, "untranslatable item")
        ));
    }
    Outcome {
        description,
        report,
        summary,
        output: Some(output),
        status: Status::Ok,
    }
}

/// Compiles the result with the filter's own code: every refusal is an
/// error (a key too short for its algorithm, ...).
fn verify(config: &model::Config, report: &mut Report) {
    let json = match serde_json::to_vec(config) {
        Ok(j) => j,
        Err(e) => {
            report.error("", format!("cannot serialize the configuration: {e}"));
            return;
        }
    };
    let Err(errors) = jwt_policy::policy::Policy::from_json(&json) else {
        return;
    };
    for e in errors.problems() {
        report.error(
            "",
            format!(
                "the filter refuses the result: {}: {}",
                e.field,
                without_position(&e.message)
            ),
        );
    }
}

/// A serde message without its ` at line 1 column 400`, which points into
/// text the user never sees.
fn without_position(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((text, at))
            if at
                .split(" column ")
                .all(|n| n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            text
        }
        _ => message,
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn run_import(from: Source, text: &str, params: &[(&str, &str)]) -> Outcome {
        let params = Params::from_pairs(params);
        let ctx = Context {
            params: &params,
            jwks_cluster: None,
            emit: Emit::Json,
            api: None,
        };
        import(from, text.as_bytes(), &ctx, false)
    }

    #[test]
    fn params_parse() {
        let p = Params::parse(&["A=b=c".into(), "AWS::Region=us-east-1".into()]).unwrap();
        assert_eq!(p.get("A").as_deref(), Some("b=c"));
        assert_eq!(p.unused(), ["AWS::Region"]);
        assert!(Params::parse(&["novalue".into()]).is_err());
        assert!(Params::parse(&["=x".into()]).is_err());
    }

    #[test]
    fn unreadable_input_is_an_error() {
        let o = run_import(Source::ApiGateway, "a: [", &[]);
        assert_eq!(o.status, Status::Usage);
        assert!(
            o.report.render().starts_with("error: not valid YAML"),
            "{}",
            o.report.render()
        );
        let o = run_import(Source::Mulesoft, "", &[]);
        assert_eq!(o.status, Status::Usage);
        assert_eq!(o.summary, "not imported: 1 error");
    }
}
