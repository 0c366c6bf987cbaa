//! A function's configuration: its environment variables, read once at start, and the error
//! that names a missing or invalid one.

use std::collections::HashMap;

/// A required setting is missing or invalid.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {name}: {problem}")]
pub struct ConfigError {
    pub name: String,
    pub problem: String,
}

/// A function's environment variables: the process environment on Lambda, the template's
/// `Environment.Variables` (with references resolved) in the local runtime.
#[derive(Debug, Clone, Default)]
pub struct FunctionEnv(HashMap<String, String>);

impl FunctionEnv {
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self(vars)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// This environment with `overrides` set.
    pub fn with(&self, overrides: &[(&str, &str)]) -> Self {
        let mut vars = self.0.clone();
        vars.extend(
            overrides
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        Self(vars)
    }

    pub fn require(&self, name: &str) -> Result<String, ConfigError> {
        match self.get(name) {
            Some(value) if !value.is_empty() => Ok(value.to_owned()),
            _ => Err(ConfigError {
                name: name.to_owned(),
                problem: "not set".to_owned(),
            }),
        }
    }

    /// A parsed optional value, `default` when unset.
    pub fn parse_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError {
                name: name.to_owned(),
                problem: format!("{raw:?} is invalid: {e}"),
            }),
        }
    }
}
