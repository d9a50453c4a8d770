//! Listening sockets, opened as xinetd opens them.
//!
//! One socket per service. The family is IPv4 when `bind` is an IPv4 address or the
//! service has the IPv4 flag; otherwise IPv6, dual-stack unless `v6only = yes`, falling
//! back to IPv4 when the host has no IPv6. SO_REUSEADDR is always set, NODELAY and
//! KEEPALIVE when flagged. Every descriptor is close-on-exec (socket2 creates them so,
//! and accepts with accept4(SOCK_CLOEXEC)).

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// xinetd listens with a backlog of 64, so that a burst of connections overflows the
/// queue and some clients wait a second for a SYN retransmission. The kernel caps this
/// at net.core.somaxconn (4096 by default since Linux 5.4).
const BACKLOG: i32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stream,
    Datagram,
}

/// What a service's listening socket looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    pub kind: Kind,
    pub port: u16,
    pub bind: Option<IpAddr>,
    pub ipv4_only: bool,
    pub ipv6: bool,
    pub v6only: Option<bool>,
    pub nodelay: bool,
    pub keepalive: bool,
    /// False for `wait = yes` services: their server takes the socket over, and the
    /// O_NONBLOCK flag would go with it. The daemon then only touches the socket after
    /// poll says it is readable, and with MSG_DONTWAIT.
    pub nonblocking: bool,
}

#[derive(Debug)]
pub struct Listener {
    socket: Socket,
    pub kind: Kind,
    pub local: SocketAddr,
}

impl Listener {
    pub fn open(spec: &ListenSpec) -> io::Result<Listener> {
        let want_v4 = spec.ipv4_only || matches!(spec.bind, Some(IpAddr::V4(_)));
        if want_v4 {
            let ip = spec.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            return Listener::open_at(spec, SocketAddr::new(ip, spec.port));
        }
        let ip = spec.bind.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        match Listener::open_at(spec, SocketAddr::new(ip, spec.port)) {
            // No IPv6 on this host: xinetd falls back to IPv4 for an unbound service.
            Err(err)
                if spec.bind.is_none()
                    && !spec.ipv6
                    && err.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
            {
                let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), spec.port);
                Listener::open_at(spec, any)
            }
            result => result,
        }
    }

    fn open_at(spec: &ListenSpec, addr: SocketAddr) -> io::Result<Listener> {
        let (ty, protocol) = match spec.kind {
            Kind::Stream => (Type::STREAM, Protocol::TCP),
            Kind::Datagram => (Type::DGRAM, Protocol::UDP),
        };
        let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
        socket.set_reuse_address(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(spec.v6only.unwrap_or(false))?;
        }
        if spec.kind == Kind::Stream {
            if spec.nodelay {
                socket.set_tcp_nodelay(true)?;
            }
            if spec.keepalive {
                socket.set_keepalive(true)?;
            }
        }
        socket.bind(&SockAddr::from(addr))?;
        if spec.kind == Kind::Stream {
            socket.listen(BACKLOG)?;
        }
        socket.set_nonblocking(spec.nonblocking)?;
        let local = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("listening socket has no IP address"))?;
        Ok(Listener {
            socket,
            kind: spec.kind,
            local,
        })
    }

    /// Accepts one connection, close-on-exec and blocking (the challenge expects a plain
    /// blocking socket); `Ok(None)` when none is waiting.
    pub fn accept(&self) -> io::Result<Option<(Socket, SocketAddr)>> {
        match self.socket.accept() {
            Ok((conn, peer)) => {
                let peer = peer.as_socket().unwrap_or(self.local);
                Ok(Some((conn, peer)))
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The sender of the next datagram, without consuming it.
    pub fn peek_sender(&self) -> io::Result<Option<SocketAddr>> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 1];
        let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
        match self.socket.recv_from_with_flags(&mut buf, flags) {
            Ok((_, from)) => Ok(from.as_socket()),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Drops the next datagram (one that was refused).
    pub fn discard_datagram(&self) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 1];
        let _ = self.socket.recv_with_flags(&mut buf, libc::MSG_DONTWAIT);
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use super::*;

    fn spec(bind: Option<IpAddr>) -> ListenSpec {
        ListenSpec {
            kind: Kind::Stream,
            port: 0,
            bind,
            ipv4_only: false,
            ipv6: false,
            v6only: None,
            nodelay: true,
            keepalive: true,
            nonblocking: true,
        }
    }

    #[test]
    fn default_listener_is_dual_stack() {
        let listener = Listener::open(&spec(None)).unwrap();
        assert!(listener.local.is_ipv6(), "{}", listener.local);
        let port = listener.local.port();
        let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_conn, peer) = loop {
            if let Some(accepted) = listener.accept().unwrap() {
                break accepted;
            }
        };
        assert_eq!(peer.ip().to_string(), "::ffff:127.0.0.1");
    }

    #[test]
    fn ipv4_bind_gives_an_ipv4_socket() {
        let listener = Listener::open(&spec(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))).unwrap();
        assert!(listener.local.is_ipv4());
    }

    /// Reads the descriptor's open flags from /proc (octal; O_CLOEXEC is 0o2000000).
    fn is_cloexec(fd: RawFd) -> bool {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .expect("fdinfo has flags");
        let flags = u32::from_str_radix(flags.trim(), 8).unwrap();
        flags & 0o2000000 != 0
    }

    #[test]
    fn every_descriptor_is_close_on_exec() {
        let listener = Listener::open(&spec(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))).unwrap();
        assert!(is_cloexec(listener.as_raw_fd()));
        let _client = TcpStream::connect(listener.local).unwrap();
        let (conn, _) = loop {
            if let Some(accepted) = listener.accept().unwrap() {
                break accepted;
            }
        };
        assert!(is_cloexec(conn.as_raw_fd()));
        let flags = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", conn.as_raw_fd()));
        assert!(flags.unwrap().contains("flags:"), "fdinfo is readable");
    }
}
