//! A compiler from Google's Kafel policy language to seccomp-BPF programs.
//!
//! The pipeline has one module per stage:
//!
//! ```text
//! text ──lex──▶ tokens ──parse──▶ ast ──resolve──▶ ir::Policy ──codegen──▶ bpf::Program
//! ```
//!
//! * `lex` turns text into tokens and splices `#include`d files into the stream.
//! * `parse` builds the syntax tree, recovering after errors so that one run reports
//!   every problem in the file.
//! * `resolve` gives names their meaning for each target architecture (policies, `USE`,
//!   constants, syscall and argument names) and produces the architecture-specific rule
//!   lists of [`ir`], with filters constant-folded by `fold` exactly as Kafel folds them.
//! * `diag` turns the errors of every stage into [`Diagnostics`] for humans.
//! * [`codegen`] lowers those rules to a BPF program: the architecture check, a balanced
//!   search over syscall numbers and the argument comparisons.
//!
//! [`interp`] runs a program exactly as the kernel's seccomp would, which is how the test
//! suite and `kinetd policy eval` check decisions without installing a filter.
//!
//! The crate does no I/O of its own: included files are read through a [`Loader`].

#![forbid(unsafe_code)]

pub mod arch;
mod ast;
pub mod bpf;
pub mod codegen;
mod diag;
pub mod disasm;
mod fold;
pub mod interp;
pub mod ir;
mod lex;
mod parse;
mod resolve;
mod source;
mod span;

pub use diag::{Diagnostic, Diagnostics};
pub use source::{FsLoader, LoadError, Loader, MemLoader, SourceFile};

use arch::Arch;

/// Parses and resolves a policy for each of `arches`: the front end's whole job.
///
/// `main` is the policy file itself; its `#include`s are read through `loader`. On
/// success the policy has one section per architecture, in the order given (repeats
/// ignored). Otherwise every error found is returned, in reading order.
pub fn resolve(
    main: &SourceFile,
    arches: &[Arch],
    loader: &dyn Loader,
) -> Result<ir::Policy, Diagnostics> {
    let lexed = lex::lex(main, loader);
    let lexical: Vec<usize> = lexed.reports.iter().map(|r| r.order).collect();
    let (file, parse_reports) = parse::parse(&lexed.tokens, &lexed.files, &lexical);
    let mut reports = lexed.reports;
    reports.extend(parse_reports);
    let policy = resolve::resolve(&file, &lexed.tokens, arches, &mut reports);
    if reports.is_empty() {
        Ok(policy)
    } else {
        Err(diag::render(&lexed.files, reports))
    }
}

/// Compiles a policy for each of `arches` into one seccomp-BPF program.
///
/// This is [`resolve`] followed by [`codegen::generate`]; an error of code generation
/// (such as a program longer than the kernel accepts) is reported against the main file.
pub fn compile(
    main: &SourceFile,
    arches: &[Arch],
    loader: &dyn Loader,
) -> Result<bpf::Program, Diagnostics> {
    let policy = resolve(main, arches, loader)?;
    codegen::generate(&policy)
        .map_err(|e| Diagnostics::from(vec![Diagnostic::whole_file(&main.name, e.to_string())]))
}
