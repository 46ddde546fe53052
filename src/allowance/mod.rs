//! The subscription allowance of the CLI's login, as the CLI last reported
//! it: its `rate_limit_event` lines carry the Anthropic API's
//! `anthropic-ratelimit-unified-*` figures (a status, and per window a
//! utilization, a status and a reset time), for a subscription login only
//! (recorded: `fixtures/claude-cli-2.1.331/ratelimit-subscription.*`).
//!
//! A window reported `rejected` refuses new turns at once, without a CLI,
//! until its reset time (and a small margin) has passed; then turns are
//! admitted again by themselves. A turn refused anyway (the API's word is
//! the last) brings the new reset time with it, or, when the CLI said
//! nothing new, a short wait. The state is kept in `STATE_DIR` so that a
//! restart does not forget a refusal. What the rest of the server shows of
//! it (`/v1/usage`, `/health`, `/metrics`, headers) is `render`.

mod accounts;
mod render;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use accounts::Allowances;
pub use render::iso8601;

/// Past a window's reset time, how long before turns are admitted again:
/// the API's clock and ours may differ by a moment.
pub const RESET_MARGIN_SECS: u64 = 2;

/// How long turns are refused when one was refused for the allowance and
/// no reset time still to come is known.
pub const UNKNOWN_RESET_WAIT_SECS: u64 = 60;

/// The file it is kept in, under `STATE_DIR`.
const FILE: &str = "allowance.json";

/// One window of the allowance (`five_hour`, `seven_day`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// 0 to 1, when reported.
    #[serde(default)]
    pub utilization: Option<f64>,
    /// `allowed`, `allowed_warning` or `rejected`.
    pub status: String,
    /// Unix seconds.
    #[serde(default)]
    pub resets_at: Option<u64>,
}

/// What is known of the allowance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Known {
    /// The login's status as a whole.
    #[serde(default)]
    pub status: Option<String>,
    /// The window that status is about (`rateLimitType`).
    #[serde(default)]
    pub limiting: Option<String>,
    #[serde(default)]
    pub windows: BTreeMap<String, Window>,
    /// Unix milliseconds of the last report.
    #[serde(default)]
    pub seen_ms: u64,
    /// Turns refused for the allowance, by window.
    #[serde(default)]
    pub refusals: BTreeMap<String, u64>,
}

/// Why a turn is refused now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub window: String,
    /// Unix seconds; turns are admitted again a margin after it.
    pub resets_at: u64,
}

pub struct Allowance {
    known: Mutex<Known>,
    /// Where it is kept (`None`: in memory only).
    file: Option<PathBuf>,
}

use crate::clock::unix_millis as now_ms;
pub use crate::clock::unix_secs as now_secs;

impl Allowance {
    /// Nothing known, kept nowhere.
    pub fn in_memory() -> Allowance {
        Allowance {
            known: Mutex::new(Known::default()),
            file: None,
        }
    }

    /// What `file` keeps of it (nothing, when there is no file or one
    /// that cannot be read: the next report tells again).
    pub fn kept_at(file: PathBuf) -> Allowance {
        let known = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Allowance {
            known: Mutex::new(known),
            file: Some(file),
        }
    }

    /// A copy of what is known.
    pub fn known(&self) -> Known {
        self.known.lock().clone()
    }

    /// Takes in one `rate_limit_info` of the CLI.
    pub fn note(&self, info: &Value) {
        let mut known = self.known.lock();
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        known.status = text(info, "status").or(known.status.take());
        known.limiting = text(info, "rateLimitType").or(known.limiting.take());
        if let Some(windows) = info.get("unifiedWindows").and_then(Value::as_object) {
            for (name, w) in windows {
                if let Some(window) = window_of(w) {
                    known.windows.insert(name.clone(), window);
                }
            }
        } else if let (Some(kind), Some(window)) = (known.limiting.clone(), window_of(info)) {
            known.windows.insert(kind, window);
        }
        known.seen_ms = now_ms();
        self.save(&known);
    }

    /// The refusal in force now, if a window is `rejected` and its reset
    /// time (with the margin) has not passed.
    pub fn refusal(&self) -> Option<Refusal> {
        let known = self.known.lock();
        refusal_at(&known, now_secs())
    }

    /// A turn was refused for the allowance: counted for its window, and
    /// the refusal made to last until the reset the CLI gave (or, when it
    /// gave none still to come, a short wait). Gives the refusal.
    pub fn refused(&self) -> Refusal {
        let now = now_secs();
        let mut known = self.known.lock();
        let refusal = refusal_at(&known, now).unwrap_or_else(|| {
            let window = known
                .limiting
                .clone()
                .unwrap_or_else(|| "unknown".to_string());
            let resets_at = now + UNKNOWN_RESET_WAIT_SECS;
            known.windows.insert(
                window.clone(),
                Window {
                    utilization: Some(1.0),
                    status: "rejected".into(),
                    resets_at: Some(resets_at),
                },
            );
            known.status = Some("rejected".into());
            Refusal { window, resets_at }
        });
        *known.refusals.entry(refusal.window.clone()).or_default() += 1;
        self.save(&known);
        refusal
    }

    /// A turn refused before it began (the refusal in force): counted.
    pub fn count_refusal(&self, refusal: &Refusal) {
        let mut known = self.known.lock();
        *known.refusals.entry(refusal.window.clone()).or_default() += 1;
    }

    /// `five_hour 0.91 resets 2026-12-06T14:00:00Z` while the login is
    /// warned that a window is nearly spent.
    pub fn warning(&self) -> Option<String> {
        let known = self.known.lock();
        warning_of(&known, now_secs())
    }

    fn save(&self, known: &Known) {
        let Some(file) = &self.file else {
            return;
        };
        let Ok(bytes) = serde_json::to_vec(known) else {
            return;
        };
        let partial = file.with_extension("json.tmp");
        let written =
            std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, file));
        if let Err(e) = written {
            log::warn!(
                "allowance: could not keep the state in {}: {e}",
                file.display()
            );
        }
    }
}

fn window_of(w: &Value) -> Option<Window> {
    let status = w.get("status").and_then(Value::as_str)?.to_string();
    Some(Window {
        utilization: w.get("utilization").and_then(Value::as_f64),
        status,
        resets_at: w.get("resetsAt").and_then(Value::as_u64),
    })
}

/// The refusal `known` means at `now`: the rejected window that resets
/// last, unless its reset (and the margin) has passed.
fn refusal_at(known: &Known, now: u64) -> Option<Refusal> {
    known
        .windows
        .iter()
        .filter(|(_, w)| w.status == "rejected")
        .filter_map(|(name, w)| {
            let resets_at = w.resets_at?;
            (resets_at + RESET_MARGIN_SECS > now).then(|| Refusal {
                window: name.clone(),
                resets_at,
            })
        })
        .max_by_key(|r| r.resets_at)
}

fn warning_of(known: &Known, now: u64) -> Option<String> {
    let (name, window) = known
        .windows
        .iter()
        .filter(|(_, w)| w.status == "allowed_warning")
        .filter(|(_, w)| w.resets_at.is_none_or(|at| at > now))
        .max_by(|a, b| {
            let (x, y) = (
                a.1.utilization.unwrap_or(0.0),
                b.1.utilization.unwrap_or(0.0),
            );
            x.total_cmp(&y)
        })?;
    let mut text = name.clone();
    if let Some(u) = window.utilization {
        text.push_str(&format!(" {u:.2}"));
    }
    if let Some(at) = window.resets_at {
        text.push_str(&format!(" resets {}", iso8601(at)));
    }
    Some(text)
}
