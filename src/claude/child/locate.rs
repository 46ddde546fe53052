//! Finding the `claude` executable at startup, once: the configured path,
//! or a bare name looked up in the children's `PATH`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Finds the CLI: a path with a slash is taken as is, a bare name is looked
/// up in `PATH`. Only an executable regular file counts.
pub fn locate_cli(claude_path: &Path, path_var: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    // Absolute, because the child is started in its session's directory
    // and a relative path would be looked up from there.
    let found = if claude_path.components().count() > 1 || claude_path.is_absolute() {
        executable(claude_path).then(|| claude_path.to_path_buf())
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(claude_path))
            .find(|p| executable(p))
    };
    found.and_then(|p| std::path::absolute(p).ok())
}
