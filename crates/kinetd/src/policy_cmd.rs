//! `kinetd policy`: the toolbox for policy authors.
//!
//! * `compile` turns a policy into the filter kinetd would install, as raw `sock_filter`
//!   records, a listing, or a C array.
//! * `eval` answers "what does this policy do to this call?" by running the compiled
//!   filter in the interpreter, which follows the kernel's rules.
//! * `disasm` lists a raw filter written by `compile` (or by anything else).
//! * `run` starts a program under the compiled filter, to try a policy on a challenge
//!   before deploying it.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kafel::arch::Arch;
use kafel::bpf::Program;
use kafel::interp::{self, SeccompData};
use kafel::ir::Action;
use kafel::{FsLoader, SourceFile, disasm};

use crate::sys::seccomp::{self, PreparedFilter};

#[derive(Debug, Parser)]
#[command(
    name = "kinetd policy",
    about = "Compile, inspect and try Kafel seccomp policies"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Compile a policy to a seccomp-BPF filter.
    Compile {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Raw)]
        format: Format,
        /// Write to FILE instead of standard output.
        #[arg(short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the action the compiled filter returns for one syscall.
    Eval {
        #[command(flatten)]
        policy: PolicyArgs,
        /// The architecture the call is made on [default: the first --arch].
        #[arg(long, value_name = "ARCH", value_parser = parse_arch)]
        syscall_arch: Option<Arch>,
        /// The syscall, by name or number.
        #[arg(long, value_name = "NAME|NUMBER", allow_negative_numbers = true)]
        syscall: String,
        /// An argument value (decimal, 0x hex, 0o octal or 0b binary; negative wraps),
        /// up to six in order; missing ones are 0.
        #[arg(
            long = "arg",
            value_name = "VALUE",
            value_parser = parse_value,
            allow_negative_numbers = true
        )]
        args: Vec<u64>,
    },
    /// List a raw filter (8-byte sock_filter records) as readable instructions.
    Disasm {
        /// The raw filter file.
        file: PathBuf,
    },
    /// Run a program under the compiled filter.
    Run {
        #[command(flatten)]
        policy: PolicyArgs,
        /// The program and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "PROGRAM")]
        command: Vec<OsString>,
    },
}

#[derive(Debug, Args)]
struct PolicyArgs {
    /// The policy file.
    policy: PathBuf,
    /// Target architecture; repeat for a multi-architecture filter.
    #[arg(long = "arch", value_name = "ARCH", value_parser = parse_arch, default_value = "x86_64")]
    arches: Vec<Arch>,
    /// A directory `#include` searches, in order given. Without any, the policy's own
    /// directory, as for a service's kafel_rule.
    #[arg(short = 'I', value_name = "DIR")]
    include: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Consecutive 8-byte little-endian sock_filter records.
    Raw,
    /// One instruction per line.
    Disasm,
    /// A C initializer for an array of struct sock_filter.
    C,
}

fn parse_arch(name: &str) -> Result<Arch, String> {
    Arch::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
        format!("unknown architecture (known: {})", known.join(", "))
    })
}

/// A number as policies write them: decimal (a leading `-` wraps modulo 2^64), `0x`
/// hex, `0o` octal or `0b` binary.
fn parse_value(text: &str) -> Result<u64, String> {
    let bad = |e: std::num::ParseIntError| format!("{text:?} is not a 64-bit number: {e}");
    if let Some(digits) = text.strip_prefix('-') {
        return digits.parse::<u64>().map(u64::wrapping_neg).map_err(bad);
    }
    let (digits, radix) = match text.get(..2) {
        Some("0x") => (&text[2..], 16),
        Some("0o") => (&text[2..], 8),
        Some("0b") => (&text[2..], 2),
        _ => (text, 10),
    };
    u64::from_str_radix(digits, radix).map_err(bad)
}

pub fn main(args: &[OsString]) -> ExitCode {
    let argv = std::iter::once(OsString::from("kinetd policy")).chain(args.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Cmd::Compile {
            policy,
            format,
            output,
        } => compile(&policy, format, output),
        Cmd::Eval {
            policy,
            syscall_arch,
            syscall,
            args,
        } => eval(&policy, syscall_arch, &syscall, &args),
        Cmd::Disasm { file } => disasm_file(&file),
        Cmd::Run { policy, command } => return run(&policy, &command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Compiles the policy; on failure the error is every diagnostic, rendered.
fn build(args: &PolicyArgs) -> Result<Program, String> {
    let name = args.policy.display().to_string();
    let text = fs::read(&args.policy).map_err(|e| format!("kinetd: cannot read {name}: {e}"))?;
    // As for included files: kafel reads bytes, and a byte that is not UTF-8 can only sit
    // in a comment (where kafel accepts it) or be an error anyway, so a lossy conversion
    // keeps every decision and refuses exactly what kafel refuses.
    let text = String::from_utf8_lossy(&text).into_owned();
    let source = SourceFile { name, text };
    // Without -I the policy compiles as the daemon compiles a kafel_rule: its includes are
    // looked up beside it.
    let include = if args.include.is_empty() {
        let directory = match args.policy.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        vec![directory.to_path_buf()]
    } else {
        args.include.clone()
    };
    let loader = FsLoader::new(include);
    kafel::compile(&source, &args.arches, &loader).map_err(|diagnostics| {
        let text = diagnostics.to_string();
        text.trim_end().to_owned()
    })
}

fn compile(args: &PolicyArgs, format: Format, output: Option<PathBuf>) -> Result<(), String> {
    let program = build(args)?;
    let bytes = match format {
        Format::Raw => program.to_bytes(),
        Format::Disasm => disasm::listing(&program).into_bytes(),
        Format::C => c_array(&program, args).into_bytes(),
    };
    match output {
        Some(path) => fs::write(&path, bytes)
            .map_err(|e| format!("kinetd: cannot write {}: {e}", path.display())),
        None => write_stdout(&bytes),
    }
}

/// Writes to standard output. A reader that has gone away (`kinetd policy disasm F |
/// head`) is not an error: what it wanted, it has.
fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(format!("kinetd: cannot write to standard output: {e}"))
        }
        _ => Ok(()),
    }
}

