//! Reads one variable at a time: trims it, treats empty as unset, parses
//! numbers in a range, booleans, millisecond durations and comma lists,
//! and records a [`ConfigError`] naming the variable for each bad value.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// One problem with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

pub(super) struct Reader<'a> {
    pub(super) vars: &'a HashMap<String, String>,
    pub(super) errors: Vec<ConfigError>,
}

impl Reader<'_> {
    pub(super) fn raw(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn fail(&mut self, var: &'static str, message: String) {
        self.errors.push(ConfigError { var, message });
    }

    pub(super) fn string(&self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or(default).to_string()
    }

    pub(super) fn bool(&mut self, var: &'static str, default: bool) -> bool {
        match self.raw(var).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    self.fail(
                        var,
                        format!("expected true/false (or 1/0, yes/no), got {v:?}"),
                    );
                    default
                }
            },
        }
    }

    pub(super) fn number(&mut self, var: &'static str, default: u64, min: u64, max: u64) -> u64 {
        let Some(raw) = self.raw(var) else {
            return default;
        };
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                let raw = raw.to_string();
                self.fail(var, format!("expected an integer {min}-{max}, got {raw:?}"));
                default
            }
        }
    }

    pub(super) fn millis(&mut self, var: &'static str, default: u64, min: u64) -> Duration {
        Duration::from_millis(self.number(var, default, min, 7 * 24 * 3600 * 1000))
    }

    pub(super) fn list(&self, var: &str) -> Vec<String> {
        self.raw(var)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}
