//! The server's own directories, `STATE_DIR` and `CLAUDE_WORK_DIR`, checked
//! before it starts listening: a missing one is made (mode 0700), and one
//! that cannot be made, is not a directory, or cannot be written stops the
//! start with a line naming it, instead of a 503 on the first Claude
//! request.

use std::fs::{self, OpenOptions};
use std::path::Path;

use crate::claude::sessions::create_private_dir;
use crate::config::Config;

/// One line per directory that cannot be used; empty when all can.
pub fn check(config: &Config) -> Vec<String> {
    [
        ("STATE_DIR", config.state_dir.as_path()),
        ("CLAUDE_WORK_DIR", config.claude_work_dir.as_path()),
    ]
    .into_iter()
    .filter_map(|(name, path)| {
        usable(path)
            .err()
            .map(|why| format!("{name}={}: {why}", path.display()))
    })
    .collect()
}

pub(crate) fn usable(path: &Path) -> Result<(), String> {
    match fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => return Err("exists but is not a directory".into()),
        Ok(_) => {}
        Err(_) => create_private_dir(path).map_err(|e| format!("cannot be created ({e})"))?,
    }
    // Permission bits do not tell (root, ACLs, a read-only mount): try.
    let probe = path.join(format!(".write-check-{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("cannot be written ({e})"))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_unusable_directory_is_named() {
        let base = std::env::temp_dir().join(format!("dirs-test-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&base).unwrap();
        let file = base.join("a-file");
        fs::write(&file, b"x").unwrap();

        let fresh = base.join("new/state");
        assert_eq!(usable(&fresh), Ok(()));
        assert!(fresh.is_dir());
        assert!(usable(&file).unwrap_err().contains("not a directory"));
        assert!(usable(&file.join("below"))
            .unwrap_err()
            .contains("cannot be created"));
        assert!(usable(Path::new("/proc/self"))
            .unwrap_err()
            .contains("cannot be written"));
        fs::remove_dir_all(&base).unwrap();
    }
}
