//! Starting a challenge process: the child's setup between fork and exec.
//!
//! The child is created with `fork`, and the daemon goes back to its event loop at once.
//! `vfork` (`clone(CLONE_VM | CLONE_VFORK)`, as `posix_spawn` does it) was tried first
//! and measured: it saves copying the daemon's page tables, but the daemon then waits
//! until the child has called `execve`, and the child's `setsid` moves it into a new
//! scheduler autogroup, which waits for a time slice whenever other sessions keep the
//! CPUs busy. On two busy cores that cost a few milliseconds per connection (about 400
//! connections a second at concurrency 8, against 4,000 with `fork`). The daemon is
//! small (a few MiB), so its page tables are cheap to copy.
//!
//! The child:
//! - works only on its copy of what the parent built before the fork ([`ChildSetup`]);
//! - makes only async-signal-safe calls: no allocation, no locks, no formatting, no
//!   panics (the daemon is single-threaded, but the rule keeps the child correct in a
//!   threaded test process too);
//! - sets its ids with raw `setgroups`/`setgid`/`setuid` system calls, which change
//!   this one thread's ids without the C library's cross-thread machinery;
//! - reports a failed step as (pid, step, errno) on a pipe shared by all children and
//!   `_exit`s. The daemon polls that pipe and reads the reports before it reaps, so a
//!   failure is logged before its EXIT line.

use std::ffi::{CStr, CString, c_char, c_int};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use super::seccomp::{InstallStep, PreparedFilter};
use super::signals::KernelSigaction;

/// Exit status of a child whose setup failed. Its cause is in the report, not here.
pub const SETUP_FAILED_STATUS: i32 = 127;

/// One step of the child's setup, named in the report when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    SignalDispositions = 1,
    SignalMask,
    Stdio,
    CloseFds,
    Chdir,
    Setsid,
    Rlimit,
    Nice,
    Setgroups,
    Setgid,
    Setuid,
    NoNewPrivs,
    Seccomp,
    Execve,
}

impl Step {
    const ALL: [Step; 14] = [
        Step::SignalDispositions,
        Step::SignalMask,
        Step::Stdio,
        Step::CloseFds,
        Step::Chdir,
        Step::Setsid,
        Step::Rlimit,
        Step::Nice,
        Step::Setgroups,
        Step::Setgid,
        Step::Setuid,
        Step::NoNewPrivs,
        Step::Seccomp,
        Step::Execve,
    ];

    fn from_code(code: u32) -> Option<Step> {
        Step::ALL.into_iter().find(|step| *step as u32 == code)
    }

    /// The call that failed, as the logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Step::SignalDispositions => "sigaction",
            Step::SignalMask => "sigprocmask",
            Step::Stdio => "dup2",
            Step::CloseFds => "close_range",
            Step::Chdir => "chdir",
            Step::Setsid => "setsid",
            Step::Rlimit => "setrlimit",
            Step::Nice => "setpriority",
            Step::Setgroups => "setgroups",
            Step::Setgid => "setgid",
            Step::Setuid => "setuid",
            Step::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
            Step::Seccomp => "seccomp",
            Step::Execve => "execve",
        }
    }
}

/// A NULL-terminated array of C strings (`argv`, `envp`), built before the fork.
#[derive(Debug)]
pub struct CStringArray {
    /// Owns the strings `pointers` points into; never read otherwise.
    _strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

impl CStringArray {
    pub fn new(strings: Vec<CString>) -> CStringArray {
        // The pointers stay valid when `strings` moves: they point into each CString's own
        // heap buffer, which never moves or changes while this array holds it.
        let pointers = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        CStringArray {
            _strings: strings,
            pointers,
        }
    }

    fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

/// The ids the child takes on, resolved before the fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// The supplementary groups to set, or `None` to leave them as they are (only right
    /// when the daemon is not root, where `setgroups` would fail and the daemon's own
    /// groups are already those of the user it runs as).
    pub groups: Option<Vec<libc::gid_t>>,
}

/// A resource limit, set with soft = hard, as xinetd does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: libc::__rlimit_resource_t,
    pub value: libc::rlim_t,
}

