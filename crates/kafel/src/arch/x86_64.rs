//! Placeholder until the generated table lands.

use super::Syscall;

pub(super) static SYSCALLS: &[Syscall] = &[];
