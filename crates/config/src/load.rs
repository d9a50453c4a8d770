//! Loading a whole configuration: the main file and its includes, `defaults`, each
//! service, and the checks across services.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::attrs::{self, Block, Setting, Settings, Shape};
use crate::diag::{Location, Severity, Sink};
use crate::files::Files;
use crate::model::{Config, Defaults, Origin, Service, Status};
use crate::policy;
use crate::rules;
use crate::service::{self, Draft, resolve_path};
use crate::syntax::{self, Entry, EntryKind, Item};

/// How deep includes may nest; deeper is certainly a loop through links or a mistake.
const MAX_INCLUDE_DEPTH: usize = 16;

/// How many files one configuration may read in all; bounds the work a configuration
/// that includes the same files over and over can cause.
const MAX_FILES: usize = 4096;

/// Where the reading of includes stands.
struct Includes {
    /// The files being read, outermost first.
    stack: Vec<PathBuf>,
    /// How many files have been read so far.
    files_read: usize,
}

/// Loads the configuration at `path` through `files`. Never panics; every problem is in
/// the returned diagnostics.
pub fn load_with(files: &dyn Files, path: &Path) -> Config {
    // Make every path below absolute now, so that the meaning of relative paths does
    // not depend on the working directory at the time of a reload.
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut sink = Sink::default();
    let mut fatal = false;

    let mut items = Vec::new();
    match files.read(&path) {
        Ok(text) => {
            let mut includes = Includes {
                stack: vec![path.clone()],
                files_read: 1,
            };
            expand(files, &path, &text, &mut includes, &mut items, &mut sink);
        }
        Err(e) => {
            let location = Location {
                path: path.clone(),
                line: 0,
                column: 0,
            };
            sink.error(&location, format!("cannot read the configuration: {e}"));
            fatal = true;
        }
    }

    let mut defaults_entry: Option<Entry> = None;
    let mut service_entries = Vec::new();
    for entry in items {
        match entry.kind {
            EntryKind::Defaults if defaults_entry.is_some() => {
                sink.error(
                    &entry.location,
                    "a second 'defaults' entry (xinetd ignores it; kinetd stops)",
                );
                fatal = true;
            }
            EntryKind::Defaults => defaults_entry = Some(entry),
            EntryKind::Service(ref name) if name.is_empty() => {}
            EntryKind::Service(ref name) => service_entries.push((name.clone(), entry)),
        }
    }

    let (defaults, defaults_settings, defaults_ok) =
        read_defaults(defaults_entry, files, &mut sink);
    fatal |= !defaults_ok;

    let mut services: Vec<Service> = service_entries
        .iter()
        .map(|(name, entry)| {
            read_service(name, entry, &defaults, &defaults_settings, files, &mut sink)
        })
        .collect();

    check_across(&mut services, &defaults, &mut sink);
    if !fatal && !services.iter().any(Service::is_enabled) {
        let location = Location {
            path: path.clone(),
            line: 0,
            column: 0,
        };
        sink.warning(&location, "no service is enabled");
    }

    Config {
        file: path,
        defaults,
        services,
        diagnostics: sink.items,
        fatal,
    }
}

