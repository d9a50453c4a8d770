//! Problems found by using kinetd the way an organizer does, each reproduced as it was
//! met: the real binary, real files, real sockets on 127.0.0.1.

mod daemon_support;

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use daemon_support::*;

#[test]
fn asking_for_help_prints_the_usage_instead_of_starting_a_daemon() {
    for word in ["-h", "-help", "--help"] {
        let output = Command::new(env!("CARGO_BIN_EXE_kinetd"))
            // Whatever the configuration says, asking for help starts nothing.
            .args(["-f", "/nonexistent/xinetd.conf", word])
            .output()
            .expect("kinetd runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{word}: {stdout}");
        assert!(
            stdout.contains("Usage: kinetd [-f config_file]"),
            "{word}: {stdout}"
        );
    }
}

/// The pid a detached daemon wrote; it is stopped with SIGTERM when this is dropped.
struct Detached(PathBuf);

impl Detached {
    fn pid(&self) -> Option<u32> {
        fs::read_to_string(&self.0).ok()?.trim().parse().ok()
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        let Some(pid) = self.pid() else { return };
        signal(pid, "TERM");
        let deadline = Instant::now() + PATIENCE;
        while process_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_detached_daemon_lets_go_of_its_callers_output() {
    // Found with `out=$(kinetd -f ctf.conf)`, which never returned: the detached daemon
    // kept the caller's stdout and stderr open, so the pipe never reached its end.
    let dir = TempDir::new("detach-output");
    let server = dir.script("hello", "echo hello");
    let port = free_port();
    let config = dir.write(
        "kinetd.conf",
        &service("hello", port, &server, &dir.join("service.log"), ""),
    );
    let pidfile = dir.join("kinetd.pid");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kinetd"))
        .arg("-f")
        .arg(&config)
        .arg("-pidfile")
        .arg(&pidfile)
        .arg("-filelog")
        .arg(dir.join("daemon.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kinetd starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let status = child.wait().expect("the starting process exits");
    assert!(status.success(), "{status}");
    let daemon = Detached(pidfile.clone());
    wait_for_file(&dir.join("daemon.log"), "Started working");
    assert!(daemon.pid().is_some(), "no pid in {}", pidfile.display());

    let (done, ends) = mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = stdout.read_to_end(&mut rest);
        let _ = stderr.read_to_end(&mut rest);
        let _ = done.send(rest);
    });
    let rest = ends
        .recv_timeout(Duration::from_secs(10))
        .expect("the caller's stdout and stderr reach their end while the detached daemon runs");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert_eq!(exchange(port, b""), "hello\n", "the detached daemon serves");
}

/// The daemon's resident memory, from /proc.
fn resident_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// A banner file far too long to be one: 256 MiB of zeros (sparse, so it costs no disk).
/// `/dev/zero` is what was met; a finite file keeps this test from exhausting the
/// machine's memory should the bound ever be lost.
fn huge_banner(dir: &TempDir) -> PathBuf {
    let banner = dir.join("banner");
    fs::File::create(&banner)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    banner
}

#[test]
fn an_endless_banner_does_not_fill_the_daemons_memory() {
    // `banner = /dev/zero` was read whole at startup: the daemon grew by gigabytes a
    // second until the kernel killed it.
    let dir = TempDir::new("endless-banner");
    let server = dir.script("hello", "echo hello");
    let port = free_port();
    let banner = huge_banner(&dir);
    let extra = format!("    banner = {}", banner.display());
    let config = service("hello", port, &server, &dir.join("service.log"), &extra);

    let daemon = Daemon::start(&dir, &config, &[]);

    let log = daemon.log_text();
    assert!(log.contains("longer than 1 MiB"), "{log}");
    let rss = resident_kib(daemon.pid());
    assert!(rss < 64 * 1024, "the daemon uses {rss} KiB");
    let out = exchange(port, b"");
    assert!(
        out.starts_with('\0') && out.ends_with("hello\n"),
        "the banner's start, then the server: {} bytes",
        out.len()
    );
}

#[test]
fn a_player_who_reconnects_as_soon_as_a_session_ends_is_not_over_per_source() {
    // Found with a brute-force client that opens one connection at a time, reads to the
    // end, and reconnects: it never has two connections, yet got per_source_limit (97% of
    // 200 sequential reconnections with per_source = 1 on a 2-core machine, 54% of 100
    // with pwntools' remote()). The kernel closes the challenge's socket a moment before
    // it reports the exit, so the slot was still counted; such a connection is now held
    // until the session is reaped.
    let dir = TempDir::new("reconnect-per-source");
    let server = dir.script("hello", "echo hello");
    let port = free_port();
    let log = dir.join("service.log");
    let config = service("hello", port, &server, &log, "    per_source = 1");
    let _daemon = Daemon::start(&dir, &config, &[]);

    let refused = (0..100)
        .filter(|_| exchange(port, b"") != "hello\n")
        .count();

    assert_eq!(
        refused,
        0,
        "sequential connections refused; the service log:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Makes a FIFO named `name` in `dir`.
fn mkfifo(dir: &TempDir, name: &str) -> PathBuf {
    let fifo = dir.join(name);
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", fifo.display());
    fifo
}

/// Connects and reads what the server writes until it closes, within `limit`.
fn served_within(port: u16, limit: Duration) -> Result<String, std::io::Error> {
    let mut stream = connect(port);
    stream.set_read_timeout(Some(limit))?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn a_service_log_on_a_fifo_without_reader_does_not_stall_the_daemon() {
    // The daemon opened a service's FILE log with a blocking open(2) in its event loop; a
    // FIFO with no reader (a log shipper that is down) stalled it for good: no connection
    // was accepted and SIGTERM was not read.
    let dir = TempDir::new("fifo-log");
    let fifo = mkfifo(&dir, "service.log");
    let server = dir.script("hello", "echo hello");
    let port = free_port();
    let config = service("hello", port, &server, &fifo, "");
    let daemon = Daemon::start(&dir, &config, &[]);

    for attempt in 0..3 {
        let out = served_within(port, Duration::from_secs(5));
        assert_eq!(
            out.as_ref().map(String::as_str).ok(),
            Some("hello\n"),
            "connection {attempt}: {out:?}; daemon log:\n{}",
            daemon.log_text()
        );
    }
}

#[test]
fn a_banner_on_a_fifo_without_writer_does_not_stall_the_daemon() {
    // Banners are read when the configuration loads; a blocking open of a FIFO waited for
    // a writer, and the daemon never started.
    let dir = TempDir::new("fifo-banner");
    let fifo = mkfifo(&dir, "banner");
    let server = dir.script("hello", "echo hello");
    let port = free_port();
    let extra = format!("    banner = {}", fifo.display());
    let config = service("hello", port, &server, &dir.join("service.log"), &extra);

    let _daemon = Daemon::start(&dir, &config, &[]);

    let out = served_within(port, Duration::from_secs(10));
    assert_eq!(
        out.as_ref().map(String::as_str).ok(),
        Some("hello\n"),
        "{out:?}"
    );
}
