//! The real file system: a path that names something endless (`/dev/zero`, or a link to
//! it) is refused after a bounded read instead of being read until memory runs out.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use kinetd_config::{Config, Severity, load};

fn messages(config: &Config, severity: Severity) -> Vec<String> {
    config
        .diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .map(|d| d.message.clone())
        .collect()
}

#[test]
fn a_configuration_that_never_ends_is_refused_quickly() {
    let started = Instant::now();
    let config = load(Path::new("/dev/zero"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "reading /dev/zero took {:?}",
        started.elapsed()
    );
    assert!(config.fatal, "{:?}", config.diagnostics);
    let errors = messages(&config, Severity::Error);
    assert!(
        errors.iter().any(|m| m.contains("longer than 16 MiB")),
        "{errors:?}"
    );
}

#[test]
fn a_policy_linked_to_an_endless_file_rejects_its_service_only() {
    let dir = tempfile::tempdir().unwrap();
    symlink("/dev/zero", dir.path().join("endless.policy")).unwrap();
    std::fs::write(dir.path().join("good.policy"), "ALLOW { read }\n").unwrap();
    let service = |name: &str, port: u16, policy: &str| {
        format!(
            "service {name}\n{{\n\tsocket_type = stream\n\twait = no\n\tuser = root\n\
             \ttype = UNLISTED\n\tport = {port}\n\tserver = /bin/sh\n\tkafel_rule = {policy}\n}}\n"
        )
    };
    let text = service("endless", 9001, "endless.policy") + &service("good", 9002, "good.policy");
    let conf = dir.path().join("ctf.conf");
    std::fs::write(&conf, text).unwrap();

    let config = load(&conf);

    assert!(!config.fatal, "{:?}", config.diagnostics);
    let enabled: Vec<&str> = config.enabled().map(|s| s.name.as_str()).collect();
    assert_eq!(enabled, ["good"], "{:?}", config.diagnostics);
    let errors = messages(&config, Severity::Error);
    assert!(
        errors
            .iter()
            .any(|m| m.contains("endless.policy") && m.contains("longer than")),
        "{errors:?}"
    );
}

#[test]
fn a_file_just_under_the_limit_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("big.conf");
    // A long run of comment lines: legal, pointless, and below the limit.
    let line = format!("# {}\n", "x".repeat(1022));
    let lines = (kinetd_config::MAX_FILE_BYTES as usize / line.len()) - 1;
    std::fs::write(&conf, line.repeat(lines)).unwrap();

    let config = load(&conf);

    assert!(!config.fatal, "{:?}", config.diagnostics);
    assert!(
        messages(&config, Severity::Error).is_empty(),
        "{:?}",
        config.diagnostics
    );
}
