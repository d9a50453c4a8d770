//! The front end never panics or hangs, whatever it is given: arbitrary text, token soup
//! built from Kafel's own vocabulary, and pathologically deep or long inputs.

use kafel::arch::Arch;
use kafel::{MemLoader, SourceFile};
use proptest::prelude::*;

/// Resolves for both architectures and checks the outcome is coherent: either a policy with
/// one section per architecture, or at least one located diagnostic.
fn check(text: &str, loader: &MemLoader) {
    let source = SourceFile::new("fuzz.policy", text);
    match kafel::resolve(&source, &[Arch::X86_64, Arch::I386], loader) {
        Ok(policy) => assert_eq!(policy.sections.len(), 2),
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            for d in &diagnostics {
                assert!(d.line >= 1 && d.col >= 1, "unlocated diagnostic: {d:?}");
                assert!(!d.message.is_empty());
            }
            assert!(!diagnostics.to_string().is_empty());
        }
    }
}

/// Pieces of Kafel text, most of them valid tokens, so random sequences reach deep into
/// the parser rather than stopping at the first character.
const PIECES: &[&str] = &[
    "ALLOW",
    "LOG",
    "KILL",
    "KILL_THREAD",
    "KILL_PROCESS",
    "DENY",
    "USER_NOTIF",
    "ERRNO",
    "TRAP",
    "TRACE",
    "POLICY",
    "USE",
    "DEFAULT",
    "SYSCALL",
    "ON",
    "#define",
    "#",
    "define",
    "read",
    "write",
    "fd",
    "count",
    "p",
    "q",
    "X",
    "_x",
    "x86_64",
    "i386",
    "aarch64",
    "0",
    "1",
    "-1",
    "0x10",
    "0b1",
    "017",
    "089",
    "65536",
    "18446744073709551616",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "||",
    "&&",
    "|",
    "&",
    "!",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    " ",
    "\n",
    "\r\n",
    "\t",
    "//c\n",
    "/*",
    "*/",
    "**/",
    "#include \"a\"\n",
    "#include \"self\"\n",
    "#include \"missing\"\n",
    "#include",
    "\"",
    "+",
    "é",
    "\0",
];

fn loader() -> MemLoader {
    MemLoader::new()
        .with("a", "POLICY a { ALLOW { read } }\n")
        .with("self", "#include \"self\"\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text, &loader());
    }

    #[test]
    fn token_soup_never_panics(
        pieces in prop::collection::vec(prop::sample::select(PIECES), 0..80)
    ) {
        let text: String = pieces.join(" ");
        check(&text, &loader());
        let glued: String = pieces.concat();
        check(&glued, &loader());
    }

    #[test]
    fn valid_rule_lists_with_random_filters_never_panic(
        filters in prop::collection::vec(
            prop::collection::vec(prop::sample::select(&PIECES[18..60]), 1..12), 1..8)
    ) {
        let rules: Vec<String> =
            filters.iter().map(|f| format!("read {{ {} }}", f.join(" "))).collect();
        check(&format!("ALLOW {{ {} }}", rules.join(", ")), &loader());
    }
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    let n = 100_000;
    for text in [
        format!("ALLOW {{ read {{ {}fd == 1 }} }}", "!".repeat(n)),
        format!("ALLOW {{ read {{ {}fd == 1 }} }}", "(".repeat(n)),
        format!("ALLOW {{ read {{ {}fd == 1 }} }}", "!(".repeat(n)),
        format!("ALLOW {{ read {{ {}fd == 1 }} }}", "((fd) | ".repeat(n)),
        format!("ALLOW {{ read {{ fd == {}1 }} }}", "(".repeat(n)),
        format!("ALLOW {{ read {{ {} }} }}", vec!["fd == 1"; n].join(" || ")),
        format!("ALLOW {{ read {{ fd == {} }} }}", vec!["1"; n].join(" | ")),
        format!("ALLOW {{ read {{ {} }} }}", vec!["fd == 1"; n].join(", ")),
        "{".repeat(n),
    ] {
        check(&text, &MemLoader::new());
    }
}

#[test]
fn long_use_chains_resolve_without_recursion() {
    let mut text = String::from("POLICY p0 { ALLOW { read } }\n");
    for i in 1..20_000 {
        text.push_str(&format!("POLICY p{i} {{ USE p{} }}\n", i - 1));
    }
    text.push_str("USE p19999\n");
    let source = SourceFile::new("chain.policy", text);
    let policy = kafel::resolve(&source, &[Arch::X86_64], &MemLoader::new()).expect("compiles");
    assert_eq!(policy.sections[0].rules.len(), 1);
}

#[test]
fn many_errors_are_all_reported_quickly() {
    let text = "ALLOW { read write }\n".repeat(20_000);
    let source = SourceFile::new("many.policy", text);
    let diagnostics = kafel::resolve(&source, &[Arch::X86_64], &MemLoader::new()).unwrap_err();
    assert_eq!(diagnostics.len(), 20_000);
}

#[test]
fn errors_on_one_huge_line_are_reported_quickly() {
    let text = "ALLOW { read write } ".repeat(20_000);
    let source = SourceFile::new("long.policy", text);
    let diagnostics = kafel::resolve(&source, &[Arch::X86_64], &MemLoader::new()).unwrap_err();
    assert_eq!(diagnostics.len(), 20_000);
}
