//! Readers for single attribute values: numbers, limits, sizes, yes/no, log settings.
//!
//! Each returns the message for a bad value; the caller adds where it was.

use std::path::PathBuf;

use crate::model::{LogField, LogType, Rlimit, SyslogFacility, SyslogLevel};

/// `yes` or `no`, in any case (observed: xinetd accepts `groups = YES`).
pub(crate) fn yes_no(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(format!("expected 'yes' or 'no', found '{value}'"))
    }
}

pub(crate) fn unsigned(value: &str) -> Result<u32, String> {
    if !value.bytes().all(|b| b.is_ascii_digit()) || value.is_empty() {
        return Err(format!("'{value}' is not a whole number"));
    }
    value.parse().map_err(|_| format!("'{value}' is too large"))
}

/// A count, or `UNLIMITED` (as `None`).
pub(crate) fn count_or_unlimited(value: &str) -> Result<Option<u32>, String> {
    if value == "UNLIMITED" {
        return Ok(None);
    }
    unsigned(value)
        .map(Some)
        .map_err(|_| format!("'{value}' is not a whole number or UNLIMITED"))
}

pub(crate) fn signed(value: &str) -> Result<i32, String> {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{value}' is not a whole number"));
    }
    value
        .parse()
        .map_err(|_| format!("'{value}' is out of range"))
}

pub(crate) fn load_average(value: &str) -> Result<f64, String> {
    let bad = || format!("'{value}' is not a load average (a number such as 2.5)");
    let parsed: f64 = value.parse().map_err(|_| bad())?;
    if !parsed.is_finite() || parsed < 0.0 {
        return Err(bad());
    }
    Ok(parsed)
}

pub(crate) fn umask(value: &str) -> Result<u32, String> {
    let bad = || format!("'{value}' is not an octal umask between 0 and 777");
    if value.is_empty() || value.len() > 4 || !value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    let mask = u32::from_str_radix(value, 8).map_err(|_| bad())?;
    if mask > 0o777 {
        return Err(bad());
    }
    Ok(mask)
}

