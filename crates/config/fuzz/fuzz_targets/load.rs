//! `cargo fuzz run load` (from crates/config): loading any configuration, with any
//! included file and policy, returns without panicking or hanging.

#![no_main]

use std::path::Path;

use kinetd_config::{MemFiles, load_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The input is the main file, then after the first NUL byte a second file that the
    // first can reach as an include, an includedir entry or a policy.
    let (main, other) = match data.iter().position(|&b| b == 0) {
        Some(split) => (&data[..split], &data[split + 1..]),
        None => (data, &[][..]),
    };
    let mut files = MemFiles::new();
    files
        .add("/etc/xinetd.conf", main.to_vec())
        .add("/etc/inc", other.to_vec())
        .add("/etc/d/x", other.to_vec())
        .add("/etc/p.policy", other.to_vec())
        .add_executable("/bin/sh", b"\x7fELF".to_vec());
    let config = load_with(&files, Path::new("/etc/xinetd.conf"));
    for diagnostic in &config.diagnostics {
        let _ = diagnostic.to_string();
    }
});
