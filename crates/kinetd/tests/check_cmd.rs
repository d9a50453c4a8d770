//! `kinetd check`: the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("kinetd-check-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write a scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(config: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kinetd"))
        .args(["check", "-f"])
        .arg(config)
        .output()
        .expect("run kinetd check");
    let code = output.status.code().expect("exited normally");
    (code, String::from_utf8_lossy(&output.stdout).into_owned())
}

const GOOD: &str = "\
defaults
{
\tinstances = 20
\tlog_on_success = PID HOST
}
service pwn
{
\tsocket_type = stream
\twait = no
\tuser = nobody
\ttype = UNLISTED
\tport = 31337
\tbind = 127.0.0.1
\tserver = /bin/cat
\tserver_args = /flag
\tper_source = 2 # per player
}
";

#[test]
fn a_good_configuration_exits_zero_and_shows_effective_settings() {
    let dir = Scratch::new("good");
    let config = dir.write("xinetd.conf", GOOD);
    let (code, out) = check(&config);
    assert_eq!(code, 0, "{out}");

    let path = config.display();
    assert!(
        out.starts_with(&format!("{path}:16: note: trailing comment '# per player'")),
        "{out}"
    );
    assert!(
        out.contains(&format!("service pwn at {path}:6 — enabled")),
        "{out}"
    );
    for line in [
        "  user            nobody (uid 65534, gid 65534)",
        "  argv            [\"cat\", \"/flag\"]",
        "  port            31337",
        "  bind            127.0.0.1",
        "  instances       20   (from defaults)",
        "  per_source      2\n",
        "  log_on_success  PID HOST   (from defaults)",
        "  cps             50 10\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
}

#[test]
fn errors_come_first_and_make_the_exit_status_non_zero() {
    let dir = Scratch::new("bad");
    let text = format!(
        "{GOOD}service typo\n{{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\
         \ttype = UNLISTED\n\tport = 31338\n\tserver = /bin/cat\n\tkafel_rules = x.policy\n}}\n"
    );
    let config = dir.write("xinetd.conf", &text);
    let (code, out) = check(&config);
    assert_eq!(code, 1, "{out}");
    let path = config.display();
    let first = out.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("{path}:26: error: unknown attribute 'kafel_rules' (did you mean 'kafel_rule'?)")
    );
    assert!(
        out.contains("service pwn"),
        "the good service is still shown: {out}"
    );
    assert!(out.contains("service typo"), "{out}");
    assert!(out.contains("REJECTED"), "{out}");
    let note = out
        .find("note: trailing comment")
        .expect("the note is shown");
    let error = out
        .find("error: unknown attribute")
        .expect("the error is shown");
    assert!(error < note, "most serious first:\n{out}");
}

#[test]
fn an_error_in_defaults_or_a_missing_file_fails() {
    let dir = Scratch::new("defaults");
    let config = dir.write(
        "xinetd.conf",
        &GOOD.replace("instances = 20", "instances = many"),
    );
    let (code, out) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the configuration cannot be used"), "{out}");

    let (code, out) = check(&dir.0.join("absent.conf"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("absent.conf: error: cannot read the configuration"),
        "{out}"
    );
}

#[test]
fn a_configuration_that_serves_nothing_fails() {
    // xinetd skips an included file whose name has a dot; its only service is then gone.
    let dir = Scratch::new("nothing");
    std::fs::create_dir(dir.0.join("xinetd.d")).unwrap();
    dir.write("xinetd.d/ctf.conf", GOOD);
    let config = dir.write(
        "xinetd.conf",
        &format!("includedir {}\n", dir.0.join("xinetd.d").display()),
    );
    let (code, out) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("warning: no service is enabled"), "{out}");

    let config = dir.write(
        "disabled.conf",
        &GOOD.replace("per_source = 2", "disable = yes"),
    );
    let (code, out) = check(&config);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn bad_arguments_are_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_kinetd"))
        .args(["check", "--bogus"])
        .output()
        .expect("run kinetd check");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("usage: kinetd check [-f FILE | FILE]")
    );
}

#[test]
fn the_file_can_be_named_without_f_as_the_usage_text_shows() {
    let dir = Scratch::new("positional");
    let config = dir.write("xinetd.conf", GOOD);
    let output = Command::new(env!("CARGO_BIN_EXE_kinetd"))
        .arg("check")
        .arg(&config)
        .output()
        .expect("run kinetd check");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("service pwn"), "{out}");
}

#[test]
fn a_service_the_daemon_would_refuse_fails_the_check() {
    let dir = Scratch::new("refused");
    // Both are valid xinetd, and both are services kinetd does not serve.
    let text = format!(
        "{GOOD}service forward\n{{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\
         \ttype = UNLISTED\n\tport = 31338\n\tredirect = 127.0.0.1 31337\n}}\n\
         service datagrams\n{{\n\tsocket_type = dgram\n\twait = no\n\tuser = nobody\n\
         \ttype = UNLISTED\n\tport = 31339\n\tserver = /bin/cat\n}}\n"
    );
    let config = dir.write("xinetd.conf", &text);
    let (code, out) = check(&config);
    assert_eq!(code, 1, "{out}");
    let path = config.display();
    assert!(
        out.lines().next().unwrap_or_default().starts_with(&format!(
            "{path}:18: error: service forward: internal and redirect services are not supported"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{path}:27: error: service datagrams: dgram services need wait = yes"
        )),
        "{out}"
    );
    assert!(out.contains("3 service(s), 1 enabled"), "{out}");
    assert!(
        out.contains("service forward at") && out.contains("REJECTED by the daemon"),
        "{out}"
    );
}

#[test]
fn a_reader_that_stops_early_does_not_make_check_panic() {
    use std::io::Read;
    use std::process::Stdio;

    let dir = Scratch::new("pipe");
    // Far more output than a pipe holds, so that kinetd is still writing when the reader
    // goes away, as with `kinetd check | head`.
    let text: String = (0..400)
        .map(|i| {
            GOOD.replace("service pwn", &format!("service pwn{i}"))
                .replace("31337", &format!("{}", 20000 + i))
        })
        .map(|entry| {
            entry
                .split_once("service")
                .map(|(_, s)| format!("service{s}"))
                .unwrap()
        })
        .collect();
    let config = dir.write("xinetd.conf", &text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kinetd"))
        .args(["check", "-f"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kinetd check");
    let mut first = [0u8; 16];
    child
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut first)
        .expect("some output");
    let output = child.wait_with_output().expect("wait for kinetd check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
