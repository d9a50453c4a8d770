//! From an entry's combined words to a typed [`Service`]: each attribute's meaning, the
//! attributes xinetd requires, and the checks between attributes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use kafel::arch::Arch;

use crate::access::{self, AddressList};
use crate::attrs::{Setting, Settings};
use crate::diag::{Location, Sink};
use crate::files::Files;
use crate::model::{
    Cps, Credentials, Flag, LogField, Origin, Protocol, Rlimits, Service, ServiceType, SocketType,
    Status,
};
use crate::users::{self, UserEntry};
use crate::values;

/// Values that only mean something together, kept until every attribute is read.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    user: Option<UserEntry>,
    group: Option<u32>,
    socket_type: Option<SocketType>,
    protocol: Option<Protocol>,
    wait: Option<bool>,
    port: Option<u16>,
    pub(crate) disable: bool,
    bind: Option<String>,
    redirect: Option<(String, String)>,
    pub(crate) kafel_rule: Option<PathBuf>,
    pub(crate) kafel_arch: Option<Vec<Arch>>,
    /// Where each attribute was set, so that errors between attributes point at a line
    /// that is part of the problem.
    locations: BTreeMap<&'static str, Location>,
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
    for (&key, setting) in settings {
        match apply(service, draft, key, setting, files, sink) {
            Ok(()) => {
                service.origins.insert(key, setting.origin);
                draft.locations.insert(key, setting.location.clone());
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
        "rlimit_files" => service.rlimits.files = Some(values::rlimit_count(value)?),
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

/// The checks that need every attribute: required attributes, derived values, and the
/// rules between attributes. Returns false if the service cannot run.
pub(crate) fn finish(
    service: &mut Service,
    draft: &Draft,
    files: &dyn Files,
    sink: &mut Sink,
) -> bool {
    let at = service.location.clone();
    let line = |attribute: &str| {
        draft
            .locations
            .get(attribute)
            .cloned()
            .unwrap_or_else(|| at.clone())
    };
    let name = service.name.clone();
    let mut ok = true;
    let missing = |attribute: &str, sink: &mut Sink| {
        sink.error(
            &at,
            format!("service {name}: missing attribute '{attribute}'"),
        );
        false
    };

    for (ty, why) in [
        (
            ServiceType::Internal,
            "kinetd has no built-in (INTERNAL) services",
        ),
        (ServiceType::Rpc, "kinetd does not serve RPC"),
    ] {
        if service.has_type(ty) {
            sink.error(&line("type"), format!("service {}: {why}", service.name));
            ok = false;
        }
    }
    for ty in [
        ServiceType::Tcpmux,
        ServiceType::TcpmuxPlus,
        ServiceType::Special,
    ] {
        if service.has_type(ty) {
            sink.note(
                &line("type"),
                format!(
                    "service {}: type {} has no meaning in kinetd; ignored",
                    service.name,
                    ty.name()
                ),
            );
        }
    }
    for flag in [Flag::Intercept, Flag::IdOnly, Flag::Sensor, Flag::Labeled] {
        if service.has_flag(flag) {
            sink.note(
                &line("flags"),
                format!(
                    "service {}: flag {} has no effect in kinetd",
                    service.name,
                    flag.name()
                ),
            );
        }
    }

    // socket_type and protocol: each can be derived from the other (observed: xinetd
    // runs a service with `protocol = tcp` and no socket_type).
    service.socket_type = match (draft.socket_type, draft.protocol) {
        (Some(t), _) => t,
        (None, Some(Protocol::Tcp)) => SocketType::Stream,
        (None, Some(Protocol::Udp)) => SocketType::Dgram,
        (None, None) => {
            ok &= missing("socket_type", sink);
            SocketType::Stream
        }
    };
    service.protocol = match (draft.protocol, service.socket_type) {
        (Some(p), _) => p,
        (None, SocketType::Dgram) => Protocol::Udp,
        (None, _) => Protocol::Tcp,
    };

    match draft.wait {
        Some(wait) => service.wait = wait,
        None => ok &= missing("wait", sink),
    }

    let redirect = draft.redirect.is_some();
    match &draft.user {
        Some(user) => {
            let gid = draft.group.unwrap_or(user.gid);
            let mut supplementary_gids = Vec::new();
            if service.groups {
                match &user.name {
                    Some(name) => match users::supplementary(name, gid) {
                        Ok(gids) => supplementary_gids = gids,
                        Err(message) => {
                            sink.error(&line("groups"), format!("groups: {message}"));
                            ok = false;
                        }
                    },
                    None => sink.warning(
                        &line("groups"),
                        "groups = yes with a numeric user: there is no user name to look \
                         the groups up by, so none are set",
                    ),
                }
            }
            service.credentials = Some(Credentials {
                user_name: user.name.clone(),
                uid: user.uid,
                gid,
                supplementary_gids,
            });
        }
        None => ok &= missing("user", sink),
    }

    if service.server.is_none() && !redirect {
        ok &= missing("server", sink);
    }

    ok &= port(service, draft, files, &at, &line("port"), sink);
    ok &= bind(service, draft, files, &line("flags"), &line("bind"), sink);
    ok &= redirect_target(service, draft, files, &line("redirect"), sink);

    if service.socket_type == SocketType::Dgram && !service.wait {
        // Observed: xinetd accepts it, though its manual says dgram needs wait = yes.
        sink.warning(
            &line("wait"),
            format!(
                "service {}: dgram with wait = no starts a server for every datagram, all \
                 sharing one socket; wait = yes is what is usually meant",
                service.name
            ),
        );
    }
    if redirect && (service.socket_type != SocketType::Stream || service.wait) {
        sink.error(
            &line("redirect"),
            format!(
                "service {}: redirect needs stream and wait = no",
                service.name
            ),
        );
        ok = false;
    }
    if service.has_flag(Flag::NameInArgs) && service.server_args.is_empty() {
        sink.error(
            &line("flags"),
            format!("service {}: NAMEINARGS needs server_args", service.name),
        );
        ok = false;
    }
    if service.log_on_success.contains(&LogField::Traffic) && !redirect {
        sink.error(
            &line("log_on_success"),
            format!(
                "service {}: TRAFFIC is only valid with redirect",
                service.name
            ),
        );
        ok = false;
    }
    if service
        .only_from
        .as_ref()
        .is_some_and(AddressList::is_empty)
    {
        sink.warning(
            &line("only_from"),
            format!(
                "service {}: only_from is empty, so nobody may connect",
                service.name
            ),
        );
    }

    service.argv = argv(service);
    ok
}

/// xinetd's argv: the server's base name then server_args; with NAMEINARGS, server_args
/// alone (its first word is argv[0]).
fn argv(service: &Service) -> Vec<String> {
    if service.has_flag(Flag::NameInArgs) {
        return service.server_args.clone();
    }
    let Some(server) = &service.server else {
        return Vec::new();
    };
    let base = server.file_name().map_or_else(
        || server.to_string_lossy().into_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    std::iter::once(base)
        .chain(service.server_args.iter().cloned())
        .collect()
}

fn port(
    service: &mut Service,
    draft: &Draft,
    files: &dyn Files,
    at: &Location,
    port_at: &Location,
    sink: &mut Sink,
) -> bool {
    let protocol = match service.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    if service.has_type(ServiceType::Unlisted) {
        if let Some(port) = draft.port {
            service.port = port;
            return true;
        }
        sink.error(
            at,
            format!(
                "service {}: missing attribute 'port' (needed with type = UNLISTED)",
                service.name
            ),
        );
        return false;
    }
    let listed = services_port(files, &service.name, protocol);
    match (listed, draft.port) {
        (Some(listed), Some(port)) if listed != port => {
            sink.error(
                port_at,
                format!(
                    "service {}: port {port} differs from /etc/services ({}/{protocol} is \
                     {listed}); add type = UNLISTED to use another port",
                    service.name, service.name
                ),
            );
            false
        }
        (Some(listed), _) => {
            service.port = listed;
            if draft.port.is_none() {
                service.origins.insert("port", Origin::Defaults);
            }
            true
        }
        (None, _) => {
            sink.error(
                at,
                format!(
                    "service {}: {}/{protocol} is not in /etc/services; add type = UNLISTED \
                     and a port",
                    service.name, service.name
                ),
            );
            false
        }
    }
}

/// The port of `name/protocol` in /etc/services.
fn services_port(files: &dyn Files, name: &str, protocol: &str) -> Option<u16> {
    let text = files.read(Path::new("/etc/services")).ok()?;
    let text = String::from_utf8_lossy(&text);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(first), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        if proto == protocol && (first == name || words.any(|alias| alias == name)) {
            return port.parse().ok();
        }
    }
    None
}

/// `bind`: an address, or a host name resolved now; with several addresses the IPv4 and
/// IPv6 flags choose the family.
fn bind(
    service: &mut Service,
    draft: &Draft,
    files: &dyn Files,
    flags_at: &Location,
    at: &Location,
    sink: &mut Sink,
) -> bool {
    if service.has_flag(Flag::IPv4) && service.has_flag(Flag::IPv6) {
        sink.error(
            flags_at,
            format!(
                "service {}: flags IPv4 and IPv6 exclude each other",
                service.name
            ),
        );
        return false;
    }
    let Some(text) = &draft.bind else { return true };
    let addresses: Vec<IpAddr> = match text.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match files.resolve_host(text) {
            Ok(found) => found,
            Err(e) => {
                sink.error(at, format!("bind: cannot resolve '{text}': {e}"));
                return false;
            }
        },
    };
    let wanted = |ip: &IpAddr| {
        if service.has_flag(Flag::IPv4) {
            ip.is_ipv4()
        } else if service.has_flag(Flag::IPv6) {
            ip.is_ipv6()
        } else {
            true
        }
    };
    match addresses.iter().find(|ip| wanted(ip)) {
        Some(ip) => {
            service.bind = Some(*ip);
            true
        }
        None => {
            sink.error(
                at,
                format!("bind: '{text}' has no address of the family the flags ask for"),
            );
            false
        }
    }
}

fn redirect_target(
    service: &mut Service,
    draft: &Draft,
    files: &dyn Files,
    at: &Location,
    sink: &mut Sink,
) -> bool {
    let Some((host, port)) = &draft.redirect else {
        return true;
    };
    let Ok(port) = port.parse::<u16>() else {
        sink.error(at, format!("redirect: '{port}' is not a port number"));
        return false;
    };
    let found = match host.parse::<IpAddr>() {
        Ok(ip) => Ok(vec![ip]),
        Err(_) => files.resolve_host(host),
    };
    match found.map(|addresses| addresses.first().copied()) {
        Ok(Some(ip)) => {
            service.redirect = Some(SocketAddr::new(ip, port));
            true
        }
        Ok(None) => {
            sink.error(at, format!("redirect: '{host}' has no address"));
            false
        }
        Err(e) => {
            sink.error(at, format!("redirect: cannot resolve '{host}': {e}"));
            false
        }
    }
}
