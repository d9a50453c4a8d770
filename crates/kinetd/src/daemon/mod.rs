//! The daemon: listeners, admission, the launch path, logging and signals.
//!
//! Startup follows xinetd's, minus its slowest step (closing every descriptor up to
//! RLIMIT_NOFILE, which takes minutes where that limit is about 10^9): kinetd's own
//! descriptors are all close-on-exec, and each challenge closes the rest with one
//! `close_range`, so startup costs the same whatever the limit.
//!
//! 1. Parse the command line; open the daemon log.
//! 2. Make sure 0, 1 and 2 are open; add 022 to the umask (as xinetd does).
//! 3. Load the configuration and prepare every service (policies compiled).
//! 4. Daemonize, unless `-d` or `-dontfork`.
//! 5. Block the signals the loop reads, open the listening sockets, write the pidfile.
//! 6. Run the event loop.

mod admission;
mod cli;
mod held;
mod listener;
mod log_format;
mod logger;
mod rate;
mod reload;
mod server;
mod service;
mod sessions;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use log_format::Level;
use logger::{DaemonSink, Logger};
use rate::LogLimiter;
use server::Server;
use service::DaemonContext;

use crate::sys::process;
use crate::sys::signals::SignalFd;
use crate::sys::spawn::{MemorySharing, SUID_DUMPABLE, Spawner};

pub fn main(args: &[OsString]) -> ExitCode {
    let options = match cli::parse(args) {
        Ok(options) => options,
        Err(err) => {
            eprintln!("kinetd: {err}\n{}", cli::USAGE);
            return ExitCode::from(1);
        }
    };
    if options.help {
        println!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if options.version {
        println!(
            "kinetd {} (xinetd-compatible, Kafel seccomp policies)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }

    let sink = match (&options.filelog, &options.syslog) {
        (Some(path), _) => DaemonSink::File(absolute(path)),
        (None, Some(name)) => match logger::syslog_facility(name) {
            Some(facility) => DaemonSink::Syslog { facility },
            None => {
                eprintln!("kinetd: unknown syslog facility {name:?}\n{}", cli::USAGE);
                return ExitCode::from(1);
            }
        },
        (None, None) if options.foreground() => DaemonSink::Stderr,
        (None, None) => DaemonSink::Syslog {
            facility: logger::syslog_facility("daemon").unwrap_or(3 << 3),
        },
    };
    let mut logger = Logger::new(sink, options.debug);
    if let Err(err) = logger.check_daemon_sink() {
        eprintln!("kinetd: cannot open the log file: {err}");
        return ExitCode::from(1);
    }

    if let Err(err) = process::ensure_standard_fds() {
        eprintln!("kinetd: cannot open /dev/null: {err}");
        return ExitCode::from(1);
    }
    process::add_umask_bits(0o022);

    // The configuration is read again on SIGHUP, possibly after a chdir-free daemonize;
    // an absolute path keeps meaning the same file.
    let config_path = absolute(&options.config);
    let context = DaemonContext {
        environment: std::env::vars_os().collect(),
        root: process::effective_uid() == 0,
        priority: process::priority(),
    };
    let Some(config) = reload::load(&config_path, &mut logger) else {
        let text = format!(
            "{} {{init_services}} couldn't get configuration. Exiting...",
            std::process::id()
        );
        logger.daemon(Level::Critical, &text);
        return ExitCode::from(1);
    };
    let plans = reload::plans(&config, &context, &mut logger).runnable;

    if !options.foreground() {
        if let Err(err) = process::daemonize() {
            logger.daemon(Level::Critical, &format!("cannot daemonize: {err}"));
            return ExitCode::from(1);
        }
        logger.set_pid(std::process::id());
    }

    let signals = match SignalFd::new(&server::SIGNALS) {
        Ok(signals) => signals,
        Err(err) => {
            logger.daemon(Level::Critical, &format!("cannot set up signals: {err}"));
            return ExitCode::from(1);
        }
    };
    let sharing = MemorySharing::read(Path::new(SUID_DUMPABLE));
    if let MemorySharing::UnlessChangingIds { why } = &sharing {
        logger.daemon(Level::Notice, &fork_notice(why));
    }
    let spawner = match Spawner::new(sharing) {
        Ok(spawner) => spawner,
        Err(err) => {
            logger.daemon(
                Level::Critical,
                &format!("cannot prepare the launcher: {err}"),
            );
            return ExitCode::from(1);
        }
    };
    let services = reload::activate(plans, &mut logger);
    if services.is_empty() && !options.keeps_running_without_services() {
        let text = format!("{} {{main}} no services. Exiting...", std::process::id());
        logger.daemon(Level::Critical, &text);
        return ExitCode::from(1);
    }

    if let Some(path) = &options.pidfile
        && let Err(err) = write_pidfile(path)
    {
        let text = format!("cannot write pidfile {}: {err}", path.display());
        logger.daemon(Level::Error, &text);
    }

    let started = format!("kinetd {} started", env!("CARGO_PKG_VERSION"));
    logger.daemon(Level::Notice, &started);
    let working = format!("Started working: {} available services", services.len());
    logger.daemon(Level::Notice, &working);

    let server = Server {
        logger,
        spawner,
        signals,
        services,
        sessions: Default::default(),
        config_path,
        context,
        process_limit: options.limit,
        pidfile: options.pidfile.as_deref().map(absolute),
        launch_errors: LogLimiter::new(Instant::now()),
        foreground: options.foreground(),
    };
    server.run()
}

/// Why challenges that change user are started on a copy of the daemon's memory.
fn fork_notice(why: &str) -> String {
    format!(
        "{why}: challenges that change user are started on a copy of the daemon's memory \
         (fork) instead of sharing it, so that no process of their user can ptrace its way \
         into the daemon; with fs.suid_dumpable = 0 they would share it, which is faster"
    )
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// xinetd's way: remove any old file, then create it exclusively, mode 0644.
fn write_pidfile(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    writeln!(file, "{}", std::process::id())
}

/// Why the daemon would refuse each enabled service that the configuration accepts (a
/// `redirect`, a `dgram` service with `wait = no`, ...): the plan it builds at startup,
/// built here for `kinetd check`, so that `check` says what the daemon does.
pub(crate) fn refusals(config: &kinetd_config::Config) -> Vec<(String, String)> {
    let context = DaemonContext {
        environment: std::env::vars_os().collect(),
        root: process::effective_uid() == 0,
        priority: process::priority(),
    };
    config
        .enabled()
        .filter_map(|service| {
            let err = service::ServicePlan::new(service, &context).err()?;
            Some((service.id.clone(), err.message))
        })
        .collect()
}
