//! The running challenge processes and the counts that admission checks.
//!
//! A session is added when its process is created and removed when it is reaped, and
//! every count is updated in those two places only, so each slot is taken once and freed
//! once, whatever happened in between (a reload, a failed setup, a kill).

use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use super::service::LogSettings;

/// One running challenge process.
#[derive(Debug, Clone)]
pub struct Session {
    pub pid: u32,
    /// The service's id and what its EXIT line needs, kept even if a reload removes the
    /// service before the process ends.
    pub log: Rc<LogSettings>,
    pub from: Option<IpAddr>,
    pub started: Instant,
    /// For `wait = yes` services: the process holds the listening socket, which is not
    /// polled until it ends.
    pub holds_listener: bool,
}

#[derive(Debug, Default)]
struct ServiceCounts {
    running: u32,
    per_source: HashMap<IpAddr, u32>,
}

#[derive(Debug, Default)]
pub struct Sessions {
    by_pid: HashMap<u32, Session>,
    by_service: HashMap<String, ServiceCounts>,
}

/// Clients of a dual-stack socket appear as `::ffff:a.b.c.d`; they are the same source
/// as a.b.c.d.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Sessions {
    pub fn add(&mut self, session: Session) {
        let counts = self.by_service.entry(session.log.id.clone()).or_default();
        counts.running += 1;
        if let Some(ip) = session.from {
            *counts.per_source.entry(canonical(ip)).or_default() += 1;
        }
        self.by_pid.insert(session.pid, session);
    }

    /// Removes the session of a reaped process; `None` for a pid that is not ours.
    pub fn remove(&mut self, pid: u32) -> Option<Session> {
        let session = self.by_pid.remove(&pid)?;
        if let Some(counts) = self.by_service.get_mut(&session.log.id) {
            counts.running = counts.running.saturating_sub(1);
            if let Some(ip) = session.from {
                let ip = canonical(ip);
                if let Some(n) = counts.per_source.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        counts.per_source.remove(&ip);
                    }
                }
            }
            if counts.running == 0 {
                self.by_service.remove(&session.log.id);
            }
        }
        Some(session)
    }

    /// The service id of a running session.
    pub fn service_of(&self, pid: u32) -> Option<&str> {
        self.by_pid.get(&pid).map(|s| s.log.id.as_str())
    }

    pub fn total(&self) -> usize {
        self.by_pid.len()
    }

    pub fn running(&self, service: &str) -> u32 {
        self.by_service.get(service).map_or(0, |c| c.running)
    }

    pub fn running_from(&self, service: &str, ip: IpAddr) -> u32 {
        self.by_service
            .get(service)
            .and_then(|c| c.per_source.get(&canonical(ip)))
            .copied()
            .unwrap_or(0)
    }

    /// Whether a `wait = yes` service's server is still running.
    pub fn listener_held(&self, service: &str) -> bool {
        self.of_service(service).any(|s| s.holds_listener)
    }

    pub fn of_service<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Session> {
        self.by_pid.values().filter(move |s| s.log.id == service)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.by_pid.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::daemon::logger::ServiceSink;

    fn log(id: &str) -> Rc<LogSettings> {
        Rc::new(LogSettings {
            id: id.to_owned(),
            sink: ServiceSink::None,
            on_success: BTreeSet::new(),
            on_failure: BTreeSet::new(),
        })
    }

    fn session(pid: u32, log: &Rc<LogSettings>, ip: IpAddr) -> Session {
        Session {
            pid,
            log: log.clone(),
            from: Some(ip),
            started: Instant::now(),
            holds_listener: false,
        }
    }

    #[test]
    fn counts_follow_adds_and_removes_and_a_pid_is_freed_once() {
        let a = log("a");
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mapped = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        let mut sessions = Sessions::default();
        sessions.add(session(10, &a, ip));
        sessions.add(session(11, &a, mapped));
        assert_eq!(sessions.running("a"), 2);
        assert_eq!(
            sessions.running_from("a", ip),
            2,
            "mapped and plain IPv4 are one source"
        );

        assert!(sessions.remove(10).is_some());
        assert!(sessions.remove(10).is_none());
        assert_eq!(sessions.running("a"), 1);
        assert_eq!(sessions.running_from("a", mapped), 1);
        sessions.remove(11);
        assert_eq!(sessions.running("a"), 0);
        assert!(sessions.is_empty());
    }
}
