//! The daemon serves challenges: input and output over the socket, the process a
//! challenge runs in, its environment and arguments, and many clients at once.

mod daemon_support;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;

use daemon_support::*;

#[test]
fn client_input_reaches_the_challenge_and_its_output_reaches_the_client() {
    let dir = TempDir::new("io");
    let port = free_port();
    let chal = dir.script("chal.sh", "echo ready\nread name\necho \"hello $name\"");
    let log = dir.join("svc.log");
    let _daemon = Daemon::start(&dir, &service("echo", port, &chal, &log, ""), &[]);

    let stream = connect(port);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (&stream).write_all(b"world\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "hello world\n");

    let text = wait_for_file(&log, "EXIT: echo status=0");
    assert!(text.contains("START: echo pid="), "{text}");
    assert!(text.contains(" from=127.0.0.1"), "{text}");
    assert!(text.contains("duration="), "{text}");
}

#[test]
fn half_closed_client_still_receives_the_answer() {
    let dir = TempDir::new("halfclose");
    let port = free_port();
    // The challenge reads to end of input before answering.
    let chal = dir.script("count.sh", "n=$(wc -c)\nsleep 0.2\necho \"bytes=$n\"");
    let log = dir.join("svc.log");
    let _daemon = Daemon::start(&dir, &service("count", port, &chal, &log, ""), &[]);

    let answer = exchange(port, b"0123456789");
    assert_eq!(answer.trim(), "bytes=10");
}

#[test]
fn many_concurrent_clients_are_all_served() {
    let dir = TempDir::new("many");
    let port = free_port();
    let chal = dir.script("slow.sh", "read x\nsleep 0.5\necho \"ok $x\"");
    let log = dir.join("svc.log");
    let _daemon = Daemon::start(&dir, &service("many", port, &chal, &log, ""), &[]);

    const CLIENTS: usize = 100;
    // All connect before any is answered, so all run at once.
    let streams: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(port)).collect();
    let handles: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut stream)| {
            thread::spawn(move || {
                stream.write_all(format!("{i}\n").as_bytes()).unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                read_all(&mut stream)
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join().unwrap().trim(), format!("ok {i}"));
    }
    let text = wait_for_count(&log, "EXIT: many status=0", CLIENTS);
    assert_eq!(text.matches("START: many").count(), CLIENTS);
}

#[test]
fn challenge_runs_in_its_own_session_with_only_the_socket_open_and_default_signals() {
    let dir = TempDir::new("process");
    let port = free_port();
    let probe = probe(&dir);
    let log = dir.join("svc.log");
    let extra = "    rlimit_cpu = 7\n    rlimit_files = 64\n    umask = 027\n    nice = 5";
    let _daemon = Daemon::start(&dir, &service("state", port, &probe, &log, extra), &[]);

    let out = exchange(port, b"");
    assert!(
        out.lines().any(|l| l == "fds=0 1 2 "),
        "only the socket is open: {out}"
    );
    assert_eq!(
        probe_value(&out, "sid"),
        probe_value(&out, "pid"),
        "own session: {out}"
    );
    assert_eq!(
        probe_value(&out, "pgid"),
        probe_value(&out, "pid"),
        "own group: {out}"
    );
    assert_eq!(probe_value(&out, "cwd"), "/");
    assert_eq!(
        probe_value(&out, "SigIgn"),
        "0000000000000000",
        "nothing ignored"
    );
    assert_eq!(
        probe_value(&out, "SigBlk"),
        "0000000000000000",
        "nothing blocked"
    );
    assert_eq!(probe_value(&out, "no_new_privs"), "1");
    assert_eq!(probe_value(&out, "umask"), "0027");
    assert_eq!(probe_value(&out, "nofile"), "64/64");
    assert_eq!(probe_value(&out, "cpu"), "7/7");
    // `nice` adds to the daemon's own niceness, as nice(2) does, and the kernel caps it at 19.
    let expected_nice = (own_niceness() + 5).min(19);
    assert_eq!(probe_value(&out, "nice"), expected_nice.to_string());
    assert_eq!(probe_value(&out, "Seccomp"), "0", "no policy, no filter");
}

#[test]
fn environment_holds_path_env_and_remote_address_but_not_the_daemons_secrets() {
    let dir = TempDir::new("env");
    let port = free_port();
    let chal = dir.script("env.sh", "env | sort");
    let log = dir.join("svc.log");
    let extra = "    env = GREETING=hi OTHER=x";
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kinetd"));
    command
        .env("FLAG", "CTF{must-not-leak}")
        .env("PATH", "/usr/bin:/bin");
    let config = service("env", port, &chal, &log, extra);
    let _daemon = Daemon::start_with(&dir, &config, &[], &mut command);

    let out = exchange(port, b"");
    let vars: Vec<&str> = out.lines().filter(|l| !l.starts_with("PWD=")).collect();
    let client_port = vars
        .iter()
        .find_map(|v| v.strip_prefix("REMOTE_PORT="))
        .expect("REMOTE_PORT is set");
    assert!(client_port.parse::<u16>().is_ok(), "{out}");
    let expected_port = format!("REMOTE_PORT={client_port}");
    assert_eq!(
        vars,
        [
            "GREETING=hi",
            "OTHER=x",
            "PATH=/usr/bin:/bin",
            "REMOTE_HOST=127.0.0.1",
            expected_port.as_str(),
        ],
        "{out}"
    );
}