fn c_array(program: &Program, args: &PolicyArgs) -> String {
    let arches: Vec<&str> = args.arches.iter().map(|a| a.name()).collect();
    let mut out = format!(
        "/* {}: {} instructions for {} */\nstruct sock_filter filter[] = {{\n",
        args.policy.display(),
        program.len(),
        arches.join(", ")
    );
    for (at, insn) in program.instructions().iter().enumerate() {
        let listing = disasm::instruction(at, insn);
        out.push_str(&format!(
            "\t{{ {:#06x}, {:3}, {:3}, {:#010x} }}, /* {at:4}: {listing} */\n",
            insn.code, insn.jt, insn.jf, insn.k
        ));
    }
    out.push_str("};\n");
    out
}

fn eval(
    args: &PolicyArgs,
    arch: Option<Arch>,
    syscall: &str,
    values: &[u64],
) -> Result<(), String> {
    let arch = arch.unwrap_or(args.arches[0]);
    let nr = match parse_value(syscall) {
        Ok(n) if n <= u64::from(u32::MAX) => n as u32,
        // A small negative number such as -1, which the kernel sees as 0xffffffff.
        Ok(n) if n >= 0xffff_ffff_0000_0000 => n as u32,
        Ok(_) => {
            return Err(format!(
                "kinetd: syscall number {syscall} does not fit 32 bits"
            ));
        }
        Err(_) => arch
            .syscall(syscall)
            .map(|s| s.nr)
            .ok_or_else(|| format!("kinetd: no syscall named {syscall:?} on {arch}"))?,
    };
    if values.len() > 6 {
        return Err("kinetd: a syscall has at most 6 arguments".to_owned());
    }
    let program = build(args)?;
    let mut data = SeccompData {
        nr,
        arch: arch.audit_arch(),
        ..SeccompData::default()
    };
    data.args[..values.len()].copy_from_slice(values);
    let outcome = interp::run(&program, &data)
        .map_err(|e| format!("kinetd: the compiled filter is invalid: {e}"))?;
    write_stdout(format!("{}\n", Action::from_ret_value(outcome.ret)).as_bytes())
}

fn disasm_file(path: &PathBuf) -> Result<(), String> {
    let bytes =
        fs::read(path).map_err(|e| format!("kinetd: cannot read {}: {e}", path.display()))?;
    let program =
        Program::from_bytes(&bytes).map_err(|e| format!("kinetd: {}: {e}", path.display()))?;
    write_stdout(disasm::listing(&program).as_bytes())?;
    if let Err(e) = interp::check(&program) {
        eprintln!("kinetd: note: the kernel would refuse this filter: {e}");
    }
    Ok(())
}

/// Runs the program under the filter and exits as it did (128 + N for signal N, as shells
/// do). The filter is installed in the child right before `execve`; if that fails, the
/// program is not run at all.
fn run(args: &PolicyArgs, command: &[OsString]) -> ExitCode {
    let program = match build(args) {
        Ok(program) => program,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let filter = match PreparedFilter::new(&program) {
        Ok(filter) => Arc::new(filter),
        Err(e) => {
            eprintln!("kinetd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = command[0].to_string_lossy().into_owned();
    let mut child = Command::new(&command[0]);
    child.args(&command[1..]);
    seccomp::filter_command(&mut child, filter);
    let status = match child.status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("kinetd: cannot run {name} under the policy: {e}");
            return ExitCode::from(if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    if let Some(code) = status.code() {
        return ExitCode::from(code as u8);
    }
    use std::os::unix::process::ExitStatusExt;
    let signal = status.signal().unwrap_or(0);
    eprintln!("kinetd: {name} was killed by signal {signal}");
    ExitCode::from(128 + signal as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_in_every_base_and_negatives_wrap() {
        assert_eq!(parse_value("42"), Ok(42));
        assert_eq!(parse_value("0x5401"), Ok(0x5401));
        assert_eq!(parse_value("0o17"), Ok(0o17));
        assert_eq!(parse_value("0b101"), Ok(5));
        assert_eq!(parse_value("-1"), Ok(u64::MAX));
        assert!(parse_value("0x1_0000_0000_0000_0000").is_err());
        assert!(parse_value("read").is_err());
    }

    #[test]
    fn command_line_parses_repeated_arches_and_the_program_after_dashes() {
        let cli = Cli::try_parse_from([
            "kinetd policy",
            "run",
            "--arch",
            "x86_64",
            "--arch",
            "i386",
            "p.policy",
            "--",
            "/bin/echo",
            "-n",
            "hi",
        ])
        .unwrap();
        let Cmd::Run { policy, command } = cli.command else {
            panic!("not run")
        };
        assert_eq!(policy.arches, vec![Arch::X86_64, Arch::I386]);
        assert_eq!(command, ["/bin/echo", "-n", "hi"]);
    }
}
