//! The front end with the syscall tables: names, built-in argument names and sizes, the
//! width they give comparisons, and validation and numbering per architecture.

use kafel::arch::Arch;
use kafel::ir::{Action, ArchPolicy, CmpOp, Cond, Rule, Value};
use kafel::{MemLoader, SourceFile};

fn sections(text: &str, arches: &[Arch]) -> Vec<ArchPolicy> {
    let source = SourceFile::new("test.policy", text);
    match kafel::resolve(&source, arches, &MemLoader::new()) {
        Ok(policy) => policy.sections,
        Err(diagnostics) => panic!("policy refused:\n{diagnostics}"),
    }
}

fn x86_64(text: &str) -> ArchPolicy {
    sections(text, &[Arch::X86_64]).remove(0)
}

fn messages(text: &str, arches: &[Arch]) -> Vec<String> {
    let source = SourceFile::new("test.policy", text);
    match kafel::resolve(&source, arches, &MemLoader::new()) {
        Ok(policy) => panic!("policy accepted: {policy:?}"),
        Err(d) => d
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .collect(),
    }
}

fn arg(index: u8, size: u8) -> Value {
    Value::Arg { index, size }
}

/// The single comparison a one-rule policy's filter consists of.
fn only_comparison(p: &ArchPolicy) -> (CmpOp, Value, Value) {
    match &p.rules[..] {
        [
            Rule {
                filter: Some(Cond::Cmp(op, l, r)),
                ..
            },
        ] => (*op, l.clone(), r.clone()),
        other => panic!("expected one rule with one comparison, got {other:?}"),
    }
}

#[test]
fn syscall_names_are_numbered_per_architecture() {
    let both = sections(
        "ALLOW { read, write, exit_group }",
        &[Arch::X86_64, Arch::I386],
    );
    let nrs = |s: &ArchPolicy| s.rules.iter().map(|r| r.nr).collect::<Vec<_>>();
    assert_eq!(nrs(&both[0]), [0, 1, 231]);
    assert_eq!(nrs(&both[1]), [3, 4, 252]);
}

#[test]
fn built_in_argument_names_carry_the_kernel_parameter_sizes() {
    let (_, lhs, _) = only_comparison(&x86_64("ALLOW { read { fd == 1 } }"));
    assert_eq!(lhs, arg(0, 4));
    assert!(!lhs.is_wide());

    let (_, lhs, _) = only_comparison(&x86_64("ALLOW { read { count == 1 } }"));
    assert_eq!(lhs, arg(2, 8));
    assert!(lhs.is_wide());

    let (_, lhs, _) = only_comparison(&x86_64("ALLOW { openat { mode == 0x1ff } }"));
    assert_eq!(lhs, arg(3, 2));

    // On i386 every parameter is a 32-bit register.
    let i386 = sections("ALLOW { read { count == 1 } }", &[Arch::I386]).remove(0);
    let (_, lhs, _) = only_comparison(&i386);
    assert_eq!(lhs, arg(2, 4));
}

fn i386(text: &str) -> ArchPolicy {
    sections(text, &[Arch::I386]).remove(0)
}

#[test]
fn an_i386_eight_byte_parameter_is_read_from_its_register_pair() {
    // pread64(fd, buf, count, pos): pos is registers 3 (low) and 4 (high).
    let (_, lhs, _) = only_comparison(&i386("ALLOW { pread64 { pos < 0x100000000 } }"));
    assert_eq!(lhs, Value::ArgPair { lo: 3, hi: 4 });
    assert!(lhs.is_wide());

    // fallocate(fd, mode, offset, len): offset takes registers 2 and 3, so len is 4 and 5.
    let (_, lhs, _) = only_comparison(&i386("ALLOW { fallocate { len <= 0x100000 } }"));
    assert_eq!(lhs, Value::ArgPair { lo: 4, hi: 5 });
    let (_, lhs, _) = only_comparison(&i386("ALLOW { fallocate { offset == 0 } }"));
    assert_eq!(lhs, Value::ArgPair { lo: 2, hi: 3 });
}

#[test]
fn an_i386_parameter_after_a_register_pair_moves_one_register_along() {
    // fadvise64_64(fd, offset, len, advice): advice is register 5, not position 3.
    let (_, lhs, _) = only_comparison(&i386("ALLOW { fadvise64_64 { advice == 4 } }"));
    assert_eq!(lhs, arg(5, 4));
    // readahead(fd, offset, count): count is register 3.
    let (_, lhs, _) = only_comparison(&i386("ALLOW { readahead { count == 4 } }"));
    assert_eq!(lhs, arg(3, 4));
    // A parameter before the pair keeps its position.
    let (_, lhs, _) = only_comparison(&i386("ALLOW { fallocate { mode == 1 } }"));
    assert_eq!(lhs, arg(1, 4));
}

