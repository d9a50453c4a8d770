//! Starting a challenge process: the child's setup between clone and exec.
//!
//! How the child is created decides the daemon's cost per connection. Three ways were
//! measured on two busy cores (no-libc service, concurrency 8):
//! - `fork` copies the daemon's page tables and then takes a copy-on-write fault for
//!   every page the daemon touches until the child has exec'd: about 110 µs of daemon
//!   CPU per connection.
//! - `vfork` (`clone(CLONE_VM | CLONE_VFORK)`, as `posix_spawn` does it) costs a few µs,
//!   but the daemon waits until the child has called `execve`, and the child's `setsid`
//!   moves it into a new scheduler autogroup, which waits for a time slice whenever
//!   other programs keep the CPUs busy: a few milliseconds per connection, about 400
//!   connections a second.
//! - `clone(CLONE_VM)` without CLONE_VFORK, used here: nothing is copied and the daemon
//!   goes back to its loop at once, while the child sets itself up on a stack of its own.
//!
//! The child shares the daemon's memory while the daemon keeps running, so:
//! - everything it reads is in a [`Pending`] record the daemon keeps, unchanged, until
//!   the child is gone from that memory (it has exec'd or exited);
//! - it writes only to its own stack;
//! - it makes raw system calls only ([`raw`]), never a C library wrapper: a wrapper that
//!   fails writes `errno`, and `errno` is the daemon's thread-local variable, which the
//!   daemon reads at the same moment;
//! - it allocates nothing, takes no lock, formats nothing and cannot panic.
//!
//! Sharing memory has one cost in safety, which decides when it is not used. Dumpability
//! (who may ptrace a process or read its memory through /proc) belongs to the memory
//! map, so the child and the daemon share it. When the child changes its uid, the kernel
//! sets that shared flag to the sysctl `fs.suid_dumpable`. With 0 (the default) the
//! daemon's memory becomes undumpable, which is harmless. With 1 or 2 it becomes
//! dumpable, and until `execve` gives the child a memory of its own, any process of the
//! challenge's user (every other `nobody` challenge) may ptrace the child and so write
//! into the root daemon's memory. A `PR_SET_DUMPABLE(0)` before `setuid` does not help:
//! the uid change overwrites it. So the daemon reads the sysctl ([`MemorySharing::read`])
//! at startup and on reload, and when it is not 0, or cannot be read, a child that
//! changes ids is created without CLONE_VM, with fork semantics: the same setup runs on a
//! copy of the daemon's memory, and an attacker who attaches reaches only that copy. The
//! child also calls `PR_SET_DUMPABLE(0)` right after `setuid`, which closes even that
//! window but for a few instructions (`execve` restores normal dumpability for the new
//! program); when the memory is shared, that flag is the daemon's too, and the daemon
//! stays undumpable, as it already is after the first uid change with the sysctl at 0.
//!
//! The daemon learns two things about each child, neither at the cost of a system call
//! or a descriptor per child:
//! - When it has left the shared memory, so that its record can be freed and its stack
//!   reused. The child is created with `CLONE_CHILD_CLEARTID` pointing at a word in its
//!   record: the kernel writes 0 there when the child lets go of the memory, at `execve`
//!   or at exit, as it does for threads. The daemon looks at the words when it next
//!   wakes. A child with a copy of the memory needs nothing kept: its record and stack
//!   are free as soon as `clone` returns.
//! - Which step failed, if one did. All children share one close-on-exec pipe to the
//!   daemon; a failed step writes (pid, step, errno) on it, in one write of fewer than
//!   `PIPE_BUF` bytes so that reports never interleave, before the child exits. The
//!   report is thus in the pipe before the child can be reaped.

use std::collections::HashMap;
use std::ffi::{CString, c_char, c_int, c_void};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::raw;
use super::seccomp::PreparedFilter;
use super::signals::KernelSigaction;

/// The child's stack. The setup needs well under a KiB; the rest is margin.
const STACK_SIZE: usize = 64 * 1024;

/// Stacks kept for reuse once their child is gone.
const SPARE_STACKS: usize = 64;

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
    Undumpable,
    NoNewPrivs,
    Seccomp,
    Execve,
}

