//! Where log lines go: the daemon's own log, and each service's `log_type`.
//!
//! Only the daemon process writes logs; a challenge never does. Each line is one
//! `write(2)` on a file opened with O_APPEND, so lines from services sharing a file never
//! interleave, and nothing is buffered that a crash could lose.
//!
//! Log files are opened and kept with O_NONBLOCK, because a log path may name a FIFO (a
//! log shipper's input): a blocking open waits for a reader, and a blocking write waits
//! for a full pipe to drain, and either would stop the whole event loop — no connection
//! accepted, no signal read. With O_NONBLOCK a FIFO without a reader fails to open
//! (ENXIO), which is reported like any unwritable log, and a line that does not fit in a
//! full pipe is dropped. Regular files ignore the flag.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::log_format::{Level, timestamp};
use crate::sys::process::local_time;

/// Where the daemon's own messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonSink {
    Stderr,
    File(PathBuf),
    Syslog { facility: i32 },
}

/// Where one service's START/EXIT/FAIL lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceSink {
    /// No `log_type`: xinetd logs nothing per connection.
    None,
    File {
        path: PathBuf,
        hard_limit: Option<u64>,
    },
    Syslog {
        facility: i32,
        level: i32,
    },
}

/// The syslog facility codes, by the names `-syslog` and `log_type SYSLOG` use.
pub fn syslog_facility(name: &str) -> Option<i32> {
    let code = match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    };
    Some(code << 3)
}

/// A log file kept open between lines.
#[derive(Debug)]
struct LogFile {
    file: File,
    size: u64,
    /// Set once the hard limit was reached; nothing more is written until a reload.
    full: bool,
}

/// All log destinations of the daemon.
#[derive(Debug)]
pub struct Logger {
    daemon_sink: DaemonSink,
    /// Lines below this level are not written (DEBUG only with `-d`).
    min_level: Level,
    pid: u32,
    files: HashMap<PathBuf, LogFile>,
    /// Files that could not be written; reported once, retried after a reload.
    broken: HashSet<PathBuf>,
    syslog: Option<UnixDatagram>,
    /// The syslog daemon's socket.
    syslog_path: PathBuf,
    /// The timestamp text of the last second formatted; most lines share it.
    clock: (i64, String),
}

impl Logger {
    pub fn new(daemon_sink: DaemonSink, debug: bool) -> Logger {
        Logger {
            daemon_sink,
            min_level: if debug { Level::Debug } else { Level::Notice },
            pid: std::process::id(),
            files: HashMap::new(),
            broken: HashSet::new(),
            syslog: None,
            syslog_path: PathBuf::from("/dev/log"),
            clock: (i64::MIN, String::new()),
        }
    }

    /// Sends syslog lines to another socket than /dev/log.
    #[cfg(test)]
    fn with_syslog_path(mut self, path: &Path) -> Logger {
        self.syslog_path = path.to_owned();
        self
    }

    /// To be called after daemonizing: the pid in daemon lines changes.
    pub fn set_pid(&mut self, pid: u32) {
        self.pid = pid;
    }

    /// Opens the daemon's log file now, so that an unwritable `-filelog` stops the start.
    pub fn check_daemon_sink(&mut self) -> io::Result<()> {
        if let DaemonSink::File(path) = &self.daemon_sink {
            let path = path.clone();
            self.open(&path)?;
        }
        Ok(())
    }

    fn now(&mut self) -> &str {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if self.clock.0 != secs {
            self.clock = (secs, timestamp(&local_time(secs)));
        }
        &self.clock.1
    }

    /// A line of the daemon's own log.
    pub fn daemon(&mut self, level: Level, text: &str) {
        if level < self.min_level {
            return;
        }
        let pid = self.pid;
        match self.daemon_sink.clone() {
            DaemonSink::Stderr => {
                let line = format!("{} kinetd[{pid}]: {}: {text}\n", self.now(), level.as_str());
                let _ = io::stderr().write_all(line.as_bytes());
            }
            DaemonSink::File(path) => {
                let line = format!("{} kinetd[{pid}]: {}: {text}\n", self.now(), level.as_str());
                let _ = self.append(&path, line.as_bytes(), None);
            }
            DaemonSink::Syslog { facility } => {
                let message = format!("{}: {text}", level.as_str());
                self.send_syslog(facility | level.syslog_code(), &message);
            }
        }
    }

