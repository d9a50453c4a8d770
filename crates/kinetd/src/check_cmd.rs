//! `kinetd check [-f FILE]`: load a configuration exactly as the daemon would, print every
//! diagnostic (most serious first), then each service's effective settings.
//!
//! The exit status is 0 only if every service would start and at least one is enabled,
//! so a Dockerfile can run `kinetd check` at build time and fail the build on a broken
//! configuration, or on one that serves nothing (a service file skipped for its name,
//! say). "Would
//! start" includes what only the daemon refuses (a `redirect`, say): each enabled service
//! is also prepared the way the daemon prepares it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use kinetd_config::{Config, Credentials, LogType, Origin, Rlimit, Service, Status};

const USAGE: &str = "usage: kinetd check [-f FILE | FILE]\n\n\
    Loads FILE (default /etc/xinetd.conf) and every file it includes, compiles every\n\
    policy, and prints every problem found and each service's effective settings.\n\
    Exits 0 only if every service would start and at least one is enabled.";

pub fn main(args: &[OsString]) -> ExitCode {
    let path = match parse_args(args) {
        Ok(Some(path)) => path,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("kinetd check: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let config = kinetd_config::load(&path);
    let refusals: BTreeMap<String, String> = crate::daemon::refusals(&config).into_iter().collect();
    // `kinetd check | head` closes the pipe early; that is no reason to panic, and the
    // exit status still tells the verdict.
    let _ = std::io::stdout().write_all(render(&config, &refusals).as_bytes());
    let serves = config.services.iter().any(Service::is_enabled);
    if config.every_service_starts() && refusals.is_empty() && serves {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `Ok(None)` asks for the usage text.
fn parse_args(args: &[OsString]) -> Result<Option<PathBuf>, String> {
    let mut path = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let file = match arg.to_str() {
            Some("-f" | "--file") => args.next().ok_or("-f needs a file name")?,
            Some("-h" | "-help" | "--help") => return Ok(None),
            Some(word) if word.starts_with('-') => {
                return Err(format!("unexpected argument '{word}'"));
            }
            // `kinetd check FILE`, as the daemon's usage text shows it.
            _ => arg,
        };
        if path.replace(PathBuf::from(file)).is_some() {
            return Err("only one configuration file can be checked".to_owned());
        }
    }
    Ok(Some(path.unwrap_or_else(|| {
        PathBuf::from(kinetd_config::DEFAULT_PATH)
    })))
}

/// The whole report: diagnostics, a summary line, then one block per service.
/// `refusals` maps the id of each enabled service the daemon would not serve to its reason.
pub(crate) fn render(config: &Config, refusals: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    // The daemon's refusals are errors, and errors come first.
    for service in config.enabled() {
        if let Some(reason) = refusals.get(&service.id) {
            let _ = writeln!(
                out,
                "{}: error: service {}: {reason}; the daemon does not start it",
                service.location, service.id
            );
        }
    }
    for diagnostic in config.sorted_diagnostics() {
        let _ = writeln!(out, "{diagnostic}");
    }
    if !config.diagnostics.is_empty() || !refusals.is_empty() {
        out.push('\n');
    }

    let enabled = config
        .enabled()
        .filter(|s| !refusals.contains_key(&s.id))
        .count();
    let _ = writeln!(
        out,
        "{}: {} service(s), {enabled} enabled{}",
        config.file.display(),
        config.services.len(),
        if config.fatal {
            "; the configuration cannot be used (see the errors above)"
        } else {
            ""
        }
    );
    for service in &config.services {
        out.push('\n');
        let refused = service.status == Status::Enabled && refusals.contains_key(&service.id);
        out.push_str(&render_service(service, refused));
    }
    out
}

fn render_service(service: &Service, refused: bool) -> String {
    let status = match service.status {
        Status::Enabled if refused => "REJECTED by the daemon (see the errors above)",
        Status::Enabled => "enabled",
        Status::DisabledBySelf => "disabled (disable = yes)",
        Status::DisabledByDefaults => "disabled (by the 'disabled' list of defaults)",
        Status::NotInEnabledList => "disabled (not in the 'enabled' list of defaults)",
        Status::Rejected => "REJECTED (see the errors above)",
    };
    let id = if service.id == service.name {
        String::new()
    } else {
        format!(" (id {})", service.id)
    };
    let mut out = format!(
        "service {}{id} at {} — {status}\n",
        service.name, service.location
    );
    if matches!(
        service.status,
        Status::DisabledBySelf | Status::DisabledByDefaults | Status::NotInEnabledList
    ) {
        return out;
    }

    let mut line = |attribute: &str, value: String| {
        let origin = match service.origin(attribute) {
            Some(Origin::Defaults) => "   (from defaults)",
            Some(Origin::Merged) => "   (defaults, changed here)",
            _ => "",
        };
        let _ = writeln!(out, "  {attribute:<15} {value}{origin}");
    };

    if !service.types.is_empty() {
        line(
            "type",
            words(service.types.iter().map(|t| t.name().to_owned())),
        );
    }
    if !service.flags.is_empty() {
        line(
            "flags",
            words(service.flags.iter().map(|f| f.name().to_owned())),
        );
    }
    line("socket_type", service.socket_type.name().to_owned());
    line("protocol", service.protocol.name().to_owned());
    line("wait", yes_no(service.wait));
    if let Some(credentials) = &service.credentials {
        line("user", user(credentials));
    }
    line("groups", yes_no(service.groups));
    if let Some(server) = &service.server {
        line("server", server.display().to_string());
    }
    if !service.argv.is_empty() {
        line("argv", format!("{:?}", service.argv));
    }
    line("port", service.port.to_string());
    line(
        "bind",
        service
            .bind
            .map_or("every address".to_owned(), |ip| ip.to_string()),
    );
    if let Some(v6only) = service.v6only {
        line("v6only", yes_no(v6only));
    }
    line("instances", count(service.instances));
    line("per_source", count(service.per_source));
    line(
        "cps",
        format!(
            "{} {}",
            service.cps.max_per_second, service.cps.wait_seconds
        ),
    );
    if let Some(load) = service.max_load {
        line("max_load", load.to_string());
    }
    if let Some(nice) = service.nice {
        line("nice", nice.to_string());
    }
    if let Some(umask) = service.umask {
        line("umask", format!("{umask:03o}"));
    }
    let limits = &service.rlimits;
    for (name, value, bytes) in [
        ("rlimit_as", limits.address_space, true),
        ("rlimit_cpu", limits.cpu, false),
        ("rlimit_data", limits.data, true),
        ("rlimit_rss", limits.rss, true),
        ("rlimit_stack", limits.stack, true),
        ("rlimit_files", limits.files, false),
    ] {
        if let Some(limit) = value {
            line(name, rlimit(limit, bytes));
        }
    }
    if !service.env.is_empty() {
        line(
            "env",
            words(service.env.iter().map(|(k, v)| format!("{k}={v}"))),
        );
    }
    if let Some(passenv) = &service.passenv {
        line("passenv", passenv.join(" "));
    }
    line(
        "log_type",
        service
            .log_type
            .as_ref()
            .map_or("none".to_owned(), log_type),
    );
    line(
        "log_on_success",
        words(service.log_on_success.iter().map(|f| f.name().to_owned())),
    );
    line(
        "log_on_failure",
        words(service.log_on_failure.iter().map(|f| f.name().to_owned())),
    );
    if let Some(only_from) = &service.only_from {
        line("only_from", or_nobody(only_from.to_string()));
    }
    if !service.no_access.is_empty() {
        line("no_access", service.no_access.to_string());
    }
    if let Some(times) = &service.access_times {
        line("access_times", times.to_string());
    }
    for (name, banner) in [
        ("banner", &service.banner),
        ("banner_success", &service.banner_success),
        ("banner_fail", &service.banner_fail),
    ] {
        if let Some(path) = banner {
            line(name, path.display().to_string());
        }
    }
    if let Some(redirect) = service.redirect {
        line("redirect", redirect.to_string());
    }
    if let Some(policy) = &service.policy {
        line("kafel_rule", policy.path.display().to_string());
        line(
            "kafel_arch",
            words(policy.arches.iter().map(|a| a.name().to_owned())),
        );
        if let Some(program) = &policy.program {
            line("filter", format!("{} BPF instructions", program.len()));
        }
    }
    out
}

fn words(items: impl Iterator<Item = String>) -> String {
    let words: Vec<String> = items.collect();
    if words.is_empty() {
        "(none)".to_owned()
    } else {
        words.join(" ")
    }
}

fn or_nobody(text: String) -> String {
    if text.is_empty() {
        "(empty: nobody)".to_owned()
    } else {
        text
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

fn count(value: Option<u32>) -> String {
    value.map_or("UNLIMITED".to_owned(), |n| n.to_string())
}

fn rlimit(limit: Rlimit, bytes: bool) -> String {
    match limit {
        Rlimit::Unlimited => "UNLIMITED".to_owned(),
        Rlimit::Value(n) if bytes && n % (1 << 20) == 0 && n > 0 => {
            format!("{}M ({n} bytes)", n >> 20)
        }
        Rlimit::Value(n) if bytes && n % (1 << 10) == 0 && n > 0 => {
            format!("{}K ({n} bytes)", n >> 10)
        }
        Rlimit::Value(n) => n.to_string(),
    }
}

fn user(credentials: &Credentials) -> String {
    let mut text = match &credentials.user_name {
        Some(name) => format!("{name} (uid {}, gid {})", credentials.uid, credentials.gid),
        None => format!("uid {}, gid {}", credentials.uid, credentials.gid),
    };
    if !credentials.supplementary_gids.is_empty() {
        let gids: Vec<String> = credentials
            .supplementary_gids
            .iter()
            .map(u32::to_string)
            .collect();
        let _ = write!(text, ", groups {}", gids.join(","));
    }
    text
}

fn log_type(log: &LogType) -> String {
    match log {
        LogType::Syslog { facility, level } => format!("SYSLOG {} {}", facility.name, level.name),
        LogType::File {
            path,
            soft_limit,
            hard_limit,
        } => {
            let mut text = format!("FILE {}", path.display());
            if let (Some(soft), Some(hard)) = (soft_limit, hard_limit) {
                let _ = write!(text, " (soft limit {soft} bytes, hard limit {hard} bytes)");
            }
            text
        }
    }
}
