//! The daemon's own process: reaping children, daemonizing, ids and process attributes.

use std::ffi::c_int;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

/// Lets the other runnable tasks of the daemon's scheduling queue (among them a child just
/// started) run before the daemon goes on. Returns at once when nothing else is waiting.
pub fn yield_cpu() {
    // SAFETY: sched_yield takes no arguments and cannot fail on Linux.
    unsafe { libc::sched_yield() };
}

/// Reaps one child that has ended, without waiting. `None` when no child has ended (or
/// there are no children at all); call it until it returns `None`.
pub fn reap_one() -> io::Result<Option<(u32, ExitStatus)>> {
    let mut status: c_int = 0;
    // SAFETY: `status` is a valid out-pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ECHILD) => Ok(None),
            _ => Err(err),
        };
    }
    if pid == 0 {
        return Ok(None);
    }
    let status = if libc::WIFSIGNALED(status) {
        ExitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        ExitStatus::Exited(libc::WEXITSTATUS(status))
    };
    Ok(Some((pid as u32, status)))
}

/// Detaches from the terminal: forks, the parent exits 0, the child starts a new session.
/// Must run while the process has a single thread.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: the daemon has one thread here, so the child is a complete copy.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        // SAFETY: _exit skips the atexit handlers and stdio buffers the child now owns.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: setsid has no arguments.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    // The caller's terminal or pipe is not the daemon's to keep: holding it open would
    // leave `$(kinetd)`, `kinetd | tee` or `ssh host kinetd` waiting for an end of file
    // that never comes. A detached daemon logs to syslog or its -filelog, never to these.
    let null = File::options().read(true).write(true).open("/dev/null")?;
    for fd in 0..=2 {
        // SAFETY: dup2 onto a standard descriptor; `null` stays owned by its File, which
        // ensure_standard_fds made sure is numbered above 2.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Makes sure descriptors 0, 1 and 2 are open, on /dev/null if they were closed, so that
/// no socket the daemon opens later ends up numbered as a standard stream.
pub fn ensure_standard_fds() -> io::Result<()> {
    loop {
        let null = File::options().read(true).write(true).open("/dev/null")?;
        // The lowest free number is taken: below 3 it fills a hole and is kept open.
        let fd = null.into_raw_fd();
        if fd > 2 {
            // SAFETY: `fd` was just opened here and is owned by nothing else.
            unsafe { libc::close(fd) };
            return Ok(());
        }
    }
}

/// Adds `bits` to the process umask (xinetd ORs 022 into its own at startup, and
/// challenges inherit it).
pub fn add_umask_bits(bits: libc::mode_t) {
    // SAFETY: umask cannot fail; it is read and written back at once.
    unsafe {
        let old = libc::umask(0);
        libc::umask(old | bits);
    }
}

pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The nice value of this process.
pub fn priority() -> i32 {
    // SAFETY: plain integer arguments. -1 is also a valid nice value, so errno is not
    // consulted: the call cannot fail for our own process.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// A local broken-down time, as xinetd's log lines print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// `seconds` since the epoch in the local time zone.
pub fn local_time(seconds: i64) -> LocalTime {
    let t = seconds as libc::time_t;
    // SAFETY: tm is plain data; localtime_r fills it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid; localtime_r is the thread-safe variant.
    let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
    if !ok {
        return LocalTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
    }
}
