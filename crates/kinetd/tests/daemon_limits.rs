//! Admission: every limit refuses in the parent, with its FAIL line and banner_fail, and
//! the service keeps serving the connections that are allowed.

mod daemon_support;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use daemon_support::*;
use socket2::{Domain, SockAddr, Socket, Type};

/// A challenge that says hello and then holds the connection until the client closes.
const HOLD: &str = "echo hello\nread x";

/// Connects from another loopback address (all of 127.0.0.0/8 is local on Linux).
fn connect_from(source: Ipv4Addr, port: u16) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SockAddr::from(SocketAddr::from((source, 0))))
        .unwrap();
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    socket.connect(&SockAddr::from(target)).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads the first line; the challenge's greeting shows the connection was served.
fn first_line(stream: &TcpStream) -> String {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

/// What a refused client receives before the daemon closes the connection.
fn refusal(mut stream: TcpStream) -> String {
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

struct Setup {
    dir: TempDir,
    port: u16,
    log: std::path::PathBuf,
    daemon: Daemon,
}

fn start(name: &str, extra: &str, args: &[&str]) -> Setup {
    let dir = TempDir::new(name);
    let port = free_port();
    let chal = dir.script("hold.sh", HOLD);
    let log = dir.join("svc.log");
    let fail = dir.write("fail.txt", "go away\n");
    let extra = format!("{extra}\n    banner_fail = {}", fail.display());
    let config = service(name, port, &chal, &log, &extra);
    let daemon = Daemon::start(&dir, &config, args);
    Setup {
        dir,
        port,
        log,
        daemon,
    }
}

#[test]
fn instances_limit_refuses_with_service_limit_and_banner_fail() {
    let s = start("inst", "    instances = 2", &[]);
    let a = connect(s.port);
    let b = connect(s.port);
    assert_eq!(first_line(&a), "hello\n");
    assert_eq!(first_line(&b), "hello\n");

    assert_eq!(refusal(connect(s.port)), "go away\n");
    let text = wait_for_file(&s.log, "FAIL: inst service_limit from=127.0.0.1");
    assert_eq!(text.matches("START: inst").count(), 2, "{text}");

    // A slot frees when a session ends.
    drop(a);
    wait_for_count(&s.log, "EXIT: inst", 1);
    assert_eq!(first_line(&connect(s.port)), "hello\n");
}

#[test]
fn a_client_who_reconnects_as_a_session_ends_gets_the_freed_instance() {
    // The client sees the end of its session a moment before the daemon can reap it; the
    // new connection waits for that instead of being refused with service_limit.
    let dir = TempDir::new("inst-reconnect");
    let port = free_port();
    let chal = dir.script("hello.sh", "echo hello");
    let log = dir.join("svc.log");
    let config = service("instre", port, &chal, &log, "    instances = 1");
    let _daemon = Daemon::start(&dir, &config, &[]);

    let refused = (0..50).filter(|_| exchange(port, b"") != "hello\n").count();

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(refused, 0, "sequential connections refused:\n{text}");
}

#[test]
fn a_connection_held_for_a_slot_that_stays_taken_is_refused_soon() {
    let s = start("heldout", "    instances = 1", &[]);
    let a = connect(s.port);
    assert_eq!(first_line(&a), "hello\n");

    let started = std::time::Instant::now();
    assert_eq!(refusal(connect(s.port)), "go away\n");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "refused after {waited:?}, not within a moment"
    );
    wait_for_file(&s.log, "FAIL: heldout service_limit from=127.0.0.1");
    // Meanwhile and after, the admitted session is served as usual.
    drop(a);
    wait_for_count(&s.log, "EXIT: heldout", 1);
    assert_eq!(first_line(&connect(s.port)), "hello\n");
}

#[test]
fn per_source_limit_counts_each_address_apart() {
    let s = start("persrc", "    per_source = 1", &[]);
    let a = connect(s.port);
    assert_eq!(first_line(&a), "hello\n");
    assert_eq!(refusal(connect(s.port)), "go away\n");
    wait_for_file(&s.log, "FAIL: persrc per_source_limit from=127.0.0.1");

    let other = connect_from(Ipv4Addr::new(127, 0, 0, 2), s.port);
    assert_eq!(
        first_line(&other),
        "hello\n",
        "another source has its own allowance"
    );
}

#[test]
fn global_limit_refuses_with_process_limit() {
    let s = start("glob", "", &["-limit", "1"]);
    let a = connect(s.port);
    assert_eq!(first_line(&a), "hello\n");
    assert_eq!(refusal(connect(s.port)), "go away\n");
    wait_for_file(&s.log, "FAIL: glob process_limit from=127.0.0.1");
}

#[test]
fn only_from_admits_listed_addresses_only() {
    let s = start("only", "    only_from = 127.0.0.2", &[]);
    assert_eq!(refusal(connect(s.port)), "go away\n");
    let text = wait_for_file(&s.log, "FAIL: only address from=127.0.0.1");
    assert!(
        !text.contains("START"),
        "refused in the parent, no process: {text}"
    );

    let listed = connect_from(Ipv4Addr::new(127, 0, 0, 2), s.port);
    assert_eq!(first_line(&listed), "hello\n");
}

#[test]
fn no_access_refuses_listed_addresses() {
    let s = start("deny", "    no_access = 127.0.0.0/24", &[]);
    assert_eq!(refusal(connect(s.port)), "go away\n");
    wait_for_file(&s.log, "FAIL: deny address from=127.0.0.1");
    let other = connect_from(Ipv4Addr::new(127, 0, 1, 1), s.port);
    assert_eq!(first_line(&other), "hello\n");
}

#[test]
fn access_times_refuse_outside_the_intervals() {
    // An interval that does not hold the current hour (the daemon uses the same zone).
    let hour: u32 = String::from_utf8(
        std::process::Command::new("date")
            .arg("+%H")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let interval = if hour < 12 {
        "13:00-14:00"
    } else {
        "01:00-02:00"
    };
    let s = start("times", &format!("    access_times = {interval}"), &[]);
    assert_eq!(refusal(connect(s.port)), "go away\n");
    wait_for_file(&s.log, "FAIL: times time from=127.0.0.1");
}

#[test]
fn max_load_refuses_when_the_load_is_at_the_limit() {
    // The load average is never below 0, so max_load = 0 refuses every connection.
    let s = start("load", "    max_load = 0", &[]);
    assert_eq!(refusal(connect(s.port)), "go away\n");
    wait_for_file(&s.log, "FAIL: load load from=127.0.0.1");
}

#[test]
fn cps_refuses_the_excess_but_keeps_listening() {
    let dir = TempDir::new("cps");
    let port = free_port();
    let chal = dir.script("hi.sh", "echo hi");
    let log = dir.join("svc.log");
    // The helper's `cps = 10000 1` comes after this line, and the first value wins.
    let config = service("cps", port, &chal, &log, "")
        .replace("    server =", "    cps = 3 10\n    server =");
    let _daemon = Daemon::start(&dir, &config, &[]);

    let answers: Vec<String> = (0..10).map(|_| exchange(port, b"")).collect();
    let served = answers.iter().filter(|a| a.as_str() == "hi\n").count();
    assert!(
        (3..10).contains(&served),
        "some served, some refused: {answers:?}"
    );
    wait_for_file(&log, "FAIL: cps connections per second from=127.0.0.1");

    // xinetd would have closed the port for 10 seconds; here it is served again as soon
    // as the rate allows.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(exchange(port, b""), "hi\n");
}

#[test]
fn banners_are_sent_before_and_after_admission() {
    let dir = TempDir::new("banner");
    let port = free_port();
    let chal = dir.script("hi.sh", "echo challenge");
    let log = dir.join("svc.log");
    let banner = dir.write("banner.txt", "welcome\n");
    let success = dir.write("success.txt", "admitted\n");
    let extra = format!(
        "    banner = {}\n    banner_success = {}",
        banner.display(),
        success.display()
    );
    let _daemon = Daemon::start(&dir, &service("banner", port, &chal, &log, &extra), &[]);
    assert_eq!(exchange(port, b""), "welcome\nadmitted\nchallenge\n");
}

#[test]
fn refusals_a_client_can_trigger_are_logged_at_a_limited_rate() {
    let s = start("flood", "    no_access = 127.0.0.1", &[]);
    // Connections opened faster than 20 a second, well past the burst of 100.
    let streams: Vec<TcpStream> = (0..300).map(|_| connect(s.port)).collect();
    for stream in streams {
        let _ = refusal(stream);
    }
    // Once lines flow again, the daemon log says how many were dropped.
    std::thread::sleep(Duration::from_millis(200));
    let _ = refusal(connect(s.port));
    let daemon_log = s.daemon.wait_for_log("FAIL lines were not logged");
    let text = std::fs::read_to_string(&s.log).unwrap();
    let logged = text.matches("FAIL: flood address").count();
    assert!(logged < 200, "{logged} FAIL lines for 301 refusals");
    assert!(daemon_log.contains("service flood:"), "{daemon_log}");
    drop(s.dir);
}

#[test]
fn sigusr1_counts_the_connections_held_for_a_slot() {
    let s = start("heldcount", "    instances = 1", &[]);
    let a = connect(s.port);
    assert_eq!(first_line(&a), "hello\n");

    // A second connection is held for at most a quarter of a second; the dump must be
    // written within that time, so a slow machine may need another try.
    let service_line = "service heldcount: listening on";
    let wanted = format!("{service_line} 127.0.0.1:{} running=1 held=1", s.port);
    let mut dumps = 0;
    let shown = (0..10).any(|_| {
        let _held = connect(s.port);
        std::thread::sleep(Duration::from_millis(20));
        s.daemon.signal("USR1");
        dumps += 1;
        let text = wait_for_count(&s.daemon.log, service_line, dumps);
        let last = text.lines().rfind(|line| line.contains(service_line));
        last.is_some_and(|line| line.contains(&wanted))
    });
    assert!(
        shown,
        "no dump showed the held connection:\n{}",
        s.daemon.log_text()
    );
}