impl Step {
    const ALL: [Step; 15] = [
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
        Step::Undumpable,
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
            Step::Undumpable => "prctl(PR_SET_DUMPABLE)",
            Step::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
            Step::Seccomp => "seccomp",
            Step::Execve => "execve",
        }
    }
}

/// The sysctl that decides whether a child that changes ids may share the daemon's memory.
pub const SUID_DUMPABLE: &str = "/proc/sys/fs/suid_dumpable";

/// Which children share the daemon's memory (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemorySharing {
    /// Every child: `fs.suid_dumpable` is 0.
    All,
    /// Only children that keep the daemon's ids; the others get a copy. `why` is for the
    /// daemon log.
    UnlessChangingIds { why: String },
}

impl MemorySharing {
    /// Decides from the `fs.suid_dumpable` sysctl at `path` ([`SUID_DUMPABLE`] but in
    /// tests): sharing with every child only when it reads 0.
    pub fn read(path: &Path) -> MemorySharing {
        let why = match std::fs::read_to_string(path) {
            Ok(text) if text.trim() == "0" => return MemorySharing::All,
            Ok(text) => format!("fs.suid_dumpable is {}", text.trim()),
            Err(err) => format!("cannot read {}: {err}", path.display()),
        };
        MemorySharing::UnlessChangingIds { why }
    }

    fn shares_with(&self, program: &Program) -> bool {
        match self {
            MemorySharing::All => true,
            MemorySharing::UnlessChangingIds { .. } => program.credentials.is_none(),
        }
    }
}

/// A NULL-terminated array of C strings (`argv`, `envp`).
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

/// The ids the child takes on, resolved when the configuration loads.
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

/// What a service's children run, the same for every connection.
#[derive(Debug)]
pub struct Program {
    pub path: CString,
    pub argv: CStringArray,
    pub rlimits: Vec<Rlimit>,
    pub umask: Option<libc::mode_t>,
    /// The absolute nice value to set.
    pub priority: Option<c_int>,
    pub credentials: Option<Credentials>,
    pub filter: Option<PreparedFilter>,
}

/// `clone` failed: no process was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnError {
    pub errno: i32,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = io::Error::from_raw_os_error(self.errno);
        write!(f, "cannot create a process: {cause}")
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

/// Everything one child reads, kept by the daemon until the child has left its memory.
#[derive(Debug)]
struct ChildContext {
    program: Rc<Program>,
    envp: CStringArray,
    stdio: RawFd,
    /// The write end of the daemon's report pipe.
    report_fd: RawFd,
    reset_signals: Rc<[c_int]>,
    /// Not 0 while the child may use the daemon's memory: the kernel clears it
    /// (`CLONE_CHILD_CLEARTID`) when the child lets go of that memory.
    in_memory: AtomicU32,
}

/// A child sharing the daemon's memory that may not have left it yet.
#[derive(Debug)]
struct Pending {
    stack: Stack,
    /// Boxed so that its address, which the child holds, never changes.
    context: Box<ChildContext>,
}

impl Pending {
    fn has_left(&self) -> bool {
        self.context.in_memory.load(Ordering::Acquire) == 0
    }
}

/// Creates challenge processes and watches them until they have exec'd.
#[derive(Debug)]
pub struct Spawner {
    /// Signals whose disposition is not the default in the daemon. Ignored ones would
    /// survive `execve`; handled ones must not run in the child.
    reset_signals: Rc<[c_int]>,
    /// The pipe every child reports a failed step on: the daemon reads one end, the
    /// children inherit the other.
    reports: OwnedFd,
    report_writer: OwnedFd,
    /// By pid.
    pending: HashMap<u32, Pending>,
    spare_stacks: Vec<Stack>,
    sharing: MemorySharing,
}

