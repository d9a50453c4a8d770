//! Reader for xinetd configuration files, with kinetd's extensions.
//!
//! [`load`] reads a configuration the way xinetd 2.3.15 does — the same files, the same
//! attributes with the same meanings and defaults — but where xinetd silently loses what
//! the organizer meant (a trailing comment, `user=nobody`, a misspelt attribute), kinetd
//! keeps it or refuses it, and always says so. The daemon, `kinetd check` and a reload all
//! go through the same loader.
//!
//! The stages, one module each:
//!
//! ```text
//! bytes ─syntax─▶ entries ─attrs─▶ words per attribute ─service─▶ typed values
//!       ─rules─▶ a checked Service ─policy─▶ its compiled filter
//! ```
//!
//! `load` drives them, expands `include`/`includedir`, applies `defaults` and checks
//! what spans services (unique ids, shared ports).
//!
//! All reading goes through [`Files`], so tests load configurations from memory.

#![forbid(unsafe_code)]

mod access;
mod attrs;
mod diag;
mod files;
mod load;
mod model;
mod policy;
mod rules;
mod service;
mod suggest;
mod syntax;
mod users;
mod values;

use std::path::Path;

pub use access::{AccessTimes, AddressList, AddressPattern, Network, TimeOfDay};
pub use diag::{Diagnostic, Location, Severity};
pub use files::{DirEntry, Files, MAX_FILE_BYTES, MemFiles, OsFiles};
pub use load::load_with;
pub use model::{
    Config, Cps, Credentials, Defaults, Flag, LogField, LogType, Origin, Policy, Protocol, Rlimit,
    Rlimits, Service, ServiceType, SocketType, Status, SyslogFacility, SyslogLevel,
};

/// Where xinetd (and so kinetd) looks without `-f`.
pub const DEFAULT_PATH: &str = "/etc/xinetd.conf";

/// Loads the configuration at `path` from the file system.
pub fn load(path: &Path) -> Config {
    load_with(&OsFiles, path)
}