#[test]
fn passenv_passes_the_named_variables_only() {
    let dir = TempDir::new("passenv");
    let port = free_port();
    let chal = dir.script("env.sh", "env | sort");
    let log = dir.join("svc.log");
    let extra = "    passenv = TERM_LIKE PATH\n    env = EXTRA=1";
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kinetd"));
    command
        .env("FLAG", "CTF{secret}")
        .env("TERM_LIKE", "vt100")
        .env("PATH", "/usr/bin:/bin");
    let config = service("passenv", port, &chal, &log, extra);
    let _daemon = Daemon::start_with(&dir, &config, &[], &mut command);

    let out = exchange(port, b"");
    assert!(out.contains("TERM_LIKE=vt100\n"), "{out}");
    assert!(out.contains("EXTRA=1\n"), "{out}");
    assert!(out.contains("REMOTE_HOST=127.0.0.1\n"), "{out}");
    assert!(!out.contains("FLAG"), "{out}");
}

#[test]
fn argv_zero_is_the_program_name_or_the_first_argument_with_nameinargs() {
    let dir = TempDir::new("argv");
    let probe = probe(&dir);
    let log = dir.join("svc.log");
    let port_plain = free_port();
    let port_names = free_port();
    let config = format!(
        "{}{}",
        service(
            "plain",
            port_plain,
            &probe,
            &log,
            "    server_args = one two"
        ),
        service(
            "names",
            port_names,
            &probe,
            &log,
            "    flags = NAMEINARGS\n    server_args = custom-name three",
        )
    );
    let _daemon = Daemon::start(&dir, &config, &[]);

    let out = exchange(port_plain, b"");
    assert_eq!(
        probe_value(&out, "argv0"),
        "probe",
        "basename of server: {out}"
    );
    assert_eq!(probe_value(&out, "argv1"), "one");
    assert_eq!(probe_value(&out, "argv2"), "two");
    let out = exchange(port_names, b"");
    assert_eq!(probe_value(&out, "argv0"), "custom-name", "{out}");
    assert_eq!(probe_value(&out, "argv1"), "three");
}

#[test]
fn challenge_runs_as_nobody_when_the_service_names_it() {
    require_root("user = nobody");
    let dir = TempDir::new("nobody");
    let port = free_port();
    let probe = probe(&dir);
    let log = dir.join("svc.log");
    let config = service_as("nobody", "who", port, &probe, &log, "");
    let _daemon = Daemon::start(&dir, &config, &[]);

    let out = exchange(port, b"");
    let id = |flag: &str| {
        let out = std::process::Command::new("id")
            .args([flag, "nobody"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(probe_value(&out, "uid"), id("-u"), "{out}");
    assert_eq!(probe_value(&out, "gid"), id("-g"), "{out}");
    let groups = out.lines().find_map(|l| l.strip_prefix("groups=")).unwrap();
    // `groups = no` (the default) clears the supplementary groups, as xinetd does.
    assert_eq!(groups.trim(), "", "none of root's groups are kept: {out}");
}

#[test]
fn ipv6_clients_reach_a_dual_stack_service() {
    let dir = TempDir::new("ipv6");
    let port = free_port();
    let chal = dir.script("where.sh", "echo \"$REMOTE_HOST\"");
    let log = dir.join("svc.log");
    // No bind: the default listener is IPv6 with IPv4 mapped in.
    let config = service("dual", port, &chal, &log, "").replace("    bind = 127.0.0.1\n", "");
    let _daemon = Daemon::start(&dir, &config, &[]);

    let Ok(mut v6) = TcpStream::connect(("::1", port)) else {
        panic!("this test needs IPv6 on the loopback interface (::1)");
    };
    v6.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut v6).trim(), "::1");
    assert_eq!(exchange(port, b"").trim(), "::ffff:127.0.0.1");
    let text = wait_for_count(&log, "EXIT: dual", 2);
    assert!(text.contains("from=::ffff:127.0.0.1"), "{text}");
}

#[test]
fn listen_backlog_holds_a_burst_of_256_connections() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        somaxconn >= 256,
        "net.core.somaxconn is {somaxconn}; this test needs at least 256"
    );
    let dir = TempDir::new("burst");
    let port = free_port();
    let chal = dir.script("hi.sh", "echo hi");
    let log = dir.join("svc.log");
    let daemon = Daemon::start(&dir, &service("burst", port, &chal, &log, ""), &[]);

    // While the daemon is stopped, every connection waits in the accept queue. With
    // xinetd's backlog of 64 the 66th SYN would be dropped and its connect would wait
    // a second for the retransmission.
    daemon.signal("STOP");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut streams = Vec::new();
    for i in 0..256 {
        let started = std::time::Instant::now();
        let stream = TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(900));
        let elapsed = started.elapsed();
        let stream = stream.unwrap_or_else(|err| {
            daemon.signal("CONT");
            panic!("connection {i} did not complete at once ({elapsed:?}): {err}")
        });
        streams.push(stream);
    }
    daemon.signal("CONT");

    for mut stream in streams {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        assert_eq!(read_all(&mut stream), "hi\n");
    }
    wait_for_count(&log, "EXIT: burst status=0", 256);
}

