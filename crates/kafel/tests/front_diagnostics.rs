//! Golden tests for diagnostics: policy text in, rendered errors out.
//!
//! Every refused policy must say what is wrong and where, for every error in the file, and
//! must not bury the real error under follow-on noise.

use kafel::arch::Arch;
use kafel::{Diagnostics, MemLoader, SourceFile};

fn diagnose_with(text: &str, arches: &[Arch], loader: &MemLoader) -> Diagnostics {
    let source = SourceFile::new("main.policy", text);
    match kafel::resolve(&source, arches, loader) {
        Ok(policy) => panic!("policy accepted: {policy:?}"),
        Err(diagnostics) => diagnostics,
    }
}

/// The rendered diagnostics for a policy that must be refused.
fn render(text: &str) -> String {
    diagnose_with(text, &[Arch::X86_64], &MemLoader::new()).to_string()
}

/// Just the `line:col: message` of each diagnostic.
fn messages_with(text: &str, loader: &MemLoader) -> Vec<String> {
    diagnose_with(text, &[Arch::X86_64], loader)
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
        .collect()
}

fn messages(text: &str) -> Vec<String> {
    messages_with(text, &MemLoader::new())
}

#[test]
fn an_error_shows_the_line_and_a_caret_under_the_token() {
    assert_eq!(
        render("ALLOW {\n  read write\n}\n"),
        "main.policy:2:8: expected ',' or '}', found identifier `write`\n\
         \x20     read write\n\
         \x20          ^^^^^"
    );
}

#[test]
fn every_error_in_the_file_is_reported_in_reading_order() {
    let text = "POLICY p {\n  ALLOW { read }\n  ALLOW { write }\n}\n\
                ERRNO(70000) { close }\n\
                DEFAULT KILL\nDEFAULT ALLOW\nUSE nothing\n";
    assert_eq!(
        messages(text),
        [
            "3:3: expected ',' or '}', found ALLOW",
            "5:7: ERRNO value 70000 out of range (0-65535)",
            "7:1: redefinition of default action",
            "8:5: undefined policy `nothing` (a policy must be defined before it is used)",
        ]
    );
}

#[test]
fn a_missing_closing_brace_is_one_error_and_the_next_statement_still_counts() {
    assert_eq!(
        messages("ALLOW { read, write\nDEFAULT KILL\nDEFAULT ALLOW"),
        [
            "2:1: expected ',' or '}', found DEFAULT",
            "3:1: redefinition of default action",
        ]
    );
}

#[test]
fn an_unexpected_character_is_reported_once_without_parser_noise() {
    assert_eq!(
        messages("ALLOW { read { fd + 1 == 2 } }"),
        ["1:19: unexpected character `+`"]
    );
}

#[test]
fn a_statement_inside_a_policy_is_reported_and_its_names_still_work() {
    assert_eq!(
        messages("POLICY p {\n#define X 1\n  ALLOW { read { fd == X } }, DEFAULT KILL\n}\nUSE p"),
        [
            "2:1: #define is only allowed at the top level, not inside POLICY",
            "3:31: DEFAULT is only allowed at the top level, not inside POLICY",
        ]
    );
}

#[test]
fn keywords_cannot_be_names() {
    assert_eq!(
        messages("#define LOG 3\nPOLICY ALLOW { }\nALLOW { SYSCALL[1](TRAP) }"),
        [
            "1:9: `LOG` is a keyword and cannot be used as a constant name",
            "2:8: `ALLOW` is a keyword and cannot be used as a policy name",
            "3:20: `TRAP` is a keyword and cannot be used as an argument name",
        ]
    );
}

#[test]
fn an_empty_file_has_no_statement() {
    let expect = "1:1: expected a policy statement (an action block, USE, POLICY, DEFAULT or \
                  #define), found end of file";
    assert_eq!(messages(""), [expect]);
    assert_eq!(
        messages("// only\n/* comments */\n"),
        [expect.replace("1:1", "3:1")]
    );
}

#[test]
fn syntax_errors_name_what_was_expected() {
    assert_eq!(
        messages("ALLOW { read, }"),
        ["1:15: expected a syscall name or SYSCALL[n], found '}'"]
    );
    assert_eq!(
        messages("ERRNO { write }"),
        ["1:7: expected '(', found '{'"]
    );
    assert_eq!(
        messages("ALLOW read"),
        ["1:7: expected '{', found identifier `read`"]
    );
    assert_eq!(
        messages("ALLOW { read { 0 < fd < 3 } }"),
        ["1:23: expected '&&', '||', ',' or '}', found '<'"]
    );
    assert_eq!(
        messages("ALLOW { read { fd } }"),
        ["1:19: expected a comparison (==, !=, <, <=, > or >=), found '}'"]
    );
    assert_eq!(
        messages("#define A 1\n#define B A"),
        ["2:11: expected a number (a constant's value must be a literal), found identifier `A`"]
    );
    assert_eq!(
        messages("ALLOW { SYSCALL[NR] }"),
        ["1:17: expected a number, found identifier `NR`"]
    );
    assert_eq!(
        messages("ALLOW { read } , DEFAULT KILL"),
        ["1:18: expected an action block or USE after ',', found DEFAULT"]
    );
}

