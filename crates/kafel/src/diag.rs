//! Compile errors as data, and their rendering for humans.
//!
//! The passes record [`Report`]s against spans; [`render`] turns them into [`Diagnostics`]
//! with file names, line and column numbers and the offending source line, in reading
//! order.

use std::collections::HashSet;
use std::fmt;

use crate::span::{Files, Span};

/// One compile error, located in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// The file's name as the caller or the loader gave it.
    pub file: String,
    /// 1-based line; 0 when the error concerns the whole file.
    pub line: usize,
    /// 1-based column, counted in characters; 0 when the error concerns the whole file.
    pub col: usize,
    pub message: String,
    /// The text of the line, shown under the message with a caret. A very long line is cut
    /// to the part around the column, with `...` marking the cuts.
    pub source_line: String,
    /// Where in `source_line` the caret starts, in characters from 0.
    pub caret: usize,
    /// How many characters the caret underlines (at least 1 when there is a line).
    pub width: usize,
    /// The `#include` lines that brought the file in, innermost first: file and line.
    pub included_from: Vec<(String, usize)>,
}

impl Diagnostic {
    /// An error about a file as a whole, with no position in it.
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            line: 0,
            col: 0,
            message: message.into(),
            source_line: String::new(),
            caret: 0,
            width: 0,
            included_from: Vec::new(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        writeln!(f, "    {}", self.source_line)?;

        // Copy tabs from the source line so the caret lines up however tabs are shown.
        let pad: String = self
            .source_line
            .chars()
            .take(self.caret)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "    {pad}{}", "^".repeat(self.width.max(1)))?;
        for (file, line) in &self.included_from {
            write!(f, "\n    included from {file}:{line}")?;
        }
        Ok(())
    }
}

/// Every error found in a policy, in reading order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.list.push(diagnostic);
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(list: Vec<Diagnostic>) -> Diagnostics {
        Diagnostics { list }
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// An error as a pass records it.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub span: Span,
    /// Position in reading order: the index of the token the error is about (lexical
    /// errors take the index of the token that follows them).
    pub order: usize,
    pub message: String,
}

/// Sorts reports into reading order, drops exact duplicates and locates each one.
pub(crate) fn render(files: &Files, mut reports: Vec<Report>) -> Diagnostics {
    reports.sort_by_key(|r| r.order);
    let mut seen = HashSet::new();
    let mut list: Vec<Diagnostic> = Vec::with_capacity(reports.len());
    for report in reports {
        let diagnostic = locate(files, &report);
        if seen.insert(diagnostic.clone()) {
            list.push(diagnostic);
        }
    }
    Diagnostics { list }
}

/// Lines longer than this many characters are shown cut around the error.
const MAX_SHOWN_LINE: usize = 240;
/// How many characters before the column a cut line keeps.
const SHOWN_BEFORE: usize = 80;

fn locate(files: &Files, report: &Report) -> Diagnostic {
    let entry = files.get(report.span.file);
    let (line, col) = entry.line_col(report.span.start);
    let full_line = entry.line_text(line);
    let span_chars = entry.chars(&entry.text[report.span.start..report.span.end]);

    let line_chars = entry.chars(full_line);
    let (source_line, caret) = if line_chars <= MAX_SHOWN_LINE {
        (full_line.to_string(), col - 1)
    } else {
        let first = (col - 1).saturating_sub(SHOWN_BEFORE);
        let shown: String =
            if full_line.is_char_boundary(first) && entry.chars(full_line) == full_line.len() {
                let end = (first + MAX_SHOWN_LINE).min(full_line.len());
                full_line[first..end].to_string()
            } else {
                full_line.chars().skip(first).take(MAX_SHOWN_LINE).collect()
            };
        let prefix = if first > 0 { "..." } else { "" };
        let suffix = if first + MAX_SHOWN_LINE < line_chars {
            "..."
        } else {
            ""
        };
        (
            format!("{prefix}{shown}{suffix}"),
            col - 1 - first + prefix.len(),
        )
    };
    let line_rest = entry.chars(&source_line).saturating_sub(caret);
    let width = span_chars.min(line_rest).max(1);

    let mut included_from = Vec::new();
    let mut cur = entry.included_from;
    while let Some(span) = cur {
        let parent = files.get(span.file);
        included_from.push((parent.name.clone(), parent.line_col(span.start).0));
        cur = parent.included_from;
    }

    Diagnostic {
        file: entry.name.clone(),
        line,
        col,
        message: report.message.clone(),
        source_line,
        caret,
        width,
        included_from,
    }
}
