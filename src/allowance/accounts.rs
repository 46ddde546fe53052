//! The allowances of several logins (`CLAUDE_ACCOUNTS`), one per account,
//! and where a new session goes: to the account with the most allowance
//! left (the window nearest its limit decides), ties to the one with the
//! fewest live sessions, then the first named; never to one refusing.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::render::write_metrics;
use super::{now_secs, refusal_at, Allowance, Refusal};
use crate::config::{Account, DEFAULT_ACCOUNT};

pub struct Allowances {
    accounts: Vec<(String, Arc<Allowance>)>,
}

impl Allowances {
    /// The accounts' allowances as `state_dir` keeps them. The one login of
    /// a server without accounts keeps its file as before.
    pub fn kept_in(state_dir: &Path, accounts: &[Account]) -> Allowances {
        let accounts = accounts
            .iter()
            .map(|account| {
                let file = if account.name == DEFAULT_ACCOUNT && account.config_dir.is_none() {
                    super::FILE.to_string()
                } else {
                    format!("allowance-{}.json", account.name)
                };
                let allowance = Allowance::kept_at(state_dir.join(file));
                (account.name.clone(), Arc::new(allowance))
            })
            .collect();
        Allowances { accounts }
    }

    /// One login, kept nowhere.
    pub fn in_memory() -> Allowances {
        Allowances {
            accounts: vec![(
                DEFAULT_ACCOUNT.to_string(),
                Arc::new(Allowance::in_memory()),
            )],
        }
    }

    /// Account `name`'s allowance (the first account's for a name it does
    /// not know, as a session registered before accounts were has).
    pub fn of(&self, name: &str) -> Arc<Allowance> {
        self.accounts
            .iter()
            .find(|(n, _)| n == name)
            .or(self.accounts.first())
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| Arc::new(Allowance::in_memory()))
    }

    /// The account a new session goes to, of those `allowed` (all when
    /// `None`), given each one's live sessions; or, when every one is
    /// refusing, the refusal that ends first, and whose it is.
    pub fn place(
        &self,
        allowed: Option<&[String]>,
        live: impl Fn(&str) -> usize,
    ) -> Result<String, (String, Refusal)> {
        let now = now_secs();
        let mut best: Option<(f64, usize, &str)> = None;
        let mut earliest: Option<(String, Refusal)> = None;
        for (name, allowance) in &self.accounts {
            if allowed.is_some_and(|names| !names.contains(name)) {
                continue;
            }
            let known = allowance.known();
            if let Some(refusal) = refusal_at(&known, now) {
                if earliest
                    .as_ref()
                    .is_none_or(|(_, e)| refusal.resets_at < e.resets_at)
                {
                    earliest = Some((name.clone(), refusal));
                }
                continue;
            }
            // The window nearest its limit decides; one past its reset counts
            // as fresh.
            let pressure = known
                .windows
                .values()
                .filter(|w| w.resets_at.is_none_or(|at| at > now))
                .filter_map(|w| w.utilization)
                .fold(0.0, f64::max);
            let candidate = (pressure, live(name), name.as_str());
            let better = match &best {
                None => true,
                Some((p, l, _)) => pressure < *p || (pressure == *p && candidate.1 < *l),
            };
            if better {
                best = Some(candidate);
            }
        }
        match (best, earliest) {
            (Some((_, _, name)), _) => Ok(name.to_string()),
            (None, Some(refused)) => Err(refused),
            (None, None) => Err((
                String::new(),
                Refusal {
                    window: "none".into(),
                    resets_at: now,
                },
            )),
        }
    }

    /// `GET /v1/usage`: every account's windows.
    pub fn usage_json(&self) -> Value {
        let accounts: Vec<Value> = self
            .accounts
            .iter()
            .map(|(name, a)| a.account_json(name))
            .collect();
        json!({"object": "usage", "accounts": accounts})
    }

    /// `/health`'s short form: the one login's, or each account's by name.
    pub fn health_json(&self) -> Value {
        match self.accounts.as_slice() {
            [(name, one)] if name == DEFAULT_ACCOUNT => one.health_json(),
            all => Value::Object(
                all.iter()
                    .map(|(name, a)| (name.clone(), a.health_json()))
                    .collect(),
            ),
        }
    }

    pub fn write_metrics(&self, out: &mut String) {
        let known = self.accounts.iter().map(|(n, a)| (n.as_str(), a.known()));
        write_metrics(known, out);
    }
}
