//! `kinetd policy compile | eval | disasm` as a policy author uses them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kafel::bpf::Program;
use kafel::interp::{self, SeccompData};
use kafel::ir::Action;

fn kinetd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kinetd"))
        .args(args)
        .output()
        .unwrap()
}

fn dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("policy_cli")
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Fails the test with kinetd's error output unless it exited with status 0.
fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

const POLICY: &str = "ALLOW { read, write { fd == 1 }, exit_group }\nERRNO(13) { write }\n";

#[test]
fn raw_output_is_sock_filter_records_that_decide_like_the_policy() {
    let dir = dir("raw");
    let policy = write(&dir.join("p.policy"), POLICY);
    let out = kinetd(&["policy", "compile", &policy]);
    assert_success(&out);
    assert_eq!(out.stdout.len() % 8, 0);
    let program = Program::from_bytes(&out.stdout).unwrap();
    let write_to = |fd: u64| SeccompData {
        nr: 1,
        arch: 0xc000_003e,
        instruction_pointer: 0,
        args: [fd, 0, 0, 0, 0, 0],
    };
    let decide = |data| Action::from_ret_value(interp::run(&program, &data).unwrap().ret);
    assert_eq!(decide(write_to(1)), Action::Allow);
    assert_eq!(decide(write_to(2)), Action::Errno(13));
}

#[test]
fn output_file_and_disasm_of_it_list_the_program() {
    let dir = dir("file");
    let policy = write(&dir.join("p.policy"), POLICY);
    let raw = dir.join("p.bpf");
    let out = kinetd(&["policy", "compile", "-o", raw.to_str().unwrap(), &policy]);
    assert_success(&out);
    assert!(out.stdout.is_empty());

    let listed = kinetd(&["policy", "disasm", raw.to_str().unwrap()]);
    let compiled = kinetd(&["policy", "compile", "--format", "disasm", &policy]);
    assert_eq!(stdout(&listed), stdout(&compiled));
    let text = stdout(&listed);
    assert!(text.starts_with("   0: ld   [arch]\n"), "{text}");
    assert!(text.contains("ret  ERRNO(13)"), "{text}");
    assert!(text.contains("ld   [args[0].lo]"), "{text}");
}

#[test]
fn c_format_is_an_array_of_sock_filter_initializers() {
    let dir = dir("c");
    let policy = write(&dir.join("p.policy"), POLICY);
    let text = stdout(&kinetd(&["policy", "compile", "--format", "c", &policy]));
    assert!(text.contains("struct sock_filter filter[] = {\n"), "{text}");
    assert!(
        text.contains("{ 0x0020,   0,   0, 0x00000004 }, /*    0: ld   [arch] */"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("};"), "{text}");
}

#[test]
fn compile_errors_go_to_stderr_with_exit_status_1() {
    let dir = dir("error");
    let policy = write(&dir.join("bad.policy"), "ALLOW { read, nosuch }\n");
    let out = kinetd(&["policy", "compile", &policy]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.policy:1:15:"), "{stderr}");
    assert!(stderr.contains("nosuch"), "{stderr}");
}

#[test]
fn eval_prints_the_action_for_names_numbers_and_arguments() {
    let dir = dir("eval");
    let policy = write(&dir.join("p.policy"), POLICY);
    let eval = |extra: &[&str]| {
        let mut args = vec!["policy", "eval", &policy];
        args.extend_from_slice(extra);
        let out = kinetd(&args);
        assert_success(&out);
        stdout(&out).trim().to_owned()
    };
    assert_eq!(eval(&["--syscall", "read"]), "ALLOW");
    assert_eq!(eval(&["--syscall", "write", "--arg", "1"]), "ALLOW");
    assert_eq!(eval(&["--syscall", "write", "--arg", "2"]), "ERRNO(13)");
    // fd is 4 bytes wide, so its high word does not count.
    assert_eq!(eval(&["--syscall", "1", "--arg", "0x100000001"]), "ALLOW");
    assert_eq!(eval(&["--syscall", "getpid"]), "KILL_THREAD");
    assert_eq!(eval(&["--syscall", "0x40000000"]), "KILL_THREAD");
    assert_eq!(eval(&["--syscall", "-1"]), "KILL_THREAD");
    assert_eq!(eval(&["--syscall", "write", "--arg", "-1"]), "ERRNO(13)");
    assert_eq!(
        eval(&["--syscall-arch", "i386", "--syscall", "3"]),
        "KILL_PROCESS"
    );
}

#[test]
fn include_directories_are_searched_in_order() {
    let dir = dir("include");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    write(
        &dir.join("b/io.policy"),
        "POLICY io { ERRNO(5) { read } }\n",
    );
    let policy = write(
        &dir.join("p.policy"),
        "#include \"io.policy\"\nUSE io\nDEFAULT ALLOW\n",
    );
    let (a, b) = (dir.join("a"), dir.join("b"));
    let out = kinetd(&[
        "policy",
        "eval",
        &policy,
        "-I",
        a.to_str().unwrap(),
        "-I",
        b.to_str().unwrap(),
        "--syscall",
        "read",
    ]);
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), "ERRNO(5)");
    // Without -I only the policy's own directory is searched, which does not hold it.
    let out = kinetd(&["policy", "compile", &policy]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn without_include_directories_the_policys_own_directory_is_searched() {
    // As the daemon compiles a kafel_rule, so that a policy checked here loads there.
    let dir = dir("beside");
    write(&dir.join("io.policy"), "POLICY io { ERRNO(7) { read } }\n");
    let policy = write(
        &dir.join("p.policy"),
        "#include \"io.policy\"\nUSE io\nDEFAULT ALLOW\n",
    );
    let out = kinetd(&["policy", "eval", &policy, "--syscall", "read"]);
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), "ERRNO(7)");
}

#[test]
fn bytes_that_are_not_utf8_are_accepted_in_a_comment_and_refused_in_a_rule() {
    // google/kafel compiles the first file and refuses the second ("unexpected char").
    let dir = dir("latin1");
    let comment = dir.join("comment.policy");
    std::fs::write(&comment, b"// caf\xe9 \xff\nALLOW { read }\n").unwrap();
    let out = kinetd(&[
        "policy",
        "eval",
        comment.to_str().unwrap(),
        "--syscall",
        "read",
    ]);
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), "ALLOW");

    let rule = dir.join("rule.policy");
    std::fs::write(&rule, b"ALLOW { read \xe9 }\n").unwrap();
    let out = kinetd(&["policy", "compile", rule.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn disasm_refuses_a_file_that_is_not_whole_records() {
    let dir = dir("disasm");
    let path = dir.join("odd.bpf");
    std::fs::write(&path, [0u8; 12]).unwrap();
    let out = kinetd(&["policy", "disasm", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("8-byte"));
}

#[test]
fn a_reader_that_stops_early_ends_the_listing_quietly() {
    let dir = dir("closed_stdout");
    // About a thousand separate ranges: a listing far larger than a pipe's buffer.
    let rules: Vec<String> = (0..1000).map(|nr| format!("SYSCALL[{}]", nr * 2)).collect();
    let policy = write(
        &dir.join("big.policy"),
        &format!("ALLOW {{ {} }}\n", rules.join(", ")),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_kinetd"))
        .args(["policy", "compile", "--format", "disasm", &policy])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closing the read end at once, as `| head -0` would, makes every write fail with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "status {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
