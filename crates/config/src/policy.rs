//! `kafel_rule` and `kafel_arch`: compiling a service's policy when the configuration
//! loads, so that a policy that does not compile keeps its service from starting, and
//! the daemon only ever holds finished filters.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use kafel::arch::Arch;
use kafel::interp::{self, SeccompData};
use kafel::ir::Action;
use kafel::{LoadError, Loader, SourceFile};

use crate::diag::{Location, Sink};
use crate::files::Files;
use crate::model::{Policy, Service};
use crate::service::Draft;

/// xinetd-kafel compiles for x86-64 only.
const DEFAULT_ARCHES: [Arch; 1] = [Arch::X86_64];

/// ELF `e_machine` values.
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;

/// Compiles the service's policy, if it names one. Returns false if it cannot be used.
pub(crate) fn attach(
    service: &mut Service,
    draft: &Draft,
    files: &dyn Files,
    sink: &mut Sink,
) -> bool {
    let arches = draft
        .kafel_arch
        .clone()
        .unwrap_or_else(|| DEFAULT_ARCHES.to_vec());
    let Some(path) = &draft.kafel_rule else {
        if draft.kafel_arch.is_some() {
            sink.warning(
                draft.at("kafel_arch", service),
                format!(
                    "service {}: kafel_arch without kafel_rule has no effect",
                    service.name
                ),
            );
        }
        return true;
    };
    let at = draft.at("kafel_rule", service).clone();

    let text = match files.read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            sink.error(
                &at,
                format!("kafel_rule: cannot read '{}': {e}", path.display()),
            );
            return false;
        }
    };
    // The policy's own directory is where its `#include`s are looked for.
    let directory = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let loader = FilesLoader {
        files,
        search_paths: vec![directory],
    };
    let main = SourceFile::new(path.display().to_string(), text);

    let program = match kafel::compile(&main, &arches, &loader) {
        Ok(program) => program,
        Err(diagnostics) => {
            sink.error(
                &at,
                format!(
                    "kafel_rule: '{}' does not compile ({} error(s) follow)",
                    path.display(),
                    diagnostics.len()
                ),
            );
            for d in &diagnostics {
                let location = Location {
                    path: PathBuf::from(&d.file),
                    line: d.line,
                    column: d.col,
                };
                let mut message = d.message.clone();
                for (file, line) in &d.included_from {
                    message.push_str(&format!(" (included from {file}:{line})"));
                }
                sink.error(&location, message);
            }
            return false;
        }
    };

    check_server_arch(service, draft, &arches, files, sink);
    check_execve_allowed(service, &at, path, &program, sink);
    service.policy = Some(Policy {
        path: path.clone(),
        arches,
        program: Some(program),
    });
    true
}

/// Warns when the filter refuses the `execve` that starts the server. kinetd installs the
/// filter right before that call, which the daemon, an x86-64 program, makes as an
/// x86-64 syscall whatever the challenge's architecture; refused, no session ever starts.
/// The call is judged with every argument 0: a policy whose `execve` rule looks at the
/// arguments may be warned about without cause, which the message allows for.
fn check_execve_allowed(
    service: &Service,
    at: &Location,
    path: &Path,
    program: &kafel::bpf::Program,
    sink: &mut Sink,
) {
    let native = Arch::X86_64;
    let Some(execve) = native.syscall("execve") else {
        return;
    };
    let data = SeccompData {
        nr: execve.nr,
        arch: native.audit_arch(),
        instruction_pointer: 0,
        args: [0; 6],
    };
    let Ok(outcome) = interp::run(program, &data) else {
        return;
    };
    let action = Action::from_ret_value(outcome.ret);
    if !matches!(action, Action::Allow | Action::Log) {
        sink.warning(
            at,
            format!(
                "service {}: '{}' decides {action} for an x86-64 execve (arguments 0), the call \
                 that starts the server under the filter; unless it allows the server's own \
                 execve, every session is ended before it starts",
                service.name,
                path.display()
            ),
        );
    }
}

/// Warns when the server — or, behind the `chroot` wrapper most CTF images use, the
/// challenge it runs — is an ELF program for an architecture the filter does not cover:
/// every syscall it makes would be refused.
fn check_server_arch(
    service: &Service,
    draft: &Draft,
    arches: &[Arch],
    files: &dyn Files,
    sink: &mut Sink,
) {
    for program in launched_programs(service) {
        let Ok(head) = files.read_head(&program, 20) else {
            continue;
        };
        let Some(arch) = elf_arch(&head) else {
            continue;
        };
        if arches.contains(&arch) {
            continue;
        }
        let compiled: Vec<&str> = arches.iter().map(|a| a.name()).collect();
        sink.warning(
            draft.at("kafel_arch", service),
            format!(
                "service {}: '{}' is an {} program but the policy is compiled for {} only; \
                 add kafel_arch = {} {}",
                service.name,
                program.display(),
                arch.name(),
                compiled.join(" "),
                compiled.join(" "),
                arch.name()
            ),
        );
    }
}

