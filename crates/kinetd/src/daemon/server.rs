//! The event loop: one thread polling the listening sockets and a signalfd.
//!
//! A readable listener means connections to admit and launch; the signalfd brings
//! SIGCHLD (reap), SIGHUP (reload), SIGTERM and SIGINT (stop, ending every session),
//! SIGQUIT (stop, leaving sessions running) and SIGUSR1 (state to the log). Everything
//! happens in this loop, in ordinary code; there is no signal handler.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::Socket;

use super::admission::{Gate, Situation, load_average, waits_for_a_slot};
use super::held::HeldQueue;
use super::listener::{Kind, Listener};
use super::log_format::{self, FailReason, Level};
use super::logger::Logger;
use super::rate::{LogLimiter, Verdict};
use super::reload;
use super::service::{DaemonContext, ServicePlan};
use super::sessions::{Session, Sessions};
use crate::sys::poll::{PollFd, poll};
use crate::sys::process::{self, ExitStatus};
use crate::sys::signals::{self, SignalFd};
use crate::sys::spawn::{SETUP_FAILED_STATUS, Spawner};

/// How a child whose setup failed ends.
const SETUP_FAILED: ExitStatus = ExitStatus::Exited(SETUP_FAILED_STATUS);

/// Connections accepted from one listener before the loop looks at signals again.
const ACCEPT_BATCH: usize = 64;

/// How long a listener rests after accept failed for lack of resources (EMFILE and the
/// like), instead of spinning on a socket that stays readable.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long SIGTERM waits for killed sessions to be reaped, so that their EXIT lines
/// are written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The signals the loop reads from its signalfd.
pub const SIGNALS: [i32; 6] = [
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
];

/// A service with its open listening socket.
#[derive(Debug)]
pub struct Active {
    pub plan: ServicePlan,
    pub listener: Listener,
    pub gate: Gate,
    /// Limits the FAIL lines a client can cause.
    pub fail_log: LogLimiter,
    /// Set after an accept failure; the listener is not polled until then.
    pub resting_until: Option<Instant>,
    /// Connections waiting a moment for a slot (see `held`).
    pub held: HeldQueue,
}

impl Active {
    /// Logs how many of this service's FAIL lines the rate limit dropped since the last
    /// one written, which is otherwise said only when lines flow again: for a service
    /// about to go away.
    pub fn note_dropped_fail_lines(&mut self, logger: &mut Logger) {
        let dropped = self.fail_log.take_suppressed();
        if dropped > 0 {
            logger.daemon(Level::Warning, &dropped_fail_lines(&self.plan.id, dropped));
        }
    }

    pub fn new(plan: ServicePlan, listener: Listener) -> Active {
        let now = Instant::now();
        Active {
            gate: Gate::new(plan.rules.clone(), now),
            plan,
            listener,
            fail_log: LogLimiter::new(now),
            resting_until: None,
            held: HeldQueue::default(),
        }
    }

    /// Takes a reloaded plan with the same listening socket. The cps allowance starts
    /// afresh under the new rules; the running sessions are unaffected.
    pub fn replace_plan(&mut self, plan: ServicePlan) {
        self.gate = Gate::new(plan.rules.clone(), Instant::now());
        self.plan = plan;
    }
}

/// The daemon's whole state.
#[derive(Debug)]
pub struct Server {
    pub logger: Logger,
    pub spawner: Spawner,
    pub signals: SignalFd,
    pub services: Vec<Active>,
    pub sessions: Sessions,
    pub config_path: PathBuf,
    pub context: DaemonContext,
    pub process_limit: Option<u32>,
    pub pidfile: Option<PathBuf>,
    /// Limits the daemon-log lines about failed launches, which clients can trigger.
    pub launch_errors: LogLimiter,
    /// True with `-d` or `-dontfork`: SIGINT then stops the daemon like SIGTERM.
    pub foreground: bool,
}

/// Why the loop stopped.
enum Stop {
    /// SIGTERM: sessions are ended.
    EndSessions,
    /// SIGQUIT: sessions keep running.
    LeaveSessions,
}

