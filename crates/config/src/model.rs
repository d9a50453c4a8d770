//! The loaded configuration: every service with each attribute's effective, typed value.
//!
//! Everything here is plain data. The loader fills it in once, and the daemon, `kinetd
//! check` and a reload all read the same values, so what `check` prints is what the daemon
//! will do.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use kafel::arch::Arch;

use crate::access::{AccessTimes, AddressList};
use crate::diag::{Diagnostic, Location, Severity};

/// A configuration as the daemon would run it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file given with `-f`.
    pub file: PathBuf,
    pub defaults: Defaults,
    /// Every `service` entry in file order, including disabled and rejected ones.
    pub services: Vec<Service>,
    /// Every problem found, in the order found. [`Config::sorted_diagnostics`] puts the
    /// most serious first.
    pub diagnostics: Vec<Diagnostic>,
    /// Set when the configuration as a whole cannot be used: the main file is unreadable
    /// or the `defaults` entry has an error. xinetd exits 0 in the second case; kinetd
    /// refuses to start (and a reload keeps the old configuration).
    pub fatal: bool,
}

impl Config {
    /// The services the daemon listens for.
    pub fn enabled(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|s| s.is_enabled())
    }

    /// True when the configuration is usable and has no error at all: every service
    /// that is not switched off on purpose (`disable = yes`, the `disabled` list) would
    /// start, and no entry was lost to a syntax error or an unreadable include.
    pub fn every_service_starts(&self) -> bool {
        !self.fatal
            && !self.has_errors()
            && self
                .services
                .iter()
                .all(|s| !matches!(s.status, Status::Rejected))
    }

    /// The diagnostics, most serious first; among equals, in the order found.
    pub fn sorted_diagnostics(&self) -> Vec<&Diagnostic> {
        let mut sorted: Vec<&Diagnostic> = self.diagnostics.iter().collect();
        sorted.sort_by_key(|d| std::cmp::Reverse(d.severity));
        sorted
    }

    /// True when some diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Whether a service runs, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Enabled,
    /// `disable = yes` in the service.
    DisabledBySelf,
    /// Named in the `disabled` list of `defaults`.
    DisabledByDefaults,
    /// `defaults` has an `enabled` list that does not name it.
    NotInEnabledList,
    /// The service has at least one error; the diagnostics say which.
    Rejected,
}

/// Where an attribute's effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// Set in the service entry.
    Service,
    /// Inherited from `defaults`.
    Defaults,
    /// A list started from `defaults` and changed by the service with `+=` or `-=`.
    Merged,
}

/// The settings of the `defaults` entry that services inherit, plus its own lists.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// Where the entry starts, if the configuration has one.
    pub location: Option<Location>,
    /// `disabled`: service ids that do not run.
    pub disabled: Vec<String>,
    /// `enabled`: if present, only these service ids run.
    pub enabled: Option<Vec<String>>,
    /// The attribute names set in `defaults` (the values themselves are applied to each
    /// service that does not set its own, and recorded there with [`Origin::Defaults`]).
    pub attributes: BTreeSet<String>,
    /// A `log_type FILE` in defaults is one log shared by every service without its own.
    pub log_type: Option<LogType>,
}

/// One `service` entry with every attribute's effective value.
///
/// A service with [`Status::Rejected`] still carries whatever could be read, so that
/// `kinetd check` can show it; values that could not be read keep their xinetd default.
#[derive(Debug, Clone)]
pub struct Service {
    /// The name after `service`.
    pub name: String,
    /// `id`, default the name. Unique among services; used in logs and in the
    /// `enabled`/`disabled` lists.
    pub id: String,
    /// The `service NAME` line.
    pub location: Location,
    pub status: Status,
    /// For each attribute with a value, where it came from.
    pub origins: BTreeMap<&'static str, Origin>,

    pub types: BTreeSet<ServiceType>,
    pub flags: BTreeSet<Flag>,
    pub socket_type: SocketType,
    pub protocol: Protocol,
    /// `wait = yes`: the server gets the listening socket.
    pub wait: bool,
    /// `user` (and `group`) resolved when loading. `None` only for services that need no
    /// user (internal and redirect services) — or a rejected service.
    pub credentials: Option<Credentials>,
    /// `groups = yes`: the supplementary groups of the user, resolved when loading.
    pub groups: bool,
    /// `server`, an absolute path.
    pub server: Option<PathBuf>,
    /// `server_args` as written.
    pub server_args: Vec<String>,
    /// The argv given to the server: `[basename(server), server_args...]`, or with the
    /// NAMEINARGS flag the server_args alone.
    pub argv: Vec<String>,
    pub port: u16,
    /// `bind`/`interface`, a host name already resolved. `None`: every address.
    pub bind: Option<IpAddr>,
    /// `v6only`: `None` when not given (xinetd only touches IPV6_V6ONLY when it is).
    pub v6only: Option<bool>,
    /// `instances`; `None` is UNLIMITED.
    pub instances: Option<u32>,
    /// `per_source`; `None` is UNLIMITED.
    pub per_source: Option<u32>,
    /// `cps`: xinetd's default is 50 connections per second, 10 seconds off.
    pub cps: Cps,
    /// `max_load`: refuse while the one-minute load average is at least this.
    pub max_load: Option<f64>,
    pub nice: Option<i32>,
    /// `umask`, 0 to 0o777.
    pub umask: Option<u32>,
    pub rlimits: Rlimits,
    /// `env`: `NAME=value` pairs added to the server's environment.
    pub env: Vec<(String, String)>,
    /// `passenv`: the names passed on from kinetd's environment, if given.
    pub passenv: Option<Vec<String>>,
    pub log_type: Option<LogType>,
    pub log_on_success: BTreeSet<LogField>,
    pub log_on_failure: BTreeSet<LogField>,
    /// `only_from`; `None` allows everyone, an empty list nobody.
    pub only_from: Option<AddressList>,
    pub no_access: AddressList,
    pub access_times: Option<AccessTimes>,
    pub banner: Option<PathBuf>,
    pub banner_success: Option<PathBuf>,
    pub banner_fail: Option<PathBuf>,
    pub redirect: Option<SocketAddr>,
    /// `kafel_rule`, `kafel_arch` and the compiled filter.
    pub policy: Option<Policy>,
}

