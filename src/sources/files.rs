//! Saved pages given on the command line (`bantin ingest FILE...`): files are taken as
//! they are, folders are searched (recursively) for `*.html` and `*.htm`.

use std::path::{Path, PathBuf};

use super::SourceError;

/// Expands `paths` into the HTML files to ingest: files as given, then each folder's
/// HTML files sorted by path. Fails on a path that does not exist.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SourceError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect(path, &mut found)?;
            found.sort();
            out.extend(found);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(SourceError::NotFound { path: path.clone() });
        }
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let io = |source| SourceError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_to_sorted_html_files_and_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        for name in ["b.html", "a.HTM", "notes.txt", "sub/c.html"] {
            std::fs::write(root.join(name), "<p>x</p>").unwrap();
        }
        let single = root.join("notes.txt");
        let got = files(&[single.clone(), root.to_owned()]).unwrap();
        assert_eq!(
            got,
            [single, root.join("a.HTM"), root.join("b.html"), root.join("sub/c.html")]
        );
        assert!(matches!(
            files(&[root.join("missing")]),
            Err(SourceError::NotFound { .. })
        ));
    }
}
