//! The kernel agrees with the interpreter.
//!
//! A small C probe (tests/policy/probe.c), built with gcc at test time for x86-64 and,
//! with `-m32`, for i386, makes one syscall given on its command line. It runs under
//! `kinetd policy run`, which installs the real compiled filter; `kinetd policy eval`
//! says what the interpreter decides for the same call. For every call the two must
//! agree: `ALLOW` and `LOG` let the call through, `ERRNO(n)` makes it fail with errno n,
//! `TRAP(n)` raises SIGSYS with n in `si_errno`, `TRACE` with no tracer fails with ENOSYS,
//! and `KILL_*` ends the probe by SIGSYS.
//!
//! Needs gcc with 32-bit support (Debian's gcc-multilib, which scripts/test.sh installs)
//! and a kernel with seccomp filters. Without them these tests fail, saying why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const SIGSYS: i32 = 31;

fn kinetd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kinetd"))
}

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("policy_kernel")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bits {
    B64,
    B32,
}

/// Builds the probe once per word size.
fn probe(bits: Bits) -> &'static Path {
    static B64: OnceLock<PathBuf> = OnceLock::new();
    static B32: OnceLock<PathBuf> = OnceLock::new();
    let cell = if bits == Bits::B64 { &B64 } else { &B32 };
    cell.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policy/probe.c");
        std::fs::create_dir_all(scratch()).unwrap();
        let (name, flags): (&str, &[&str]) = match bits {
            Bits::B64 => ("probe64", &[]),
            Bits::B32 => ("probe32", &["-m32"]),
        };
        let out = scratch().join(name);
        let status = Command::new("gcc")
            .args(flags)
            .args(["-static", "-O1", "-o"])
            .arg(&out)
            .arg(&source)
            .status()
            .unwrap_or_else(|e| panic!("cannot run gcc ({e}): install gcc (scripts/test.sh does)"));
        assert!(
            status.success(),
            "gcc {flags:?} -static failed building the probe: for -m32 install gcc-multilib \
             (scripts/test.sh does)"
        );
        out
    })
}