#[test]
fn number_errors_quote_the_literal() {
    assert_eq!(
        messages("ALLOW { read { count == 18446744073709551616 } }"),
        ["1:25: number `18446744073709551616` out of range"]
    );
    assert_eq!(
        messages("ALLOW { read { fd == 089 } }"),
        ["1:22: invalid digit `8` in octal number `089`"]
    );
    assert_eq!(
        messages("ALLOW { read { fd == -18446744073709551615 } }"),
        ["1:22: number `-18446744073709551615` out of range (below -2^63)"]
    );
    assert_eq!(
        messages("ERRNO(-1) { read }"),
        ["1:7: ERRNO value -1 out of range (0-65535)"]
    );
}

#[test]
fn comment_errors() {
    assert_eq!(
        messages("ALLOW { read } /* open\nDEFAULT KILL"),
        ["1:16: unterminated comment"]
    );
    let loader = MemLoader::new().with("open.policy", "ALLOW { read } /* never closed\n");
    let d = diagnose_with(
        "#include \"open.policy\"\nALLOW { write }",
        &[Arch::X86_64],
        &loader,
    );
    assert_eq!(
        d.to_string(),
        "open.policy:1:16: unterminated comment\n\
         \x20   ALLOW { read } /* never closed\n\
         \x20                  ^^\n\
         \x20   included from main.policy:1"
    );
}

#[test]
fn definition_errors() {
    assert_eq!(
        messages("#define L 10\n#define L 11\nPOLICY p {}\nPOLICY p {}\nALLOW { read }"),
        [
            "2:1: redefinition of constant `L` with a different value (was: 10, is: 11)",
            "4:1: redefinition of policy `p`",
        ]
    );
    assert_eq!(
        messages("ALLOW { SYSCALL[1](a, b, a), SYSCALL[2](a, b, c, d, e, f, g) { g == 1 } }"),
        [
            "1:26: redefinition of argument `a`",
            "1:59: too many arguments declared for syscall (at most 6)",
        ]
    );
}

#[test]
fn architecture_guard_errors() {
    assert_eq!(
        messages("ALLOW { read ON { x86_64, AMD64 }, write ON madeup }"),
        [
            "1:27: duplicate architecture `AMD64`",
            "1:45: unknown architecture `madeup` (known: arm, aarch64, arm64, x86_64, amd64, \
             x86, i386, mips, mipso32, mips64, riscv64, rv64, m68k)",
        ]
    );
}

#[test]
fn undefined_names_say_what_was_looked_for() {
    assert_eq!(
        messages(
            "ALLOW { nosuch, read { nosuch == 1 }, read() { fd == 0 }, SYSCALL[5] { fd == 1 } }"
        ),
        [
            "1:9: unknown syscall `nosuch` on x86_64",
            "1:24: undefined identifier `nosuch`: not a constant or an argument of `read` on \
             x86_64",
            "1:48: undefined identifier `fd`: not a constant or a declared argument",
            "1:72: undefined identifier `fd`: a syscall given by number has no argument names; \
             declare them, as in SYSCALL[n](a, b)",
        ]
    );
}

#[test]
fn unused_policies_are_still_checked() {
    assert_eq!(
        messages("POLICY unused { ALLOW { notacall } }\nALLOW { read }"),
        ["1:25: unknown syscall `notacall` on x86_64"]
    );
}

#[test]
fn an_error_for_several_architectures_is_reported_once_naming_them() {
    let d = diagnose_with(
        "ALLOW { nosuch }",
        &[Arch::X86_64, Arch::I386],
        &MemLoader::new(),
    );
    let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages, ["unknown syscall `nosuch` on x86_64 and i386"]);
}

#[test]
fn a_rule_guarded_out_of_every_target_is_not_checked() {
    let source = SourceFile::new(
        "p",
        "ALLOW { nosuch ON aarch64, read ON x86_64 { nosuch == 1 } }",
    );
    assert!(kafel::resolve(&source, &[Arch::I386], &MemLoader::new()).is_ok());
}