impl Service {
    pub fn is_enabled(&self) -> bool {
        self.status == Status::Enabled
    }

    /// Where an attribute's value came from, or `None` if it has no value.
    pub fn origin(&self, attribute: &str) -> Option<Origin> {
        self.origins.get(attribute).copied()
    }

    pub fn has_flag(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }

    pub fn has_type(&self, ty: ServiceType) -> bool {
        self.types.contains(&ty)
    }
}

/// A service's Kafel policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The policy file, an absolute path.
    pub path: PathBuf,
    /// The architectures the filter was compiled for (`kafel_arch`).
    pub arches: Vec<Arch>,
    /// The compiled filter, ready to install. Empty only for a rejected service.
    pub program: Option<kafel::bpf::Program>,
}

/// The ids a server runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name, when `user` named one (needed for `groups = yes`).
    pub user_name: Option<String>,
    pub uid: u32,
    /// `group`, or the user's login group, or — for a numeric `user` — the same number.
    pub gid: u32,
    /// The supplementary groups to set: the user's groups with `groups = yes`, otherwise
    /// none at all.
    pub supplementary_gids: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceType {
    Rpc,
    Internal,
    Unlisted,
    Special,
    Tcpmux,
    TcpmuxPlus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    Reuse,
    Intercept,
    NoRetry,
    IdOnly,
    NameInArgs,
    NoDelay,
    KeepAlive,
    NoLibwrap,
    Sensor,
    IPv4,
    IPv6,
    Labeled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    Stream,
    Dgram,
    Raw,
    Seqpacket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// `cps = MAX WAIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cps {
    pub max_per_second: u32,
    pub wait_seconds: u32,
}

impl Default for Cps {
    fn default() -> Self {
        Cps {
            max_per_second: 50,
            wait_seconds: 10,
        }
    }
}

/// A resource limit, applied as soft = hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rlimit {
    Unlimited,
    Value(u64),
}

/// The `rlimit_*` attributes; `None` leaves the limit as inherited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rlimits {
    /// RLIMIT_AS in bytes.
    pub address_space: Option<Rlimit>,
    /// RLIMIT_CPU in seconds.
    pub cpu: Option<Rlimit>,
    /// RLIMIT_DATA in bytes.
    pub data: Option<Rlimit>,
    /// RLIMIT_RSS in bytes.
    pub rss: Option<Rlimit>,
    /// RLIMIT_STACK in bytes.
    pub stack: Option<Rlimit>,
    /// RLIMIT_NOFILE.
    pub files: Option<Rlimit>,
}

/// `log_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogType {
    Syslog {
        facility: SyslogFacility,
        level: SyslogLevel,
    },
    File {
        path: PathBuf,
        soft_limit: Option<u64>,
        hard_limit: Option<u64>,
    },
}

/// A syslog facility by name, with its `LOG_*` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogFacility {
    pub name: &'static str,
    /// The value of `LOG_*` (already shifted, as `syslog(3)` takes it).
    pub code: i32,
}

/// A syslog level by name, with its `LOG_*` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogLevel {
    pub name: &'static str,
    pub code: i32,
}

/// A field of `log_on_success` or `log_on_failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogField {
    Pid,
    Host,
    UserId,
    Exit,
    Duration,
    Traffic,
    Attempt,
}

impl ServiceType {
    /// The name as the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            ServiceType::Rpc => "RPC",
            ServiceType::Internal => "INTERNAL",
            ServiceType::Unlisted => "UNLISTED",
            ServiceType::Special => "SPECIAL",
            ServiceType::Tcpmux => "TCPMUX",
            ServiceType::TcpmuxPlus => "TCPMUXPLUS",
        }
    }
}

impl Flag {
    /// The name as the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Reuse => "REUSE",
            Flag::Intercept => "INTERCEPT",
            Flag::NoRetry => "NORETRY",
            Flag::IdOnly => "IDONLY",
            Flag::NameInArgs => "NAMEINARGS",
            Flag::NoDelay => "NODELAY",
            Flag::KeepAlive => "KEEPALIVE",
            Flag::NoLibwrap => "NOLIBWRAP",
            Flag::Sensor => "SENSOR",
            Flag::IPv4 => "IPv4",
            Flag::IPv6 => "IPv6",
            Flag::Labeled => "LABELED",
        }
    }
}

impl LogField {
    /// The name as the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            LogField::Pid => "PID",
            LogField::Host => "HOST",
            LogField::UserId => "USERID",
            LogField::Exit => "EXIT",
            LogField::Duration => "DURATION",
            LogField::Traffic => "TRAFFIC",
            LogField::Attempt => "ATTEMPT",
        }
    }
}

impl SocketType {
    pub fn name(self) -> &'static str {
        match self {
            SocketType::Stream => "stream",
            SocketType::Dgram => "dgram",
            SocketType::Raw => "raw",
            SocketType::Seqpacket => "seqpacket",
        }
    }
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}