#[test]
fn nodelay_and_keepalive_flags_reach_the_challenges_socket() {
    let dir = TempDir::new("sockflags");
    let probe = probe(&dir);
    let log = dir.join("svc.log");
    let (flagged, plain) = (free_port(), free_port());
    let config = format!(
        "{}{}",
        service(
            "flagged",
            flagged,
            &probe,
            &log,
            "    flags = REUSE NODELAY KEEPALIVE"
        ),
        service("plain", plain, &probe, &log, "")
    );
    let _daemon = Daemon::start(&dir, &config, &[]);

    let out = exchange(flagged, b"");
    assert_eq!(probe_value(&out, "nodelay"), "1", "{out}");
    assert_eq!(probe_value(&out, "keepalive"), "1", "{out}");
    let out = exchange(plain, b"");
    assert_eq!(probe_value(&out, "nodelay"), "0", "{out}");
    assert_eq!(probe_value(&out, "keepalive"), "0", "{out}");
}

#[test]
fn ipv4_flag_and_v6only_choose_the_address_family() {
    let dir = TempDir::new("family");
    let chal = dir.script("hi.sh", "echo hi");
    let log = dir.join("svc.log");
    let (v4, v6) = (free_port(), free_port());
    let unbound = |name: &str, port: u16, extra: &str| {
        service(name, port, &chal, &log, extra).replace("    bind = 127.0.0.1\n", "")
    };
    let config = format!(
        "{}{}",
        unbound("v4", v4, "    flags = IPv4"),
        unbound("v6", v6, "    flags = IPv6\n    v6only = yes")
    );
    let _daemon = Daemon::start(&dir, &config, &[]);

    assert_eq!(exchange(v4, b""), "hi\n");
    assert!(
        TcpStream::connect(("::1", v4)).is_err(),
        "IPv4 flag: no IPv6 socket"
    );
    let mut stream = TcpStream::connect(("::1", v6)).expect("this test needs IPv6 on ::1");
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut stream), "hi\n");
    assert!(
        TcpStream::connect(("127.0.0.1", v6)).is_err(),
        "v6only = yes: no IPv4 clients"
    );
}

/// This process's niceness (field 19 of /proc/self/stat), which the daemon inherits.
fn own_niceness() -> i32 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let after_comm = &stat[stat.rfind(')').expect("comm is parenthesised") + 2..];
    after_comm
        .split(' ')
        .nth(16)
        .and_then(|field| field.parse().ok())
        .expect("niceness field")
}

#[test]
fn setup_failures_under_load_each_name_their_service_and_are_all_accounted_for() {
    use std::os::unix::fs::PermissionsExt;

    let dir = TempDir::new("failing");
    // The configuration accepts it; execve fails with ENOENT for the missing interpreter.
    let chal = dir.write("broken.sh", "#!/nonexistent/interpreter\n");
    std::fs::set_permissions(&chal, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.join("svc.log");
    let port = free_port();
    let mut daemon = Daemon::start(&dir, &service("failing", port, &chal, &log, ""), &[]);

    const CLIENTS: usize = 16;
    const EACH: usize = 100;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..EACH {
                    assert_eq!(read_all(&mut connect(port)), "");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    wait_for_count(&log, "EXIT: failing status=127", CLIENTS * EACH);

    // Failure lines are rate-limited: every one written names the service, and those
    // dropped are counted, the last of them when the daemon exits.
    daemon.signal("TERM");
    assert!(daemon.wait_exit().success());
    let text = daemon.log_text();
    let failures: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("server not started"))
        .collect();
    for line in &failures {
        assert!(
            line.contains("service failing: server not started: child ")
                && line.ends_with("execve failed: No such file or directory (os error 2)"),
            "{line}"
        );
    }
    let dropped: usize = text
        .lines()
        .filter_map(|line| line.strip_suffix(" error lines were not logged (rate limit)"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert!(dropped > 0, "{text}");
    assert_eq!(failures.len() + dropped, CLIENTS * EACH, "{text}");
}
