//! A refused configuration: every problem it has, each with the field it is
//! at (`providers.cognito.remote_jwks.uri`), so one run of the filter or of
//! `jwt-policy check` shows them all.

use std::fmt;

/// One problem: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every problem of a refused configuration, in the order of the document
/// (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    pub fn problems(&self) -> &[ConfigError] {
        &self.0
    }

    /// The first problem (there is always one).
    pub fn first(&self) -> &ConfigError {
        static NONE: ConfigError = ConfigError {
            field: String::new(),
            message: String::new(),
        };
        self.0.first().unwrap_or(&NONE)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "{} problems: ", all.len())?;
                for (i, e) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects problems while a configuration is compiled; compilation goes
/// on after a problem wherever what follows does not depend on it.
#[derive(Debug, Default)]
pub struct Problems(Vec<ConfigError>);

impl Problems {
    pub fn refuse(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(field, message));
    }

    /// The value, or `None` with the problem recorded.
    pub fn take<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems are recorded (to tell whether a step added one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `value` when no problem was recorded.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ConfigErrors> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ if self.0.is_empty() => Err(ConfigErrors(vec![ConfigError::new(
                "",
                "configuration refused",
            )])),
            _ => Err(ConfigErrors(self.0)),
        }
    }
}

/// `base.inner` (or `base` when `inner` is empty).
pub fn join_field(base: &str, inner: &str) -> String {
    if inner.is_empty() {
        base.to_owned()
    } else {
        format!("{base}.{inner}")
    }
}
