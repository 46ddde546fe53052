//! Which login a turn runs on (`CLAUDE_ACCOUNTS`). A new session is placed
//! on the account with the most allowance left (`Allowances::place`); a
//! session stays on its account, unless that account's allowance refuses
//! and another's does not: then its transcript is carried to the other
//! account's configuration directory, its warm process (on the old login)
//! is closed first, and the turn resumes cold there. With every account
//! refusing, the turn is refused until the earliest reset.

use std::path::{Path, PathBuf};

use crate::allowance::Refusal;
use crate::claude::sessions::SessionLease;
use crate::claude::ClaudeBackend;
use crate::config::Account;
use crate::error::ApiError;

/// The refusal as the client gets it.
pub(in crate::claude) fn refused(refusal: Refusal) -> ApiError {
    ApiError::UsageLimitReached {
        window: refusal.window,
        resets_at: refusal.resets_at,
        elsewhere: false,
    }
}

/// The account a new session goes to, of those `allowed` (the key's; all
/// when `None`).
pub(in crate::claude) fn place(
    backend: &ClaudeBackend,
    allowed: Option<&[String]>,
    live: impl Fn(&str, bool) -> usize,
) -> Result<String, ApiError> {
    let first = backend.config.first_account();
    backend
        .allowances
        .place(allowed, |name| live(name, name == first))
        .map_err(|(account, refusal)| {
            backend.allowances.of(&account).count_refusal(&refusal);
            refused(refusal)
        })
}

/// The account `lease`'s session runs on for this turn: its own, or,
/// when its own refuses, one it was moved to. `Ok(true)` when it moved
/// (its warm process, of the old login, is closed by then).
pub(in crate::claude) fn keep_or_move(
    backend: &ClaudeBackend,
    lease: &SessionLease,
    allowed: Option<&[String]>,
    live: impl Fn(&str, bool) -> usize,
) -> Result<(String, bool), ApiError> {
    let first = backend.config.first_account();
    let own = of_session(backend, lease);
    let Some(refusal) = backend.allowances.of(&own).refusal() else {
        return Ok((own, false));
    };
    let own_allowance = backend.allowances.of(&own);
    let other = match backend.allowances.place(allowed, |n| live(n, n == first)) {
        Ok(other) if other != own => other,
        // Every account refusing: the turn may come back when the first of
        // them resets (it moves there then).
        Err((_, sooner)) if sooner.resets_at < refusal.resets_at => {
            own_allowance.count_refusal(&refusal);
            return Err(refused(sooner));
        }
        _ => {
            own_allowance.count_refusal(&refusal);
            return Err(refused(refusal));
        }
    };
    // Never two CLIs on one conversation: the old login's process first.
    if let Some(process) = backend.warm.take(lease.id()) {
        process.close();
    }
    let (from, to) = (config_dir(backend, &own), config_dir(backend, &other));
    if let Err(e) = carry_transcript(&from, &to, lease.id().as_str()) {
        log::warn!(
            "{}",
            serde_json::json!({"event": "session_not_moved", "session_id": lease.id().as_str(),
                "from": own, "to": other, "why": e.to_string()})
        );
        own_allowance.count_refusal(&refusal);
        return Err(refused(refusal));
    }
    lease.move_to(&other);
    backend.metrics.session_moved(&own, &other);
    log::info!(
        "{}",
        serde_json::json!({"event": "session_moved", "session_id": lease.id().as_str(),
            "from": own, "to": other, "window": refusal.window})
    );
    Ok((other, true))
}

/// The account `lease`'s session runs on (one recorded without: the
/// first).
pub(in crate::claude) fn of_session(backend: &ClaudeBackend, lease: &SessionLease) -> String {
    lease
        .account()
        .unwrap_or_else(|| backend.config.first_account().to_string())
}

/// The account named `name`.
pub(in crate::claude) fn account<'a>(
    backend: &'a ClaudeBackend,
    name: &str,
) -> Option<&'a Account> {
    backend.config.accounts.iter().find(|a| a.name == name)
}

/// Where account `name`'s CLI keeps its login and transcripts: its
/// configuration directory, or the CLI's default under the child's HOME.
pub(in crate::claude) fn config_dir(backend: &ClaudeBackend, name: &str) -> PathBuf {
    if let Some(dir) = account(backend, name).and_then(|a| a.config_dir.clone()) {
        return dir;
    }
    let home = backend
        .config
        .child_env
        .0
        .iter()
        .find(|(k, _)| k == "HOME")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/tmp");
    Path::new(home).join(".claude")
}

/// Copies session `id`'s transcript (`projects/<project>/<id>.jsonl`) from
/// one configuration directory to the same place in another.
fn carry_transcript(from: &Path, to: &Path, id: &str) -> std::io::Result<()> {
    let file = format!("{id}.jsonl");
    let projects = from.join("projects");
    for project in std::fs::read_dir(&projects)? {
        let project = project?;
        let source = project.path().join(&file);
        if source.is_file() {
            let target = to.join("projects").join(project.file_name());
            std::fs::create_dir_all(&target)?;
            std::fs::copy(&source, target.join(&file))?;
            return Ok(());
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no transcript of the session under the account's projects",
    ))
}
