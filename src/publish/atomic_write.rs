//! Writing a published file so readers never see half of it: a temporary file in the
//! same folder, flushed, then renamed over the old one — and only when the content
//! differs, so the file's modification time and ETag change only with new content.
//! Temporary files that a killed process left behind are removed when publishing starts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` unless the file already holds exactly that. `modified`
/// becomes the file's modification time (the newest item's time for a feed). Returns
/// whether the file was written.
pub fn write_if_changed(
    path: &Path,
    contents: &[u8],
    modified: Option<SystemTime>,
) -> io::Result<bool> {
    match fs::read(path) {
        Ok(old) if old == contents => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = temp_path(path);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(contents)?;
        if let Some(time) = modified {
            file.set_modified(time)?;
        }
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // Make the rename itself durable; not every platform can open a folder.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(true)
}

/// `.<name>.<pid>.<n>.tmp` next to `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// The process id in a name [`temp_path`] makes, or `None` for any other name.
fn temp_file_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let counter = parts.next()?;
    let pid = parts.next()?;
    let published = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(counter) && !published.is_empty())
        .then(|| pid.parse().ok())
        .flatten()
}

/// Whether process `pid` may still be writing. Without `/proc` nothing can be known,
/// so every process counts as alive and no file is removed.
fn process_may_be_running(pid: u32) -> bool {
    let proc = Path::new("/proc");
    pid == std::process::id() || !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Removes the temporary files in `dir` that a publishing process left when it was
/// killed between writing and renaming. Only names of bantin's own pattern are touched,
/// and only those whose process is gone, so a publish running elsewhere (a `bantin
/// publish` next to the daemon) keeps its files. Returns how many were removed.
pub fn remove_stale_temp_files(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let stale = entry
            .file_name()
            .to_str()
            .and_then(temp_file_owner)
            .is_some_and(|pid| !process_may_be_running(pid));
        if stale && entry.file_type()?.is_file() {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Another publisher cleaning up at the same time got there first.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_changed_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all.rss");
        let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
        assert!(write_if_changed(&path, b"one", Some(when)).unwrap());
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), when);
        assert!(!write_if_changed(&path, b"one", None).unwrap());
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), when);
        assert!(write_if_changed(&path, b"two", None).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn temp_file_owner_reads_only_our_own_pattern() {
        assert_eq!(temp_file_owner(".all.json.4242.7.tmp"), Some(4242));
        assert_eq!(temp_file_owner(".party-work.rss.1.0.tmp"), Some(1));
        for other in [
            "all.json.4242.7.tmp",
            ".all.json.4242.tmp",
            ".4242.7.tmp",
            ".all.json.x.7.tmp",
            ".all.json.4242.7.tmp.bak",
            ".all.json.4242..tmp",
        ] {
            assert_eq!(temp_file_owner(other), None, "{other}");
        }
    }
}
