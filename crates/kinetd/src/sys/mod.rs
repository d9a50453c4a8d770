//! Every unsafe operation of kinetd, behind safe functions.
//!
//! Nothing outside this module uses `unsafe`. Each block carries a `// SAFETY:` note and
//! each `unsafe fn` a `# Safety` section.

pub mod poll;
pub mod process;
#[cfg(target_arch = "x86_64")]
mod raw;
#[cfg(not(target_arch = "x86_64"))]
compile_error!("the launcher makes raw x86-64 system calls (sys/raw.rs); port them first");
pub mod seccomp;
pub mod signals;
pub mod spawn;
