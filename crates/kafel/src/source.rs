//! Policy source text and the loaders that find `#include`d files.
//!
//! The compiler never touches the file system itself: the main file is handed in as a
//! [`SourceFile`] and every `#include "name"` goes through a [`Loader`]. [`FsLoader`] is the
//! crate's only I/O and resolves names the way Kafel does; [`MemLoader`] serves files from
//! memory, for tests and for callers that already hold the text.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// One policy file: the name diagnostics show for it and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// Why an `#include`d file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// There is no include directory to look in.
    NoSearchPath,
    /// No include directory holds the file; `searched` lists the directories tried (empty
    /// for loaders that do not search directories).
    NotFound { searched: Vec<PathBuf> },
    /// The file exists but could not be read.
    Unreadable { path: PathBuf, reason: String },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoSearchPath => f.write_str("no include directory is configured"),
            LoadError::NotFound { searched } if searched.is_empty() => f.write_str("no such file"),
            LoadError::NotFound { searched } => {
                f.write_str("not found in the include directories ")?;
                for (i, dir) in searched.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}", dir.display())?;
                }
                Ok(())
            }
            LoadError::Unreadable { path, reason } => {
                write!(f, "cannot read {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Finds the text of an `#include`d file by the name written between the quotes.
pub trait Loader {
    fn load(&self, name: &str) -> Result<SourceFile, LoadError>;
}

/// Reads included files from a list of directories, as Kafel does.
///
/// `#include "name"` opens `DIR/name` for each directory in order and takes the first that
/// exists. A name is never resolved relative to the file that includes it, and an absolute
/// name is still joined to each directory (`/x` becomes `DIR//x`), so a policy cannot reach
/// outside the configured directories except through `..`.
#[derive(Debug, Clone, Default)]
pub struct FsLoader {
    search_paths: Vec<PathBuf>,
}

impl FsLoader {
    pub fn new(search_paths: Vec<PathBuf>) -> FsLoader {
        FsLoader { search_paths }
    }

    pub fn search_paths(&self) -> &[PathBuf] {
        &self.search_paths
    }
}

impl Loader for FsLoader {
    fn load(&self, name: &str) -> Result<SourceFile, LoadError> {
        if self.search_paths.is_empty() {
            return Err(LoadError::NoSearchPath);
        }
        for dir in &self.search_paths {
            // Plain concatenation, not Path::join, which would let an absolute name
            // replace the directory.
            let mut joined = OsString::from(dir.as_os_str());
            joined.push("/");
            joined.push(name);
            let path = PathBuf::from(joined);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    // Kafel reads bytes; a stray non-UTF-8 byte can only sit in a comment
                    // or be an error anyway, so a lossy conversion changes no decision.
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    let name = path.display().to_string();
                    return Ok(SourceFile { name, text });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(LoadError::Unreadable {
                        path,
                        reason: e.to_string(),
                    });
                }
            }
        }
        Err(LoadError::NotFound {
            searched: self.search_paths.clone(),
        })
    }
}

/// Serves included files from memory, by exact name.
#[derive(Debug, Clone, Default)]
pub struct MemLoader {
    files: BTreeMap<String, String>,
}

impl MemLoader {
    pub fn new() -> MemLoader {
        MemLoader::default()
    }

    /// Adds (or replaces) the file `name`; returns the loader so calls can be chained.
    pub fn with(mut self, name: impl Into<String>, text: impl Into<String>) -> MemLoader {
        self.insert(name, text);
        self
    }

    pub fn insert(&mut self, name: impl Into<String>, text: impl Into<String>) {
        self.files.insert(name.into(), text.into());
    }
}

impl Loader for MemLoader {
    fn load(&self, name: &str) -> Result<SourceFile, LoadError> {
        match self.files.get(name) {
            Some(text) => Ok(SourceFile::new(name, text.clone())),
            None => Err(LoadError::NotFound {
                searched: Vec::new(),
            }),
        }
    }
}