/// Reads a file's items into `out`, replacing `include` and `includedir` by what they
/// name.
fn expand(
    files: &dyn Files,
    path: &Path,
    text: &[u8],
    includes: &mut Includes,
    out: &mut Vec<Entry>,
    sink: &mut Sink,
) {
    for item in syntax::parse(path, text, sink) {
        match item {
            Item::Entry(entry) => out.push(entry),
            Item::Include { target, location } => {
                let target = resolve_path(path, &target);
                include(files, &target, &location, includes, out, sink);
            }
            Item::IncludeDir { target, location } => {
                let dir = resolve_path(path, &target);
                let mut entries = match files.read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) => {
                        sink.error(
                            &location,
                            format!("cannot read directory '{}': {e}", dir.display()),
                        );
                        continue;
                    }
                };
                // xinetd sorts with strcmp, which is byte order.
                entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
                for entry in entries {
                    let file = dir.join(&entry.name);
                    if entry.name.contains('.') || entry.name.ends_with('~') {
                        sink.warning(
                            &location,
                            format!(
                                "'{}' skipped: xinetd and kinetd ignore files in an includedir \
                                 whose name contains '.' or ends with '~'",
                                file.display()
                            ),
                        );
                        continue;
                    }
                    if !entry.is_file {
                        sink.note(
                            &location,
                            format!("'{}' skipped: not a regular file", file.display()),
                        );
                        continue;
                    }
                    include(files, &file, &location, includes, out, sink);
                }
            }
        }
    }
}

fn include(
    files: &dyn Files,
    target: &Path,
    location: &Location,
    includes: &mut Includes,
    out: &mut Vec<Entry>,
    sink: &mut Sink,
) {
    if includes.stack.iter().any(|p| p == target) {
        sink.error(
            location,
            format!("'{}' includes itself; not read again", target.display()),
        );
        return;
    }
    if includes.files_read >= MAX_FILES {
        sink.error(
            location,
            format!("more than {MAX_FILES} files read; not read"),
        );
        return;
    }
    if includes.stack.len() >= MAX_INCLUDE_DEPTH {
        sink.error(
            location,
            format!("includes nested more than {MAX_INCLUDE_DEPTH} deep"),
        );
        return;
    }
    match files.read(target) {
        Ok(text) => {
            includes.files_read += 1;
            includes.stack.push(target.to_path_buf());
            expand(files, target, &text, includes, out, sink);
            includes.stack.pop();
        }
        Err(e) => sink.error(
            location,
            format!("cannot read included file '{}': {e}", target.display()),
        ),
    }
}

/// Reads `defaults`. Returns it, the settings services inherit (only those whose value
/// is valid, so that a bad one is reported once), and whether it was free of errors.
fn read_defaults(
    entry: Option<Entry>,
    files: &dyn Files,
    sink: &mut Sink,
) -> (Defaults, Settings, bool) {
    let Some(entry) = entry else {
        return (Defaults::default(), Settings::new(), true);
    };
    let (mut settings, mut ok) =
        attrs::combine(&entry.attributes, Block::Defaults, Settings::new(), sink);
    ok &= !entry.malformed;

    let mut defaults = Defaults {
        location: Some(entry.location.clone()),
        ..Defaults::default()
    };
    if let Some(list) = settings.remove("disabled") {
        defaults.disabled = list.values;
    }
    if let Some(list) = settings.remove("enabled") {
        defaults.enabled = Some(list.values);
    }

    let mut valid = Settings::new();
    for (key, setting) in settings {
        let mut scratch = Service::blank("defaults", entry.location.clone());
        let mut draft = Draft::default();
        let single: Settings = [(key, setting.clone())].into_iter().collect();
        if service::apply_all(&mut scratch, &mut draft, &single, files, sink) {
            if key == "log_type" {
                defaults.log_type = scratch.log_type.clone();
            }
            defaults.attributes.insert(key.to_owned());
            valid.insert(key, setting);
        } else {
            ok = false;
        }
    }
    if !ok {
        sink.error(
            &entry.location,
            "the defaults entry has errors: kinetd will not start with this configuration \
             (xinetd exits here too, but with status 0)",
        );
    }
    (defaults, valid, ok)
}

