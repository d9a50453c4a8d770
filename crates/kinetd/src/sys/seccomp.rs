//! Installing seccomp filters.
//!
//! A filter is installed in a forked child right before `execve`. Between those two calls
//! only async-signal-safe work is allowed (another thread of the parent may have held the
//! allocator's lock at the fork), so everything is split in two halves:
//!
//! * [`PreparedFilter::new`] runs in the parent, before the fork: it checks the program
//!   and copies it into the kernel's `struct sock_filter` layout.
//! * [`PreparedFilter::install`] runs in the child: it only fills a `sock_fprog` on the
//!   stack and makes two system calls, `prctl(PR_SET_NO_NEW_PRIVS)` and
//!   `seccomp(SECCOMP_SET_MODE_FILTER)`. It neither allocates nor locks.
//!
//! The filter is in force for the `execve` that follows, so a policy must allow `execve`
//! for the program to start at all; when it does not, the exec fails the way the policy
//! says, and the program never runs unfiltered.

use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use kafel::bpf::{self, Program};

/// A filter ready to be installed, built before the fork.
pub struct PreparedFilter {
    insns: Box<[libc::sock_filter]>,
}

impl fmt::Debug for PreparedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedFilter")
            .field("insns", &self.insns.len())
            .finish()
    }
}

/// Why a program cannot be made into a filter; the kernel would refuse it anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareError {
    Empty,
    TooLong { insns: usize },
}

impl fmt::Display for PrepareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrepareError::Empty => f.write_str("the seccomp filter has no instructions"),
            PrepareError::TooLong { insns } => write!(
                f,
                "the seccomp filter has {insns} instructions, more than the kernel's limit of {}",
                bpf::MAX_INSNS
            ),
        }
    }
}

impl std::error::Error for PrepareError {}

/// The step of [`PreparedFilter::install`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStep {
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    NoNewPrivs,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`.
    SetFilter,
}

/// A failed install: the step and the `errno` it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallError {
    pub step: InstallStep,
    pub errno: i32,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.step {
            InstallStep::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
            InstallStep::SetFilter => "seccomp(SECCOMP_SET_MODE_FILTER)",
        };
        let cause = io::Error::from_raw_os_error(self.errno);
        write!(f, "{what} failed: {cause}")
    }
}

impl std::error::Error for InstallError {}

impl From<InstallError> for io::Error {
    fn from(err: InstallError) -> io::Error {
        io::Error::from_raw_os_error(err.errno)
    }
}

impl PreparedFilter {
    /// Copies `program` into the kernel's layout. Not async-signal-safe: call it before
    /// forking.
    pub fn new(program: &Program) -> Result<PreparedFilter, PrepareError> {
        if program.is_empty() {
            return Err(PrepareError::Empty);
        }
        if program.len() > bpf::MAX_INSNS {
            return Err(PrepareError::TooLong {
                insns: program.len(),
            });
        }
        let insns = program
            .instructions()
            .iter()
            .map(|insn| libc::sock_filter {
                code: insn.code,
                jt: insn.jt,
                jf: insn.jf,
                k: insn.k,
            })
            .collect();
        Ok(PreparedFilter { insns })
    }

    /// The `sock_fprog` that `seccomp(SECCOMP_SET_MODE_FILTER)` takes, for a caller that
    /// makes that system call itself: the launcher's child shares the daemon's memory and
    /// may not use the C library's wrappers, which write `errno` (see `sys::spawn`).
    /// It points into `self` and is valid while `self` lives.
    pub fn fprog(&self) -> libc::sock_fprog {
        libc::sock_fprog {
            // `new` refused anything over MAX_INSNS (4096), so the length fits a u16.
            len: self.insns.len() as u16,
            filter: self.insns.as_ptr().cast_mut(),
        }
    }

    /// Installs the filter on the calling thread, which is what a single-threaded child
    /// between fork and exec is.
    ///
    /// Async-signal-safe: it touches only the stack and makes raw system calls, so it may
    /// run between `fork` and `execve`. The returned error carries the `errno` of the
    /// step that failed and allocates nothing.
    pub fn install(&self) -> Result<(), InstallError> {
        // Without no_new_privs an unprivileged process may not install a filter, and a
        // setuid program could otherwise be started with a filter its author never saw.
        // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integer arguments and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(InstallError {
                step: InstallStep::NoNewPrivs,
                errno: last_errno(),
            });
        }

        let prog = libc::sock_fprog {
            // `new` refused anything over MAX_INSNS (4096), so the length fits a u16.
            len: self.insns.len() as u16,
            filter: self.insns.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.insns`, which lives for the whole call and holds
        // `prog.len` initialised records; the kernel copies them and never writes to them.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0u32,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(InstallError {
                step: InstallStep::SetFilter,
                errno: last_errno(),
            });
        }
        Ok(())
    }
}

/// Makes `command` install `filter` in the child right before `execve`.
///
/// Fails closed: when the install fails, spawning fails with its `errno` and the program
/// never runs.
pub fn filter_command(command: &mut Command, filter: Arc<PreparedFilter>) {
    let hook = move || filter.install().map_err(io::Error::from);
    // SAFETY: the hook runs between fork and exec and is async-signal-safe:
    // `PreparedFilter::install` only makes system calls on data prepared before the
    // fork, and an `io::Error` built from a raw errno does not allocate.
    unsafe {
        command.pre_exec(hook);
    }
}

/// The calling thread's `errno`, read without allocating.
fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_program_is_refused_before_fork() {
        let err = PreparedFilter::new(&Program::default()).unwrap_err();
        assert_eq!(err, PrepareError::Empty);
    }

    #[test]
    fn program_over_the_kernel_limit_is_refused_with_its_length() {
        let ret = bpf::Instruction::stmt(bpf::BPF_RET | bpf::BPF_K, bpf::SECCOMP_RET_ALLOW);
        let program = Program::new(vec![ret; bpf::MAX_INSNS + 1]);
        let err = PreparedFilter::new(&program).unwrap_err();
        assert!(err.to_string().contains("4097"), "{err}");
    }

    fn filter_denying_execve_with(errno: u32) -> Program {
        use bpf::*;
        Program::new(vec![
            Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR),
            Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_execve as u32, 0, 1),
            Instruction::stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | errno),
            Instruction::stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        ])
    }

    #[test]
    fn program_denied_execve_never_runs_and_spawn_reports_the_errno() {
        let filter = Arc::new(PreparedFilter::new(&filter_denying_execve_with(77)).unwrap());
        let mut command = Command::new("/bin/true");
        filter_command(&mut command, filter);
        let err = command
            .status()
            .expect_err("execve is denied by the filter");
        assert_eq!(err.raw_os_error(), Some(77), "{err}");
    }

    #[test]
    fn program_runs_under_a_filter_that_allows_it() {
        // The filter only denies `execve` with errno 0 for a syscall number that never
        // occurs, so the child runs; its exit status shows the install succeeded.
        use bpf::*;
        let program = Program::new(vec![
            Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR),
            Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, 0x3fff_ffff, 0, 1),
            Instruction::stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
            Instruction::stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        ]);
        let filter = Arc::new(PreparedFilter::new(&program).unwrap());
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "grep -q '^Seccomp:[[:space:]]*2' /proc/self/status"]);
        filter_command(&mut command, filter);
        let status = command.status().expect("the shell starts under the filter");
        assert!(
            status.success(),
            "the child is not in seccomp filter mode: {status}"
        );
    }
}