#[test]
fn include_errors() {
    let loader = MemLoader::new()
        .with("a.policy", "#include \"b.policy\"\n")
        .with("b.policy", "#include \"a.policy\"\n")
        .with("ok.policy", "");
    assert_eq!(
        messages_with("#include\"ok.policy\"\nALLOW { read }", &loader),
        ["1:9: expected a space before the #include file name"]
    );
    assert_eq!(
        messages_with("#include ok.policy\nALLOW { read }", &loader),
        [
            "1:10: unexpected character `o` in #include line (expected a quoted file name, ';' \
             or a newline)"
        ]
    );
    assert_eq!(
        messages_with("ALLOW { read }\n#include \"ok.policy\"", &loader),
        ["2:1: unterminated #include line: end it with a newline or ';'"]
    );
    assert_eq!(
        messages_with("#include \"missing.policy\"\nALLOW { read }", &loader),
        ["1:10: could not include file `missing.policy`: no such file"]
    );
    let d = diagnose_with(
        "#include \"a.policy\"\nALLOW { read }",
        &[Arch::X86_64],
        &loader,
    );
    assert_eq!(
        d.to_string(),
        "b.policy:1:10: include cycle: `a.policy` includes itself\n\
         \x20   #include \"a.policy\"\n\
         \x20            ^^^^^^^^^^\n\
         \x20   included from a.policy:1\n\
         \x20   included from main.policy:1"
    );
}

#[test]
fn includes_nest_at_most_sixteen_deep() {
    let mut loader = MemLoader::new();
    for i in 0..20 {
        loader.insert(
            format!("{i}.policy"),
            format!("#include \"{}.policy\"\n", i + 1),
        );
    }
    loader.insert("20.policy", "ALLOW { read }\n");
    let d = diagnose_with("#include \"0.policy\"\n", &[Arch::X86_64], &loader);
    let found: Vec<(String, usize, String)> = d
        .iter()
        .map(|d| (d.file.clone(), d.included_from.len(), d.message.clone()))
        .collect();
    assert_eq!(
        found,
        [(
            "15.policy".to_string(),
            16,
            "maximum include depth (16) exceeded".to_string()
        )]
    );
}

#[test]
fn line_numbers_stay_right_after_an_include() {
    let loader = MemLoader::new().with("three.policy", "\n\nALLOW { read }\n");
    let d = diagnose_with(
        "#include \"three.policy\"\nALLOW { write }\nALLOW { nosuch }",
        &[Arch::X86_64],
        &loader,
    );
    let found: Vec<String> = d
        .iter()
        .map(|d| format!("{}:{}:{}", d.file, d.line, d.col))
        .collect();
    assert_eq!(found, ["main.policy:3:9"]);
}

#[test]
fn the_caret_follows_tabs_in_the_source_line() {
    assert_eq!(
        render("ALLOW {\n\tread,\tnosuch\n}"),
        "main.policy:2:8: unknown syscall `nosuch` on x86_64\n\
         \x20   \tread,\tnosuch\n\
         \x20   \t     \t^^^^^^"
    );
}

#[test]
fn expressions_deeper_than_two_hundred_levels_are_refused_once() {
    let chain: Vec<String> = (0..250).map(|i| format!("fd == {i}")).collect();
    let text = format!("ALLOW {{ read {{ {} }}, write }}", chain.join(" || "));
    assert_eq!(
        messages(&text),
        [
            "1:16: expression too deep: more than 200 levels (split long chains of alternatives \
             into several rules for the same syscall)"
        ]
    );
    // Parentheses add no depth; their own limit is the 10000 entries of kafel's parser
    // stack.
    let parens = |n: usize| {
        format!(
            "ALLOW {{ read {{ {}fd == 1{} }} }}",
            "(".repeat(n),
            ")".repeat(n)
        )
    };
    let source = SourceFile::new("p", parens(300));
    assert!(kafel::resolve(&source, &[Arch::X86_64], &MemLoader::new()).is_ok());
    assert_eq!(
        messages(&parens(10_001)),
        ["1:10016: expression nested too deeply (more than 10000 levels of parentheses)"]
    );
}

#[test]
fn two_hundred_nested_nots_exceed_the_depth_limit_as_in_kafel() {
    let nots = |n: usize| format!("ALLOW {{ read {{ {}fd == 1 }} }}", "!".repeat(n));
    let source = SourceFile::new("p", nots(199));
    assert!(kafel::resolve(&source, &[Arch::X86_64], &MemLoader::new()).is_ok());
    let refused = messages(&nots(200));
    assert_eq!(refused.len(), 1);
    assert!(refused[0].contains("expression too deep"), "{refused:?}");

    // Parentheses do not count towards the depth, so `!(` pairs count once each.
    let pairs = format!(
        "ALLOW {{ read {{ {}fd == 1{} }} }}",
        "!(".repeat(150),
        ")".repeat(150)
    );
    let source = SourceFile::new("p", pairs);
    assert!(kafel::resolve(&source, &[Arch::X86_64], &MemLoader::new()).is_ok());
}
