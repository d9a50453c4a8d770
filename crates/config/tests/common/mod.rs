//! Helpers shared by the configuration tests: an in-memory machine with a few servers,
//! and compact renderings of what the loader found.

#![allow(dead_code)]

use kinetd_config::{Config, MemFiles, Service, Severity, load_with};

/// Where the main configuration file lives in the in-memory machine.
pub const MAIN: &str = "/etc/xinetd.conf";

/// A machine with the files a typical challenge configuration names.
pub fn machine() -> MemFiles {
    let mut files = MemFiles::new();
    files
        .add_executable("/srv/chal", b"\x7fELF".to_vec())
        .add_executable("/bin/cat", b"\x7fELF".to_vec())
        .add_executable("/usr/sbin/chroot", b"\x7fELF".to_vec())
        .add("/etc/banner_fail", b"no\n".to_vec())
        .add(
            "/etc/services",
            "echo 7/tcp\nfinger 79/tcp\ndiscard 9/udp sink null\n",
        )
        .add("/etc/networks", "loopback 127\nlink-local 169.254.0.0\n");
    files
}

/// Loads `text` as the main configuration file of [`machine`].
pub fn load(text: &str) -> Config {
    let mut files = machine();
    files.add(MAIN, text);
    load_with(&files, std::path::Path::new(MAIN))
}

/// Loads a configuration made of `defaults` (if not empty) and one service `chal` whose
/// body is a working UNLISTED service plus `extra` lines.
pub fn load_service(extra: &str) -> Config {
    load(&service_text("chal", 9999, extra))
}

pub fn service_text(name: &str, port: u16, extra: &str) -> String {
    format!(
        "service {name}\n{{\n\
         \tsocket_type = stream\n\
         \twait = no\n\
         \tuser = root\n\
         \ttype = UNLISTED\n\
         \tport = {port}\n\
         \tserver = /srv/chal\n\
         {extra}\n\
         }}\n"
    )
}

/// The line number of the first line of `extra` in a [`service_text`] file.
pub const EXTRA_LINE: usize = 9;

/// Every diagnostic as `LINE: severity: message`, in the order found.
pub fn diagnostics(config: &Config) -> Vec<String> {
    config
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}: {}", d.location.line, d.severity, d.message))
        .collect()
}

/// The diagnostics of at least `severity`.
pub fn at_least(config: &Config, severity: Severity) -> Vec<String> {
    config
        .diagnostics
        .iter()
        .filter(|d| d.severity >= severity)
        .map(|d| format!("{}: {}: {}", d.location.line, d.severity, d.message))
        .collect()
}

/// The only service of the configuration.
pub fn only(config: &Config) -> &Service {
    assert_eq!(
        config.services.len(),
        1,
        "expected one service: {:#?}",
        diagnostics(config)
    );
    &config.services[0]
}

/// Asserts that some diagnostic has this severity and contains `needle`.
#[track_caller]
pub fn assert_reported(config: &Config, severity: Severity, needle: &str) {
    assert!(
        config
            .diagnostics
            .iter()
            .any(|d| d.severity == severity && d.message.contains(needle)),
        "no {severity} containing {needle:?} in {:#?}",
        diagnostics(config)
    );
}

/// Asserts that the service loaded and runs, with no error anywhere.
#[track_caller]
pub fn assert_runs(config: &Config) {
    assert!(
        !config.has_errors() && config.enabled().count() == config.services.len(),
        "expected a clean load: {:#?}",
        diagnostics(config)
    );
}

/// Asserts that the only service was rejected, with an error containing `needle`.
#[track_caller]
pub fn assert_rejected(config: &Config, needle: &str) {
    assert_reported(config, Severity::Error, needle);
    assert!(
        !only(config).is_enabled(),
        "service still enabled: {:#?}",
        diagnostics(config)
    );
    assert!(!config.every_service_starts());
}
