//! Deciding, in the parent and before any process is created, whether a connection is
//! served.
//!
//! xinetd checks addresses in the forked child (so a refused address still costs a
//! process and shows START and EXIT lines); kinetd decides everything here, and a refusal
//! is one FAIL line. The order: the address lists, access_times, cps, max_load, then the
//! counts (instances, per_source, the global -limit). Addresses come first so that a
//! refused address does not use up the service's cps allowance. A connection refused by
//! the counts alone is held a moment first (see `held`), and then only the counts are
//! checked again ([`Gate::admit_count`]).
//!
//! `cps` differs from xinetd on purpose: xinetd closes the listening socket for `wait`
//! seconds once the rate is exceeded, which lets any player switch a challenge off for
//! everyone. Here the connections over the rate are refused, one by one, and the service
//! keeps listening. The second number of `cps` is read and not used.

use std::net::IpAddr;
use std::time::Instant;

use kinetd_config::{AccessTimes, AddressList, Service, TimeOfDay};

use super::log_format::FailReason;
use super::rate::TokenBucket;
use super::sessions::Sessions;
use crate::sys::process::LocalTime;

/// A service's admission settings.
#[derive(Debug, Clone)]
pub struct Rules {
    pub instances: Option<u32>,
    pub per_source: Option<u32>,
    /// Connections per second.
    pub cps: u32,
    pub max_load: Option<f64>,
    pub only_from: Option<AddressList>,
    pub no_access: AddressList,
    pub access_times: Option<AccessTimes>,
}

impl Rules {
    pub fn from_service(service: &Service) -> Rules {
        Rules {
            instances: service.instances,
            per_source: service.per_source,
            cps: service.cps.max_per_second,
            max_load: service.max_load,
            only_from: service.only_from.clone(),
            no_access: service.no_access.clone(),
            access_times: service.access_times.clone(),
        }
    }
}

/// What the checks read besides the rules: the world at the time of the connection.
#[derive(Debug)]
pub struct Situation<'a> {
    pub service: &'a str,
    pub peer: Option<IpAddr>,
    pub sessions: &'a Sessions,
    /// The global `-limit`.
    pub process_limit: Option<u32>,
    pub now: Instant,
    pub local_time: LocalTime,
    /// Reads the one-minute load average; called only when `max_load` is set.
    pub load_average: fn() -> Option<f64>,
}

/// A service's admission state: its rules and its cps allowance.
#[derive(Debug)]
pub struct Gate {
    rules: Rules,
    cps: TokenBucket,
}

impl Gate {
    pub fn new(rules: Rules, now: Instant) -> Gate {
        let cps = TokenBucket::new(rules.cps, rules.cps, now);
        Gate { rules, cps }
    }

    /// Admits the connection or says why not.
    pub fn admit(&mut self, situation: &Situation<'_>) -> Result<(), FailReason> {
        let rules = &self.rules;
        if let Some(peer) = situation.peer {
            let allowed = rules
                .only_from
                .as_ref()
                .is_none_or(|list| list.matches(peer));
            if !allowed || rules.no_access.matches(peer) {
                return Err(FailReason::Address);
            }
        }

        if let Some(times) = &rules.access_times {
            let now = TimeOfDay {
                hour: situation.local_time.hour as u8,
                minute: situation.local_time.minute as u8,
            };
            if !times.contains(now) {
                return Err(FailReason::Time);
            }
        }

        if !self.cps.try_take(situation.now) {
            return Err(FailReason::ConnectionsPerSecond);
        }

        if let Some(max) = rules.max_load
            && (situation.load_average)().is_some_and(|load| load >= max)
        {
            return Err(FailReason::Load);
        }

        self.admit_count(situation)
    }

    /// The counts alone: for a connection held for a slot, whose other checks passed when
    /// it was accepted (running them again would take a second cps token).
    pub fn admit_count(&self, situation: &Situation<'_>) -> Result<(), FailReason> {
        let rules = &self.rules;
        let sessions = situation.sessions;
        if let Some(max) = rules.instances
            && sessions.running(situation.service) >= max
        {
            return Err(FailReason::ServiceLimit);
        }

        if let (Some(max), Some(peer)) = (rules.per_source, situation.peer)
            && sessions.running_from(situation.service, peer) >= max
        {
            return Err(FailReason::PerSourceLimit);
        }

        if let Some(max) = situation.process_limit
            && sessions.total() >= max as usize
        {
            return Err(FailReason::ProcessLimit);
        }
        Ok(())
    }
}

/// Whether a refusal is only for lack of a slot, which a session ending frees: such a
/// connection is held a moment rather than refused (see `held`).
pub fn waits_for_a_slot(reason: FailReason) -> bool {
    matches!(
        reason,
        FailReason::ServiceLimit | FailReason::PerSourceLimit | FailReason::ProcessLimit
    )
}