impl Spawner {
    pub fn new(sharing: MemorySharing) -> io::Result<Spawner> {
        let mut fds = [0; 2];
        // Non-blocking at both ends: a child must never wait on a full pipe (its report
        // is then lost and the exit status alone is logged).
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (reports, report_writer) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Spawner {
            reset_signals: super::signals::non_default_dispositions().into(),
            reports,
            report_writer,
            pending: HashMap::new(),
            spare_stacks: Vec::new(),
            sharing,
        })
    }

    /// Which children share the daemon's memory from now on.
    pub fn sharing(&self) -> &MemorySharing {
        &self.sharing
    }

    /// Changes which children share the daemon's memory (the sysctl was read again).
    pub fn set_sharing(&mut self, sharing: MemorySharing) {
        self.sharing = sharing;
    }

    /// Starts `program` in a new process with `stdio` as its descriptors 0, 1 and 2, and
    /// returns its pid. `stdio` may be closed as soon as this returns (the child has its
    /// own copy). A setup step that fails is reported by [`Spawner::failures`].
    pub fn spawn(
        &mut self,
        program: &Rc<Program>,
        envp: CStringArray,
        stdio: RawFd,
    ) -> Result<u32, SpawnError> {
        let stack = match self.spare_stacks.pop() {
            Some(stack) => stack,
            None => Stack::new().map_err(|err| SpawnError {
                errno: err.raw_os_error().unwrap_or(libc::ENOMEM),
            })?,
        };
        let context = Box::new(ChildContext {
            program: program.clone(),
            envp,
            stdio,
            report_fd: self.report_writer.as_raw_fd(),
            reset_signals: self.reset_signals.clone(),
            in_memory: AtomicU32::new(1),
        });

        // Without CLONE_VM the child runs the same code on a copy of `stack` and `context`.
        let shares = self.sharing.shares_with(program);
        let flags = if shares {
            libc::CLONE_VM | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD
        } else {
            libc::SIGCHLD
        };

        // SAFETY: the child runs `child_main` on `stack`, which no other child uses, and
        // reads only `context`; when they are shared, both stay untouched in
        // `self.pending` until the kernel clears `in_memory`, which it does only once the
        // child has let go of our memory. `child_main` follows the rules in the module
        // documentation and never returns.
        let pid = unsafe {
            libc::clone(
                child_main,
                stack.top(),
                flags,
                ptr::from_ref::<ChildContext>(&*context).cast_mut().cast(),
                ptr::null_mut::<libc::pid_t>(),
                ptr::null_mut::<c_void>(),
                context.in_memory.as_ptr(),
            )
        };
        if pid < 0 {
            let errno = last_errno();
            self.spare_stacks.push(stack);
            return Err(SpawnError { errno });
        }
        let pid = pid as u32;
        if shares {
            self.pending.insert(pid, Pending { stack, context });
        } else {
            self.spare_stack(stack);
        }
        Ok(pid)
    }

    /// The descriptor that becomes readable when a child reports a failed step.
    pub fn reports_fd(&self) -> RawFd {
        self.reports.as_raw_fd()
    }

    /// Frees what the children that have left the daemon's memory used. Makes no system
    /// call.
    pub fn sweep(&mut self) {
        let gone: Vec<Pending> = self
            .pending
            .extract_if(|_, pending| pending.has_left())
            .map(|(_, pending)| pending)
            .collect();
        for pending in gone {
            self.spare_stack(pending.stack);
        }
    }

    /// Frees the record of a child that has been reaped, if it is still kept: a child that
    /// dumps core leaves its word set, but once reaped it is surely gone.
    pub fn reaped(&mut self, pid: u32) {
        if let Some(pending) = self.pending.remove(&pid) {
            self.spare_stack(pending.stack);
        }
    }

    fn spare_stack(&mut self, stack: Stack) {
        if self.spare_stacks.len() < SPARE_STACKS {
            self.spare_stacks.push(stack);
        }
    }

    /// The failed steps reported since the last call (those children exit with status
    /// 127). Never waits.
    pub fn failures(&mut self) -> Vec<SetupFailure> {
        let mut failures = Vec::new();
        let mut buf = [0u8; REPORT_LEN * 64];
        loop {
            // SAFETY: reads at most `buf.len()` bytes into `buf`; the pipe is non-blocking.
            let n =
                unsafe { libc::read(self.reports.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            // Reports are written whole and read in multiples of their length.
            let Ok(n @ 1..) = usize::try_from(n) else {
                return failures;
            };
            failures.extend(buf[..n].chunks_exact(REPORT_LEN).map(|report| {
                let word = |i: usize| [report[i], report[i + 1], report[i + 2], report[i + 3]];
                SetupFailure {
                    pid: u32::from_ne_bytes(word(0)),
                    step: Step::from_code(u32::from_ne_bytes(word(4))).unwrap_or(Step::Execve),
                    errno: i32::from_ne_bytes(word(8)),
                }
            }));
        }
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // A child still setting up runs on its stack and reads its context: never unmap
        // or free them under it. Only happens when the daemon exits right after a clone.
        for (_, pending) in self.pending.drain() {
            if !pending.has_left() {
                std::mem::forget(pending.stack);
                std::mem::forget(pending.context);
            }
        }
    }
}

/// The child's entry point, on its own stack.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the boxed `ChildContext` that `Spawner::spawn` passed to clone;
    // the daemon keeps it, unchanged, until this process has exec'd or exited.
    let context = unsafe { &*arg.cast::<ChildContext>() };
    // The pid is taken before the setup installs the filter, which a report after a
    // failed execve runs under and which seldom allows getpid.
    // SAFETY: getpid takes no arguments and cannot fail.
    let pid = unsafe { raw::syscall1(libc::SYS_getpid, 0) } as u32;
    let Err((step, errno)) = run_steps(context);
    report(context.report_fd, pid, step, errno);
    // SAFETY: exit_group ends this process; nothing of the daemon's runs (no atexit
    // handlers, no stdio flushing).
    unsafe { raw::syscall1(libc::SYS_exit_group, SETUP_FAILED_STATUS as usize) };
    // exit_group does not return.
    0
}