/// Everything the child needs, built by the parent before the fork.
#[derive(Debug)]
pub struct ChildSetup<'a> {
    pub program: &'a CStr,
    pub argv: &'a CStringArray,
    pub envp: &'a CStringArray,
    /// The descriptor that becomes 0, 1 and 2: the connection, or for `wait = yes`
    /// services the listening socket.
    pub stdio: RawFd,
    pub rlimits: &'a [Rlimit],
    pub umask: Option<libc::mode_t>,
    /// The absolute nice value to set.
    pub priority: Option<c_int>,
    pub credentials: Option<&'a Credentials>,
    pub filter: Option<&'a PreparedFilter>,
}

/// `fork` failed: no process was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnError {
    pub errno: i32,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fork failed: {}",
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for SpawnError {}

/// A child whose setup failed; it exits with [`SETUP_FAILED_STATUS`] and never runs the
/// program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupFailure {
    pub pid: u32,
    pub step: Step,
    pub errno: i32,
}

impl fmt::Display for SetupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "child {}: {} failed: {}",
            self.pid,
            self.step.name(),
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

/// The size of one report on the pipe: pid, step, errno.
const REPORT_SIZE: usize = 12;

/// Creates challenge processes, and collects the reports of those whose setup failed.
#[derive(Debug)]
pub struct Spawner {
    report_read: OwnedFd,
    report_write: OwnedFd,
    /// Signals whose disposition is not the default in the daemon. Ignored ones would
    /// survive `execve`; handled ones must not run in the child.
    reset_signals: Vec<c_int>,
}

/// What the child works from.
struct ChildContext<'a> {
    setup: &'a ChildSetup<'a>,
    report_fd: RawFd,
    reset_signals: &'a [c_int],
}