/// What the signals read in one turn ask for.
#[derive(Default)]
struct Requests {
    child: bool,
    reload: bool,
    dump: bool,
    stop: Option<bool>,
}

impl Server {
    pub fn run(mut self) -> ExitCode {
        let stop = loop {
            match self.turn() {
                Ok(None) => {}
                Ok(Some(stop)) => break stop,
                Err(err) => {
                    self.logger.daemon(
                        Level::Critical,
                        &format!("event loop failed: {err}. Exiting..."),
                    );
                    self.remove_pidfile();
                    return ExitCode::FAILURE;
                }
            }
        };
        for active in &mut self.services {
            active.note_dropped_fail_lines(&mut self.logger);
        }
        self.services.clear();
        if let Stop::EndSessions = stop {
            self.end_sessions();
        }
        let dropped = self.launch_errors.take_suppressed();
        if dropped > 0 {
            self.logger
                .daemon(Level::Warning, &dropped_error_lines(dropped));
        }
        self.remove_pidfile();
        self.logger.daemon(Level::Warning, "Exiting...");
        ExitCode::SUCCESS
    }

    /// One poll and what it found.
    fn turn(&mut self) -> io::Result<Option<Stop>> {
        let now = Instant::now();
        let mut fds = vec![
            PollFd::readable(self.signals.as_raw_fd()),
            PollFd::readable(self.spawner.reports_fd()),
        ];
        let first_listener = fds.len();
        let mut polled = Vec::with_capacity(self.services.len());
        let mut timeout: Option<Duration> = None;
        for (index, active) in self.services.iter_mut().enumerate() {
            // Held connections time out even while their listener rests.
            if let Some(deadline) = active.held.next_deadline() {
                let left = deadline.saturating_duration_since(now);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            if let Some(until) = active.resting_until {
                if until > now {
                    let left = until - now;
                    timeout = Some(timeout.map_or(left, |t| t.min(left)));
                    continue;
                }
                active.resting_until = None;
            }
            if active.plan.wait && self.sessions.listener_held(&active.plan.id) {
                continue;
            }
            fds.push(PollFd::readable(active.listener.as_raw_fd()));
            polled.push(index);
        }
        let timeout_ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32 + 1);
        poll(&mut fds, timeout_ms)?;

        self.spawner.sweep();
        if fds[1].is_ready() {
            self.log_setup_failures();
        }
        if fds[0].is_ready() {
            let pending = self.read_signals()?;
            if pending.child {
                self.reap();
            }
            if pending.dump {
                self.dump_state();
            }
            if let Some(end_sessions) = pending.stop {
                return Ok(Some(if end_sessions {
                    Stop::EndSessions
                } else {
                    Stop::LeaveSessions
                }));
            }
            if pending.reload {
                reload::reload(self);
                // The services changed under the indices polled; poll again.
                return Ok(None);
            }
        }

        // Held connections before new ones: they were accepted first.
        self.settle_held();

        for (fd, index) in fds[first_listener..].iter().zip(polled) {
            if fd.is_ready() {
                self.serve(index);
            }
        }
        Ok(None)
    }

    fn read_signals(&mut self) -> io::Result<Requests> {
        let mut pending = Requests::default();
        while let Some(signal) = self.signals.read()? {
            match signal {
                libc::SIGCHLD => pending.child = true,
                libc::SIGHUP => pending.reload = true,
                libc::SIGUSR1 => pending.dump = true,
                libc::SIGTERM => pending.stop = Some(true),
                libc::SIGINT if self.foreground => pending.stop = Some(true),
                libc::SIGQUIT => pending.stop = pending.stop.or(Some(false)),
                _ => {}
            }
        }
        Ok(pending)
    }

