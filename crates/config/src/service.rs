//! From an entry's combined words to a typed [`Service`]: each attribute's meaning, the
//! attributes xinetd requires, and the checks between attributes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kafel::arch::Arch;

use crate::access::{self, AddressList};
use crate::attrs::{Setting, Settings};
use crate::diag::{Location, Sink};
use crate::files::Files;
use crate::model::{
    Cps, Flag, LogField, Protocol, Rlimits, Service, ServiceType, SocketType, Status,
};
use crate::users::{self, UserEntry};
use crate::values;

/// Values that only mean something together, kept until every attribute is read.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub(crate) user: Option<UserEntry>,
    pub(crate) group: Option<u32>,
    pub(crate) socket_type: Option<SocketType>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) wait: Option<bool>,
    pub(crate) port: Option<u16>,
    pub(crate) disable: bool,
    pub(crate) bind: Option<String>,
    pub(crate) redirect: Option<(String, String)>,
    pub(crate) kafel_rule: Option<PathBuf>,
    pub(crate) kafel_arch: Option<Vec<Arch>>,
    /// Where each attribute was set, so that errors between attributes point at a line
    /// that is part of the problem.
    pub(crate) locations: BTreeMap<&'static str, Location>,
}

impl Draft {
    /// The line that set `attribute`, or else the service's own line.
    pub(crate) fn at<'a>(&'a self, attribute: &str, service: &'a Service) -> &'a Location {
        self.locations.get(attribute).unwrap_or(&service.location)
    }
}

impl Service {
    /// A service with nothing set: xinetd's defaults.
    pub(crate) fn blank(name: &str, location: Location) -> Service {
        Service {
            name: name.to_owned(),
            id: name.to_owned(),
            location,
            status: Status::Enabled,
            origins: BTreeMap::new(),
            types: BTreeSet::new(),
            flags: BTreeSet::new(),
            socket_type: SocketType::Stream,
            protocol: Protocol::Tcp,
            wait: false,
            credentials: None,
            groups: false,
            server: None,
            server_args: Vec::new(),
            argv: Vec::new(),
            port: 0,
            bind: None,
            v6only: None,
            instances: None,
            per_source: None,
            cps: Cps::default(),
            max_load: None,
            nice: None,
            umask: None,
            rlimits: Rlimits::default(),
            env: Vec::new(),
            passenv: None,
            log_type: None,
            log_on_success: BTreeSet::new(),
            log_on_failure: BTreeSet::new(),
            only_from: None,
            no_access: AddressList::default(),
            access_times: None,
            banner: None,
            banner_success: None,
            banner_fail: None,
            redirect: None,
            policy: None,
        }
    }
}

/// Resolves a path against the directory of the file that names it, so that it means
/// the same at startup and on every reload whatever the daemon's working directory.
pub(crate) fn resolve_path(named_in: &Path, value: &str) -> PathBuf {
    let value = Path::new(value);
    if value.is_absolute() {
        return value.to_path_buf();
    }
    named_in.parent().unwrap_or(Path::new("/")).join(value)
}