impl Spawner {
    pub fn new() -> io::Result<Spawner> {
        let mut fds = [0; 2];
        // Non-blocking at both ends: the daemon drains it without waiting, and a child
        // never blocks on a full pipe (its report is then lost, its exit status is not).
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (report_read, report_write) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Spawner {
            report_read,
            report_write,
            reset_signals: super::signals::non_default_dispositions(),
        })
    }

    /// Starts `setup.program` in a new process and returns its pid. A setup step that
    /// fails later is found by [`Spawner::take_failures`].
    pub fn spawn(&mut self, setup: &ChildSetup<'_>) -> Result<u32, SpawnError> {
        let context = ChildContext {
            setup,
            report_fd: self.report_write.as_raw_fd(),
            reset_signals: &self.reset_signals,
        };
        // SAFETY: in the child, only `child_main` runs, which follows the rules in the
        // module documentation and never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(SpawnError {
                errno: last_errno(),
            });
        }
        if pid == 0 {
            child_main(&context);
        }
        Ok(pid as u32)
    }

    /// The descriptor to poll for reports.
    pub fn report_fd(&self) -> RawFd {
        self.report_read.as_raw_fd()
    }

    /// Every report waiting on the pipe.
    pub fn take_failures(&self) -> Vec<SetupFailure> {
        let mut failures = Vec::new();
        let mut buf = [0u8; REPORT_SIZE * 64];
        loop {
            // SAFETY: reads at most `buf.len()` bytes into `buf`; the pipe is
            // non-blocking. Reports are written whole (smaller than PIPE_BUF), so a read
            // of a multiple of their size returns whole reports.
            let n = unsafe {
                libc::read(
                    self.report_read.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n <= 0 {
                return failures;
            }
            for record in buf[..n as usize].chunks_exact(REPORT_SIZE) {
                let word = |i: usize| {
                    let bytes = [record[i], record[i + 1], record[i + 2], record[i + 3]];
                    u32::from_ne_bytes(bytes)
                };
                failures.push(SetupFailure {
                    pid: word(0),
                    step: Step::from_code(word(4)).unwrap_or(Step::Execve),
                    errno: word(8) as i32,
                });
            }
        }
    }
}

/// The child's whole life: the setup, then `execve`, or a report and `_exit`.
fn child_main(context: &ChildContext<'_>) -> ! {
    let Err((step, errno)) = run_steps(context);
    report(context.report_fd, step, errno);
    // SAFETY: _exit ends this process without running anything of the parent's (no
    // atexit handlers, no stdio flushing).
    unsafe { libc::_exit(SETUP_FAILED_STATUS) }
}

/// The setup, in order. Returns only when a step failed: success ends in `execve`.
fn run_steps(context: &ChildContext<'_>) -> Result<std::convert::Infallible, (Step, i32)> {
    let setup = context.setup;

    // Default dispositions first, so that no handler of the Rust runtime's runs in the
    // child once signals are unblocked, and so that ignored signals (Rust ignores
    // SIGPIPE) are not inherited by the challenge through execve. The raw call reaches
    // the C library's reserved signals too.
    let default = KernelSigaction::default();
    for &signal in context.reset_signals {
        // SAFETY: `default` (SIG_DFL, no flags, empty mask) has the kernel's layout and
        // lives across the call; the old disposition is not asked for.
        check(Step::SignalDispositions, unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &default as *const KernelSigaction,
                ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        })?;
    }

    // Empty signal mask: the daemon blocks the signals it reads through its signalfd, and
    // a blocked mask survives execve. The raw call also unblocks the C library's own.
    let empty: u64 = 0;
    // SAFETY: `empty` is a kernel sigset of the size passed; no old mask is asked for.
    check(Step::SignalMask, unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        )
    })?;

    // The socket on stdin, stdout and stderr. dup2 clears close-on-exec on the copies.
    for target in 0..3 {
        let rc = if setup.stdio == target {
            // SAFETY: clears FD_CLOEXEC on a descriptor we hold.
            unsafe { libc::fcntl(target, libc::F_SETFD, 0) }
        } else {
            // SAFETY: both are descriptors of this process; dup2 touches no memory.
            unsafe { libc::dup2(setup.stdio, target) }
        };
        check(Step::Stdio, rc)?;
    }

    // Every other descriptor closed, whatever RLIMIT_NOFILE is (the kernel walks only the
    // open ones). The report pipe stays open until execve closes it.
    let report = context.report_fd as libc::c_uint;
    if report > 3 {
        check(Step::CloseFds, close_range(3, report - 1))?;
    }
    check(Step::CloseFds, close_range(report + 1, libc::c_uint::MAX))?;

    // The challenge starts in "/", as under xinetd, never in the daemon's directory.
    // SAFETY: the path is a static NUL-terminated string.
    check(Step::Chdir, unsafe { libc::chdir(c"/".as_ptr()) })?;

    // A session of its own: no controlling terminal, and its pid is the process group id,
    // so the daemon can end the challenge and everything it started with one killpg.
    // SAFETY: setsid takes no arguments.
    check(Step::Setsid, unsafe { libc::setsid() })?;

    // Resource limits while still privileged, since raising a hard limit needs root.
    for limit in setup.rlimits {
        let value = libc::rlimit {
            rlim_cur: limit.value,
            rlim_max: limit.value,
        };
        // SAFETY: `value` is a valid rlimit.
        check(Step::Rlimit, unsafe {
            libc::setrlimit(limit.resource, &value)
        })?;
    }

    if let Some(mask) = setup.umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask) };
    }

    // Lowering the nice value needs privileges, so this too comes before the uid change.
    if let Some(priority) = setup.priority {
        // SAFETY: plain integer arguments.
        check(Step::Nice, unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, priority)
        })?;
    }

    // Groups, then gid, then uid: each needs the privileges that the next one drops.
    if let Some(credentials) = setup.credentials {
        if let Some(groups) = &credentials.groups {
            // SAFETY: `groups` holds `len` gids.
            check(Step::Setgroups, unsafe {
                libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr())
            })?;
        }

        // SAFETY: plain integer argument.
        check(Step::Setgid, unsafe {
            libc::syscall(libc::SYS_setgid, credentials.gid)
        })?;

        // SAFETY: plain integer argument.
        check(Step::Setuid, unsafe {
            libc::syscall(libc::SYS_setuid, credentials.uid)
        })?;
    }

    // no_new_privs for every challenge, filtered or not: a setuid program started by a
    // challenge must not get back the privileges we just dropped.
    // SAFETY: plain integer arguments.
    check(Step::NoNewPrivs, unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    })?;

    // The filter last before execve, so that it judges the challenge and not our setup.
    if let Some(filter) = setup.filter {
        filter.install().map_err(|err| {
            let step = match err.step {
                InstallStep::NoNewPrivs => Step::NoNewPrivs,
                InstallStep::SetFilter => Step::Seccomp,
            };
            (step, err.errno)
        })?;
    }

    // SAFETY: the program path and both arrays are NUL-terminated; this process's copy of
    // them lives until execve replaces it.
    unsafe {
        libc::execve(
            setup.program.as_ptr(),
            setup.argv.as_ptr(),
            setup.envp.as_ptr(),
        )
    };
    Err((Step::Execve, last_errno()))
}

