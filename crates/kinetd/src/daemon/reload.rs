//! Loading the configuration into running services, at startup and on SIGHUP.
//!
//! A reload first loads the whole new configuration and prepares every service (policies
//! compiled, filters prepared, banners read); only then does anything change. A
//! configuration that cannot be used leaves the old one serving. Then:
//! - a service whose id and listening socket are unchanged keeps its socket and its
//!   sessions, and takes the new settings for new connections;
//! - a service the new configuration names but rejects (a policy edited into one that
//!   no longer compiles, a typo in an attribute) keeps serving with its previous
//!   settings and sessions, so that one bad edit never takes a challenge down mid-game;
//!   the errors are in the log, and the next good reload applies the fix;
//! - every other old service closes its socket and its sessions are killed;
//! - the remaining new services open their sockets.
//!
//! Old services are stopped before new ones bind, so that a port can move between them.

use std::path::Path;

use kinetd_config::{Config, Status};

use super::listener::Listener;
use super::log_format::Level;
use super::logger::Logger;
use super::server::{Active, Server};
use super::service::{DaemonContext, ServicePlan};
use crate::sys::spawn::{MemorySharing, SUID_DUMPABLE};

/// Loads the configuration file and writes its diagnostics to the daemon log.
/// `None` when it cannot be used at all.
pub fn load(path: &Path, logger: &mut Logger) -> Option<Config> {
    let config = kinetd_config::load(path);
    for diagnostic in config.sorted_diagnostics() {
        let level = match diagnostic.severity {
            kinetd_config::Severity::Error => Level::Error,
            kinetd_config::Severity::Warning => Level::Warning,
            kinetd_config::Severity::Note => Level::Notice,
        };
        for line in diagnostic.to_string().lines() {
            logger.daemon(level, line);
        }
    }
    if config.fatal { None } else { Some(config) }
}

/// The services of a configuration that can run, and the ids of those it names but
/// cannot run.
#[derive(Debug, Default)]
pub struct Plans {
    pub runnable: Vec<ServicePlan>,
    pub rejected: Vec<String>,
}

/// Prepares every enabled service; one that cannot run is logged and left out.
pub fn plans(config: &Config, context: &DaemonContext, logger: &mut Logger) -> Plans {
    let mut plans = Plans::default();
    for service in &config.services {
        if service.status == Status::Rejected {
            plans.rejected.push(service.id.clone());
        }
    }
    for service in config.enabled() {
        match ServicePlan::new(service, context) {
            Ok(plan) => {
                for warning in &plan.warnings {
                    logger.daemon(Level::Warning, &format!("service {}: {warning}", plan.id));
                }
                plans.runnable.push(plan);
            }
            Err(err) => {
                logger.daemon(Level::Error, &format!("{err} - DISABLING SERVICE"));
                plans.rejected.push(service.id.clone());
            }
        }
    }
    plans
}

/// Opens the listening socket of each plan; a service whose socket cannot be opened is
/// logged and left out, and the others run.
pub fn activate(plans: Vec<ServicePlan>, logger: &mut Logger) -> Vec<Active> {
    let mut active = Vec::new();
    for plan in plans {
        match Listener::open(&plan.listen) {
            Ok(listener) => {
                let text = format!("service {} listening on {}", plan.id, listener.local);
                logger.daemon(Level::Debug, &text);
                active.push(Active::new(plan, listener));
            }
            Err(err) => {
                let text = format!(
                    "service {}: bind failed (port {}): {err} - service not started",
                    plan.id, plan.listen.port
                );
                logger.daemon(Level::Error, &text);
            }
        }
    }
    active
}

/// SIGHUP.
pub fn reload(server: &mut Server) {
    server
        .logger
        .daemon(Level::Notice, "Starting reconfiguration");
    // Log files are reopened, so that a rotated file is replaced.
    server.logger.reopen();

    // The sysctl may have changed since startup; say so only when the choice changes.
    let sharing = MemorySharing::read(Path::new(SUID_DUMPABLE));
    if &sharing != server.spawner.sharing() {
        let text = match &sharing {
            MemorySharing::All => {
                "fs.suid_dumpable is 0: every challenge shares the daemon's memory again".into()
            }
            MemorySharing::UnlessChangingIds { why } => super::fork_notice(why),
        };
        server.logger.daemon(Level::Notice, &text);
        server.spawner.set_sharing(sharing);
    }

    let Some(config) = load(&server.config_path, &mut server.logger) else {
        server.logger.daemon(
            Level::Warning,
            "reconfiguration failed; the old configuration stays",
        );
        return;
    };
    let Plans {
        runnable: mut new_plans,
        rejected,
    } = plans(&config, &server.context, &mut server.logger);

    let old_count = server.services.len();
    let mut kept = Vec::new();
    let mut dropped = 0;
    for mut active in std::mem::take(&mut server.services) {
        let same = new_plans
            .iter()
            .position(|plan| plan.id == active.plan.id && plan.listen == active.plan.listen);
        match same {
            Some(position) => {
                let plan = new_plans.remove(position);
                let text = format!("readjusting service {}", plan.id);
                server.logger.daemon(Level::Notice, &text);
                active.replace_plan(plan);
                kept.push(active);
            }
            None if rejected.contains(&active.plan.id) => {
                let text = format!(
                    "service {}: the new settings are rejected; it keeps serving with its \
                     previous settings",
                    active.plan.id
                );
                server.logger.daemon(Level::Error, &text);
                kept.push(active);
            }
            None => {
                let id = active.plan.id.clone();
                active.note_dropped_fail_lines(&mut server.logger);
                drop(active);
                server.kill_sessions(Some(&id));
                server
                    .logger
                    .daemon(Level::Notice, &format!("service {id} deactivated"));
                dropped += 1;
            }
        }
    }
    let added = new_plans.len();
    kept.extend(activate(new_plans, &mut server.logger));
    server.services = kept;

    let text = format!("Reconfigured: new={added} old={old_count} dropped={dropped} (services)");
    server.logger.daemon(Level::Notice, &text);
}
