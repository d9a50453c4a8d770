//! A configured service turned into what the daemon runs: the listening socket's shape,
//! the admission rules, and everything the launch path needs, prepared once when the
//! configuration loads so that a connection only adds its own address.

use std::collections::BTreeSet;
use std::ffi::{CString, OsString};
use std::fmt;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use kinetd_config::{Flag, LogField, LogType, Protocol, Service, SocketType};

use super::admission::Rules;
use super::listener::{Kind, ListenSpec};
use super::logger::ServiceSink;
use crate::sys::seccomp::PreparedFilter;
use crate::sys::spawn::{CStringArray, Credentials, Program, Rlimit};

/// The PATH a challenge gets when the daemon has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a service's START, EXIT and FAIL lines need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub id: String,
    pub sink: ServiceSink,
    pub on_success: BTreeSet<LogField>,
    pub on_failure: BTreeSet<LogField>,
}

/// The contents of the banner files, read when the configuration loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Banners {
    /// Written to every client as soon as it is accepted.
    pub banner: Option<Vec<u8>>,
    /// Written once the connection is admitted.
    pub success: Option<Vec<u8>>,
    /// Written to a refused client.
    pub fail: Option<Vec<u8>>,
}

/// The launch path's inputs that do not depend on the connection.
#[derive(Debug)]
pub struct LaunchPlan {
    /// Shared with the children that are still setting up, which read it.
    pub program: Rc<Program>,
    /// The environment without REMOTE_HOST and REMOTE_PORT.
    pub env: Vec<CString>,
}

impl LaunchPlan {
    /// The full environment for one connection.
    pub fn env_for(&self, peer: Option<SocketAddr>) -> CStringArray {
        let mut env = self.env.clone();
        if let Some(peer) = peer {
            // A client of a dual-stack socket shows as ::ffff:a.b.c.d, as under xinetd.
            for (name, value) in [
                ("REMOTE_HOST", peer.ip().to_string()),
                ("REMOTE_PORT", peer.port().to_string()),
            ] {
                if let Ok(var) = CString::new(format!("{name}={value}")) {
                    env.push(var);
                }
            }
        }
        CStringArray::new(env)
    }
}

/// A service ready to run.
#[derive(Debug)]
pub struct ServicePlan {
    pub id: String,
    pub listen: ListenSpec,
    pub wait: bool,
    pub log: Rc<LogSettings>,
    pub rules: Rules,
    pub banners: Banners,
    pub launch: LaunchPlan,
    /// Problems that do not stop the service (an unreadable banner file, as in xinetd).
    pub warnings: Vec<String>,
}

/// Why a service cannot run, though the configuration accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub id: String,
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {}: {}", self.id, self.message)
    }
}

impl std::error::Error for PlanError {}

/// What the plans take from the daemon itself.
#[derive(Debug, Clone)]
pub struct DaemonContext {
    /// The daemon's environment when it started, for `passenv` and PATH.
    pub environment: Vec<(OsString, OsString)>,
    /// Whether the daemon runs as root (and so can set supplementary groups).
    pub root: bool,
    /// The daemon's own nice value; `nice` is relative to it.
    pub priority: i32,
}

impl ServicePlan {
    pub fn new(service: &Service, context: &DaemonContext) -> Result<ServicePlan, PlanError> {
        let error = |message: String| PlanError {
            id: service.id.clone(),
            message,
        };
        let server = service
            .server
            .as_deref()
            .ok_or_else(|| error("internal and redirect services are not supported".into()))?;
        if service.redirect.is_some() {
            return Err(error("redirect services are not supported".into()));
        }
        let kind = match (service.socket_type, service.protocol) {
            (SocketType::Stream, Protocol::Tcp) => Kind::Stream,
            (SocketType::Dgram, Protocol::Udp) => Kind::Datagram,
            (socket_type, protocol) => {
                return Err(error(format!(
                    "socket_type {socket_type:?} over {protocol:?} is not supported"
                )));
            }
        };
        if kind == Kind::Datagram && !service.wait {
            return Err(error("dgram services need wait = yes".into()));
        }

        let filter = match &service.policy {
            None => None,
            Some(policy) => {
                let program = policy.program.as_ref().ok_or_else(|| {
                    error(format!("policy {} did not compile", policy.path.display()))
                })?;
                let prepared = PreparedFilter::new(program)
                    .map_err(|err| error(format!("policy {}: {err}", policy.path.display())))?;
                Some(prepared)
            }
        };

        let program = Program {
            path: path_cstring(server).map_err(error)?,
            argv: CStringArray::new(
                service
                    .argv
                    .iter()
                    .map(|arg| cstring(arg))
                    .collect::<Result<_, _>>()
                    .map_err(error)?,
            ),
            rlimits: rlimits(service),
            umask: service.umask.map(|mask| mask as libc::mode_t),
            priority: service
                .nice
                .map(|nice| (context.priority.saturating_add(nice)).clamp(-20, 19)),
            credentials: service.credentials.as_ref().map(|c| Credentials {
                uid: c.uid,
                gid: c.gid,
                // Without root, setgroups would fail; the daemon's groups are then those
                // of the only user it can run challenges as (itself).
                groups: context.root.then(|| c.supplementary_gids.clone()),
            }),
            filter,
        };
        let launch = LaunchPlan {
            program: Rc::new(program),
            env: environment(service, context).map_err(error)?,
        };

        let mut warnings = Vec::new();
        let sink = match &service.log_type {
            None => ServiceSink::None,
            Some(LogType::File {
                path, hard_limit, ..
            }) => ServiceSink::File {
                path: path.clone(),
                hard_limit: *hard_limit,
            },
            Some(LogType::Syslog { facility, level }) => ServiceSink::Syslog {
                facility: facility.code,
                level: level.code,
            },
        };

        Ok(ServicePlan {
            id: service.id.clone(),
            listen: ListenSpec {
                kind,
                port: service.port,
                bind: service.bind,
                ipv4_only: service.has_flag(Flag::IPv4),
                ipv6: service.has_flag(Flag::IPv6),
                v6only: service.v6only,
                nodelay: service.has_flag(Flag::NoDelay),
                keepalive: service.has_flag(Flag::KeepAlive),
                nonblocking: !service.wait,
            },
            wait: service.wait,
            log: Rc::new(LogSettings {
                id: service.id.clone(),
                sink,
                on_success: service.log_on_success.clone(),
                on_failure: service.log_on_failure.clone(),
            }),
            rules: Rules::from_service(service),
            banners: Banners {
                banner: read_banner(service.banner.as_deref(), &mut warnings),
                success: read_banner(service.banner_success.as_deref(), &mut warnings),
                fail: read_banner(service.banner_fail.as_deref(), &mut warnings),
            },
            launch,
            warnings,
        })
    }
}

