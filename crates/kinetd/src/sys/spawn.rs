//! Starting a challenge process: the child's setup between fork and exec.
//!
//! The child is created with `clone(CLONE_VM | CLONE_VFORK)` on a stack of its own, the
//! way `posix_spawn` does it, not with `fork`. A fork copies the daemon's page tables on
//! every connection, which costs more the bigger the daemon grows; a child that shares the
//! daemon's memory costs the same whatever the daemon's size, and the daemon is suspended
//! until the child has called `execve` or exited, so the two never run at once.
//!
//! Sharing memory is what makes the rules strict. The child:
//! - runs only on its own stack, reads the [`ChildSetup`] that the parent built before the
//!   clone, and writes nothing of the parent's but `errno` (the parent is suspended and
//!   reads `errno` only after its own next system call);
//! - makes only raw system calls: no allocation, no locks, no formatting, no panics;
//! - sets its ids with raw `setgroups`/`setgid`/`setuid` system calls, because glibc's
//!   wrappers would try to change the ids of every thread of the "process" they believe
//!   they are in, which is the daemon's;
//! - reports a failed step as (step, errno) on a close-on-exec pipe and `_exit`s.
//!
//! Because the parent stays suspended until the exec or the exit, it reads the report
//! without waiting right after `clone` returns: either the report is there, or the exec
//! happened (and the write end closed in the child with it).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use super::seccomp::{InstallStep, PreparedFilter};
use super::signals::KernelSigaction;

/// The child's stack. The setup below needs a few hundred bytes; the rest is a margin for
/// what the C library's wrappers use.
const STACK_SIZE: usize = 256 * 1024;

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

/// A NULL-terminated array of C strings (`argv`, `envp`), built before the clone.
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

/// The ids the child takes on, resolved before the clone.
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

/// Everything the child needs, built by the parent before the clone.
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

/// Why no challenge process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// `clone` itself failed (no process was created).
    Clone { errno: i32 },
    /// The child was created but a setup step failed; it exits with
    /// [`SETUP_FAILED_STATUS`] and must still be reaped.
    Setup { pid: u32, step: Step, errno: i32 },
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SpawnError::Clone { errno } => {
                write!(f, "clone failed: {}", io::Error::from_raw_os_error(errno))
            }
            SpawnError::Setup { pid, step, errno } => write!(
                f,
                "child {pid}: {} failed: {}",
                step.name(),
                io::Error::from_raw_os_error(errno)
            ),
        }
    }
}

impl std::error::Error for SpawnError {}

/// Creates challenge processes. Holds the child stack and the report pipe, both reused:
/// the parent is suspended while a child uses them, so only one child ever does.
#[derive(Debug)]
pub struct Spawner {
    stack: Stack,
    report_read: OwnedFd,
    report_write: OwnedFd,
    /// Signals whose disposition is not the default in the daemon. Ignored ones would
    /// survive `execve`; handled ones must not run in a child that shares our memory.
    reset_signals: Vec<c_int>,
}

/// What the child reads through the clone argument.
struct ChildContext<'a> {
    setup: &'a ChildSetup<'a>,
    report_fd: RawFd,
    reset_signals: &'a [c_int],
}

