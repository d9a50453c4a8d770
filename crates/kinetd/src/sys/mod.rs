//! Every unsafe operation of kinetd, behind safe functions.
//!
//! Nothing outside this module uses `unsafe`. Each block carries a `// SAFETY:` note and
//! each `unsafe fn` a `# Safety` section.

pub mod seccomp;
