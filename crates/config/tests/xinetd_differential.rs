//! Side by side with Debian's xinetd: each configuration is given to the real xinetd
//! (listening on 127.0.0.1 only) and to kinetd's loader, and the table says whether each
//! starts the service. Rows where the two differ are kinetd's deliberate deviations
//! (docs/config.md lists them); every other row pins xinetd's own behaviour.
//!
//! Needs /usr/sbin/xinetd (scripts/test.sh installs it) and root, so that xinetd may
//! switch to `user = nobody`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const XINETD: &str = "/usr/sbin/xinetd";

/// A service body that both accept, on `port`, with `extra` lines added.
fn service(port: u16, extra: &str) -> String {
    format!(
        "service probe\n{{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\
         \ttype = UNLISTED\n\tport = {port}\n\tbind = 127.0.0.1\n\tserver = /bin/cat\n\
         {extra}\n}}\n"
    )
}

/// One row: how the configuration is made from a working one, and who starts it.
struct Case {
    name: &'static str,
    make: fn(String) -> String,
    xinetd_starts: bool,
    kinetd_starts: bool,
}

fn add(line: &'static str) -> impl Fn(String) -> String {
    move |text: String| text.replace("\n}\n", &format!("\n\t{line}\n}}\n"))
}

const CASES: &[Case] = &[
    Case {
        name: "the working service",
        make: |t| t,
        xinetd_starts: true,
        kinetd_starts: true,
    },
    Case {
        name: "trailing comment: xinetd drops the limit, kinetd applies it",
        make: |t| add("per_source = 10 # per client")(t),
        xinetd_starts: true,
        kinetd_starts: true,
    },
    Case {
        name: "user=nobody: xinetd drops the service",
        make: |t| t.replace("user = nobody", "user=nobody"),
        xinetd_starts: false,
        kinetd_starts: true,
    },
    Case {
        name: "unknown attribute: xinetd ignores it, kinetd refuses the service",
        make: |t| add("kafel_rules = /x.policy")(t),
        xinetd_starts: true,
        kinetd_starts: false,
    },
    Case {
        name: "bad instances",
        make: |t| add("instances = abc")(t),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "empty server_args",
        make: |t| add("server_args =")(t),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "access_times up to 24:00",
        make: |t| add("access_times = 12:00-24:00")(t),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "rlimit_as with a G suffix",
        make: |t| add("rlimit_as = 1G")(t),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "rlimit_as with a lower-case m suffix",
        make: |t| add("rlimit_as = 512m")(t),
        xinetd_starts: true,
        kinetd_starts: true,
    },
    Case {
        name: "NAMEINARGS without server_args",
        make: |t| add("flags = NAMEINARGS")(t),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "umask above 777",
        make: |t| add("umask = 0778")(t),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "env entry without '='",
        make: |t| add("env = FOO")(t),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "nice beyond 19",
        make: |t| add("nice = 30")(t),
        xinetd_starts: true,
        kinetd_starts: true,
    },
    Case {
        name: "'{' on the service line",
        make: |t| t.replacen("probe\n{", "probe {", 1),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "protocol without socket_type",
        make: |t| t.replace("socket_type = stream", "protocol = tcp"),
        xinetd_starts: true,
        kinetd_starts: true,
    },
    Case {
        name: "missing user",
        make: |t| t.replace("\tuser = nobody\n", ""),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "'+=' on a single-valued attribute is ignored",
        make: |t| add("server_args = a\n\tserver_args += b")(t),
        xinetd_starts: true,
        kinetd_starts: true,
    },
    Case {
        name: "yes in capitals",
        make: |t| add("groups = YES")(t),
        xinetd_starts: true,
        kinetd_starts: true,
    },
    Case {
        name: "an IPv4 bind address with the IPv6 flag: xinetd listens on every address",
        make: |t| add("flags = IPv6")(t),
        xinetd_starts: true,
        kinetd_starts: false,
    },
    Case {
        name: "rlimit_files with a K suffix",
        make: |t| add("rlimit_files = 10K")(t),
        xinetd_starts: true,
        kinetd_starts: true,
    },
    Case {
        name: "a comma outside braces in only_from",
        make: |t| add("only_from = 10.0.0.1,10.0.0.2")(t),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "a FILE log whose hard limit is below its soft limit",
        make: |t| add("log_type = FILE /dev/null 2K 1K")(t),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "cps with a rate of 0: xinetd accepts it, kinetd refuses the service",
        make: |t| add("cps = 0 5")(t),
        xinetd_starts: true,
        kinetd_starts: false,
    },
    Case {
        name: "a domain pattern: xinetd matches it by reverse DNS, kinetd refuses it",
        make: |t| add("no_access = .example.com")(t),
        xinetd_starts: true,
        kinetd_starts: false,
    },
    Case {
        name: "a comment after the closing brace: xinetd loses the service",
        make: |t| t.replace("\n}\n", "\n} # end of probe\n"),
        xinetd_starts: false,
        kinetd_starts: true,
    },
    Case {
        name: "a bad value in defaults: xinetd exits (with status 0), kinetd refuses to start",
        make: |t| format!("defaults\n{{\n\tinstances = abc\n}}\n{t}"),
        xinetd_starts: false,
        kinetd_starts: false,
    },
    Case {
        name: "a file with a dot in an includedir is skipped by both",
        make: |t| format!("includedir {{DIR}}/d\n##{t}"),
        xinetd_starts: false,
        kinetd_starts: false,
    },
];

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Kills and reaps the xinetd this test started, whatever happens.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs xinetd on the configuration and returns whether it started the service, judged
/// from its own log ("Started working: N available services") and a connection.
fn xinetd_starts(config: &Path, log: &Path, port: u16) -> bool {
    let child = Command::new(XINETD)
        .arg("-dontfork")
        .arg("-filelog")
        .arg(log)
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start xinetd");
    let mut daemon = Daemon(child);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(log) {
            let _ = file.read_to_string(&mut text);
        }
        if let Some(rest) = text.split("Started working: ").nth(1) {
            let count: usize = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let connects = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            assert_eq!(
                count == 1,
                connects,
                "xinetd's log and its socket disagree:\n{text}"
            );
            return connects;
        }
        if let Ok(Some(_)) = daemon.0.try_wait() {
            // Exited before starting: the fatal `defaults` case.
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "xinetd did not start within 10 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn require_xinetd() {
    assert!(
        Path::new(XINETD).exists(),
        "these tests compare with Debian's xinetd: install it (scripts/test.sh does)"
    );
    assert!(
        running_as_root(),
        "these tests run xinetd with user = nobody, which needs root (CI runs as root)"
    );
}

fn running_as_root() -> bool {
    // /proc/self/status holds "Uid: real effective saved fs".
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .is_some_and(|uid| uid == "0")
}

#[test]
fn each_configuration_starts_where_the_table_says_in_xinetd_and_in_kinetd() {
    require_xinetd();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut failures = Vec::new();
    for (index, case) in CASES.iter().enumerate() {
        let port = free_port();
        let case_dir: PathBuf = dir.path().join(index.to_string());
        std::fs::create_dir_all(case_dir.join("d")).unwrap();
        let text = (case.make)(service(port, ""));
        let text = text.replace("{DIR}", &case_dir.display().to_string());
        // For the includedir row, the service itself goes into `d/probe.conf`.
        let text = match text.split_once("##") {
            Some((main, included)) => {
                std::fs::write(case_dir.join("d/probe.conf"), included).unwrap();
                main.to_owned()
            }
            None => text,
        };
        let config = case_dir.join("xinetd.conf");
        std::fs::write(&config, &text).unwrap();

        let xinetd = xinetd_starts(&config, &case_dir.join("xinetd.log"), port);
        let loaded = kinetd_config::load(&config);
        let kinetd = !loaded.fatal && loaded.services.first().is_some_and(|s| s.is_enabled());

        if xinetd != case.xinetd_starts || kinetd != case.kinetd_starts {
            failures.push(format!(
                "{}: xinetd {xinetd} (expected {}), kinetd {kinetd} (expected {})\n{text}{:#?}",
                case.name, case.xinetd_starts, case.kinetd_starts, loaded.diagnostics
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