fn read_service(
    name: &str,
    entry: &Entry,
    defaults: &Defaults,
    defaults_settings: &Settings,
    files: &dyn Files,
    sink: &mut Sink,
) -> Service {
    // Lists are inherited before the body is read, so `+=` adds to them; everything else
    // is filled in afterwards where the service set nothing.
    let mut inherited = Settings::new();
    let mut later = Settings::new();
    for (&key, setting) in defaults_settings {
        let as_default = Setting {
            origin: Origin::Defaults,
            ..setting.clone()
        };
        match attrs::lookup(key).map(|s| s.shape) {
            Some(Shape::List { .. }) => inherited.insert(key, as_default),
            _ => later.insert(key, as_default),
        };
    }

    // The service's own problems are collected apart: a service that is switched off
    // on purpose is not checked (Debian ships disabled INTERNAL services kinetd cannot
    // run, and their errors would only be noise).
    let mut own = Sink::default();
    let (mut settings, mut ok) =
        attrs::combine(&entry.attributes, Block::Service, inherited, &mut own);
    for (key, setting) in later {
        settings.entry(key).or_insert(setting);
    }

    let mut service = Service::blank(name, entry.location.clone());
    let mut draft = Draft::default();
    ok &= service::apply_all(&mut service, &mut draft, &settings, files, &mut own);

    let switched_off = if draft.disable {
        Some(Status::DisabledBySelf)
    } else if defaults.disabled.contains(&service.id) {
        Some(Status::DisabledByDefaults)
    } else if defaults
        .enabled
        .as_ref()
        .is_some_and(|e| !e.contains(&service.id))
    {
        Some(Status::NotInEnabledList)
    } else {
        None
    };
    if let Some(status) = switched_off {
        let why = match status {
            Status::DisabledBySelf => "disable = yes",
            Status::DisabledByDefaults => "listed in the 'disabled' attribute of defaults",
            _ => "not listed in the 'enabled' attribute of defaults",
        };
        sink.note(
            &entry.location,
            format!(
                "service {}: disabled ({why}); not checked further",
                service.name
            ),
        );
        service.status = status;
        return service;
    }

    ok &= rules::finish(&mut service, &draft, files, &mut own);
    policy::check_chroot_command(&service, &draft, files, &mut own);
    // Compiled even when the service already has errors, so that one run of `kinetd
    // check` shows the policy's problems too.
    ok &= policy::attach(&mut service, &draft, files, &mut own);
    sink.items.append(&mut own.items);

    if !ok || entry.malformed {
        service.status = Status::Rejected;
        sink.error(
            &entry.location,
            format!(
                "service {} is disabled because of the errors above",
                service.name
            ),
        );
    }
    service
}

/// Rules between services: unique ids, no two enabled services on the same port, and
/// names in the `enabled`/`disabled` lists that match nothing.
fn check_across(services: &mut [Service], defaults: &Defaults, sink: &mut Sink) {
    let mut ids = BTreeSet::new();
    for index in 0..services.len() {
        if !services[index].is_enabled() {
            continue;
        }
        let service = &services[index];
        let clash = services[..index]
            .iter()
            .filter(|s| s.is_enabled())
            .find(|other| {
                other.port == service.port
                    && other.protocol == service.protocol
                    && match (other.bind, service.bind) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    }
            });
        let message = if !ids.insert(service.id.clone()) {
            Some(format!(
                "service {}: the id '{}' is already used",
                service.name, service.id
            ))
        } else {
            clash.map(|other| {
                format!(
                    "service {}: port {} is already used by service {} (line {})",
                    service.name, service.port, other.name, other.location.line
                )
            })
        };
        if let Some(message) = message {
            sink.error(&service.location, message);
            services[index].status = Status::Rejected;
        }
    }

    let location = defaults.location.clone().unwrap_or_else(|| Location {
        path: PathBuf::new(),
        line: 0,
        column: 0,
    });
    for (list, name) in [
        (Some(&defaults.disabled), "disabled"),
        (defaults.enabled.as_ref(), "enabled"),
    ] {
        for id in list.into_iter().flatten() {
            if !services.iter().any(|s| &s.id == id) {
                sink.push(
                    &location,
                    Severity::Warning,
                    format!("{name}: no service has the id '{id}'"),
                );
            }
        }
    }
}