/// The server, and when it is coreutils' `chroot`, the program it runs inside the new
/// root (`chroot [--userspec=U:G] NEWROOT COMMAND`, with COMMAND found from `/`).
fn launched_programs(service: &Service) -> Vec<PathBuf> {
    let Some(server) = &service.server else {
        return Vec::new();
    };
    let mut programs = vec![server.clone()];
    if let Some((root, command)) = chroot_operands(service) {
        let inside = command.trim_start_matches("./").trim_start_matches('/');
        programs.push(Path::new(root).join(inside));
    }
    programs
}

/// NEWROOT and COMMAND when the server is coreutils' `chroot`.
fn chroot_operands(service: &Service) -> Option<(&str, &str)> {
    let server = service.server.as_ref()?;
    if server.file_name().is_none_or(|name| name != "chroot") {
        return None;
    }
    let mut operands: Vec<&str> = Vec::new();
    let mut args = service.argv.iter().skip(1).map(String::as_str);
    while let Some(arg) = args.next() {
        match arg {
            "--userspec" | "--groups" => {
                args.next();
            }
            "--" => {
                operands.extend(args.by_ref());
            }
            option if option.starts_with('-') && operands.is_empty() => {}
            operand => operands.push(operand),
        }
    }
    match operands[..] {
        [root, command, ..] => Some((root, command)),
        _ => None,
    }
}

/// Warns when the server is the `chroot` wrapper and the program it names by a path
/// (`./chal`, `/chal`) is not an executable file inside the new root: the service starts,
/// and every connection ends at once (chroot: failed to run command). A bare name is
/// looked up in the new root's PATH, which is not checked.
pub(crate) fn check_chroot_command(
    service: &Service,
    draft: &Draft,
    files: &dyn Files,
    sink: &mut Sink,
) {
    let Some((root, command)) = chroot_operands(service) else {
        return;
    };
    if !command.contains('/') {
        return;
    }
    let inside = Path::new(root).join(command.trim_start_matches("./").trim_start_matches('/'));
    if files.is_executable(&inside) {
        return;
    }
    sink.warning(
        draft.at("server_args", service),
        format!(
            "service {}: chroot would run '{}', which is not an executable file: every \
             connection would end at once",
            service.name,
            inside.display()
        ),
    );
}

/// The architecture of an ELF header, if it is one kinetd knows.
pub(crate) fn elf_arch(head: &[u8]) -> Option<Arch> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    // e_machine is at offset 18 in both ELF classes, in the file's byte order.
    let bytes = [head[18], head[19]];
    let machine = match head[5] {
        2 => u16::from_be_bytes(bytes),
        _ => u16::from_le_bytes(bytes),
    };
    match machine {
        EM_X86_64 => Some(Arch::X86_64),
        EM_386 => Some(Arch::I386),
        _ => None,
    }
}

/// Kafel's include rule (`DIR/name` for each directory in turn) over [`Files`], so that
/// tests can compile policies held in memory.
struct FilesLoader<'a> {
    files: &'a dyn Files,
    search_paths: Vec<PathBuf>,
}

impl Loader for FilesLoader<'_> {
    fn load(&self, name: &str) -> Result<SourceFile, LoadError> {
        for dir in &self.search_paths {
            // Plain concatenation as Kafel does: an absolute name stays under the directory.
            let mut joined = OsString::from(dir.as_os_str());
            joined.push("/");
            joined.push(name);
            let path = PathBuf::from(joined);
            match self.files.read(&path) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    return Ok(SourceFile::new(path.display().to_string(), text));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(LoadError::Unreadable {
                        path,
                        reason: e.to_string(),
                    });
                }
            }
        }
        Err(LoadError::NotFound {
            searched: self.search_paths.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, machine: u16) -> Vec<u8> {
        let mut head = b"\x7fELF".to_vec();
        head.extend([class, data, 1, 0]);
        head.resize(18, 0);
        head.extend(machine.to_le_bytes());
        head
    }

    #[test]
    fn elf_headers_name_their_architecture() {
        assert_eq!(elf_arch(&header(2, 1, 62)), Some(Arch::X86_64));
        assert_eq!(elf_arch(&header(1, 1, 3)), Some(Arch::I386));
        assert_eq!(
            elf_arch(&header(2, 1, 183)),
            None,
            "aarch64 is not a kafel arch"
        );
        assert_eq!(elf_arch(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(elf_arch(b"\x7fELF"), None);
    }
}
