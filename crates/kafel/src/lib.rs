//! A compiler from Google's Kafel policy language to seccomp-BPF programs.
//!
//! The pipeline has one module per stage:
//!
//! ```text
//! text ──lex──▶ tokens ──parse──▶ ast ──resolve──▶ ir::Policy ──codegen──▶ bpf::Program
//! ```
//!
//! * [`lex`] turns bytes into tokens and splices `#include`d files into the stream.
//! * [`parse`] builds the syntax tree, recovering after errors so that one run reports
//!   every problem in the file.
//! * [`resolve`] gives names their meaning for each target architecture (policies, `USE`,
//!   constants, syscall and argument names), folds constants and produces the
//!   architecture-specific rule lists of [`ir`].
//! * [`codegen`] lowers those rules to a BPF program: the architecture check, a balanced
//!   search over syscall numbers and the argument comparisons.
//!
//! [`interp`] runs a program exactly as the kernel's seccomp would, which is how the test
//! suite and `kinetd policy eval` check decisions without installing a filter.
//!
//! The crate does no I/O of its own: included files are read through a [`Loader`].

#![forbid(unsafe_code)]

pub mod arch;
pub mod bpf;
pub mod codegen;
pub mod disasm;
pub mod interp;
pub mod ir;
