//! Diagnostics: what went wrong (or was worth saying), where, and how serious it is.
//!
//! Every problem is kept as data and rendered as `path:line: severity: message` (with
//! `:column` after the line for a policy's diagnostics), so one run of `kinetd check`
//! shows every bad line at once.

use std::fmt;
use std::path::PathBuf;

/// A line in a configuration file (or a policy it names).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub path: PathBuf,
    /// 1-based; 0 for problems with the file as a whole.
    pub line: usize,
    /// 1-based; 0 where the whole line is meant (configuration lines have no columns;
    /// a policy's diagnostics do).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.path.display()),
            (line, 0) => write!(f, "{}:{line}", self.path.display()),
            (line, column) => write!(f, "{}:{line}:{column}", self.path.display()),
        }
    }
}

/// How serious a diagnostic is. Orders from least to most serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Something kinetd did differently from xinetd, or ignored on purpose.
    Note,
    /// Probably a mistake, but the service still runs.
    Warning,
    /// The service (or, in `defaults`, the whole configuration) is rejected.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One message about one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Location,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.severity, self.message)
    }
}

/// A growing list of diagnostics.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub(crate) items: Vec<Diagnostic>,
}

impl Sink {
    pub(crate) fn push(&mut self, location: &Location, severity: Severity, message: String) {
        let location = location.clone();
        self.items.push(Diagnostic {
            location,
            severity,
            message,
        });
    }

    pub(crate) fn error(&mut self, location: &Location, message: impl Into<String>) {
        self.push(location, Severity::Error, message.into());
    }

    pub(crate) fn warning(&mut self, location: &Location, message: impl Into<String>) {
        self.push(location, Severity::Warning, message.into());
    }

    pub(crate) fn note(&mut self, location: &Location, message: impl Into<String>) {
        self.push(location, Severity::Note, message.into());
    }
}
