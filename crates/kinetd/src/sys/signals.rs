//! Signals, handled outside signal context.
//!
//! The daemon installs no signal handler. The signals it acts on are blocked and read
//! from a signalfd in the event loop, so reaping, reloading and shutting down all happen
//! in ordinary code.

use std::ffi::c_int;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

/// A signalfd for a set of blocked signals.
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks `signals` in the calling thread (which must be the only one) and opens a
    /// non-blocking, close-on-exec signalfd that reports them.
    pub fn new(signals: &[c_int]) -> io::Result<SignalFd> {
        let set = sigset(signals)?;
        // SAFETY: `set` is initialised; the old mask is not asked for.
        let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SignalFd { fd })
    }

    /// The next pending signal, or `None` when there is none.
    pub fn read(&self) -> io::Result<Option<c_int>> {
        // SAFETY: signalfd_siginfo is plain data; all zeroes is a valid value.
        let mut info: libc::signalfd_siginfo = unsafe { mem::zeroed() };
        let size = mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), ptr::from_mut(&mut info).cast(), size) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => Ok(None),
                _ => Err(err),
            };
        }
        if n as usize != size {
            return Err(io::Error::other("short read from signalfd"));
        }
        Ok(Some(info.ssi_signo as c_int))
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn sigset(signals: &[c_int]) -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it right after.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &signal in signals {
        // SAFETY: `set` is a valid sigset_t.
        if unsafe { libc::sigaddset(&mut set, signal) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(set)
}

/// The kernel's `struct sigaction` (x86-64 and i386 layouts agree on this order), used
/// with the raw `rt_sigaction` call: the C library refuses to touch the two real-time
/// signals it reserves for itself, and those can still arrive ignored from whoever
/// started the daemon.
#[repr(C)]
#[derive(Debug, Default)]
pub(super) struct KernelSigaction {
    pub handler: usize,
    pub flags: libc::c_ulong,
    pub restorer: usize,
    pub mask: u64,
}

/// The signals whose disposition in this process is not the default: the ones Rust or
/// our parent set to ignored, and the ones the Rust runtime handles (SIGSEGV, SIGBUS).
pub fn non_default_dispositions() -> Vec<c_int> {
    let mut found = Vec::new();
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let mut old = KernelSigaction::default();
        // SAFETY: only reads the current disposition into `old`, which has the kernel's
        // layout; 8 is the kernel's sigset size.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                ptr::null::<KernelSigaction>(),
                &mut old as *mut KernelSigaction,
                8usize,
            )
        };
        if rc == 0 && old.handler != libc::SIG_DFL {
            found.push(signal);
        }
    }
    found
}

/// Sends `signal` to the process group `pgid` (a challenge and everything it started).
pub fn kill_group(pgid: u32, signal: c_int) -> io::Result<()> {
    // SAFETY: kill has no memory arguments; a negative pid names a process group.
    let rc = unsafe { libc::kill(-(pgid as libc::pid_t), signal) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to one process.
pub fn kill(pid: u32, signal: c_int) -> io::Result<()> {
    // SAFETY: kill has no memory arguments.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigpipe_ignored_by_rust_is_found_as_non_default() {
        let found = non_default_dispositions();
        assert!(found.contains(&libc::SIGPIPE), "{found:?}");
        assert!(!found.contains(&libc::SIGUSR2), "{found:?}");
    }
}