/// The one-minute load average, from /proc/loadavg.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::Ipv4Addr;
    use std::rc::Rc;

    use super::*;
    use crate::daemon::logger::ServiceSink;
    use crate::daemon::service::LogSettings;
    use crate::daemon::sessions::Session;

    fn rules() -> Rules {
        Rules {
            instances: None,
            per_source: None,
            cps: 1000,
            max_load: None,
            only_from: None,
            no_access: AddressList::default(),
            access_times: None,
        }
    }

    fn noon() -> LocalTime {
        LocalTime {
            year: 2026,
            month: 12,
            day: 4,
            hour: 12,
            minute: 0,
            second: 0,
        }
    }

    fn situation(sessions: &Sessions, load: fn() -> Option<f64>) -> Situation<'_> {
        Situation {
            service: "svc",
            peer: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            sessions,
            process_limit: None,
            now: Instant::now(),
            local_time: noon(),
            load_average: load,
        }
    }

    fn running(n: u32) -> Sessions {
        let log = Rc::new(LogSettings {
            id: "svc".into(),
            sink: ServiceSink::None,
            on_success: BTreeSet::new(),
            on_failure: BTreeSet::new(),
        });
        let mut sessions = Sessions::default();
        for pid in 0..n {
            sessions.add(Session {
                pid: pid + 100,
                log: log.clone(),
                from: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                started: Instant::now(),
                holds_listener: false,
            });
        }
        sessions
    }

    #[test]
    fn instances_limit_refuses_with_service_limit() {
        let sessions = running(2);
        let mut gate = Gate::new(
            Rules {
                instances: Some(2),
                ..rules()
            },
            Instant::now(),
        );
        assert_eq!(
            gate.admit(&situation(&sessions, || None)),
            Err(FailReason::ServiceLimit)
        );
        let mut gate = Gate::new(
            Rules {
                instances: Some(3),
                ..rules()
            },
            Instant::now(),
        );
        assert_eq!(gate.admit(&situation(&sessions, || None)), Ok(()));
    }

    #[test]
    fn per_source_limit_counts_only_that_source() {
        let sessions = running(1);
        let mut gate = Gate::new(
            Rules {
                per_source: Some(1),
                ..rules()
            },
            Instant::now(),
        );
        let mut other = situation(&sessions, || None);
        other.peer = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(gate.admit(&other), Ok(()));
        assert_eq!(
            gate.admit(&situation(&sessions, || None)),
            Err(FailReason::PerSourceLimit)
        );
    }

    #[test]
    fn global_limit_refuses_with_process_limit() {
        let sessions = running(3);
        let mut gate = Gate::new(rules(), Instant::now());
        let mut at_limit = situation(&sessions, || None);
        at_limit.process_limit = Some(3);
        assert_eq!(gate.admit(&at_limit), Err(FailReason::ProcessLimit));
    }

    #[test]
    fn cps_refuses_the_excess_and_recovers() {
        let sessions = running(0);
        let start = Instant::now();
        let mut gate = Gate::new(Rules { cps: 2, ..rules() }, start);
        let mut s = situation(&sessions, || None);
        s.now = start;
        assert_eq!(gate.admit(&s), Ok(()));
        assert_eq!(gate.admit(&s), Ok(()));
        assert_eq!(gate.admit(&s), Err(FailReason::ConnectionsPerSecond));
        s.now = start + std::time::Duration::from_secs(1);
        assert_eq!(gate.admit(&s), Ok(()));
    }

    #[test]
    fn max_load_refuses_at_or_above_the_value() {
        let sessions = running(0);
        let mut gate = Gate::new(
            Rules {
                max_load: Some(2.0),
                ..rules()
            },
            Instant::now(),
        );
        assert_eq!(
            gate.admit(&situation(&sessions, || Some(2.0))),
            Err(FailReason::Load)
        );
        assert_eq!(gate.admit(&situation(&sessions, || Some(1.5))), Ok(()));
    }

    #[test]
    fn counting_again_takes_no_cps_token() {
        let sessions = running(1);
        let mut gate = Gate::new(
            Rules {
                cps: 1,
                per_source: Some(1),
                ..rules()
            },
            Instant::now(),
        );
        let s = situation(&sessions, || None);
        assert_eq!(gate.admit(&s), Err(FailReason::PerSourceLimit));
        let none = running(0);
        let freed = situation(&none, || None);
        for _ in 0..3 {
            assert_eq!(gate.admit_count(&freed), Ok(()));
        }
        assert_eq!(gate.admit(&freed), Err(FailReason::ConnectionsPerSecond));
    }

    #[test]
    fn only_the_count_refusals_wait_for_a_slot() {
        assert!(waits_for_a_slot(FailReason::ServiceLimit));
        assert!(waits_for_a_slot(FailReason::PerSourceLimit));
        assert!(waits_for_a_slot(FailReason::ProcessLimit));
        assert!(!waits_for_a_slot(FailReason::ConnectionsPerSecond));
        assert!(!waits_for_a_slot(FailReason::Address));
        assert!(!waits_for_a_slot(FailReason::Load));
    }

    #[test]
    fn load_average_is_read_from_proc() {
        assert!(load_average().is_some());
    }
}
