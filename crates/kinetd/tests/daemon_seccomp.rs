//! Kafel policies on real challenges: the filter is in force, a forbidden syscall ends
//! the challenge with signal 31, a filter the kernel refuses means the challenge never
//! runs, and a policy that does not compile keeps only its own service from starting.

mod daemon_support;

use std::net::TcpStream;
use std::process::Command;

use daemon_support::*;

/// A challenge that answers, then makes a syscall the test policies forbid.
const UNAME_CHALLENGE: &str = r#"
#include <stdio.h>
#include <sys/utsname.h>
int main(void) {
    struct utsname u;
    printf("before\n");
    fflush(stdout);
    uname(&u);
    printf("after\n");
    return 0;
}
"#;

/// Forbids uname (the kernel entry point Kafel names it after is `newuname`) and allows
/// the rest.
const NO_UNAME: &str = "KILL_PROCESS { newuname }\nDEFAULT ALLOW\n";

/// Installs seccomp filters that allow everything until the kernel's budget for one
/// process is spent (MAX_INSNS_PER_PATH: 32768 instructions over all filters, plus 4 per
/// filter; whatever started the tests may already use part of it), then runs the program
/// in argv[1..]. Every filter that program's children install afterwards is refused
/// with ENOMEM, while the program itself runs normally.
const FILTER_BUDGET_WRAPPER: &str = r#"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int install(unsigned short len) {
    struct sock_filter insns[4096];
    /* Jump straight to the last instruction; the ones in between only take room. */
    if (len > 1)
        insns[0] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, len - 2, 0, 0);
    for (int i = 1; i < len - 1; i++)
        insns[i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0);
    insns[len - 1] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = { .len = len, .filter = insns };
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(int argc, char **argv) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("prctl"); return 99; }
    int filters = 0;
    for (int len = 4096; len >= 1; len /= 2)
        while (install(len) == 0) filters++;
    /* Even a one-instruction filter is refused now. */
    if (install(1) == 0 || filters == 0) {
        fprintf(stderr, "could not fill the seccomp budget\n");
        return 99;
    }
    execv(argv[1], argv + 1);
    perror("execv");
    return 99;
}
"#;

#[test]
fn policy_that_forbids_a_syscall_ends_the_challenge_with_signal_31() {
    let dir = TempDir::new("kill");
    let port = free_port();
    let chal = compile_c(&dir, "uname", UNAME_CHALLENGE, &[]);
    let policy = dir.write("no_uname.policy", NO_UNAME);
    let log = dir.join("svc.log");
    let extra = format!("    kafel_rule = {}", policy.display());
    let _daemon = Daemon::start(&dir, &service("killed", port, &chal, &log, &extra), &[]);

    assert_eq!(
        exchange(port, b""),
        "before\n",
        "the client sees the connection close"
    );
    let text = wait_for_file(&log, "EXIT: killed signal=31 pid=");
    assert!(text.contains("START: killed pid="), "{text}");
}

#[test]
fn challenge_runs_under_its_filter() {
    let dir = TempDir::new("filtered");
    let port = free_port();
    let probe = probe(&dir);
    let policy = dir.write("p.policy", NO_UNAME);
    let log = dir.join("svc.log");
    let extra = format!("    kafel_rule = {}", policy.display());
    let _daemon = Daemon::start(&dir, &service("filtered", port, &probe, &log, &extra), &[]);

    let out = exchange(port, b"");
    assert_eq!(probe_value(&out, "Seccomp"), "2", "filter mode: {out}");
    assert_eq!(probe_value(&out, "no_new_privs"), "1");
    wait_for_file(&log, "EXIT: filtered status=0");
}

#[test]
fn challenge_never_runs_when_its_filter_cannot_be_installed() {
    let dir = TempDir::new("refused");
    let port = free_port();
    let wrapper = compile_c(&dir, "budget", FILTER_BUDGET_WRAPPER, &[]);
    let marker = dir.join("ran");
    let chal = dir.script("mark.sh", &format!("touch {}\necho ran", marker.display()));
    let policy = dir.write("p.policy", NO_UNAME);
    let log = dir.join("svc.log");
    let extra = format!("    kafel_rule = {}", policy.display());
    let config = service("refused", port, &chal, &log, &extra);
    let mut command = Command::new(&wrapper);
    command.arg(env!("CARGO_BIN_EXE_kinetd"));
    let daemon = Daemon::start_with(&dir, &config, &[], &mut command);

    assert_eq!(
        exchange(port, b""),
        "",
        "the client gets nothing and a closed connection"
    );
    let text = daemon.wait_for_log("server not started");
    assert!(
        text.contains("seccomp failed: Cannot allocate memory"),
        "the failed step and errno are logged: {text}"
    );
    let service_log = wait_for_file(&log, "EXIT: refused status=127");
    assert!(service_log.contains("START: refused"), "{service_log}");
    assert!(!marker.exists(), "the challenge ran without its filter");
}

#[test]
fn policy_that_does_not_compile_keeps_its_port_closed_and_others_serve() {
    let dir = TempDir::new("badpolicy");
    let (bad_port, good_port) = (free_port(), free_port());
    let chal = dir.script("hi.sh", "echo hi");
    let bad = dir.write(
        "bad.policy",
        "ALLOW { read, no_such_syscall }\nDEFAULT KILL\n",
    );
    let good = dir.write("good.policy", NO_UNAME);
    let log = dir.join("svc.log");
    let config = format!(
        "{}{}",
        service(
            "broken",
            bad_port,
            &chal,
            &log,
            &format!("    kafel_rule = {}", bad.display())
        ),
        service(
            "fine",
            good_port,
            &chal,
            &log,
            &format!("    kafel_rule = {}", good.display())
        )
    );
    let daemon = Daemon::start(&dir, &config, &[]);

    assert_eq!(exchange(good_port, b""), "hi\n");
    assert!(
        TcpStream::connect(("127.0.0.1", bad_port)).is_err(),
        "the service whose policy does not compile never listens"
    );
    let text = daemon.log_text();
    assert!(
        text.contains("no_such_syscall"),
        "the compile error is logged: {text}"
    );
    assert!(
        text.contains("Started working: 1 available services"),
        "{text}"
    );
}

#[test]
fn reload_recompiles_a_changed_policy_for_new_connections() {
    let dir = TempDir::new("repolicy");
    let port = free_port();
    let chal = compile_c(&dir, "uname", UNAME_CHALLENGE, &[]);
    let policy = dir.write("p.policy", "KILL_PROCESS { ptrace }\nDEFAULT ALLOW\n");
    let log = dir.join("svc.log");
    let extra = format!("    kafel_rule = {}", policy.display());
    let config = service("repolicy", port, &chal, &log, &extra);
    let daemon = Daemon::start(&dir, &config, &[]);
    assert_eq!(exchange(port, b""), "before\nafter\n");

    std::fs::write(&policy, NO_UNAME).unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("readjusting service repolicy");
    assert_eq!(exchange(port, b""), "before\n", "the new policy applies");
    wait_for_file(&log, "EXIT: repolicy signal=31");
}
