//! Shared by the daemon_* tests: a temporary directory, a free port, the real kinetd
//! binary started on a configuration, and waiting on its logs.

// Each test binary includes this module and uses only some of its helpers.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long anything in these tests may take before it counts as a failure.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("kinetd-test-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        // Challenges run as nobody must be able to reach their scripts.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes an executable shell script and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Compiles a C program with gcc into `dir` and returns the executable's path.
pub fn compile_c(dir: &TempDir, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.write(&format!("{name}.c"), source);
    let out = dir.join(name);
    let result = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .expect("gcc is installed (scripts/test.sh installs it)");
    assert!(
        result.status.success(),
        "gcc failed on {name}.c:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// The probe challenge: prints its descriptors, argv, ids, limits and signal state.
pub fn probe(dir: &TempDir) -> PathBuf {
    compile_c(dir, "probe", include_str!("probe.c"), &["-O1"])
}

/// The `key=value` of a probe line.
pub fn probe_value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .flat_map(|line| line.split(' '))
        .find_map(|word| word.strip_prefix(key).and_then(|w| w.strip_prefix('=')))
        .unwrap_or_else(|| panic!("probe printed no {key}:\n{out}"))
}

/// A port that was free a moment ago: bound to port 0, read, closed.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A service entry with the attributes every test service shares: it runs as the user
/// running the tests and logs START, EXIT and FAIL lines to `log`. `extra` lines are
/// added inside the braces (a second `user` there is ignored, so tests that change
/// users use [`service_as`]).
pub fn service(name: &str, port: u16, server: &Path, log: &Path, extra: &str) -> String {
    service_as(&current_uid().to_string(), name, port, server, log, extra)
}

pub fn service_as(
    user: &str,
    name: &str,
    port: u16,
    server: &Path,
    log: &Path,
    extra: &str,
) -> String {
    format!(
        "service {name}\n{{\n    type = UNLISTED\n    socket_type = stream\n    \
         protocol = tcp\n    wait = no\n    user = {user}\n    bind = 127.0.0.1\n    \
         port = {port}\n    server = {}\n    log_type = FILE {}\n    \
         log_on_success = HOST PID EXIT DURATION\n    log_on_failure = HOST\n    \
         cps = 10000 1\n{extra}\n}}\n",
        server.display(),
        log.display()
    )
}

pub fn current_uid() -> u32 {
    status_ids("Uid:")
}

pub fn current_gid() -> u32 {
    status_ids("Gid:")
}

fn status_ids(key: &str) -> u32 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|id| id.parse().ok())
        .expect("ids in /proc/self/status")
}

/// The kinetd binary running in the foreground.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    pub config: PathBuf,
}

impl Daemon {
    /// Writes `config` to `dir/kinetd.conf` and starts `kinetd -f ... -dontfork` with its
    /// own log in `dir/daemon.log`, plus `args`.
    pub fn start(dir: &TempDir, config: &str, args: &[&str]) -> Daemon {
        Daemon::start_with(
            dir,
            config,
            args,
            &mut Command::new(env!("CARGO_BIN_EXE_kinetd")),
        )
    }

    /// Like `start`, with a prepared command (environment, a wrapper program).
    pub fn start_with(dir: &TempDir, config: &str, args: &[&str], command: &mut Command) -> Daemon {
        let config_path = dir.write("kinetd.conf", config);
        let log = dir.join("daemon.log");
        let child = command
            .arg("-f")
            .arg(&config_path)
            .arg("-dontfork")
            .arg("-filelog")
            .arg(&log)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kinetd starts");
        let daemon = Daemon {
            child,
            log,
            config: config_path,
        };
        daemon.wait_for_log("Started working");
        daemon
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the daemon log contains `needle`; returns the whole log.
    pub fn wait_for_log(&self, needle: &str) -> String {
        wait_for_file(&self.log, needle)
    }

    /// Waits for the daemon to exit on its own.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "kinetd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Rewrites the configuration file (for a reload).
    pub fn rewrite_config(&self, config: &str) {
        fs::write(&self.config, config).unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.pid(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends signal `name` (TERM, HUP, ...) with the shell's built-in `kill`, which every
/// system has (procps's /usr/bin/kill is not always installed).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{name} {pid}"))
        .status()
        .expect("sh runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Waits until the file exists and contains `needle`; returns its text.
pub fn wait_for_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {needle:?}; it has:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `text` appears `count` times in the file; returns its text.
pub fn wait_for_count(path: &Path, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.matches(needle).count() >= count {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {needle:?} {count} times; it has:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Sends `input`, closes the write side, and reads everything until the server closes.
pub fn exchange(port: u16, input: &[u8]) -> String {
    let mut stream = connect(port);
    stream.write_all(input).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    read_all(&mut stream)
}

/// Reads until EOF, tolerating a reset (a killed server may leave unread input behind).
pub fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!("read failed: {err}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// The pid in a `START: ... pid=N` line for the service, the `nth` one (0-based).
pub fn started_pid(log: &str, service: &str, nth: usize) -> u32 {
    log.lines()
        .filter(|line| line.contains(&format!("START: {service} ")))
        .nth(nth)
        .and_then(|line| line.split(" pid=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no START line {nth} for {service} in:\n{log}"))
}

pub fn is_root() -> bool {
    current_uid() == 0
}

/// Tests that change users need root; CI runs as root. Fails loudly otherwise.
pub fn require_root(what: &str) {
    assert!(
        is_root(),
        "{what} needs root (setuid, setgroups); run the tests as root"
    );
}
