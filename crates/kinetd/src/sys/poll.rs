//! `poll(2)` over the daemon's descriptors.

use std::io;
use std::os::fd::RawFd;

/// One descriptor to watch for input.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
pub struct PollFd(libc::pollfd);

impl PollFd {
    pub fn readable(fd: RawFd) -> PollFd {
        PollFd(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
    }

    /// Whether the last poll saw input, a hang-up or an error on the descriptor.
    pub fn is_ready(&self) -> bool {
        self.0.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
    }
}

/// Waits until a descriptor is ready or `timeout_ms` passes (-1: no timeout). An
/// interrupted wait counts as a timeout.
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: PollFd is a transparent pollfd, and the slice holds `len` of them.
    let rc = unsafe {
        libc::poll(
            fds.as_mut_ptr().cast::<libc::pollfd>(),
            fds.len() as libc::nfds_t,
            timeout_ms,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(rc as usize)
}
