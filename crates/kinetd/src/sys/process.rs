//! The daemon's own process: reaping children, daemonizing, ids and process attributes.

use std::ffi::{CStr, c_int};
use std::fs::File;
use std::io;
use std::os::fd::IntoRawFd;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
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

/// The supplementary groups of `user`, including `gid` (what `initgroups` would set).
pub fn group_list(user: &CStr, gid: u32) -> io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut count = groups.len() as c_int;
        // SAFETY: `groups` has room for `count` entries; getgrouplist updates `count`.
        let rc = unsafe { libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return Ok(groups);
        }
        if count as usize <= groups.len() {
            return Err(io::Error::other("getgrouplist failed"));
        }
        groups.resize(count as usize, 0);
    }
}

/// A user's uid, primary gid and name, from the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub uid: u32,
    pub gid: u32,
}

/// Looks `name` up in the password database.
pub fn user_by_name(name: &CStr) -> io::Result<Option<UserEntry>> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: passwd is plain data; getpwnam_r fills it.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the sizes passed.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(None);
        }
        return Ok(Some(UserEntry {
            uid: entry.pw_uid,
            gid: entry.pw_gid,
        }));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_in_the_password_database() {
        let root = user_by_name(c"root").unwrap().expect("root exists");
        assert_eq!(root.uid, 0);
    }

    #[test]
    fn unknown_user_is_none() {
        assert_eq!(user_by_name(c"no-such-user-kinetd").unwrap(), None);
    }

    #[test]
    fn group_list_includes_the_primary_group() {
        let groups = group_list(c"root", 0).unwrap();
        assert!(groups.contains(&0), "{groups:?}");
    }
}
