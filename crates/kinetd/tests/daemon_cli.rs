//! xinetd's command line: what Dockerfiles and init scripts pass keeps working.

mod daemon_support;

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemon_support::*;

fn kinetd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kinetd"))
}

#[test]
fn version_prints_the_name_and_exits_zero() {
    let out = kinetd().arg("-version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("kinetd "));
}

#[test]
fn stray_argument_prints_usage_and_exits_one() {
    let out = kinetd().args(["-dontfork", "stray"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unexpected argument \"stray\""), "{err}");
    assert!(err.contains("Usage: kinetd"), "{err}");
}

#[test]
fn unknown_options_are_ignored_and_the_daemon_serves() {
    let dir = TempDir::new("unknown-opts");
    let port = free_port();
    let chal = dir.script("hi.sh", "echo hi");
    let log = dir.join("svc.log");
    let config = service("opts", port, &chal, &log, "");
    let _daemon = Daemon::start(
        &dir,
        &config,
        &["-inetd_compat", "-reuse", "-logprocs", "3"],
    );
    assert_eq!(exchange(port, b""), "hi\n");
}

#[test]
fn foreground_daemon_logs_to_stderr_without_filelog() {
    let dir = TempDir::new("stderr");
    let config = dir.write("empty.conf", "");
    let mut child = kinetd()
        .arg("-f")
        .arg(&config)
        .arg("-dontfork")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // -dontfork implies -stayalive: no service, and still running.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "kinetd -dontfork exited"
    );
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NOTICE: Started working: 0 available services"),
        "{err}"
    );
    assert!(err.contains("WARNING: Exiting..."), "{err}");
    let first = err.lines().next().unwrap();
    assert!(
        first.contains(" kinetd["),
        "xinetd's daemon line format: {first}"
    );
}

#[test]
fn without_services_or_stayalive_the_daemon_exits_one() {
    let dir = TempDir::new("noservices");
    let config = dir.write("empty.conf", "");
    let log = dir.join("daemon.log");
    let status = kinetd()
        .arg("-f")
        .arg(&config)
        .arg("-d")
        .arg("-filelog")
        .arg(&log)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("CRITICAL: "), "{text}");
    assert!(text.contains("no services. Exiting..."), "{text}");
}

#[test]
fn missing_configuration_is_critical() {
    let dir = TempDir::new("noconfig");
    let log = dir.join("daemon.log");
    let status = kinetd()
        .arg("-f")
        .arg(dir.join("missing.conf"))
        .arg("-dontfork")
        .arg("-filelog")
        .arg(&log)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("couldn't get configuration. Exiting..."),
        "{text}"
    );
    assert!(text.contains("missing.conf"), "the file is named: {text}");
}

#[test]
fn without_dontfork_the_daemon_detaches_and_writes_its_pidfile() {
    let dir = TempDir::new("detach");
    let port = free_port();
    let chal = dir.script("hi.sh", "echo hi");
    let log = dir.join("svc.log");
    let config = dir.write("kinetd.conf", &service("bg", port, &chal, &log, ""));
    let pidfile = dir.join("kinetd.pid");
    let daemon_log = dir.join("daemon.log");
    let status = kinetd()
        .arg("-f")
        .arg(&config)
        .arg("-pidfile")
        .arg(&pidfile)
        .arg("-filelog")
        .arg(&daemon_log)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the foreground process exits 0 once detached"
    );

    let text = wait_for_file(&daemon_log, "Started working: 1 available services");
    let pid: u32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(text.contains(&format!("kinetd[{pid}]")), "{text}");
    assert_eq!(exchange(port, b""), "hi\n");

    signal(pid, "TERM");
    let deadline = Instant::now() + PATIENCE;
    while process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the detached daemon did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pidfile.exists());
}

#[test]
fn startup_and_launch_cost_do_not_depend_on_the_descriptor_limit() {
    let dir = TempDir::new("nofile");
    let port = free_port();
    let probe = probe(&dir);
    let log = dir.join("svc.log");
    let config = service("nofile", port, &probe, &log, "");
    // The kernel's ceiling for RLIMIT_NOFILE (fs.nr_open) if this machine lets us raise
    // the limit that far, else the current hard limit; xinetd closes every descriptor up
    // to the limit at startup.
    let nr_open = fs::read_to_string("/proc/sys/fs/nr_open").unwrap();
    let raise = |limit: &str| {
        Command::new("prlimit")
            .arg(format!("--nofile={limit}:{limit}"))
            .arg("true")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let nr_open = if raise(nr_open.trim()) {
        nr_open.trim().to_owned()
    } else {
        let hard = Command::new("sh")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap();
        String::from_utf8(hard.stdout).unwrap().trim().to_owned()
    };
    eprintln!("running kinetd with RLIMIT_NOFILE = {nr_open}");
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={nr_open}:{nr_open}"))
        .arg(env!("CARGO_BIN_EXE_kinetd"));
    let started = Instant::now();
    let _daemon = Daemon::start_with(&dir, &config, &[], &mut command);
    let out = exchange(port, b"");
    let elapsed = started.elapsed();
    assert!(out.lines().any(|l| l == "fds=0 1 2 "), "{out}");
    assert_eq!(probe_value(&out, "nofile"), format!("{nr_open}/{nr_open}"));
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn default_configuration_is_xinetds() {
    // `CMD ["kinetd", "-dontfork"]` reads /etc/xinetd.conf, as xinetd does.
    let dir = TempDir::new("default-conf");
    let log = dir.join("daemon.log");
    let mut child = kinetd()
        .args(["-dontfork", "-filelog"])
        .arg(&log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    if std::path::Path::new("/etc/xinetd.conf").exists() {
        wait_for_file(&log, "Started working");
        signal(child.id(), "TERM");
        assert!(child.wait().unwrap().success());
    } else {
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1));
        let text = fs::read_to_string(&log).unwrap();
        assert!(text.contains("/etc/xinetd.conf"), "{text}");
    }
}