    /// A START/EXIT/FAIL line (`body` as `log_format` makes it) to a service's log.
    pub fn service(&mut self, sink: &ServiceSink, body: &str) {
        match sink {
            ServiceSink::None => {}
            ServiceSink::File { path, hard_limit } => {
                if self.broken.contains(path) {
                    return;
                }
                let line = format!("{}: {body}\n", self.now());
                if let Err(err) = self.append(path, line.as_bytes(), *hard_limit) {
                    // Once, not once per connection: clients must not be able to flood
                    // the daemon log through a broken service log.
                    self.broken.insert(path.clone());
                    let text = format!(
                        "cannot write to log file {}: {err}; retrying after the next reload",
                        path.display()
                    );
                    self.daemon(Level::Error, &text);
                }
            }
            ServiceSink::Syslog { facility, level } => self.send_syslog(facility | level, body),
        }
    }

    /// Closes every log file, so that the next line reopens it (log rotation on reload).
    pub fn reopen(&mut self) {
        self.files.clear();
        self.broken.clear();
        self.syslog = None;
    }

    fn open(&mut self, path: &Path) -> io::Result<&mut LogFile> {
        if !self.files.contains_key(path) {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o644)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)?;
            let size = file.metadata()?.len();
            let entry = LogFile {
                file,
                size,
                full: false,
            };
            self.files.insert(path.to_owned(), entry);
        }
        Ok(self.files.get_mut(path).expect("inserted above"))
    }

    /// Appends one line; `Ok(false)` when it was not written because the file has reached
    /// its hard limit or is a full pipe.
    fn append(&mut self, path: &Path, line: &[u8], hard_limit: Option<u64>) -> io::Result<bool> {
        let log = self.open(path)?;
        if log.full {
            return Ok(false);
        }
        if let Some(limit) = hard_limit
            && log.size + line.len() as u64 > limit
        {
            log.full = true;
            let text = format!(
                "log file {} reached its hard limit of {limit} bytes; logging to it stops \
                 until the next reload",
                path.display()
            );
            self.daemon(Level::Error, &text);
            return Ok(false);
        }
        // One write: a line up to PIPE_BUF goes into a pipe whole or not at all.
        match log.file.write(line) {
            Ok(written) => {
                log.size += written as u64;
                Ok(true)
            }
            // A full pipe: the reader is behind. The line is lost, the log is not broken.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn send_syslog(&mut self, priority: i32, message: &str) {
        // RFC 3164: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, the form syslog(3) sends.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let t = local_time(now);
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS[(t.month.clamp(1, 12) - 1) as usize];
        let datagram = format!(
            "<{priority}>{month} {:>2} {:02}:{:02}:{:02} kinetd[{}]: {message}",
            t.day, t.hour, t.minute, t.second, self.pid
        );
        for _ in 0..2 {
            if self.syslog.is_none() {
                self.syslog = UnixDatagram::unbound()
                    .and_then(|s| s.connect(&self.syslog_path).map(|()| s))
                    .ok();
            }
            let Some(socket) = &self.syslog else {
                return;
            };
            if socket.send(datagram.as_bytes()).is_ok() {
                return;
            }
            // The syslog daemon may have restarted: reconnect once.
            self.syslog = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_lines_are_appended_with_a_timestamp_and_colon() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let path = dir.join("svc.log");
        let mut logger = Logger::new(DaemonSink::Stderr, false);
        let sink = ServiceSink::File {
            path: path.clone(),
            hard_limit: None,
        };
        logger.service(&sink, "START: a pid=1");
        logger.service(&sink, "EXIT: a pid=1");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let (stamp, rest) = lines[0].split_once(": ").unwrap();
        assert!(stamp.contains('@'), "{stamp}");
        assert_eq!(rest, "START: a pid=1");
    }

    #[test]
    fn hard_limit_stops_a_file_log() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let path = dir.join("svc.log");
        let mut logger = Logger::new(DaemonSink::Stderr, false);
        let sink = ServiceSink::File {
            path: path.clone(),
            hard_limit: Some(60),
        };
        for _ in 0..10 {
            logger.service(&sink, "START: abcdefghij");
        }
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= 60 && size > 0, "size {size}");
    }

    #[test]
    fn syslog_lines_carry_priority_tag_and_pid() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let path = dir.join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let daemon = syslog_facility("daemon").unwrap();
        let mut logger =
            Logger::new(DaemonSink::Syslog { facility: daemon }, false).with_syslog_path(&path);
        let local0 = syslog_facility("local0").unwrap();
        let sink = ServiceSink::Syslog {
            facility: local0,
            level: 6,
        };
        logger.service(&sink, "START: svc pid=7");
        logger.daemon(Level::Error, "something failed");

        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(first.starts_with("<134>"), "local0.info is 16*8+6: {first}");
        let pid = std::process::id();
        assert!(
            first.ends_with(&format!(" kinetd[{pid}]: START: svc pid=7")),
            "{first}"
        );
        let n = server.recv(&mut buf).unwrap();
        let second = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(second.starts_with("<27>"), "daemon.err is 3*8+3: {second}");
        assert!(second.ends_with("]: ERROR: something failed"), "{second}");
    }

    #[test]
    fn unwritable_service_log_is_reported_once() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let daemon_log = dir.join("daemon.log");
        let mut logger = Logger::new(DaemonSink::File(daemon_log.clone()), false);
        let sink = ServiceSink::File {
            path: dir.join("no-such-dir").join("svc.log"),
            hard_limit: None,
        };
        for _ in 0..5 {
            logger.service(&sink, "START: a");
        }
        let text = std::fs::read_to_string(&daemon_log).unwrap();
        assert_eq!(
            text.matches("cannot write to log file").count(),
            1,
            "{text}"
        );
    }

    fn mkfifo(path: &Path) {
        let made = std::process::Command::new("mkfifo").arg(path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
    }

    #[test]
    fn a_fifo_log_whose_reader_is_behind_drops_lines_instead_of_blocking() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let fifo = dir.join("svc.log");
        mkfifo(&fifo);
        // A reader that never reads: the pipe fills after 64 KiB.
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let daemon_log = dir.join("daemon.log");
        let sink = ServiceSink::File {
            path: fifo.clone(),
            hard_limit: None,
        };
        let (done, finished) = std::sync::mpsc::channel();
        let log_path = daemon_log.clone();
        std::thread::spawn(move || {
            let mut logger = Logger::new(DaemonSink::File(log_path), false);
            for _ in 0..10_000 {
                logger.service(&sink, "START: svc pid=1 from=127.0.0.1");
            }
            let _ = done.send(());
        });
        let ended = finished.recv_timeout(std::time::Duration::from_secs(10));
        assert!(ended.is_ok(), "writing to a full FIFO blocked the logger");
        let text = std::fs::read_to_string(&daemon_log).unwrap_or_default();
        assert!(
            !text.contains("cannot write"),
            "a full pipe is not a broken log: {text}"
        );
        drop(reader);
    }

    #[test]
    fn a_fifo_log_without_reader_is_reported_instead_of_blocking() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let fifo = dir.join("daemon.log");
        mkfifo(&fifo);
        let (done, finished) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let mut logger = Logger::new(DaemonSink::File(path), false);
            let _ = done.send(logger.check_daemon_sink().map_err(|e| e.raw_os_error()));
        });
        let opened = finished.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(
            opened,
            Ok(Err(Some(libc::ENXIO))),
            "opening a FIFO without a reader fails at once"
        );
    }

    #[test]
    fn facility_names_map_to_shifted_codes() {
        assert_eq!(syslog_facility("daemon"), Some(3 << 3));
        assert_eq!(syslog_facility("local7"), Some(23 << 3));
        assert_eq!(syslog_facility("nonsense"), None);
    }
}
