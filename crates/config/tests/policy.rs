//! `kafel_rule` and `kafel_arch`: policies are compiled when the configuration loads.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use kafel::arch::Arch;
use kafel::interp::{self, SeccompData};
use kinetd_config::{Config, MemFiles, Origin, Severity, load_with};

const POLICY: &str = "#include \"common.policy\"\n\
                      POLICY chal { ALLOW { execve, read, write, exit_group } }\n\
                      USE chal\nUSE common\nDEFAULT KILL\n";
const COMMON: &str = "POLICY common { ALLOW { close } }\n";

/// A machine with POLICY as `DIR/pwn.policy` and the file it includes beside it.
fn machine_with_policy(dir: &str) -> MemFiles {
    let mut files = machine();
    files
        .add(format!("{dir}/pwn.policy"), POLICY)
        .add(format!("{dir}/common.policy"), COMMON);
    files
}

/// A service named chal running `server` under `/srv/pwn.policy`, with `arches` (a
/// `kafel_arch` line or nothing).
fn policed_service(server: &str, arches: &str) -> String {
    service_text(
        "chal",
        9999,
        &format!("kafel_rule = /srv/pwn.policy\n{arches}"),
    )
    .replace("/srv/chal", server)
}

fn load_with_policy(text: &str) -> Config {
    let mut files = machine_with_policy("/etc/xinetd.d");
    files.add(
        "/etc/xinetd.d/broken.policy",
        "POLICY p {\n  ALLOW { read, nosuchcall }\n}\nUSE p DEFAULT KILL\n",
    );
    files.add("/etc/xinetd.d/ctf", text);
    files.add(MAIN, "includedir /etc/xinetd.d\n");
    load_with(&files, Path::new(MAIN))
}

fn decides(config: &Config, arch: Arch, syscall: &str) -> u32 {
    let program = config.services[0]
        .policy
        .as_ref()
        .unwrap()
        .program
        .as_ref()
        .unwrap();
    let nr = arch.syscall(syscall).unwrap().nr;
    let data = SeccompData {
        nr,
        arch: arch.audit_arch(),
        instruction_pointer: 0,
        args: [0; 6],
    };
    interp::run(program, &data).unwrap().ret
}

const ALLOW: u32 = 0x7fff_0000;

#[test]
fn a_relative_policy_is_compiled_from_the_directory_of_the_file_naming_it() {
    let config = load_with_policy(&service_text("chal", 9999, "kafel_rule = pwn.policy"));
    assert_runs(&config);
    let policy = config.services[0].policy.as_ref().unwrap();
    assert_eq!(policy.path, PathBuf::from("/etc/xinetd.d/pwn.policy"));
    assert_eq!(
        policy.arches,
        [Arch::X86_64],
        "xinetd-kafel compiles for x86-64 only"
    );
    assert_eq!(decides(&config, Arch::X86_64, "read"), ALLOW);
    assert_eq!(
        decides(&config, Arch::X86_64, "close"),
        ALLOW,
        "included from its directory"
    );
    assert_ne!(decides(&config, Arch::X86_64, "openat"), ALLOW);
    assert_ne!(
        decides(&config, Arch::I386, "read"),
        ALLOW,
        "i386 was not compiled in"
    );
}

#[test]
fn kafel_arch_compiles_for_each_architecture_named() {
    let config = load_with_policy(&service_text(
        "chal",
        9999,
        "kafel_rule = pwn.policy\nkafel_arch = x86_64 i386",
    ));
    assert_runs(&config);
    assert_eq!(
        config.services[0].policy.as_ref().unwrap().arches,
        [Arch::X86_64, Arch::I386]
    );
    assert_eq!(decides(&config, Arch::I386, "read"), ALLOW);
    assert_ne!(decides(&config, Arch::I386, "openat"), ALLOW);
}

#[test]
fn a_policy_that_does_not_compile_disables_only_its_service() {
    let text = format!(
        "{}{}",
        service_text("bad", 9001, "kafel_rule = broken.policy"),
        service_text("good", 9002, "kafel_rule = pwn.policy")
    );
    let config = load_with_policy(&text);
    assert!(!config.services[0].is_enabled());
    assert!(config.services[1].is_enabled());
    assert_reported(
        &config,
        Severity::Error,
        "kafel_rule: '/etc/xinetd.d/broken.policy' does not compile",
    );
    let compiler_error = config
        .diagnostics
        .iter()
        .find(|d| d.location.path == Path::new("/etc/xinetd.d/broken.policy"))
        .expect("the compiler's own diagnostic, at its place in the policy");
    assert_eq!(compiler_error.location.line, 2);
    assert!(
        compiler_error.message.contains("nosuchcall"),
        "{compiler_error}"
    );
    let column = compiler_error.location.column;
    assert!(column > 0, "the policy's diagnostics have a column");
    assert!(
        compiler_error
            .to_string()
            .starts_with(&format!("/etc/xinetd.d/broken.policy:2:{column}: error: ")),
        "{compiler_error}"
    );
}

#[test]
fn a_missing_policy_disables_its_service() {
    let config = load_with_policy(&service_text("chal", 9999, "kafel_rule = /nowhere.policy"));
    assert_rejected(&config, "kafel_rule: cannot read '/nowhere.policy'");
}

