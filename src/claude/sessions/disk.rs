//! What the session registry keeps on disk: the registry file
//! (`sessions.json`, replaced whole by write-then-rename), the secret that
//! keys owner fingerprints (`fingerprint.key`), and private directories.
//! Nothing here holds a lock or knows about leases.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::turn_event::{ContextUse, TokenCounts};

/// Bumped if the layout of `sessions.json` ever changes incompatibly.
const FORMAT_VERSION: u32 = 1;

pub(super) const KEY_LEN: usize = 32;

/// One session as stored. Times are unix milliseconds; `owner` is the hex
/// fingerprint of the key that created it, absent when auth was off. The
/// strings are shared with the registry in memory, so a snapshot for
/// writing copies none of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Record {
    pub id: Arc<str>,
    pub owner: Option<Arc<str>>,
    pub created_ms: u64,
    pub last_used_ms: u64,
    pub model: Arc<str>,
    /// Hex digest of the conversation as its client holds it (see
    /// `claude::history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    /// The CLI's running cost of the session after its last turn.
    #[serde(default)]
    pub cost_usd: f64,
    /// Answers the session has given (absent from older files: 0).
    #[serde(default)]
    pub turns: u64,
    /// The tokens of those answers, added up.
    #[serde(default)]
    pub tokens: TokenCounts,
    /// How full its context is, and its compactions.
    #[serde(default)]
    pub context: ContextUse,
    /// The login it runs on (absent from older files: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Arc<str>>,
}

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    sessions: Vec<Record>,
}

/// Creates `path` and any missing parents with mode 0700. An existing
/// directory keeps its mode: it may be one the operator chose and shares.
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Reads the registry. A missing file is an empty registry; a file that
/// does not parse is moved aside (kept for the operator to inspect) so the
/// server still starts, with no sessions.
pub(super) fn load_registry(path: &Path) -> Vec<Record> {
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            log::warn!(
                "session registry {} unreadable ({e}); starting with no sessions",
                path.display()
            );
            return Vec::new();
        }
    };
    match serde_json::from_slice::<Document>(&text) {
        Ok(doc) if doc.version == FORMAT_VERSION => doc.sessions,
        Ok(doc) => {
            let aside = move_aside(path);
            log::warn!(
                "session registry {} has unknown version {}; moved to {aside}, starting with no sessions",
                path.display(),
                doc.version
            );
            Vec::new()
        }
        Err(e) => {
            let aside = move_aside(path);
            log::warn!(
                "session registry {} is corrupt ({e}); moved to {aside}, starting with no sessions",
                path.display()
            );
            Vec::new()
        }
    }
}

/// Renames a bad registry to `<name>.corrupt-<unix seconds>`; says where it
/// went, or why it could not be moved.
fn move_aside(path: &Path) -> String {
    let secs = crate::clock::unix_secs();
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{secs}"));
    let target = PathBuf::from(name);
    match fs::rename(path, &target) {
        Ok(()) => target.display().to_string(),
        Err(e) => format!("nowhere (rename failed: {e}; it will be overwritten)"),
    }
}

/// Replaces the registry file in one step: a crash leaves either the old
/// file or the new one, never half of one. Callers serialize calls.
pub(super) fn write_registry(path: &Path, sessions: Vec<Record>) -> io::Result<()> {
    let doc = Document {
        version: FORMAT_VERSION,
        sessions,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // Streamed into the file: a registry of many sessions never exists as
    // one big string in memory.
    let mut out = BufWriter::new(create_private_file(&tmp)?);
    serde_json::to_writer(&mut out, &doc).map_err(io::Error::other)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// Creates a new 0600 file. A leftover from a crash is removed first so the
/// mode of the new file is ours, not the leftover's.
fn create_private_file(path: &Path) -> io::Result<File> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Writes a new 0600 file (see [`create_private_file`]).
fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create_private_file(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Loads the fingerprint secret, creating it on first start. Losing it only
/// means existing sessions can no longer be resumed (their owners no longer
/// match), so a damaged file is an error for the operator to clear rather
/// than something to paper over.
pub(super) fn load_or_create_key(path: &Path) -> Result<[u8; KEY_LEN], String> {
    match read_key(path) {
        Ok(key) => return Ok(key),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "{}: {e}; remove it to create a new one (existing sessions will no longer resume)",
                path.display()
            ))
        }
    }
    let key = random_key();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let tmp = PathBuf::from(tmp);
    write_private_file(&tmp, &key).map_err(|e| format!("{}: {e}", tmp.display()))?;
    // A hard link fails if the key appeared meanwhile (another server on the
    // same state directory), and then both must use the one that won.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            read_key(path).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn read_key(path: &Path) -> io::Result<[u8; KEY_LEN]> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if meta.permissions().mode() & 0o077 != 0 {
        log::warn!(
            "{} was readable by others; setting mode 0600",
            path.display()
        );
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    let mut bytes = Vec::with_capacity(KEY_LEN + 1);
    file.take(KEY_LEN as u64 + 1).read_to_end(&mut bytes)?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        let found = match b.len() {
            n if n > KEY_LEN => "more".to_string(),
            n => n.to_string(),
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected {KEY_LEN} bytes, found {found}"),
        )
    })
}

/// 32 bytes from the kernel; two v4 UUIDs (244 random bits, from the same
/// source through `getrandom`) if `/dev/urandom` cannot be read.
fn random_key() -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    let from_kernel = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
    if from_kernel.is_err() {
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    key
}
