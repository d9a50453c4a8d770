//! kinetd: an xinetd-compatible super-server for CTF challenges.
//!
//! The command line is xinetd's (`kinetd -f FILE -dontfork ...`) so that existing
//! Dockerfiles keep working with only the program name changed. Two subcommands sit
//! beside it: `kinetd check` validates a configuration, and `kinetd policy` is the
//! toolbox for policy authors.

mod check_cmd;
mod daemon;
mod policy_cmd;
mod sys;

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some("policy") => policy_cmd::main(&args[1..]),
        Some("check") => check_cmd::main(&args[1..]),
        _ => daemon::main(&args),
    }
}
