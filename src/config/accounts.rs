//! `CLAUDE_ACCOUNTS`: the logins the server spreads its sessions over, each
//! a CLI configuration directory holding one login (`CLAUDE_CONFIG_DIR=…
//! claude login`, or a token in that directory's `settings.json` `env`).
//! Without it, one login: the CLI's own default directory, as before.

use std::path::PathBuf;

use super::read::Reader;

/// One login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// How `/v1/usage`, the sessions, the metrics and the log name it.
    pub name: String,
    /// Its `CLAUDE_CONFIG_DIR`; `None` for the CLI's default (`~/.claude`).
    pub config_dir: Option<PathBuf>,
}

/// The name of the one login when no accounts are configured.
pub const DEFAULT_ACCOUNT: &str = "default";

const MAX_NAME_CHARS: usize = 32;

pub(super) fn read_accounts(r: &mut Reader) -> Vec<Account> {
    let mut accounts: Vec<Account> = Vec::new();
    for entry in r.list("CLAUDE_ACCOUNTS") {
        let Some((name, dir)) = entry.split_once('=') else {
            r.fail(
                "CLAUDE_ACCOUNTS",
                format!("expected name=/path entries, got {entry:?}"),
            );
            continue;
        };
        let (name, dir) = (name.trim(), PathBuf::from(dir.trim()));
        let good_name = !name.is_empty()
            && name.len() <= MAX_NAME_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !good_name {
            r.fail(
                "CLAUDE_ACCOUNTS",
                format!(
                    "account names are 1-{MAX_NAME_CHARS} letters, digits, '-' or '_' (got {name:?})"
                ),
            );
        } else if !dir.is_absolute() {
            r.fail(
                "CLAUDE_ACCOUNTS",
                format!("account {name}'s directory must be an absolute path"),
            );
        } else if accounts.iter().any(|a| a.name == name) {
            r.fail("CLAUDE_ACCOUNTS", format!("account {name} is named twice"));
        } else {
            accounts.push(Account {
                name: name.to_string(),
                config_dir: Some(dir),
            });
        }
    }
    if accounts.is_empty() {
        accounts.push(Account {
            name: DEFAULT_ACCOUNT.to_string(),
            config_dir: None,
        });
    }
    accounts
}