/// The setup, in order. Returns only when a step failed: success ends in `execve`.
fn run_steps(context: &ChildContext) -> Result<std::convert::Infallible, (Step, i32)> {
    let program = &*context.program;

    // Default dispositions first, so that no handler of the Rust runtime's runs in the
    // child once signals are unblocked, and so that ignored signals (Rust ignores
    // SIGPIPE) are not inherited by the challenge through execve.
    let default = KernelSigaction::default();
    for &signal in context.reset_signals.iter() {
        // SAFETY: `default` (SIG_DFL, no flags, empty mask) has the kernel's layout and
        // lives across the call; the old disposition is not asked for.
        check(Step::SignalDispositions, unsafe {
            raw::syscall4(
                libc::SYS_rt_sigaction,
                signal as usize,
                ptr::from_ref(&default) as usize,
                0,
                8,
            )
        })?;
    }

    // Empty signal mask: the daemon blocks the signals it reads through its signalfd, and
    // a blocked mask survives execve.
    let empty: u64 = 0;
    // SAFETY: `empty` is a kernel sigset of the size passed; no old mask is asked for.
    check(Step::SignalMask, unsafe {
        raw::syscall4(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            ptr::from_ref(&empty) as usize,
            0,
            8,
        )
    })?;

    // The socket on stdin, stdout and stderr. dup2 clears close-on-exec on the copies;
    // the daemon keeps 0, 1 and 2 open, so the socket is never one of them.
    for target in 0..3usize {
        // SAFETY: both are descriptors of this process; dup2 touches no memory.
        check(Step::Stdio, unsafe {
            raw::syscall2(libc::SYS_dup2, context.stdio as usize, target)
        })?;
    }

    // Every other descriptor closed, whatever RLIMIT_NOFILE is (the kernel walks only the
    // open ones). The report pipe stays open until execve closes it.
    let report = context.report_fd as usize;
    if report > 3 {
        // SAFETY: closes descriptors of this process only.
        check(Step::CloseFds, unsafe {
            raw::syscall3(libc::SYS_close_range, 3, report - 1, 0)
        })?;
    }
    // SAFETY: as above.
    check(Step::CloseFds, unsafe {
        raw::syscall3(libc::SYS_close_range, report + 1, u32::MAX as usize, 0)
    })?;

    // The challenge starts in "/", as under xinetd, never in the daemon's directory.
    // SAFETY: the path is a static NUL-terminated string.
    check(Step::Chdir, unsafe {
        raw::syscall1(libc::SYS_chdir, c"/".as_ptr() as usize)
    })?;

    // A session of its own: no controlling terminal, and its pid is the process group id,
    // so the daemon can end the challenge and everything it started with one killpg.
    // SAFETY: setsid takes no arguments.
    check(Step::Setsid, unsafe { raw::syscall1(libc::SYS_setsid, 0) })?;

    // Resource limits while still privileged, since raising a hard limit needs root.
    for limit in &program.rlimits {
        let value = libc::rlimit {
            rlim_cur: limit.value,
            rlim_max: limit.value,
        };
        // SAFETY: `value` is a valid rlimit that lives across the call.
        check(Step::Rlimit, unsafe {
            raw::syscall4(
                libc::SYS_prlimit64,
                0,
                limit.resource as usize,
                ptr::from_ref(&value) as usize,
                0,
            )
        })?;
    }

    if let Some(mask) = program.umask {
        // SAFETY: umask cannot fail.
        unsafe { raw::syscall1(libc::SYS_umask, mask as usize) };
    }

    // Lowering the nice value needs privileges, so this too comes before the uid change.
    if let Some(priority) = program.priority {
        // SAFETY: plain integer arguments.
        check(Step::Nice, unsafe {
            raw::syscall3(
                libc::SYS_setpriority,
                libc::PRIO_PROCESS as usize,
                0,
                priority as isize as usize,
            )
        })?;
    }

    // Groups, then gid, then uid: each needs the privileges that the next one drops.
    if let Some(credentials) = &program.credentials {
        if let Some(groups) = &credentials.groups {
            // SAFETY: `groups` holds `len` gids.
            check(Step::Setgroups, unsafe {
                raw::syscall2(libc::SYS_setgroups, groups.len(), groups.as_ptr() as usize)
            })?;
        }

        // SAFETY: plain integer argument.
        check(Step::Setgid, unsafe {
            raw::syscall1(libc::SYS_setgid, credentials.gid as usize)
        })?;

        // SAFETY: plain integer argument.
        check(Step::Setuid, unsafe {
            raw::syscall1(libc::SYS_setuid, credentials.uid as usize)
        })?;

        // Right after setuid, which made the memory as dumpable as fs.suid_dumpable says:
        // no process of the new user may ptrace this one before execve (see the module
        // documentation). execve makes the new program dumpable as usual.
        // SAFETY: plain integer arguments.
        check(Step::Undumpable, unsafe {
            raw::syscall5(libc::SYS_prctl, libc::PR_SET_DUMPABLE as usize, 0, 0, 0, 0)
        })?;
    }

    // no_new_privs for every challenge, filtered or not: a setuid program started by a
    // challenge must not get back the privileges we just dropped. A filter also needs it.
    // SAFETY: plain integer arguments.
    check(Step::NoNewPrivs, unsafe {
        raw::syscall5(
            libc::SYS_prctl,
            libc::PR_SET_NO_NEW_PRIVS as usize,
            1,
            0,
            0,
            0,
        )
    })?;

    // The filter last before execve, so that it judges the challenge and not our setup.
    if let Some(filter) = &program.filter {
        let prog = filter.fprog();
        // SAFETY: `prog` points into `filter`, which the daemon keeps alive; the kernel
        // copies the instructions and never writes to them.
        check(Step::Seccomp, unsafe {
            raw::syscall3(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as usize,
                0,
                ptr::from_ref(&prog) as usize,
            )
        })?;
    }

    // SAFETY: the path and both arrays are NUL-terminated and kept alive by the daemon
    // until this process is gone from its memory.
    let rc = unsafe {
        raw::syscall3(
            libc::SYS_execve,
            program.path.as_ptr() as usize,
            program.argv.as_ptr() as usize,
            context.envp.as_ptr() as usize,
        )
    };
    Err((Step::Execve, -rc as i32))
}

