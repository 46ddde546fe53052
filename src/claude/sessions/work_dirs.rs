//! The sessions' working directories, `<work_dir>/<id>`, one per session,
//! mode 0700: making a new one, making sure a resumed one exists, removing
//! one, and finding the old ones. Knows nothing of owners or leases.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{disk, millis};
use crate::error::ApiError;
use crate::session_id::SessionId;

pub(super) struct WorkDirs {
    root: PathBuf,
}

impl WorkDirs {
    pub(super) fn new(root: &Path) -> WorkDirs {
        WorkDirs {
            root: root.to_path_buf(),
        }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn path(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// A new session id with its directory. Creating the last component
    /// alone fails on an existing directory, which proves the id unused.
    pub(super) fn make_fresh(&self) -> Result<(SessionId, PathBuf), ApiError> {
        for _ in 0..3 {
            let id = SessionId::new_random();
            let dir = self.path(id.as_str());
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok((id, dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                // The root was removed since startup: make it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Err(e) = disk::create_private_dir(&self.root) {
                        log::warn!("work directory {}: {e}", self.root.display());
                        return Err(work_dir_error());
                    }
                }
                Err(e) => {
                    log::warn!("session work dir {}: {e}", dir.display());
                    return Err(work_dir_error());
                }
            }
        }
        Err(work_dir_error())
    }

    /// Makes a resumed session's directory again if it vanished (a tmp
    /// cleaner); the CLI then reports the conversation unknown, which the
    /// caller handles.
    pub(super) fn ensure(&self, dir: &Path) -> Result<(), ApiError> {
        disk::create_private_dir(dir).map_err(|e| {
            log::warn!("session work dir {}: {e}", dir.display());
            work_dir_error()
        })
    }

    pub(super) fn remove(&self, id: &str) {
        let dir = self.path(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                log::warn!("could not remove session work dir {}: {e}", dir.display());
            }
            _ => {}
        }
    }

    /// When `<work_dir>/<id>` is a real directory, its creation time (best
    /// known, and never after `now`).
    pub(super) fn created_ms(&self, id: &str, now: u64) -> Option<u64> {
        let meta = fs::symlink_metadata(self.path(id)).ok()?;
        if !meta.is_dir() {
            return None;
        }
        let created = meta.created().or_else(|_| meta.modified()).ok();
        Some(unix_ms(created).unwrap_or(now).min(now))
    }

    /// Directories named like a session and unchanged for longer than
    /// `max_age_ms`. Other names are left out: the work directory may be
    /// shared.
    pub(super) fn unchanged_for(&self, max_age_ms: u64, now: u64) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                if !SessionId::is_canonical(&name) {
                    return None;
                }
                let meta = entry.metadata().ok()?;
                let modified_ms = unix_ms(meta.modified().ok()).unwrap_or(now);
                let old = meta.is_dir() && now.saturating_sub(modified_ms) > max_age_ms;
                old.then_some(name)
            })
            .collect()
    }
}

fn unix_ms(time: Option<SystemTime>) -> Option<u64> {
    time?.duration_since(UNIX_EPOCH).ok().map(millis)
}

fn work_dir_error() -> ApiError {
    ApiError::InternalError {
        message: "Could not prepare a working directory for the Claude session.".into(),
    }
}
