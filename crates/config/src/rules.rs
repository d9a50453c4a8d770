//! The rules that need a service's every attribute: what is required, what is derived
//! (socket type from protocol, ids, argv, the port from /etc/services, addresses from
//! host names), and what attributes demand of each other.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::access::AddressList;
use crate::diag::{Location, Sink};
use crate::files::Files;
use crate::model::{
    Credentials, Flag, LogField, Origin, Protocol, Service, ServiceType, SocketType,
};
use crate::service::Draft;
use crate::users;

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
        if draft.locations.contains_key(attribute) {
            // Given, but with a bad value that is already reported.
            return false;
        }
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
        // Observed: xinetd says it "will use IPv6 or fallback to IPv4".
        sink.warning(
            flags_at,
            format!(
                "service {}: flags IPv4 and IPv6 together: IPv6 is used",
                service.name
            ),
        );
        service.flags.remove(&Flag::IPv4);
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
            // Observed: xinetd then listens on every address instead, silently.
            let family = if service.has_flag(Flag::IPv4) {
                "IPv4"
            } else {
                "IPv6"
            };
            sink.error(
                at,
                format!(
                    "bind: '{text}' has no {family} address, which the flags ask for (xinetd \
                     would listen on every address instead)"
                ),
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
    let number = port.parse::<u16>().ok();
    let Some(port) = number.or_else(|| services_port(files, port, "tcp")) else {
        sink.error(
            at,
            format!("redirect: '{port}' is not a port number nor in /etc/services"),
        );
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