/// `close_range(first, last, 0)` as a raw system call (the C library may not have it).
fn close_range(first: libc::c_uint, last: libc::c_uint) -> libc::c_long {
    // SAFETY: closes descriptors of this process only; touches no memory.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }
}

/// Turns a C return value into the step's error when it is -1.
fn check<T: Into<i64>>(step: Step, rc: T) -> Result<(), (Step, i32)> {
    if rc.into() == -1 {
        Err((step, last_errno()))
    } else {
        Ok(())
    }
}

/// Writes (pid, step, errno) to the report pipe; async-signal-safe.
fn report(fd: RawFd, step: Step, errno: i32) {
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() } as u32;
    let mut buf = [0u8; REPORT_SIZE];
    buf[..4].copy_from_slice(&pid.to_ne_bytes());
    buf[4..8].copy_from_slice(&(step as u32).to_ne_bytes());
    buf[8..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: writes REPORT_SIZE bytes from `buf`; a pipe write this small is atomic. If
    // it fails the daemon sees no report and logs the exit status alone.
    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    use super::*;

    fn cstrings(words: &[&str]) -> CStringArray {
        CStringArray::new(words.iter().map(|w| CString::new(*w).unwrap()).collect())
    }

    /// Waits for exactly this pid, so that parallel tests never reap each other's children.
    fn wait_for(pid: u32) -> i32 {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        assert_eq!(rc, pid as i32, "waitpid: {}", io::Error::last_os_error());
        status
    }

    fn setup<'a>(
        argv: &'a CStringArray,
        envp: &'a CStringArray,
        stdio: RawFd,
        program: &'a CStr,
    ) -> ChildSetup<'a> {
        ChildSetup {
            program,
            argv,
            envp,
            stdio,
            rlimits: &[],
            umask: None,
            priority: None,
            credentials: None,
            filter: None,
        }
    }

    #[test]
    fn child_runs_with_the_socket_on_stdio_and_only_the_given_environment() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let argv = cstrings(&[
            "sh",
            "-c",
            "echo \"$0 $KEY\"; echo err >&2; ls /proc/self/fd",
        ]);
        let envp = cstrings(&["KEY=value", "PATH=/usr/bin:/bin"]);
        let mut spawner = Spawner::new().unwrap();
        let pid = spawner
            .spawn(&setup(&argv, &envp, theirs.as_raw_fd(), c"/bin/sh"))
            .unwrap();
        drop(theirs);

        let mut out = String::new();
        ours.read_to_string(&mut out).unwrap();
        let status = wait_for(pid);
        assert_eq!(status, 0);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("sh value"));
        assert_eq!(lines.next(), Some("err"));
        // ls opens one more descriptor for the directory it lists.
        let fds: Vec<&str> = lines.collect();
        assert_eq!(fds, ["0", "1", "2", "3"], "unexpected open descriptors");
    }

    #[test]
    fn failed_exec_is_reported_with_its_pid_step_and_errno() {
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let argv = cstrings(&["missing"]);
        let envp = cstrings(&[]);
        let mut spawner = Spawner::new().unwrap();
        let program = c"/nonexistent/program";
        let pid = spawner
            .spawn(&setup(&argv, &envp, theirs.as_raw_fd(), program))
            .unwrap();
        let status = wait_for(pid);
        assert_eq!(status >> 8, SETUP_FAILED_STATUS);
        let expected = SetupFailure {
            pid,
            step: Step::Execve,
            errno: libc::ENOENT,
        };
        assert_eq!(spawner.take_failures(), [expected]);
        assert!(
            spawner.take_failures().is_empty(),
            "each report is read once"
        );
    }

    #[test]
    fn ignored_sigpipe_is_not_inherited() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let argv = cstrings(&["sh", "-c", "grep SigIgn /proc/self/status"]);
        let envp = cstrings(&[]);
        let mut spawner = Spawner::new().unwrap();
        let pid = spawner
            .spawn(&setup(&argv, &envp, theirs.as_raw_fd(), c"/bin/sh"))
            .unwrap();
        drop(theirs);
        let mut out = String::new();
        ours.read_to_string(&mut out).unwrap();
        wait_for(pid);
        // The shell itself ignores nothing at startup; bit 13 would be SIGPIPE.
        let mask = u64::from_str_radix(out.trim().trim_start_matches("SigIgn:").trim(), 16);
        assert_eq!(mask.unwrap() & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }
}