fn write_policy(name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(scratch()).unwrap();
    let path = scratch().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn arch_flags(arches: &[&str]) -> Vec<String> {
    arches
        .iter()
        .flat_map(|a| ["--arch".to_owned(), (*a).to_owned()])
        .collect()
}

/// What the interpreter decides, from `kinetd policy eval`.
fn interpreted(policy: &Path, arches: &[&str], call_arch: &str, call: &Call) -> String {
    let mut cmd = kinetd();
    cmd.args(["policy", "eval"])
        .arg(policy)
        .args(arch_flags(arches));
    cmd.args(["--syscall-arch", call_arch, "--syscall", &call.nr]);
    for arg in call.args {
        cmd.args(["--arg", arg]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// What the kernel did, from the probe run under `kinetd policy run`.
#[derive(Debug, PartialEq, Eq)]
enum Kernel {
    Returned { ret: i64, errno: i32 },
    Trapped(i32),
    Killed(i32),
}

fn under_kernel(policy: &Path, arches: &[&str], bits: Bits, call: &Call) -> Kernel {
    let out: Output = kinetd()
        .args(["policy", "run"])
        .args(arch_flags(arches))
        .arg(policy)
        .arg("--")
        .arg(probe(bits))
        .arg(&call.number)
        .args(call.args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(data) = stdout.lines().find_map(|l| l.strip_prefix("trap=")) {
        return Kernel::Trapped(data.parse().unwrap());
    }
    if let Some(line) = stdout.lines().find(|l| l.starts_with("ret=")) {
        let mut fields = line.split(' ').map(|f| f.split('=').nth(1).unwrap());
        let ret = fields.next().unwrap().parse().unwrap();
        let errno = fields.next().unwrap().parse().unwrap();
        return Kernel::Returned { ret, errno };
    }
    // `kinetd policy run` exits with 128 + N when the program dies of signal N.
    match out.status.code() {
        Some(code) if code > 128 => Kernel::Killed(code - 128),
        _ => panic!(
            "probe gave no result: {:?}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        ),
    }
}

/// One syscall: its name or number for `eval`, its number for the probe, its arguments.
struct Call {
    nr: String,
    number: String,
    args: &'static [&'static str],
}

fn call(nr: &str, number: u32, args: &'static [&'static str]) -> Call {
    Call {
        nr: nr.to_owned(),
        number: format!("{number:#x}"),
        args,
    }
}

/// Checks that interpreter and kernel agree on `call` and that the interpreter says
/// `expected`.
fn agree(policy: &Path, arches: &[&str], bits: Bits, call: &Call, expected: &str) {
    let call_arch = if bits == Bits::B64 { "x86_64" } else { "i386" };
    let verdict = interpreted(policy, arches, call_arch, call);
    assert_eq!(
        verdict, expected,
        "interpreter verdict for {} {:?}",
        call.nr, call.args
    );
    let kernel = under_kernel(policy, arches, bits, call);
    let agrees = match (verdict.as_str(), &kernel) {
        ("ALLOW" | "LOG", Kernel::Returned { ret, .. }) => *ret != -1,
        (v, Kernel::Trapped(data)) if v.starts_with("TRAP(") => v == format!("TRAP({data})"),
        // With no tracer attached the kernel fails the call with ENOSYS.
        (v, Kernel::Returned { ret: -1, errno: 38 }) if v.starts_with("TRACE(") => true,
        (v, Kernel::Killed(sig)) if v.starts_with("KILL") => *sig == SIGSYS,
        (v, Kernel::Returned { ret: -1, errno }) if v.starts_with("ERRNO(") => {
            v == format!("ERRNO({errno})")
        }
        _ => false,
    };
    assert!(
        agrees,
        "{} {:?}: interpreter says {verdict}, kernel did {kernel:?}",
        call.nr, call.args
    );
}

const DENY_LIST: &str = "\
ERRNO(42) { getppid }
KILL_PROCESS { getpgrp }
KILL { getsid }
LOG { getuid }
TRAP(77) { geteuid }
TRACE(5) { getgid }
ERRNO(11) { getpriority { which == 0 && who == 0x1234 } }
ERRNO(12) { lseek { offset == 0x100000000 } }
DEFAULT ALLOW
";

#[test]
fn kernel_agrees_with_the_interpreter_on_a_deny_list() {
    let policy = write_policy("deny.policy", DENY_LIST);
    let x86 = &["x86_64"];
    agree(&policy, x86, Bits::B64, &call("getpid", 39, &[]), "ALLOW");
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("getppid", 110, &[]),
        "ERRNO(42)",
    );
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("getpgrp", 111, &[]),
        "KILL_PROCESS",
    );
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("getsid", 124, &["0"]),
        "KILL_THREAD",
    );
}

#[test]
fn kernel_agrees_on_argument_checks_including_64_bit_words() {
    let policy = write_policy("args.policy", DENY_LIST);
    let x86 = &["x86_64"];
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("getpriority", 140, &["0", "0x1234"]),
        "ERRNO(11)",
    );
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("getpriority", 140, &["0", "0"]),
        "ALLOW",
    );
    // `who` is a 4-byte argument: its high word is never looked at.
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("getpriority", 140, &["0", "0x500001234"]),
        "ERRNO(11)",
    );
    // `offset` is 8 bytes: both words must match.
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("lseek", 8, &["0", "0x100000000", "0"]),
        "ERRNO(12)",
    );
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("lseek", 8, &["0", "0x200000000", "0"]),
        "ALLOW",
    );
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("lseek", 8, &["0", "0", "0"]),
        "ALLOW",
    );
}

#[test]
fn x32_syscall_numbers_are_killed_even_under_default_allow() {
    let policy = write_policy("x32.policy", DENY_LIST);
    let x86 = &["x86_64"];
    // x32 getpid and x32 getppid: the kernel would run both as x32 calls.
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("0x40000027", 0x4000_0027, &[]),
        "KILL_PROCESS",
    );
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("0x4000006e", 0x4000_006e, &[]),
        "KILL_PROCESS",
    );
    // syscall(-1) is not an x32 call: the default applies, and the kernel says ENOSYS.
    let out = under_kernel(&policy, x86, Bits::B64, &call("-1", u32::MAX, &[]));
    assert_eq!(out, Kernel::Returned { ret: -1, errno: 38 });
}

#[test]
fn kernel_agrees_on_an_allow_list() {
    // The start-up calls of a static glibc program, plus getpid.
    let policy = write_policy(
        "allow.policy",
        "ALLOW {
            execve, brk, arch_prctl, set_tid_address, set_robust_list, rseq, prlimit64,
            readlinkat, readlink, getrandom, mprotect, mmap, munmap, newuname, newfstat,
            newfstatat, ioctl, write, exit_group, rt_sigaction, getpid
        }
        DEFAULT KILL_PROCESS",
    );
    let x86 = &["x86_64"];
    agree(&policy, x86, Bits::B64, &call("getpid", 39, &[]), "ALLOW");
    agree(
        &policy,
        x86,
        Bits::B64,
        &call("getppid", 110, &[]),
        "KILL_PROCESS",
    );
}

