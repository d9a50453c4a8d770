//! Connections refused only for lack of a slot, held a moment in case one frees.
//!
//! A session's slot (instances, per_source, -limit) is freed when the daemon reaps its
//! process. A challenge that exits closes its descriptors before the kernel reports the
//! exit, so a client sees the end of its session, and may already have reconnected,
//! while the slot is still taken: a player who reconnects at once was refused (nearly
//! always, measured with one connection at a time and per_source = 1). Reaping first
//! does not help, since the process has not quite exited yet. So such a connection is
//! held, its `banner` sent and nothing else, until a child exits (admission then runs
//! again, in accept order) or [`HOLD_TIME`] passes, when it is refused as before. At most
//! [`HOLD_LIMIT`] connections are held per service; past that they are refused at once,
//! so a flood holds no more descriptors than that.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::Socket;

/// How long a connection waits for a slot before it is refused.
pub const HOLD_TIME: Duration = Duration::from_millis(250);

/// Connections held at most per service.
pub const HOLD_LIMIT: usize = 64;

/// An accepted connection waiting for a slot.
#[derive(Debug)]
pub struct Held {
    pub conn: Socket,
    pub peer: SocketAddr,
    pub deadline: Instant,
}

/// One service's held connections, in accept order.
#[derive(Debug, Default)]
pub struct HeldQueue {
    queue: VecDeque<Held>,
}

impl HeldQueue {
    pub fn is_full(&self) -> bool {
        self.queue.len() >= HOLD_LIMIT
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Holds a connection accepted at `now`, after those already held.
    pub fn push(&mut self, conn: Socket, peer: SocketAddr, now: Instant) {
        let deadline = now + HOLD_TIME;
        self.queue.push_back(Held {
            conn,
            peer,
            deadline,
        });
    }

    /// When the first held connection is to be refused. Every connection is held for the
    /// same time, so the oldest comes first.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.front().map(|held| held.deadline)
    }

    /// Takes every held connection, oldest first, to run admission on them again; the
    /// ones still waiting are pushed back with [`HeldQueue::keep`].
    pub fn take(&mut self) -> VecDeque<Held> {
        std::mem::take(&mut self.queue)
    }

    /// Puts back a connection taken with [`HeldQueue::take`], keeping its deadline.
    pub fn keep(&mut self, held: Held) {
        self.queue.push_back(held);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    use super::*;

    fn connection() -> (Socket, SocketAddr) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, peer) = listener.accept().unwrap();
        drop(client);
        (Socket::from(conn), peer)
    }

    #[test]
    fn holds_at_most_the_limit_and_the_oldest_expires_first() {
        let start = Instant::now();
        let mut held = HeldQueue::default();
        for n in 0..HOLD_LIMIT {
            assert!(!held.is_full(), "full after {n}");
            let (conn, peer) = connection();
            held.push(conn, peer, start + Duration::from_millis(n as u64));
        }
        assert!(held.is_full());
        assert_eq!(held.next_deadline(), Some(start + HOLD_TIME));

        let mut all = held.take();
        assert!(held.is_empty());
        all.pop_front();
        for one in all {
            held.keep(one);
        }
        let second = start + Duration::from_millis(1) + HOLD_TIME;
        assert_eq!(held.next_deadline(), Some(second), "accept order is kept");
        assert!(!held.is_full());
    }
}
