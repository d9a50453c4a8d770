//! The whole compiler, front end and code generation, on arbitrary bytes: it must never
//! panic or hang, and a program it produces must respect the kernel's length limit.

#![no_main]

use kafel::arch::Arch;
use kafel::{MemLoader, SourceFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = SourceFile::new("fuzz.policy", String::from_utf8_lossy(data));
    if let Ok(program) = kafel::compile(&source, &[Arch::X86_64, Arch::I386], &MemLoader::new()) {
        assert!(!program.is_empty() && program.len() <= 4096);
    }
});