#[test]
fn kafel_rule_in_defaults_applies_to_services_that_set_none() {
    // xinetd-kafel accepts kafel_rule in defaults and silently ignores it.
    let text = format!(
        "defaults\n{{\n\tkafel_rule = pwn.policy\n\tkafel_arch = i386 x86_64\n}}\n{}{}",
        service_text("inherits", 9001, ""),
        service_text(
            "own",
            9002,
            "kafel_rule = broken.policy\nkafel_arch = x86_64"
        )
    );
    let config = load_with_policy(&text);
    let inherits = &config.services[0];
    assert!(inherits.is_enabled(), "{:?}", diagnostics(&config));
    assert_eq!(inherits.origin("kafel_rule"), Some(Origin::Defaults));
    assert_eq!(
        inherits.policy.as_ref().unwrap().arches,
        [Arch::I386, Arch::X86_64]
    );
    assert_eq!(
        inherits.policy.as_ref().unwrap().path,
        Path::new("/etc/xinetd.d/pwn.policy")
    );
    assert!(
        !config.services[1].is_enabled(),
        "its own broken policy, not the default"
    );
}

#[test]
fn kafel_arch_values_are_checked() {
    let config = load_with_policy(&service_text(
        "chal",
        9999,
        "kafel_rule = pwn.policy\nkafel_arch = arm64",
    ));
    assert_rejected(&config, "kafel_arch: unknown architecture 'arm64'");
    let config = load_with_policy(&service_text("chal", 9999, "kafel_arch = i386"));
    assert_reported(
        &config,
        Severity::Warning,
        "kafel_arch without kafel_rule has no effect",
    );
}

fn elf(machine: u16, class: u8) -> Vec<u8> {
    let mut head = b"\x7fELF".to_vec();
    head.extend([class, 1, 1, 0]);
    head.resize(18, 0);
    head.extend(machine.to_le_bytes());
    head.resize(64, 0);
    head
}

#[test]
fn an_i386_server_under_an_x86_64_only_policy_is_warned_about() {
    let mut files = machine_with_policy("/srv");
    files.add_executable("/srv/chal32", elf(3, 1));
    files.add_executable("/srv/chal64", elf(62, 2));
    for (server, arches, warned) in [
        ("/srv/chal32", "", true),
        ("/srv/chal32", "kafel_arch = x86_64 i386", false),
        ("/srv/chal64", "", false),
        ("/srv/chal64", "kafel_arch = i386", true),
    ] {
        files.add(MAIN, policed_service(server, arches));
        let config = load_with(&files, Path::new(MAIN));
        assert!(
            config.services[0].is_enabled(),
            "{:?}",
            diagnostics(&config)
        );
        let warning = config.diagnostics.iter().any(|d| {
            d.severity == Severity::Warning
                && d.message.contains("program but the policy is compiled for")
        });
        assert_eq!(
            warning,
            warned,
            "{server} {arches}: {:?}",
            diagnostics(&config)
        );
    }
}

#[test]
fn a_policy_that_refuses_the_x86_64_execve_starting_the_server_is_warned_about() {
    let warned = |policy: &str, arches: &str| {
        let mut files = machine_with_policy("/srv");
        files.add("/srv/pwn.policy", policy);
        files.add(MAIN, policed_service("/srv/chal", arches));
        let config = load_with(&files, Path::new(MAIN));
        assert!(
            config.services[0].is_enabled(),
            "{:?}",
            diagnostics(&config)
        );
        config.diagnostics.iter().any(|d| {
            d.severity == Severity::Warning
                && d.message
                    .contains("every session is ended before it starts")
        })
    };
    assert!(!warned(POLICY, ""));
    assert!(warned("ALLOW { read, write } DEFAULT KILL", ""));
    assert!(warned("ERRNO(1) { execve } DEFAULT ALLOW", ""));
    // The daemon's execve is an x86-64 call even for an i386 challenge.
    assert!(warned(POLICY, "kafel_arch = i386"));
    assert!(!warned(POLICY, "kafel_arch = x86_64 i386"));
}

#[test]
fn the_challenge_behind_a_chroot_wrapper_is_checked_too() {
    let mut files = machine_with_policy("/srv");
    files.add_executable("/usr/sbin/chroot", elf(62, 2));
    files.add_executable("/home/ctf/helloworld", elf(3, 1));
    let conf = |args: &str, arches: &str| {
        policed_service("/usr/sbin/chroot", arches)
            .replace("\n}\n", &format!("\nserver_args = {args}\n}}\n"))
    };
    for (args, arches, warned) in [
        ("--userspec=1000:1000 /home/ctf ./helloworld", "", true),
        ("--userspec 1000:1000 /home/ctf /helloworld", "", true),
        (
            "--userspec=1000:1000 /home/ctf ./helloworld",
            "kafel_arch = x86_64 i386",
            false,
        ),
        ("/home/ctf", "", false),
    ] {
        files.add(MAIN, conf(args, arches));
        let config = load_with(&files, Path::new(MAIN));
        assert!(
            config.services[0].is_enabled(),
            "{:?}",
            diagnostics(&config)
        );
        let warning = config
            .diagnostics
            .iter()
            .find(|d| d.severity == Severity::Warning);
        match warning {
            Some(w) if warned => assert!(
                w.message
                    .contains("'/home/ctf/helloworld' is an i386 program"),
                "{args}: {w}"
            ),
            None if !warned => {}
            other => panic!("{args} {arches}: unexpected {other:?}"),
        }
    }
}
