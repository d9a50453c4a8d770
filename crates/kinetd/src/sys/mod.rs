//! Every unsafe operation of kinetd, behind safe functions.
//!
//! Nothing outside this module uses `unsafe`. Each block carries a `// SAFETY:` note and
//! each `unsafe fn` a `# Safety` section.

pub mod poll;
pub mod process;
pub mod seccomp;
pub mod signals;
pub mod spawn;