/// Reads every setting into the service. Returns false if any value was bad.
pub(crate) fn apply_all(
    service: &mut Service,
    draft: &mut Draft,
    settings: &Settings,
    files: &dyn Files,
    sink: &mut Sink,
) -> bool {
    let mut ok = true;
    // In the order written, so that the diagnostics come in that order too.
    let mut ordered: Vec<(&&'static str, &Setting)> = settings.iter().collect();
    ordered.sort_by(|a, b| a.1.location.cmp(&b.1.location));
    for (&key, setting) in ordered {
        // Recorded even for a bad value, so that it is not also reported as missing.
        draft.locations.insert(key, setting.location.clone());
        match apply(service, draft, key, setting, files, sink) {
            Ok(()) => {
                service.origins.insert(key, setting.origin);
            }
            Err(message) => {
                sink.error(&setting.location, format!("{key}: {message}"));
                ok = false;
            }
        }
    }
    ok
}

fn one(setting: &Setting) -> &str {
    setting.values.first().map_or("", String::as_str)
}

fn apply(
    service: &mut Service,
    draft: &mut Draft,
    key: &str,
    setting: &Setting,
    files: &dyn Files,
    sink: &mut Sink,
) -> Result<(), String> {
    let words = &setting.values;
    let value = one(setting);
    let named_in = setting.location.path.as_path();
    match key {
        "id" => service.id = value.to_owned(),
        "type" => {
            for word in words {
                service.types.insert(service_type(word)?);
            }
        }
        "flags" => {
            for word in words {
                service.flags.insert(flag(word)?);
            }
        }
        "socket_type" => {
            draft.socket_type = Some(match value {
                "stream" => SocketType::Stream,
                "dgram" => SocketType::Dgram,
                "raw" => SocketType::Raw,
                "seqpacket" => SocketType::Seqpacket,
                _ => return Err(format!("'{value}' is not stream, dgram, raw or seqpacket")),
            });
        }
        "protocol" => {
            draft.protocol = Some(match value {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                _ => return Err(format!("kinetd serves tcp and udp only, not '{value}'")),
            });
        }
        "wait" => draft.wait = Some(values::yes_no(value)?),
        "user" => draft.user = Some(users::user(value)?),
        "group" => draft.group = Some(users::group(value)?),
        "groups" => service.groups = values::yes_no(value)?,
        "server" => {
            let path = resolve_path(named_in, value);
            if !files.is_executable(&path) {
                return Err(format!("'{}' is not an executable file", path.display()));
            }
            if !Path::new(value).is_absolute() {
                let location = &setting.location;
                sink.note(
                    location,
                    format!("relative server path read as '{}'", path.display()),
                );
            }
            service.server = Some(path);
        }
        "server_args" => {
            if words.is_empty() {
                return Err("an empty value is not allowed (remove the line instead)".to_owned());
            }
            // There is no quoting: `server_args = "a b"` passes the quote characters.
            let quoted = words
                .iter()
                .any(|w| w.starts_with(['"', '\'']) || w.ends_with(['"', '\'']));
            if quoted {
                sink.warning(
                    &setting.location,
                    "server_args: quotes are not special here (as in xinetd): the server \
                     gets them as part of its arguments, and a value cannot contain a blank",
                );
            }
            service.server_args = words.clone();
        }
        "port" => {
            let port = values::unsigned(value)?;
            draft.port = Some(u16::try_from(port).map_err(|_| format!("{port} is above 65535"))?);
        }
        "bind" => draft.bind = Some(value.to_owned()),
        "v6only" => service.v6only = Some(values::yes_no(value)?),
        "instances" => service.instances = values::count_or_unlimited(value)?,
        "per_source" => service.per_source = values::count_or_unlimited(value)?,
        "cps" => {
            let max_per_second = values::unsigned(&words[0])?;
            let wait_seconds = values::unsigned(&words[1])?;
            if max_per_second == 0 {
                return Err("the rate must be at least 1 connection per second".to_owned());
            }
            service.cps = Cps {
                max_per_second,
                wait_seconds,
            };
        }
        "max_load" => service.max_load = Some(values::load_average(value)?),
        "nice" => {
            // Observed: xinetd accepts any number; the kernel clamps it to -20..19.
            let nice = values::signed(value)?;
            let clamped = nice.clamp(-20, 19);
            if clamped != nice {
                sink.warning(
                    &setting.location,
                    format!("nice {nice} is applied as {clamped}"),
                );
            }
            service.nice = Some(clamped);
        }
        "umask" => service.umask = Some(values::umask(value)?),
        "rlimit_as" => service.rlimits.address_space = Some(values::rlimit_size(value)?),
        "rlimit_cpu" => service.rlimits.cpu = Some(values::rlimit_count(value)?),
        "rlimit_data" => service.rlimits.data = Some(values::rlimit_size(value)?),
        "rlimit_rss" => service.rlimits.rss = Some(values::rlimit_size(value)?),
        "rlimit_stack" => service.rlimits.stack = Some(values::rlimit_size(value)?),
        "rlimit_files" => service.rlimits.files = Some(values::rlimit_size(value)?),
        "env" => {
            service.env.clear();
            for word in words {
                let Some((name, val)) = word.split_once('=') else {
                    return Err(format!("'{word}' is not NAME=value"));
                };
                if name.is_empty() {
                    return Err(format!("'{word}' has no variable name"));
                }
                service.env.push((name.to_owned(), val.to_owned()));
            }
        }
        "passenv" => {
            if let Some(bad) = words.iter().find(|w| w.is_empty() || w.contains('=')) {
                return Err(format!("'{bad}' is not a variable name"));
            }
            service.passenv = Some(words.clone());
        }
        "log_type" => {
            let base = named_in.parent().unwrap_or(Path::new("/"));
            service.log_type = Some(values::log_type(words, base)?);
        }
        "log_on_success" => service.log_on_success = log_fields(words, true)?,
        "log_on_failure" => service.log_on_failure = log_fields(words, false)?,
        "only_from" => service.only_from = Some(address_list(words, files)?),
        "no_access" => service.no_access = address_list(words, files)?,
        "access_times" => service.access_times = Some(access::parse_times(words)?),
        "banner" => service.banner = Some(banner(named_in, value, files, setting, sink)),
        "banner_success" => {
            service.banner_success = Some(banner(named_in, value, files, setting, sink));
        }
        "banner_fail" => service.banner_fail = Some(banner(named_in, value, files, setting, sink)),
        "redirect" => draft.redirect = Some((words[0].clone(), words[1].clone())),
        "disable" => draft.disable = values::yes_no(value)?,
        "kafel_rule" => draft.kafel_rule = Some(resolve_path(named_in, value)),
        "kafel_arch" => {
            if words.is_empty() {
                return Err("name at least one architecture (x86_64, i386)".to_owned());
            }
            let mut arches = Vec::new();
            for word in words {
                let arch = Arch::from_name(word)
                    .ok_or_else(|| format!("unknown architecture '{word}' (x86_64, i386)"))?;
                if !arches.contains(&arch) {
                    arches.push(arch);
                }
            }
            draft.kafel_arch = Some(arches);
        }
        // The defaults-only lists are read by the loader itself.
        _ => {}
    }
    Ok(())
}

fn service_type(word: &str) -> Result<ServiceType, String> {
    Ok(match word {
        "RPC" => ServiceType::Rpc,
        "INTERNAL" => ServiceType::Internal,
        "UNLISTED" => ServiceType::Unlisted,
        "SPECIAL" => ServiceType::Special,
        "TCPMUX" => ServiceType::Tcpmux,
        "TCPMUXPLUS" => ServiceType::TcpmuxPlus,
        _ => {
            return Err(format!(
                "'{word}' is not RPC, INTERNAL, UNLISTED, SPECIAL, TCPMUX or TCPMUXPLUS"
            ));
        }
    })
}

fn flag(word: &str) -> Result<Flag, String> {
    Ok(match word {
        "REUSE" => Flag::Reuse,
        "INTERCEPT" => Flag::Intercept,
        "NORETRY" => Flag::NoRetry,
        "IDONLY" => Flag::IdOnly,
        "NAMEINARGS" => Flag::NameInArgs,
        "NODELAY" => Flag::NoDelay,
        "KEEPALIVE" => Flag::KeepAlive,
        "NOLIBWRAP" => Flag::NoLibwrap,
        "SENSOR" => Flag::Sensor,
        "IPv4" => Flag::IPv4,
        "IPv6" => Flag::IPv6,
        "LABELED" => Flag::Labeled,
        _ => return Err(format!("unknown flag '{word}'")),
    })
}

fn log_fields(words: &[String], success: bool) -> Result<BTreeSet<LogField>, String> {
    words
        .iter()
        .map(|w| values::log_field(w, success))
        .collect()
}

fn address_list(words: &[String], files: &dyn Files) -> Result<AddressList, String> {
    let patterns = words
        .iter()
        .map(|w| access::parse_pattern(w, files))
        .collect::<Result<_, _>>()?;
    Ok(AddressList { patterns })
}

/// A banner that does not exist yet is not an error: xinetd opens it per connection and
/// silently writes nothing when it cannot. kinetd warns.
fn banner(
    named_in: &Path,
    value: &str,
    files: &dyn Files,
    setting: &Setting,
    sink: &mut Sink,
) -> PathBuf {
    let path = resolve_path(named_in, value);
    if !files.exists(&path) {
        sink.warning(
            &setting.location,
            format!(
                "banner file '{}' does not exist; nothing will be sent",
                path.display()
            ),
        );
    }
    path
}