/// A raw system call's result as the step's error when it failed (-4095..=-1 is -errno).
fn check(step: Step, rc: isize) -> Result<(), (Step, i32)> {
    if (-4095..0).contains(&rc) {
        Err((step, -rc as i32))
    } else {
        Ok(())
    }
}

/// The length of one report: pid, step, errno.
const REPORT_LEN: usize = 12;

/// Writes (pid, step, errno) to the report pipe. Only `write` runs here: after a failed
/// execve the service's filter is installed already.
fn report(fd: RawFd, pid: u32, step: Step, errno: i32) {
    let mut buf = [0u8; REPORT_LEN];
    buf[..4].copy_from_slice(&pid.to_ne_bytes());
    buf[4..8].copy_from_slice(&(step as u32).to_ne_bytes());
    buf[8..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: writes REPORT_LEN bytes from `buf`. If it fails the daemon sees no report
    // and logs the exit status alone.
    unsafe {
        raw::syscall3(
            libc::SYS_write,
            fd as usize,
            buf.as_ptr() as usize,
            REPORT_LEN,
        )
    };
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A child stack: an anonymous mapping with a guard page at its low end.
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

    /// The initial stack pointer: stacks grow down.
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, 16-byte aligned since mmap returns a
        // page-aligned base and STACK_SIZE is a multiple of the page size.
        unsafe { self.base.cast::<u8>().add(STACK_SIZE).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; a stack is dropped only once
        // its child is gone (see `Spawner::drop`).
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
    use std::time::{Duration, Instant};

    use super::*;

    fn cstrings(words: &[&str]) -> CStringArray {
        CStringArray::new(words.iter().map(|w| CString::new(*w).unwrap()).collect())
    }

    fn program(path: &str, argv: &[&str]) -> Rc<Program> {
        Rc::new(Program {
            path: CString::new(path).unwrap(),
            argv: cstrings(argv),
            rlimits: Vec::new(),
            umask: None,
            priority: None,
            credentials: None,
            filter: None,
        })
    }

    /// Waits for exactly this pid, so that parallel tests never reap each other's children.
    fn wait_for(pid: u32) -> i32 {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        assert_eq!(rc, pid as i32, "waitpid: {}", io::Error::last_os_error());
        status
    }

    /// Sweeps until no child is pending, then returns the failures reported.
    fn settle(spawner: &mut Spawner) -> Vec<SetupFailure> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            spawner.sweep();
            if spawner.pending.is_empty() {
                return spawner.failures();
            }
            assert!(
                Instant::now() < deadline,
                "a child never left the shared memory"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn child_runs_with_the_socket_on_stdio_and_only_the_given_environment() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let script = "echo \"$0 $KEY\"; echo err >&2; ls /proc/self/fd";
        let program = program("/bin/sh", &["sh", "-c", script]);
        let envp = cstrings(&["KEY=value", "PATH=/usr/bin:/bin"]);
        let mut spawner = Spawner::new(MemorySharing::All).unwrap();
        let pid = spawner.spawn(&program, envp, theirs.as_raw_fd()).unwrap();
        drop(theirs);

        let mut out = String::new();
        ours.read_to_string(&mut out).unwrap();
        assert_eq!(wait_for(pid), 0);
        assert!(settle(&mut spawner).is_empty());
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
        let program = program("/nonexistent/program", &["missing"]);
        let mut spawner = Spawner::new(MemorySharing::All).unwrap();
        let pid = spawner
            .spawn(&program, cstrings(&[]), theirs.as_raw_fd())
            .unwrap();
        assert_eq!(wait_for(pid) >> 8, SETUP_FAILED_STATUS);
        let expected = SetupFailure {
            pid,
            step: Step::Execve,
            errno: libc::ENOENT,
        };
        assert_eq!(settle(&mut spawner), [expected]);
    }

    #[test]
    fn failures_of_children_in_flight_together_each_name_their_own_pid() {
        let program = program("/nonexistent/program", &["missing"]);
        let mut spawner = Spawner::new(MemorySharing::All).unwrap();
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let pids: Vec<u32> = (0..40)
            .map(|_| {
                let envp = cstrings(&[]);
                spawner.spawn(&program, envp, theirs.as_raw_fd()).unwrap()
            })
            .collect();
        for &pid in &pids {
            assert_eq!(wait_for(pid) >> 8, SETUP_FAILED_STATUS);
        }
        let mut failures = settle(&mut spawner);
        failures.sort_by_key(|failure| failure.pid);
        let mut expected: Vec<SetupFailure> = pids
            .into_iter()
            .map(|pid| SetupFailure {
                pid,
                step: Step::Execve,
                errno: libc::ENOENT,
            })
            .collect();
        expected.sort_by_key(|failure| failure.pid);
        assert_eq!(failures, expected);
        assert!(
            spawner.failures().is_empty(),
            "each report is returned once"
        );
    }

    #[test]
    fn a_child_with_a_copy_of_memory_is_not_watched_but_its_failure_is_reported() {
        // Keeping the daemon's ids, this child would share memory; changing them under
        // UnlessChangingIds it gets a copy. Changing ids needs root.
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test changes uid and needs root; CI runs as root"
        );
        let program = Rc::new(Program {
            credentials: Some(Credentials {
                uid: 65534,
                gid: 65534,
                groups: Some(Vec::new()),
            }),
            ..Rc::into_inner(program("/nonexistent/program", &["missing"])).unwrap()
        });
        let why = "test".to_owned();
        let mut spawner = Spawner::new(MemorySharing::UnlessChangingIds { why }).unwrap();
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let pid = spawner
            .spawn(&program, cstrings(&[]), theirs.as_raw_fd())
            .unwrap();
        assert!(
            spawner.pending.is_empty(),
            "nothing of ours is shared with it"
        );
        assert_eq!(spawner.spare_stacks.len(), 1, "its stack is free at once");
        assert_eq!(wait_for(pid) >> 8, SETUP_FAILED_STATUS);
        let expected = SetupFailure {
            pid,
            step: Step::Execve,
            errno: libc::ENOENT,
        };
        assert_eq!(spawner.failures(), [expected]);
    }

    #[test]
    fn a_failed_execve_is_reported_under_a_filter_that_allows_little_else() {
        // The filter allows what a failed execve leaves the child to do: write its report
        // and exit. Anything more (getpid, say) would be killed with SIGSYS, and the
        // failure would look like a policy violation.
        let policy = "ALLOW { execve, write, exit_group } DEFAULT KILL_PROCESS";
        let source = kafel::SourceFile::new("test.policy", policy);
        let compiled = kafel::compile(
            &source,
            &[kafel::arch::Arch::X86_64],
            &kafel::MemLoader::new(),
        )
        .unwrap();
        let program = Rc::new(Program {
            filter: Some(PreparedFilter::new(&compiled).unwrap()),
            ..Rc::into_inner(program("/nonexistent/program", &["missing"])).unwrap()
        });
        let mut spawner = Spawner::new(MemorySharing::All).unwrap();
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let pid = spawner
            .spawn(&program, cstrings(&[]), theirs.as_raw_fd())
            .unwrap();
        assert_eq!(
            wait_for(pid),
            SETUP_FAILED_STATUS << 8,
            "exits with status 127, not by a signal"
        );
        let expected = SetupFailure {
            pid,
            step: Step::Execve,
            errno: libc::ENOENT,
        };
        assert_eq!(settle(&mut spawner), [expected]);
    }

    #[test]
    fn ignored_sigpipe_is_not_inherited() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let program = program("/bin/sh", &["sh", "-c", "grep SigIgn /proc/self/status"]);
        let mut spawner = Spawner::new(MemorySharing::All).unwrap();
        let pid = spawner
            .spawn(&program, cstrings(&[]), theirs.as_raw_fd())
            .unwrap();
        drop(theirs);
        let mut out = String::new();
        ours.read_to_string(&mut out).unwrap();
        wait_for(pid);
        settle(&mut spawner);
        // The shell itself ignores nothing at startup; bit 13 would be SIGPIPE.
        let mask = u64::from_str_radix(out.trim().trim_start_matches("SigIgn:").trim(), 16);
        assert_eq!(mask.unwrap() & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    #[test]
    fn stacks_are_reused_once_children_are_gone() {
        let program = program("/bin/true", &["true"]);
        let mut spawner = Spawner::new(MemorySharing::All).unwrap();
        for _ in 0..3 {
            let (_ours, theirs) = UnixStream::pair().unwrap();
            let pid = spawner
                .spawn(&program, cstrings(&[]), theirs.as_raw_fd())
                .unwrap();
            wait_for(pid);
            settle(&mut spawner);
        }
        assert_eq!(
            spawner.spare_stacks.len(),
            1,
            "one stack served all three children"
        );
    }

    #[test]
    fn memory_is_shared_with_every_child_only_when_suid_dumpable_reads_zero() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let sysctl = dir.join("suid_dumpable");
        std::fs::write(&sysctl, "0\n").unwrap();
        assert_eq!(MemorySharing::read(&sysctl), MemorySharing::All);
        for value in ["1", "2"] {
            std::fs::write(&sysctl, format!("{value}\n")).unwrap();
            let why = format!("fs.suid_dumpable is {value}");
            assert_eq!(
                MemorySharing::read(&sysctl),
                MemorySharing::UnlessChangingIds { why }
            );
        }
        let missing = dir.join("missing");
        let sharing = MemorySharing::read(&missing);
        assert!(
            matches!(&sharing, MemorySharing::UnlessChangingIds { why } if why.starts_with("cannot read")),
            "an unreadable sysctl must not let children share: {sharing:?}"
        );
    }

    /// Runs `f` in a forked copy of this test process and returns its result (0..=255),
    /// so that what the child does to its memory map cannot affect the other tests.
    fn in_forked_process(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the copy runs `f` and exits without returning into the test harness; the
        // C library makes its allocator usable in the child of a threaded process.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(99);
            // SAFETY: ends the copy without running the harness's exit handlers.
            unsafe { libc::_exit(code) };
        }
        wait_for(pid as u32) >> 8
    }

    /// In a copy of this process: starts `id -u` as nobody with `sharing`, and returns
    /// 1 if it printed 65534, plus 2 if this process's memory is still dumpable after.
    fn run_as_nobody(sharing: MemorySharing) -> i32 {
        in_forked_process(move || {
            let (mut ours, theirs) = UnixStream::pair().unwrap();
            let nobody = Credentials {
                uid: 65534,
                gid: 65534,
                groups: Some(Vec::new()),
            };
            let program = Rc::new(Program {
                credentials: Some(nobody),
                ..Rc::into_inner(program("/bin/sh", &["sh", "-c", "id -u"])).unwrap()
            });
            let mut spawner = Spawner::new(sharing).unwrap();
            let pid = spawner
                .spawn(
                    &program,
                    cstrings(&["PATH=/usr/bin:/bin"]),
                    theirs.as_raw_fd(),
                )
                .unwrap();
            drop(theirs);
            let mut out = String::new();
            ours.read_to_string(&mut out).unwrap();
            wait_for(pid);
            assert!(settle(&mut spawner).is_empty());
            // SAFETY: plain integer arguments; reads a flag of this process.
            let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
            i32::from(out == "65534\n") + if dumpable == 1 { 2 } else { 0 }
        })
    }

    #[test]
    fn a_child_that_changes_ids_never_makes_the_daemon_ptraceable() {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test changes uid and needs root; CI runs as root"
        );
        let before = in_forked_process(|| {
            // SAFETY: as in run_as_nobody.
            unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }
        });
        assert_eq!(before, 1, "the test process is dumpable to begin with");

        // Sharing the memory, the child's uid change (and its PR_SET_DUMPABLE(0)) lands on
        // the daemon's memory map: with fs.suid_dumpable = 0 it ends up undumpable, never
        // dumpable, which is what the sysctl being 0 guarantees.
        assert_eq!(
            run_as_nobody(MemorySharing::All),
            1,
            "ran, parent undumpable"
        );

        // With a copy, the child's session works the same and the daemon is untouched:
        // whatever fs.suid_dumpable says, the uid change cannot make the daemon's own
        // memory dumpable.
        let why = "test".to_owned();
        let copy = run_as_nobody(MemorySharing::UnlessChangingIds { why });
        assert_eq!(copy, 1 + 2, "ran as nobody, parent's memory untouched");
    }

    #[test]
    fn a_child_that_keeps_the_daemons_ids_shares_memory_even_when_others_may_not() {
        let program = program("/bin/true", &["true"]);
        let sharing = MemorySharing::UnlessChangingIds { why: "test".into() };
        assert!(sharing.shares_with(&program));
        let changing = Program {
            credentials: Some(Credentials {
                uid: 65534,
                gid: 65534,
                groups: None,
            }),
            ..Rc::into_inner(program).unwrap()
        };
        assert!(!sharing.shares_with(&changing));
        assert!(MemorySharing::All.shares_with(&changing));
    }
}
