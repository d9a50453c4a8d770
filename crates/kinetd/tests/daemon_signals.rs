//! Signals: SIGHUP reloads, SIGTERM ends everything, SIGQUIT leaves sessions running,
//! SIGUSR1 writes the state; and children are always reaped.

mod daemon_support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use daemon_support::*;

/// A challenge that greets, then echoes each line back until the client closes.
const ECHO: &str = "echo hello\nwhile read line; do echo \"echo $line\"; done";

fn greeted(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let stream = connect(port);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "hello\n");
    (stream, reader)
}

fn round_trip(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, text: &str) -> String {
    stream.write_all(format!("{text}\n").as_bytes()).unwrap();
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    line
}

/// The pids of the daemon's zombie children.
fn zombies_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str()) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn reload_keeps_kept_sessions_ends_removed_ones_and_starts_new_services() {
    let dir = TempDir::new("reload");
    let chal = dir.script("echo.sh", ECHO);
    let log = dir.join("svc.log");
    let (kept_port, gone_port, new_port) = (free_port(), free_port(), free_port());
    let kept = service("kept", kept_port, &chal, &log, "");
    let gone = service("gone", gone_port, &chal, &log, "");
    let daemon = Daemon::start(&dir, &format!("{kept}{gone}"), &[]);

    let (mut kept_conn, mut kept_reader) = greeted(kept_port);
    let (mut gone_conn, mut gone_reader) = greeted(gone_port);

    let added = service("added", new_port, &chal, &log, "");
    daemon.rewrite_config(&format!("{kept}{added}"));
    daemon.signal("HUP");
    daemon.wait_for_log("Reconfigured: new=1 old=2 dropped=1");

    assert_eq!(
        round_trip(&mut kept_conn, &mut kept_reader, "a"),
        "echo a\n"
    );
    assert_eq!(
        round_trip(&mut gone_conn, &mut gone_reader, "b"),
        "",
        "session ended"
    );
    let text = wait_for_file(&log, "EXIT: gone signal=9");
    assert!(!text.contains("EXIT: kept"), "{text}");
    assert!(
        TcpStream::connect(("127.0.0.1", gone_port)).is_err(),
        "gone stops listening"
    );
    let (mut new_conn, mut new_reader) = greeted(new_port);
    assert_eq!(round_trip(&mut new_conn, &mut new_reader, "c"), "echo c\n");
}

#[test]
fn reload_applies_new_limits_to_kept_services() {
    let dir = TempDir::new("reload-limits");
    let chal = dir.script("echo.sh", ECHO);
    let log = dir.join("svc.log");
    let port = free_port();
    let daemon = Daemon::start(&dir, &service("lim", port, &chal, &log, ""), &[]);
    let (_a, _ra) = greeted(port);

    daemon.rewrite_config(&service("lim", port, &chal, &log, "    instances = 1"));
    daemon.signal("HUP");
    daemon.wait_for_log("readjusting service lim");
    // The live session counts against the new limit.
    assert_eq!(exchange(port, b""), "");
    wait_for_file(&log, "FAIL: lim service_limit");
}

#[test]
fn failed_reload_keeps_the_old_configuration_serving() {
    let dir = TempDir::new("reload-fail");
    let chal = dir.script("echo.sh", ECHO);
    let log = dir.join("svc.log");
    let port = free_port();
    let daemon = Daemon::start(&dir, &service("old", port, &chal, &log, ""), &[]);

    fs::remove_file(&daemon.config).unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("reconfiguration failed");
    let (mut conn, mut reader) = greeted(port);
    assert_eq!(round_trip(&mut conn, &mut reader, "x"), "echo x\n");
}

#[test]
fn reload_under_load_loses_no_connection() {
    let dir = TempDir::new("reload-load");
    let chal = dir.script("echo.sh", "read x; echo \"got $x\"");
    let log = dir.join("svc.log");
    let port = free_port();
    let config = service("busy", port, &chal, &log, "");
    let daemon = Daemon::start(&dir, &config, &[]);

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut served = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut stream = connect(port);
                    stream
                        .write_all(format!("{c}-{served}\n").as_bytes())
                        .unwrap();
                    stream.shutdown(Shutdown::Write).unwrap();
                    assert_eq!(read_all(&mut stream), format!("got {c}-{served}\n"));
                    served += 1;
                }
                served
            })
        })
        .collect();

    for round in 0..5 {
        thread::sleep(Duration::from_millis(150));
        // Alternate between two equivalent configurations.
        let extra = if round % 2 == 0 {
            "    instances = 500"
        } else {
            ""
        };
        daemon.rewrite_config(&service("busy", port, &chal, &log, extra));
        daemon.signal("HUP");
    }
    daemon.wait_for_log("Reconfigured");
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let served: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(served > 10, "only {served} connections served");
}

