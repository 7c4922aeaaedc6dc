//! Configuration diagnostics: every problem found in one run, each with file, line,
//! column, what is wrong and what to write instead.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One config file's text, kept so byte spans can be turned into lines and columns.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub path: PathBuf,
    pub text: String,
}

impl SourceText {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..self.text.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What would be right, when bantin can tell.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error: {}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Collects every diagnostic of a config load.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records a problem at a byte span of a file.
    pub fn error(
        &mut self,
        src: &SourceText,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let (line, column) = src.line_col(span.start);
        self.items.push(Diagnostic {
            file: src.path.clone(),
            line,
            column,
            message: message.into(),
            help,
        });
    }

    /// Records a problem that has no place inside a file (a missing file, say).
    pub fn file_error(&mut self, file: &Path, message: impl Into<String>, help: Option<String>) {
        self.items.push(Diagnostic {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: message.into(),
            help,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

/// The closest known name to a misspelt one, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(wrong, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let src = SourceText {
            path: "x.toml".into(),
            text: "a = 1\ntitle = \"Đảng\" x".into(),
        };
        let offset = src.text.rfind('x').unwrap();
        assert_eq!(src.line_col(offset), (2, 16));
        assert_eq!(src.line_col(0), (1, 1));
    }

    #[test]
    fn did_you_mean_suggests_close_names_only() {
        assert_eq!(did_you_mean("titel", ["title", "lead"]), Some("title"));
        assert_eq!(did_you_mean("zzz", ["title", "lead"]), None);
    }
}
