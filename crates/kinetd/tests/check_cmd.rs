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
        out.contains(":0: error: cannot read the configuration"),
        "{out}"
    );
}

#[test]
fn bad_arguments_are_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_kinetd"))
        .args(["check", "--bogus"])
        .output()
        .expect("run kinetd check");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: kinetd check [-f FILE]"));
}