impl Spawner {
    pub fn new() -> io::Result<Spawner> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (report_read, report_write) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Spawner {
            stack: Stack::new()?,
            report_read,
            report_write,
            reset_signals: super::signals::non_default_dispositions(),
        })
    }

    /// Starts `setup.program` in a new process and returns its pid once it has called
    /// `execve`.
    pub fn spawn(&mut self, setup: &ChildSetup<'_>) -> Result<u32, SpawnError> {
        let context = ChildContext {
            setup,
            report_fd: self.report_write.as_raw_fd(),
            reset_signals: &self.reset_signals,
        };
        // SAFETY: the stack is ours and used by this child alone (CLONE_VFORK suspends us
        // until it has exec'd or exited, so no other child can be on it). `context` lives
        // on our stack until clone returns, which is after the child is done reading it.
        // `child_main` follows the rules in the module documentation.
        let pid = unsafe {
            libc::clone(
                child_main,
                self.stack.top(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                &context as *const ChildContext<'_> as *mut c_void,
            )
        };
        if pid < 0 {
            return Err(SpawnError::Clone {
                errno: last_errno(),
            });
        }
        let pid = pid as u32;

        match self.read_report() {
            Some((step, errno)) => Err(SpawnError::Setup { pid, step, errno }),
            None => Ok(pid),
        }
    }

    /// The report of the child that just ran, if it failed.
    fn read_report(&self) -> Option<(Step, i32)> {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `buf`; the pipe is non-blocking.
        let n = unsafe {
            libc::read(
                self.report_read.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n != 8 {
            return None;
        }
        let code = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        Some((Step::from_code(code).unwrap_or(Step::Execve), errno))
    }
}

/// The child's entry point, on the child stack.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildContext` that `Spawner::spawn` passed to clone; the
    // parent keeps it alive and unchanged until we exec or exit.
    let context = unsafe { &*(arg as *const ChildContext<'_>) };
    let Err((step, errno)) = run_steps(context);
    report(context.report_fd, step, errno);
    // SAFETY: _exit ends this process without running anything of the parent's (no
    // atexit handlers, no stdio flushing).
    unsafe { libc::_exit(SETUP_FAILED_STATUS) }
}

/// The setup, in order. Returns only when a step failed: success ends in `execve`.
fn run_steps(context: &ChildContext<'_>) -> Result<std::convert::Infallible, (Step, i32)> {
    let setup = context.setup;

    // Default dispositions first, so that no handler of the daemon's can run in a process
    // that shares its memory once signals are unblocked, and so that ignored signals
    // (Rust ignores SIGPIPE) are not inherited by the challenge through execve.
    // The raw call reaches the C library's reserved signals too.
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

    // SAFETY: the program path and both arrays are NUL-terminated and were built before
    // the clone; the parent keeps them alive until we are gone.
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

/// Writes (step, errno) to the report pipe; async-signal-safe.
fn report(fd: RawFd, step: Step, errno: i32) {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&(step as u32).to_ne_bytes());
    buf[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: writes 8 bytes from `buf`; a pipe write this small is atomic. If it fails
    // the parent sees no report and logs the exit status instead.
    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The child stack: an anonymous mapping with a guard page at its low end.
#[derive(Debug)]
struct Stack {
    base: *mut c_void,
}

impl Stack {
    fn new() -> io::Result<Stack> {
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base };
        // A guard page, so that an overflow faults instead of writing into other memory.
        // SAFETY: the first page lies inside the mapping we own.
        let rc = unsafe { libc::mprotect(base, page_size(), libc::PROT_NONE) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The initial stack pointer: stacks grow down on every architecture we build for.
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, 16-byte aligned since mmap returns a
        // page-aligned base and STACK_SIZE is a multiple of the page size.
        unsafe { self.base.cast::<u8>().add(STACK_SIZE).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no child can be using it, as
        // spawn returns only after the child has exec'd or exited.
        unsafe { libc::munmap(self.base, STACK_SIZE) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as usize } else { 4096 }
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
    fn failed_exec_is_reported_with_its_step_and_errno() {
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let argv = cstrings(&["missing"]);
        let envp = cstrings(&[]);
        let mut spawner = Spawner::new().unwrap();
        let err = spawner
            .spawn(&setup(
                &argv,
                &envp,
                theirs.as_raw_fd(),
                c"/nonexistent/program",
            ))
            .unwrap_err();
        let SpawnError::Setup { pid, step, errno } = err else {
            panic!("expected a setup failure, got {err}");
        };
        assert_eq!((step, errno), (Step::Execve, libc::ENOENT));
        let status = wait_for(pid);
        assert_eq!(status >> 8, SETUP_FAILED_STATUS);
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