fn cstring(text: &str) -> Result<CString, String> {
    CString::new(text).map_err(|_| format!("{text:?} contains a NUL byte"))
}

fn path_cstring(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains a NUL byte", path.display()))
}

/// The environment of xinetd's `env` and `passenv`, with one deliberate difference:
/// without `passenv`, xinetd passes its whole environment, which leaks whatever the
/// container was started with (often the flag) to players. kinetd passes only PATH and
/// the service's `env` then.
fn environment(service: &Service, context: &DaemonContext) -> Result<Vec<CString>, String> {
    let lookup = |name: &str| {
        context
            .environment
            .iter()
            .find(|(key, _)| key.as_bytes() == name.as_bytes())
            .map(|(_, value)| value.as_bytes().to_vec())
    };
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    match &service.passenv {
        Some(names) => {
            for name in names {
                if let Some(value) = lookup(name) {
                    vars.push((name.as_bytes().to_vec(), value));
                }
            }
        }
        None => {
            let path = lookup("PATH").unwrap_or_else(|| DEFAULT_PATH.as_bytes().to_vec());
            vars.push((b"PATH".to_vec(), path));
        }
    }
    for (name, value) in &service.env {
        vars.retain(|(existing, _)| existing != name.as_bytes());
        vars.push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
    }
    vars.into_iter()
        .map(|(mut name, value)| {
            name.push(b'=');
            name.extend_from_slice(&value);
            CString::new(name).map_err(|_| "an environment variable contains a NUL byte".into())
        })
        .collect()
}

fn rlimits(service: &Service) -> Vec<Rlimit> {
    use kinetd_config::Rlimit as Limit;
    let limits = &service.rlimits;
    [
        (libc::RLIMIT_AS, limits.address_space),
        (libc::RLIMIT_CPU, limits.cpu),
        (libc::RLIMIT_DATA, limits.data),
        (libc::RLIMIT_RSS, limits.rss),
        (libc::RLIMIT_STACK, limits.stack),
        (libc::RLIMIT_NOFILE, limits.files),
    ]
    .into_iter()
    .filter_map(|(resource, limit)| {
        let value = match limit? {
            Limit::Unlimited => libc::RLIM_INFINITY,
            Limit::Value(value) => value as libc::rlim_t,
        };
        Some(Rlimit { resource, value })
    })
    .collect()
}

/// The most of a banner file that is kept. A banner is written without blocking, so no
/// more than a socket buffer of it ever reaches a client; the bound matters when the file
/// never ends (`banner = /dev/zero`), which would otherwise fill the daemon's memory.
const MAX_BANNER_BYTES: u64 = 1 << 20;

fn read_banner(path: Option<&Path>, warnings: &mut Vec<String>) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let path = path?;
    let mut bytes = Vec::new();
    // O_NONBLOCK: opening a FIFO that has no writer would otherwise wait for one, and
    // with it the whole daemon (this runs at startup and on every reload).
    let read = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .and_then(|file| file.take(MAX_BANNER_BYTES + 1).read_to_end(&mut bytes));
    match read {
        Ok(_) if bytes.len() as u64 > MAX_BANNER_BYTES => {
            bytes.truncate(MAX_BANNER_BYTES as usize);
            warnings.push(format!(
                "banner {} is longer than 1 MiB; only its first 1 MiB is kept",
                path.display()
            ));
            Some(bytes)
        }
        Ok(_) => Some(bytes),
        Err(err) => {
            warnings.push(format!("cannot read banner {}: {err}", path.display()));
            None
        }
    }
}