/// A byte count with an optional `K` or `M` suffix (either case), as xinetd reads sizes.
/// xinetd has no `G`.
pub(crate) fn size(value: &str) -> Result<u64, String> {
    let bad = || format!("'{value}' is not a size (a number of bytes, optionally with K or M)");
    let (digits, multiplier) = match value.as_bytes().last() {
        Some(b'k' | b'K') => (&value[..value.len() - 1], 1024),
        Some(b'm' | b'M') => (&value[..value.len() - 1], 1024 * 1024),
        _ => (value, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number: u64 = digits.parse().map_err(|_| bad())?;
    number.checked_mul(multiplier).ok_or_else(bad)
}

/// `rlimit_as`, `rlimit_data`, `rlimit_rss`, `rlimit_stack`, and `rlimit_files` (which
/// xinetd reads the same way: observed, `rlimit_files = 10K` is accepted): a size or
/// UNLIMITED.
pub(crate) fn rlimit_size(value: &str) -> Result<Rlimit, String> {
    if value == "UNLIMITED" {
        return Ok(Rlimit::Unlimited);
    }
    size(value)
        .map(Rlimit::Value)
        .map_err(|e| format!("{e}, or UNLIMITED"))
}

/// `rlimit_cpu`: seconds, a plain number (observed: xinetd rejects `2K`), or UNLIMITED.
pub(crate) fn rlimit_count(value: &str) -> Result<Rlimit, String> {
    if value == "UNLIMITED" {
        return Ok(Rlimit::Unlimited);
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{value}' is not a whole number or UNLIMITED"));
    }
    value
        .parse()
        .map(Rlimit::Value)
        .map_err(|_| format!("'{value}' is too large"))
}

const FACILITIES: &[(&str, i32)] = &[
    ("daemon", 3 << 3),
    ("auth", 4 << 3),
    ("authpriv", 10 << 3),
    ("user", 1 << 3),
    ("mail", 2 << 3),
    ("lpr", 6 << 3),
    ("news", 7 << 3),
    ("uucp", 8 << 3),
    ("ftp", 11 << 3),
    ("local0", 16 << 3),
    ("local1", 17 << 3),
    ("local2", 18 << 3),
    ("local3", 19 << 3),
    ("local4", 20 << 3),
    ("local5", 21 << 3),
    ("local6", 22 << 3),
    ("local7", 23 << 3),
];

const LEVELS: &[(&str, i32)] = &[
    ("emerg", 0),
    ("alert", 1),
    ("crit", 2),
    ("err", 3),
    ("warning", 4),
    ("notice", 5),
    ("info", 6),
    ("debug", 7),
];

/// `log_type = SYSLOG facility [level]` or `log_type = FILE path [soft [hard]]`. A
/// relative FILE path is resolved by the caller.
pub(crate) fn log_type(words: &[String], base: &std::path::Path) -> Result<LogType, String> {
    match words.first().map(String::as_str) {
        Some("SYSLOG") => {
            let (Some(facility), 2..=3) = (words.get(1), words.len()) else {
                return Err("expected 'SYSLOG facility [level]'".to_owned());
            };
            let (name, code) = FACILITIES
                .iter()
                .find(|(n, _)| n == facility)
                .ok_or_else(|| format!("unknown syslog facility '{facility}'"))?;
            let level = words.get(2).map_or("info", String::as_str);
            let (level_name, level_code) = LEVELS
                .iter()
                .find(|(n, _)| *n == level)
                .ok_or_else(|| format!("unknown syslog level '{level}'"))?;
            Ok(LogType::Syslog {
                facility: SyslogFacility { name, code: *code },
                level: SyslogLevel {
                    name: level_name,
                    code: *level_code,
                },
            })
        }
        Some("FILE") => {
            let (Some(path), 2..=4) = (words.get(1), words.len()) else {
                return Err("expected 'FILE path [soft-limit [hard-limit]]'".to_owned());
            };
            let soft_limit = words.get(2).map(|w| size(w)).transpose()?;
            let hard_limit = match (soft_limit, words.get(3)) {
                (_, Some(hard)) => Some(size(hard)?),
                // xinetd's slack above the soft limit: 1%, at least 5K, at most 20K.
                (Some(soft), None) => Some(soft + (soft / 100).clamp(5 * 1024, 20 * 1024)),
                (None, None) => None,
            };
            if let (Some(soft), Some(hard)) = (soft_limit, hard_limit)
                && hard < soft
            {
                return Err(format!(
                    "the hard limit {hard} is below the soft limit {soft}"
                ));
            }
            let path = base.join(PathBuf::from(path));
            Ok(LogType::File {
                path,
                soft_limit,
                hard_limit,
            })
        }
        Some(other) => Err(format!("expected SYSLOG or FILE, found '{other}'")),
        None => Err("expected SYSLOG or FILE".to_owned()),
    }
}

pub(crate) fn log_field(value: &str, success: bool) -> Result<LogField, String> {
    let field = match value {
        "PID" if success => LogField::Pid,
        "HOST" => LogField::Host,
        "USERID" => LogField::UserId,
        "EXIT" if success => LogField::Exit,
        "DURATION" if success => LogField::Duration,
        "TRAFFIC" if success => LogField::Traffic,
        "ATTEMPT" if !success => LogField::Attempt,
        _ => {
            let allowed = if success {
                "PID, HOST, USERID, EXIT, DURATION, TRAFFIC"
            } else {
                "HOST, USERID, ATTEMPT"
            };
            return Err(format!("'{value}' is not one of {allowed}"));
        }
    };
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_k_and_m_suffixes_but_not_g_as_in_xinetd() {
        assert_eq!(size("512"), Ok(512));
        assert_eq!(size("4k"), Ok(4096));
        assert_eq!(size("1024M"), Ok(1 << 30));
        assert!(
            size("1G").is_err(),
            "observed: xinetd rejects rlimit_as = 1G"
        );
        assert!(size("M").is_err());
        assert!(size("99999999999999999M").is_err());
    }

    #[test]
    fn cpu_limits_take_no_suffix_as_in_xinetd() {
        assert_eq!(rlimit_count("20"), Ok(Rlimit::Value(20)));
        assert_eq!(rlimit_count("UNLIMITED"), Ok(Rlimit::Unlimited));
        assert!(
            rlimit_count("2K").is_err(),
            "observed: xinetd rejects rlimit_cpu = 2K"
        );
    }

    #[test]
    fn umask_is_octal_up_to_777() {
        assert_eq!(umask("022"), Ok(0o22));
        assert_eq!(umask("777"), Ok(0o777));
        assert!(umask("0778").is_err());
        assert!(umask("1777").is_err());
    }

    #[test]
    fn file_log_hard_limit_defaults_to_soft_plus_slack() {
        let base = std::path::Path::new("/etc");
        let words: Vec<String> = ["FILE", "log", "1M"].map(String::from).to_vec();
        let LogType::File {
            path,
            soft_limit,
            hard_limit,
        } = log_type(&words, base).unwrap()
        else {
            panic!("not a FILE log");
        };
        assert_eq!(path, PathBuf::from("/etc/log"));
        assert_eq!(soft_limit, Some(1 << 20));
        assert_eq!(hard_limit, Some((1 << 20) + 10485));
    }
}
