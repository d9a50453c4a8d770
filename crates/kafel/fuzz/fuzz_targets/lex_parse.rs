//! The front end (lexer, parser, name resolution) on arbitrary bytes: it must never panic
//! or hang, and a refusal must come with located diagnostics.

#![no_main]

use kafel::arch::Arch;
use kafel::{MemLoader, SourceFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let source = SourceFile::new("fuzz.policy", text);
    // Includes resolve to the input itself and to a small valid file, so include handling
    // (splicing, cycles, the depth limit) is exercised too.
    let loader = MemLoader::new()
        .with("self", source.text.clone())
        .with("a", "POLICY a { ALLOW { read } }\n");
    match kafel::resolve(&source, &[Arch::X86_64, Arch::I386], &loader) {
        Ok(policy) => assert_eq!(policy.sections.len(), 2),
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            let _ = diagnostics.to_string();
        }
    }
});
