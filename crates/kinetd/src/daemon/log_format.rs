//! The text of log lines, byte for byte as xinetd writes them, so that existing log
//! parsers keep working.
//!
//! Per-service lines (to the service's `log_type`):
//! `YY/M/D@HH:MM:SS: START: <id> [pid=<pid>] [from=<ip>]`,
//! `... EXIT: <id> [status=<n>|signal=<n>] [pid=<pid>] [duration=<n>(sec)]`,
//! `... FAIL: <id> <reason> [from=<ip>]`.
//! The daemon's own lines: `YY/M/D@HH:MM:SS kinetd[PID]: LEVEL: text`.
//! The year has two digits, month and day are not padded, the time is.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;

use kinetd_config::LogField;

use crate::sys::process::{ExitStatus, LocalTime};

/// Why a connection was refused, as the FAIL line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    Address,
    Time,
    Fork,
    ServiceLimit,
    PerSourceLimit,
    ProcessLimit,
    Load,
    ConnectionsPerSecond,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Address => "address",
            FailReason::Time => "time",
            FailReason::Fork => "fork",
            FailReason::ServiceLimit => "service_limit",
            FailReason::PerSourceLimit => "per_source_limit",
            FailReason::ProcessLimit => "process_limit",
            FailReason::Load => "load",
            FailReason::ConnectionsPerSecond => "connections per second",
        }
    }
}

/// Severity of a daemon log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Notice,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Notice => "NOTICE",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// The syslog severity (`LOG_*`).
    pub fn syslog_code(self) -> i32 {
        match self {
            Level::Debug => 7,
            Level::Notice => 5,
            Level::Warning => 4,
            Level::Error => 3,
            Level::Critical => 2,
        }
    }
}

/// `YY/M/D@HH:MM:SS`.
pub fn timestamp(t: &LocalTime) -> String {
    format!(
        "{:02}/{}/{}@{:02}:{:02}:{:02}",
        t.year.rem_euclid(100),
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second
    )
}

/// The body of a START line (everything after `START: `'s timestamp prefix).
pub fn start(id: &str, fields: &BTreeSet<LogField>, pid: u32, from: Option<IpAddr>) -> String {
    let mut line = format!("START: {id}");
    if fields.contains(&LogField::Pid) {
        let _ = write!(line, " pid={pid}");
    }
    if let (true, Some(ip)) = (fields.contains(&LogField::Host), from) {
        let _ = write!(line, " from={ip}");
    }
    line
}

/// The body of an EXIT line.
pub fn exit(
    id: &str,
    fields: &BTreeSet<LogField>,
    status: ExitStatus,
    pid: u32,
    duration_secs: u64,
) -> String {
    let mut line = format!("EXIT: {id}");
    if fields.contains(&LogField::Exit) {
        let _ = match status {
            ExitStatus::Exited(code) => write!(line, " status={code}"),
            ExitStatus::Signaled(signal) => write!(line, " signal={signal}"),
        };
    }
    if fields.contains(&LogField::Pid) {
        let _ = write!(line, " pid={pid}");
    }
    if fields.contains(&LogField::Duration) {
        let _ = write!(line, " duration={duration_secs}(sec)");
    }
    line
}

/// The body of a FAIL line, or `None` when `log_on_failure` is empty (xinetd then logs
/// nothing).
pub fn fail(
    id: &str,
    fields: &BTreeSet<LogField>,
    reason: FailReason,
    from: Option<IpAddr>,
) -> Option<String> {
    if fields.is_empty() {
        return None;
    }
    let mut line = format!("FAIL: {id} {}", reason.as_str());
    if let (true, Some(ip)) = (fields.contains(&LogField::Host), from) {
        let _ = write!(line, " from={ip}");
    }
    Some(line)
}

/// Whether an EXIT line is written at all: xinetd writes START and EXIT whenever
/// `log_on_success` is not empty.
pub fn logs_success(fields: &BTreeSet<LogField>) -> bool {
    !fields.is_empty()
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn fields(list: &[LogField]) -> BTreeSet<LogField> {
        list.iter().copied().collect()
    }

    #[test]
    fn timestamp_has_two_digit_year_and_unpadded_month_and_day() {
        let t = LocalTime {
            year: 2026,
            month: 12,
            day: 4,
            hour: 5,
            minute: 4,
            second: 3,
        };
        assert_eq!(timestamp(&t), "26/12/4@05:04:03");
    }

    #[test]
    fn start_line_has_pid_then_host() {
        let all = fields(&[LogField::Host, LogField::Pid]);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(
            start("catsvc", &all, 11561, Some(ip)),
            "START: catsvc pid=11561 from=127.0.0.1"
        );
        assert_eq!(
            start("catsvc", &fields(&[LogField::Pid]), 7, Some(ip)),
            "START: catsvc pid=7"
        );
    }

    #[test]
    fn dual_stack_clients_show_as_mapped_addresses() {
        let ip = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        assert_eq!(
            start("s", &fields(&[LogField::Host]), 1, Some(ip)),
            "START: s from=::ffff:127.0.0.1"
        );
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(
            start("s", &fields(&[LogField::Host]), 1, Some(v6)),
            "START: s from=::1"
        );
    }

    #[test]
    fn exit_line_orders_status_pid_duration() {
        let all = fields(&[
            LogField::Duration,
            LogField::Pid,
            LogField::Exit,
            LogField::Host,
        ]);
        assert_eq!(
            exit("catsvc", &all, ExitStatus::Exited(0), 11561, 4),
            "EXIT: catsvc status=0 pid=11561 duration=4(sec)"
        );
        assert_eq!(
            exit("newsvc", &all, ExitStatus::Signaled(31), 14204, 1),
            "EXIT: newsvc signal=31 pid=14204 duration=1(sec)"
        );
    }

    #[test]
    fn fail_line_names_the_reason() {
        let ip = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        let host = fields(&[LogField::Host]);
        assert_eq!(
            fail("catsvc", &host, FailReason::ServiceLimit, ip).as_deref(),
            Some("FAIL: catsvc service_limit from=127.0.0.3")
        );
        assert_eq!(
            fail(
                "c",
                &fields(&[LogField::Attempt]),
                FailReason::ConnectionsPerSecond,
                ip
            )
            .as_deref(),
            Some("FAIL: c connections per second")
        );
    }

    #[test]
    fn no_fail_line_without_log_on_failure() {
        assert_eq!(fail("c", &fields(&[]), FailReason::Load, None), None);
    }
}