#[test]
fn sigterm_ends_every_session_and_exits() {
    let dir = TempDir::new("term");
    let chal = dir.script("echo.sh", ECHO);
    let log = dir.join("svc.log");
    let port = free_port();
    let pidfile = dir.join("kinetd.pid");
    let pidfile_arg = pidfile.to_str().unwrap();
    let config = service("term", port, &chal, &log, "");
    let mut daemon = Daemon::start(&dir, &config, &["-pidfile", pidfile_arg]);
    assert_eq!(
        fs::read_to_string(&pidfile).unwrap().trim(),
        daemon.pid().to_string()
    );

    let (mut a, mut ra) = greeted(port);
    let (mut b, mut rb) = greeted(port);
    let text = wait_for_count(&log, "START: term", 2);
    let pids = [started_pid(&text, "term", 0), started_pid(&text, "term", 1)];

    daemon.signal("TERM");
    let status = daemon.wait_exit();
    assert!(status.success(), "{status}");
    assert_eq!(round_trip(&mut a, &mut ra, "x"), "");
    assert_eq!(round_trip(&mut b, &mut rb, "y"), "");
    for pid in pids {
        assert!(!process_alive(pid), "server {pid} still runs");
    }
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("EXIT: term signal=9").count(), 2, "{text}");
    assert!(!pidfile.exists(), "pidfile removed");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn sigquit_exits_and_leaves_sessions_running() {
    let dir = TempDir::new("quit");
    let chal = dir.script("echo.sh", ECHO);
    let log = dir.join("svc.log");
    let port = free_port();
    let mut daemon = Daemon::start(&dir, &service("quit", port, &chal, &log, ""), &[]);
    let (mut conn, mut reader) = greeted(port);
    let pid = started_pid(&wait_for_file(&log, "START: quit"), "quit", 0);

    daemon.signal("QUIT");
    assert!(daemon.wait_exit().success());
    assert_eq!(round_trip(&mut conn, &mut reader, "still"), "echo still\n");
    assert!(process_alive(pid));
    // The session is ours to end now.
    signal(pid, "KILL");
}

#[test]
fn sigusr1_writes_the_state_to_the_log() {
    let dir = TempDir::new("usr1");
    let chal = dir.script("echo.sh", ECHO);
    let log = dir.join("svc.log");
    let port = free_port();
    let daemon = Daemon::start(&dir, &service("dump", port, &chal, &log, ""), &[]);
    let _session = greeted(port);
    wait_for_file(&log, "START: dump");

    daemon.signal("USR1");
    let text = daemon.wait_for_log("server ");
    assert!(
        text.contains("state: 1 services, 1 running servers"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "service dump: listening on 127.0.0.1:{port} running=1"
        )),
        "{text}"
    );
}

#[test]
fn ended_sessions_leave_no_zombies() {
    let dir = TempDir::new("zombies");
    let chal = dir.script("quick.sh", "echo bye");
    let log = dir.join("svc.log");
    let port = free_port();
    let daemon = Daemon::start(&dir, &service("quick", port, &chal, &log, ""), &[]);
    for _ in 0..50 {
        assert_eq!(exchange(port, b""), "bye\n");
    }
    wait_for_count(&log, "EXIT: quick status=0", 50);
    let deadline = Instant::now() + PATIENCE;
    while !zombies_of(daemon.pid()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "zombies: {:?}",
            zombies_of(daemon.pid())
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reload_with_a_policy_that_no_longer_compiles_keeps_the_service_on_its_previous_policy() {
    let dir = TempDir::new("reload-bad-policy");
    let chal = dir.script("echo.sh", ECHO);
    let log = dir.join("svc.log");
    let port = free_port();
    let policy = dir.write("chal.policy", "DEFAULT ALLOW\n");
    let extra = format!("    kafel_rule = {}", policy.display());
    let daemon = Daemon::start(&dir, &service("chal", port, &chal, &log, &extra), &[]);
    let (mut live, mut live_reader) = greeted(port);

    fs::write(&policy, "ALLOW { read, nosuch }\nDEFAULT KILL\n").unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("keeps serving with its previous settings");
    let text = daemon.wait_for_log("Reconfigured: new=0 old=1 dropped=0");
    assert!(
        text.contains("nosuch"),
        "the compiler's error is logged: {text}"
    );

    assert_eq!(round_trip(&mut live, &mut live_reader, "a"), "echo a\n");
    let (mut conn, mut reader) = greeted(port);
    assert_eq!(round_trip(&mut conn, &mut reader, "b"), "echo b\n");
}