#[test]
fn i386_program_runs_under_a_policy_compiled_for_both_architectures() {
    let policy = write_policy(
        "multi.policy",
        "ERRNO(42) { getppid }\nKILL_PROCESS { getpgrp }\nDEFAULT ALLOW\n",
    );
    let both = &["x86_64", "i386"];
    // i386 numbering: getpid 20, getppid 64, getpgrp 65.
    agree(&policy, both, Bits::B32, &call("getpid", 20, &[]), "ALLOW");
    agree(
        &policy,
        both,
        Bits::B32,
        &call("getppid", 64, &[]),
        "ERRNO(42)",
    );
    agree(
        &policy,
        both,
        Bits::B32,
        &call("getpgrp", 65, &[]),
        "KILL_PROCESS",
    );
    agree(
        &policy,
        both,
        Bits::B64,
        &call("getppid", 110, &[]),
        "ERRNO(42)",
    );
}

#[test]
fn i386_sixty_four_bit_parameters_are_checked_on_the_kernels_register_pairs() {
    // i386 passes pread64's `pos` in registers 3 (low) and 4 (high), and fallocate's
    // `offset` in 2 and 3, `len` in 4 and 5. Reading `len` from register 3, as kafel
    // does, would answer ERRNO(14) for the last fallocate call below.
    let policy = write_policy(
        "pairs.policy",
        "ERRNO(13) { pread64 { pos >= 0x100000000 } }\n\
         ERRNO(14) { fallocate { len > 0x100000 } }\n\
         ERRNO(15) { fallocate }\n\
         DEFAULT ALLOW\n",
    );
    // x86-64 too: the filter is installed before the 64-bit execve of the probe.
    let i386 = &["x86_64", "i386"];
    // pread64(0, NULL, 0, pos): stdin is /dev/null, so an allowed call returns 0.
    agree(
        &policy,
        i386,
        Bits::B32,
        &call("pread64", 180, &["0", "0", "0", "0", "1"]),
        "ERRNO(13)",
    );
    agree(
        &policy,
        i386,
        Bits::B32,
        &call("pread64", 180, &["0", "0", "0", "0xffffffff", "0"]),
        "ALLOW",
    );
    // len = 1 << 32: only its high word, register 5, is set.
    agree(
        &policy,
        i386,
        Bits::B32,
        &call("fallocate", 324, &["0", "0", "0", "0", "0", "1"]),
        "ERRNO(14)",
    );
    // len = 0x1000 with offset's high word (register 3) over the limit.
    agree(
        &policy,
        i386,
        Bits::B32,
        &call(
            "fallocate",
            324,
            &["0", "0", "0", "0x200000", "0x1000", "0"],
        ),
        "ERRNO(15)",
    );
}

#[test]
fn i386_program_is_killed_under_an_x86_64_only_policy() {
    let policy = write_policy("only64.policy", "DEFAULT ALLOW\n");
    agree(
        &policy,
        &["x86_64"],
        Bits::B32,
        &call("getpid", 20, &[]),
        "KILL_PROCESS",
    );
}

#[test]
fn program_never_runs_when_the_policy_denies_its_execve() {
    let policy = write_policy("noexec.policy", "ERRNO(1) { execve }\nDEFAULT ALLOW\n");
    let out = kinetd()
        .args(["policy", "run"])
        .arg(&policy)
        .args(["--", "/bin/echo", "ran"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(out.stdout.is_empty(), "the program ran: {:?}", out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
}

#[test]
fn kernel_agrees_on_a_mask_check_against_executable_memory() {
    let policy = write_policy(
        "noexec-mem.policy",
        "#define PROT_EXEC 4
        ERRNO(13) { mmap { (prot & PROT_EXEC) != 0 }, mprotect { (prot & PROT_EXEC) != 0 } }
        DEFAULT ALLOW",
    );
    let x86 = &["x86_64"];
    // mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    let rw: &[&str] = &["0", "4096", "3", "0x22", "-1", "0"];
    let rwx: &[&str] = &["0", "4096", "7", "0x22", "-1", "0"];
    // PROT_EXEC in the high word only: prot is 8 bytes wide, but the mask is 4.
    let high: &[&str] = &["0", "4096", "0x400000003", "0x22", "-1", "0"];
    agree(&policy, x86, Bits::B64, &call("mmap", 9, rw), "ALLOW");
    agree(&policy, x86, Bits::B64, &call("mmap", 9, rwx), "ERRNO(13)");
    agree(&policy, x86, Bits::B64, &call("mmap", 9, high), "ALLOW");
}