    /// Handles a readable listener.
    fn serve(&mut self, index: usize) {
        if self.services[index].plan.wait {
            self.serve_waiting(index);
            return;
        }
        let mut just_started = false;
        for _ in 0..ACCEPT_BATCH {
            match self.services[index].listener.accept() {
                Ok(Some((conn, peer))) => {
                    // Connections that arrive together are started one after the other:
                    // the child just started gets the CPU before the next is created, as
                    // it would after vfork, though the daemon never waits for it. Started
                    // all at once, a burst's sessions share the CPUs and all finish late;
                    // in turn, the slowest finish close to the median (bench/README.md).
                    if just_started {
                        process::yield_cpu();
                    }
                    let running = self.sessions.total();
                    self.connection(index, conn, peer);
                    just_started = self.sessions.total() > running;
                }
                Ok(None) => break,
                Err(err) => {
                    // The connection died in the queue: nothing to do, try the next one.
                    if matches!(
                        err.raw_os_error(),
                        Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO)
                    ) {
                        continue;
                    }
                    let active = &mut self.services[index];
                    active.resting_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    let text = format!("service {}: accept failed: {err}", active.plan.id);
                    self.launch_error(&text);
                    break;
                }
            }
        }
    }

    /// One accepted connection of a `wait = no` service.
    fn connection(&mut self, index: usize, conn: Socket, peer: SocketAddr) {
        let banners = &self.services[index].plan.banners;
        if let Some(banner) = &banners.banner {
            send_banner(&conn, banner);
        }
        match self.admit(index, Some(peer.ip())) {
            Ok(()) => return self.start(index, conn, peer),
            Err(reason) if !waits_for_a_slot(reason) => {
                return self.refuse_connection(index, conn, peer, reason);
            }
            Err(_) => {}
        }

        // The slot may be a session that has ended and is not reaped yet. Connections
        // held earlier get the slots this frees first; those still held after that wait
        // for limits this one is not over (another source's per_source).
        self.reap();
        self.settle_held();
        let Err(reason) = self.admit_count(index, peer) else {
            return self.start(index, conn, peer);
        };
        let held = &mut self.services[index].held;
        if held.is_full() {
            return self.refuse_connection(index, conn, peer, reason);
        }
        held.push(conn, peer, Instant::now());
    }

    /// Runs admission again on every held connection, oldest first: each is started if a
    /// slot is free, refused if its time is up, and otherwise held on.
    fn settle_held(&mut self) {
        let now = Instant::now();
        for index in 0..self.services.len() {
            if self.services[index].held.is_empty() {
                continue;
            }
            for held in self.services[index].held.take() {
                match self.admit_count(index, held.peer) {
                    Ok(()) => self.start(index, held.conn, held.peer),
                    Err(reason) if held.deadline <= now => {
                        self.refuse_connection(index, held.conn, held.peer, reason);
                    }
                    Err(_) => self.services[index].held.keep(held),
                }
            }
        }
    }

    /// Starts the challenge on an admitted connection.
    fn start(&mut self, index: usize, conn: Socket, peer: SocketAddr) {
        if let Some(banner) = &self.services[index].plan.banners.success {
            send_banner(&conn, banner);
        }
        self.launch(index, conn.as_raw_fd(), Some(peer), false);
        // `conn` closes here: the challenge has its own copies on 0, 1 and 2.
    }

    /// Refuses an accepted connection: its FAIL line, then `banner_fail`, then it closes.
    fn refuse_connection(
        &mut self,
        index: usize,
        conn: Socket,
        peer: SocketAddr,
        reason: FailReason,
    ) {
        self.refuse(index, reason, Some(peer.ip()));
        if let Some(banner) = &self.services[index].plan.banners.fail {
            send_banner(&conn, banner);
        }
    }

    /// A readable listener of a `wait = yes` service: its server gets the socket.
    fn serve_waiting(&mut self, index: usize) {
        let active = &self.services[index];
        let peer = match active.listener.kind {
            Kind::Datagram => active.listener.peek_sender().ok().flatten(),
            Kind::Stream => None,
        };
        if let Err(reason) = self.admit(index, peer.map(|p| p.ip())) {
            self.refuse(index, reason, peer.map(|p| p.ip()));
            let listener = &self.services[index].listener;
            match listener.kind {
                Kind::Datagram => listener.discard_datagram(),
                Kind::Stream => drop(listener.accept()),
            }
            return;
        }
        let fd = self.services[index].listener.as_raw_fd();
        self.launch(index, fd, peer, true);
    }

    fn admit(&mut self, index: usize, peer: Option<IpAddr>) -> Result<(), FailReason> {
        let active = &mut self.services[index];
        let situation = Situation {
            service: &active.plan.id,
            peer,
            sessions: &self.sessions,
            process_limit: self.process_limit,
            now: Instant::now(),
            local_time: process::local_time(unix_now()),
            load_average,
        };
        active.gate.admit(&situation)
    }

    /// The counts alone, for a connection whose other checks have passed.
    fn admit_count(&self, index: usize, peer: SocketAddr) -> Result<(), FailReason> {
        let active = &self.services[index];
        let situation = Situation {
            service: &active.plan.id,
            peer: Some(peer.ip()),
            sessions: &self.sessions,
            process_limit: self.process_limit,
            now: Instant::now(),
            // The counts read no time of day.
            local_time: process::local_time(0),
            load_average,
        };
        active.gate.admit_count(&situation)
    }

    /// Writes a FAIL line, unless the service has written too many lately.
    fn refuse(&mut self, index: usize, reason: FailReason, peer: Option<IpAddr>) {
        let active = &mut self.services[index];
        let log = &active.plan.log;
        let Some(body) = log_format::fail(&log.id, &log.on_failure, reason, peer) else {
            return;
        };
        match active.fail_log.check(Instant::now()) {
            Verdict::Write { suppressed } => {
                if suppressed > 0 {
                    let text = dropped_fail_lines(&log.id, suppressed);
                    self.logger.daemon(Level::Warning, &text);
                }
                self.logger.service(&log.sink, &body);
            }
            Verdict::Drop => {}
        }
    }

    /// Starts the service's server on `stdio` and records the session.
    fn launch(&mut self, index: usize, stdio: RawFd, peer: Option<SocketAddr>, holds: bool) {
        let plan = &self.services[index].plan;
        let envp = plan.launch.env_for(peer);
        let result = self.spawner.spawn(&plan.launch.program, envp, stdio);
        let log = plan.log.clone();
        let pid = match result {
            Ok(pid) => pid,
            Err(err) => {
                let text = format!("service {}: {err}", log.id);
                self.launch_error(&text);
                self.refuse(index, FailReason::Fork, peer.map(|p| p.ip()));
                return;
            }
        };
        let from = peer.map(|p| p.ip());
        if log_format::logs_success(&log.on_success) {
            let body = log_format::start(&log.id, &log.on_success, pid, from);
            self.logger.service(&log.sink, &body);
        }
        self.sessions.add(Session {
            pid,
            log,
            from,
            started: Instant::now(),
            holds_listener: holds,
        });
    }

    fn launch_error(&mut self, text: &str) {
        match self.launch_errors.check(Instant::now()) {
            Verdict::Write { suppressed } => {
                if suppressed > 0 {
                    self.logger
                        .daemon(Level::Warning, &dropped_error_lines(suppressed));
                }
                self.logger.daemon(Level::Error, text);
            }
            Verdict::Drop => {}
        }
    }

    /// Logs the children whose setup failed (they exit with status 127 and are reaped as
    /// usual).
    fn log_setup_failures(&mut self) {
        for failure in self.spawner.failures() {
            let id = self
                .sessions
                .service_of(failure.pid)
                .unwrap_or("?")
                .to_owned();
            self.launch_error(&format!("service {id}: server not started: {failure}"));
        }
    }

    /// Reaps every child that has ended and writes their EXIT lines.
    pub fn reap(&mut self) {
        let mut ended = Vec::new();
        loop {
            match process::reap_one() {
                Ok(Some(reaped)) => ended.push(reaped),
                Ok(None) => break,
                Err(err) => {
                    self.logger
                        .daemon(Level::Error, &format!("waitpid failed: {err}"));
                    break;
                }
            }
        }
        // A child whose setup failed wrote its report before it exited with status 127, so
        // the reports of the children just reaped are in the pipe now: log them while their
        // sessions still name their services. Without such an exit there is nothing to
        // read here (a report of a child not reaped yet wakes the event loop itself).
        if ended.iter().any(|&(_, status)| status == SETUP_FAILED) {
            self.log_setup_failures();
        }
        for (pid, status) in ended {
            self.spawner.reaped(pid);
            let Some(session) = self.sessions.remove(pid) else {
                let text = format!("unknown child process {pid} died");
                self.logger.daemon(Level::Notice, &text);
                continue;
            };
            let log = &session.log;
            if log_format::logs_success(&log.on_success) {
                let duration = session.started.elapsed().as_secs();
                let body = log_format::exit(&log.id, &log.on_success, status, pid, duration);
                self.logger.service(&log.sink, &body);
            }
            if let ExitStatus::Signaled(libc::SIGSYS) = status {
                let text = format!(
                    "service {}: server {pid} was killed by its seccomp policy (signal 31)",
                    log.id
                );
                self.logger.daemon(Level::Debug, &text);
            }
        }
    }

    /// Kills the process group of every session of `service` (all when `None`).
    pub fn kill_sessions(&mut self, service: Option<&str>) {
        let pids: Vec<(u32, String)> = self
            .sessions
            .iter()
            .filter(|s| service.is_none_or(|id| s.log.id == id))
            .map(|s| (s.pid, s.log.id.clone()))
            .collect();
        for (pid, id) in pids {
            let text = format!("Sending signal 9 to {id} server {pid}");
            self.logger.daemon(Level::Warning, &text);
            // A server whose setup failed before setsid is no group leader.
            if signals::kill_group(pid, libc::SIGKILL).is_err() {
                let _ = signals::kill(pid, libc::SIGKILL);
            }
        }
    }

    /// SIGTERM: ends every session and waits (a bounded time) to log their exits.
    fn end_sessions(&mut self) {
        self.kill_sessions(None);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        self.reap();
        while !self.sessions.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                let text = format!("{} servers did not end in time", self.sessions.total());
                self.logger.daemon(Level::Error, &text);
                return;
            }
            let mut fds = [PollFd::readable(self.signals.as_raw_fd())];
            let left = (deadline - now).as_millis() as i32 + 1;
            if poll(&mut fds, left).is_err() {
                return;
            }
            while let Ok(Some(_)) = self.signals.read() {}
            self.reap();
        }
    }

    /// SIGUSR1: the services and sessions, to the daemon log.
    fn dump_state(&mut self) {
        let mut lines = vec![format!(
            "state: {} services, {} running servers",
            self.services.len(),
            self.sessions.total()
        )];
        for active in &self.services {
            let id = &active.plan.id;
            lines.push(format!(
                "service {id}: listening on {} running={} held={}{}",
                active.listener.local,
                self.sessions.running(id),
                active.held.len(),
                if active.plan.launch.program.filter.is_some() {
                    " policy=yes"
                } else {
                    " policy=no"
                }
            ));
        }
        for session in self.sessions.iter() {
            let from = session
                .from
                .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
            lines.push(format!(
                "server {} of {}: from={from} running={}(sec)",
                session.pid,
                session.log.id,
                session.started.elapsed().as_secs()
            ));
        }
        for line in lines {
            self.logger.daemon(Level::Notice, &line);
        }
    }

    fn remove_pidfile(&mut self) {
        if let Some(path) = &self.pidfile {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn dropped_fail_lines(service: &str, count: u64) -> String {
    format!("service {service}: {count} FAIL lines were not logged (rate limit)")
}

fn dropped_error_lines(count: u64) -> String {
    format!("{count} error lines were not logged (rate limit)")
}

/// Writes a banner without ever blocking the daemon: what does not fit in the socket
/// buffer right now is dropped (banners are a few lines; the buffer holds far more).
fn send_banner(conn: &Socket, banner: &[u8]) {
    let _ = conn.send_with_flags(banner, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
