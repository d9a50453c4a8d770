//! The demo in `examples/` works as `scripts/demo.sh` serves it: kinetd loads
//! `ctf.xinetd` (trailing comments, relative `kafel_rule` and `banner_fail` included),
//! compiles `demo.policy`, and a player who guesses well gets the flag.
//!
//! Like demo.sh, the test points `server`, `server_args`, `port` and `log_type` at its own
//! copy; the policy and the banner stay relative to the configuration file.

#[allow(dead_code)] // each test file uses its own part of the harness
#[path = "exploit/harness.rs"]
mod harness;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::{Kinetd, Scratch, challenge_user, free_port, write_flag};

const EXAMPLES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

/// `config` with the value of every `name = ...` line replaced by `value`.
fn set_attribute(config: &str, name: &str, value: &str) -> String {
    let mut found = false;
    let lines: Vec<String> = config
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&name) && words.get(1) == Some(&"=") {
                found = true;
                format!("    {name} = {value}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(found, "examples/ctf.xinetd has no '{name} =' line");
    lines.join("\n") + "\n"
}

/// A player who reads each answer and halves the range: seven tries always suffice for
/// 1 to 100. Returns everything the challenge sent.
fn play_by_bisection(address: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect to the demo");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut low, mut high) = (1, 100);
    let mut transcript = String::new();
    let mut unread = String::new();
    loop {
        let mut buf = [0u8; 1024];
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("reading from the demo: {e}\nso far:\n{transcript}"),
        };
        if n == 0 {
            return transcript;
        }
        let text = String::from_utf8_lossy(&buf[..n]);
        transcript.push_str(&text);
        unread.push_str(&text);

        // Act on each answer once its line is complete (the game writes a word and its
        // newline separately), then on a prompt waiting for a guess.
        while let Some(newline) = unread.find('\n') {
            let line: String = unread.drain(..=newline).collect();
            if line.starts_with("higher") {
                low = (low + high) / 2 + 1;
            } else if line.starts_with("lower") {
                high = (low + high) / 2 - 1;
            }
        }
        if unread.ends_with("> ") {
            unread.clear();
            let guess = (low + high) / 2;
            stream.write_all(format!("{guess}\n").as_bytes()).unwrap();
        }
    }
}

#[test]
fn the_example_configuration_serves_the_demo_and_a_good_player_gets_the_flag() {
    let scratch = Scratch::new("demo");
    let guess = scratch.path("guess");
    let gcc = Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&guess)
        .arg(Path::new(EXAMPLES_DIR).join("demo/guess.c"))
        .output()
        .expect("run gcc");
    assert!(
        gcc.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let (flag_path, flag) = write_flag(&scratch);
    for name in ["demo.policy", "banner_fail"] {
        fs::copy(Path::new(EXAMPLES_DIR).join(name), scratch.path(name)).unwrap();
    }

    let port = free_port();
    let service_log = scratch.path("service.log");
    let mut config = fs::read_to_string(Path::new(EXAMPLES_DIR).join("ctf.xinetd")).unwrap();
    for (name, value) in [
        ("server", guess.display().to_string()),
        ("server_args", flag_path.display().to_string()),
        ("port", port.to_string()),
        ("user", challenge_user()),
        ("log_type", format!("FILE {}", service_log.display())),
    ] {
        config = set_attribute(&config, name, &value);
    }
    let config_path = scratch.path("ctf.xinetd");
    fs::write(&config_path, config).unwrap();
    let kinetd = Kinetd::start(&scratch, &config_path, port, service_log);

    let transcript = play_by_bisection(&kinetd.address());

    assert!(
        transcript.contains("here is your flag") && transcript.contains(&flag),
        "no flag after playing well:\n{transcript}\nkinetd's log:\n{}",
        kinetd.stderr()
    );
    // The game read the flag and exited by itself: the policy allowed all it did.
    let log = kinetd.wait_for_log("EXIT: guess");
    assert!(
        log.contains("EXIT: guess status=0"),
        "the game did not exit cleanly:\n{log}"
    );
}