#[test]
fn x86_64_eight_byte_parameters_stay_one_register_at_their_position() {
    let (_, lhs, _) = only_comparison(&x86_64("ALLOW { fallocate { len <= 0x100000 } }"));
    assert_eq!(lhs, arg(3, 8));
    let (_, lhs, _) = only_comparison(&x86_64("ALLOW { pread64 { pos < 0x100000000 } }"));
    assert_eq!(lhs, arg(3, 8));
}

#[test]
fn the_width_rule_follows_arguments_and_literals() {
    let cond = |text: &str| {
        let (op, l, r) = only_comparison(&x86_64(text));
        Cond::Cmp(op, l, r)
    };
    let narrow = cond("ALLOW { read { fd == 1 } }");
    assert!(
        narrow.eval(&[0x1_0000_0001, 0, 0, 0, 0, 0]),
        "high word of fd is ignored"
    );

    let declared = cond("ALLOW { read(a) { a == 1 } }");
    assert!(
        !declared.eval(&[0x1_0000_0001, 0, 0, 0, 0, 0]),
        "declared args are 64-bit"
    );

    let minus_one = cond("ALLOW { read { fd == -1 } }");
    assert!(minus_one.eval(&[u64::MAX, 0, 0, 0, 0, 0]));
    assert!(
        !minus_one.eval(&[0xffff_ffff, 0, 0, 0, 0, 0]),
        "-1 does not fit 32 bits"
    );

    let mixed = cond("ALLOW { read { fd == count } }");
    assert!(
        !mixed.eval(&[0x1_0000_0005, 0, 5, 0, 0, 0]),
        "count makes it 64-bit"
    );

    let mode = cond("ALLOW { openat { mode == 0x1ff } }");
    assert!(mode.eval(&[0, 0, 0, 0x1ff, 0, 0]));
    assert!(
        !mode.eval(&[0, 0, 0, 0xffff_01ff, 0, 0]),
        "2-byte args are not masked to 16"
    );
}

#[test]
fn declaring_arguments_replaces_the_built_in_names() {
    let p = x86_64("ALLOW { write(a, b, c) { c == 0 } }");
    let (_, lhs, _) = only_comparison(&p);
    assert_eq!(lhs, arg(2, 8));
    assert_eq!(
        messages("ALLOW { write(a) { count == 0 } }", &[Arch::X86_64]),
        ["1:20: undefined identifier `count`: not a constant or a declared argument"]
    );
}

#[test]
fn a_constant_shadows_a_syscall_name_and_an_argument_name() {
    let p = x86_64("#define read 1\n#define fd 7\nALLOW { read, close { fd == 7 } }");
    let rules: Vec<(u32, bool)> = p.rules.iter().map(|r| (r.nr, r.filter.is_some())).collect();
    assert_eq!(rules, [(1, false), (3, false)]);
}

#[test]
fn identifiers_may_start_with_an_underscore() {
    let p = x86_64("#define _FD 3\nALLOW { close { fd == _FD } }");
    let (_, lhs, rhs) = only_comparison(&p);
    assert_eq!((lhs, rhs), (arg(0, 4), Value::Num(3)));
}

#[test]
fn each_architecture_validates_its_own_names() {
    assert_eq!(
        messages(
            "ALLOW { newfstatat, fstatat64 }",
            &[Arch::X86_64, Arch::I386]
        ),
        [
            "1:9: unknown syscall `newfstatat` on i386",
            "1:21: unknown syscall `fstatat64` on x86_64"
        ]
    );
    let guarded = sections(
        "ALLOW { newfstatat ON x86_64, fstatat64 ON i386, read }",
        &[Arch::X86_64, Arch::I386],
    );
    let nrs = |s: &ArchPolicy| s.rules.iter().map(|r| r.nr).collect::<Vec<_>>();
    assert_eq!(nrs(&guarded[0]), [262, 0]);
    assert_eq!(nrs(&guarded[1]), [300, 3]);
}

#[test]
fn kafel_kernel_entry_names_are_used() {
    let p = x86_64("ALLOW { newfstat, newuname, umount, pread64, prlimit64 }");
    let nrs: Vec<u32> = p.rules.iter().map(|r| r.nr).collect();
    assert_eq!(nrs, [5, 63, 166, 17, 302]);
    assert_eq!(
        messages("ALLOW { fstat, uname }", &[Arch::X86_64]),
        [
            "1:9: unknown syscall `fstat` on x86_64",
            "1:16: unknown syscall `uname` on x86_64"
        ]
    );
}

#[test]
fn first_match_order_is_kept_for_named_syscalls() {
    let p = x86_64(
        "ALLOW { read { fd == 0 && count == 0 } }, ERRNO(1) { read { count == 0 } } DEFAULT KILL",
    );
    let actions: Vec<(u32, Action)> = p.rules.iter().map(|r| (r.nr, r.action)).collect();
    assert_eq!(actions, [(0, Action::Allow), (0, Action::Errno(1))]);
}
