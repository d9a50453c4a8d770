//! Whatever the bytes, loading returns (no panic, no hang) with its diagnostics.

use std::path::Path;
use std::time::{Duration, Instant};

use kinetd_config::{MemFiles, load_with};
use proptest::prelude::*;

/// Words that steer generated text into the interesting corners of the grammar.
const WORDS: &[&str] = &[
    "service",
    "defaults",
    "include",
    "includedir",
    "{",
    "}",
    "=",
    "+=",
    "-=",
    "#",
    "\n",
    "\n",
    "\n",
    " ",
    "\t",
    "user",
    "server",
    "server_args",
    "port",
    "type",
    "UNLISTED",
    "flags",
    "NAMEINARGS",
    "only_from",
    "no_access",
    "10.{1,2}",
    "1.2.3.0/24",
    "::/0",
    "access_times",
    "1:00-2:00",
    "log_type",
    "FILE",
    "SYSLOG",
    "daemon",
    "rlimit_as",
    "1M",
    "cps",
    "5",
    "kafel_rule",
    "p.policy",
    "kafel_arch",
    "i386",
    "/etc/xinetd.conf",
    "/etc/inc",
    "d",
    "socket_type",
    "stream",
    "wait",
    "no",
    "yes",
    "root",
    "/bin/sh",
    "disabled",
    "enabled",
    "env",
    "A=b",
    "user=nobody",
    "bind",
    "localhost",
    "redirect",
    "\u{fffd}",
    "\r",
];

fn assemble(indices: &[usize]) -> String {
    indices
        .iter()
        .map(|&i| WORDS[i % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn check(main: &[u8], other: &[u8]) {
    let mut files = MemFiles::new();
    files
        .add("/etc/xinetd.conf", main.to_vec())
        .add("/etc/inc", other.to_vec())
        .add("/etc/d/x", other.to_vec())
        .add("/etc/p.policy", other.to_vec())
        .add_executable("/bin/sh", b"\x7fELF".to_vec());
    let start = Instant::now();
    let config = load_with(&files, Path::new("/etc/xinetd.conf"));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "loading took {:?}",
        start.elapsed()
    );
    // Every diagnostic renders, and points into a file that exists or at line 0.
    for diagnostic in &config.diagnostics {
        let _ = diagnostic.to_string();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes_never_panic(
        main in proptest::collection::vec(any::<u8>(), 0..2048),
        other in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        check(&main, &other);
    }

    #[test]
    fn grammar_shaped_text_never_panics(
        main in proptest::collection::vec(any::<usize>(), 0..300),
        other in proptest::collection::vec(any::<usize>(), 0..100),
    ) {
        check(assemble(&main).as_bytes(), assemble(&other).as_bytes());
    }
}
