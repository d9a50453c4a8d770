//! The IR the front end produces for small policies: rule order, folding, argument widths,
//! constants, `USE`, includes, `ON` guards and several architectures.
//!
//! These policies name syscalls by number (`SYSCALL[n]` with declared arguments), so they
//! do not depend on the syscall tables; `front_tables.rs` covers names.

use kafel::arch::Arch;
use kafel::ir::{Action, ArchPolicy, CmpOp, Cond, Rule, Value};
use kafel::{MemLoader, SourceFile};

fn resolve_with(text: &str, arches: &[Arch], loader: &MemLoader) -> Vec<ArchPolicy> {
    let source = SourceFile::new("test.policy", text);
    match kafel::resolve(&source, arches, loader) {
        Ok(policy) => policy.sections,
        Err(diagnostics) => panic!("policy refused:\n{diagnostics}"),
    }
}

/// The x86-64 section of a policy that must compile.
fn x86_64(text: &str) -> ArchPolicy {
    let mut sections = resolve_with(text, &[Arch::X86_64], &MemLoader::new());
    assert_eq!(sections.len(), 1);
    sections.remove(0)
}

fn refused(text: &str, loader: &MemLoader) -> String {
    let source = SourceFile::new("test.policy", text);
    match kafel::resolve(&source, &[Arch::X86_64], loader) {
        Ok(policy) => panic!("policy accepted: {policy:?}"),
        Err(diagnostics) => diagnostics
            .iter()
            .map(|d| format!("{}\n", d.message))
            .collect(),
    }
}

fn rule(nr: u32, action: Action, filter: Option<Cond>) -> Rule {
    Rule { nr, action, filter }
}

fn arg(index: u8, size: u8) -> Value {
    Value::Arg { index, size }
}

fn cmp(op: CmpOp, lhs: Value, rhs: Value) -> Cond {
    Cond::Cmp(op, lhs, rhs)
}

#[test]
fn rules_keep_textual_order_across_blocks_and_syscalls() {
    let p = x86_64(
        "ALLOW { SYSCALL[1](a) { a == 1 } }, ERRNO(1) { SYSCALL[1], SYSCALL[0] } \
         KILL_PROCESS { SYSCALL[1] }",
    );
    let cond = cmp(CmpOp::Eq, arg(0, 8), Value::Num(1));
    assert_eq!(
        p.rules,
        vec![
            rule(1, Action::Allow, Some(cond)),
            rule(1, Action::Errno(1), None),
            rule(0, Action::Errno(1), None),
            rule(1, Action::KillProcess, None),
        ]
    );
}

#[test]
fn no_default_means_kill_thread() {
    assert_eq!(x86_64("ALLOW { SYSCALL[0] }").default, Action::KillThread);
    assert_eq!(
        x86_64("ALLOW { SYSCALL[0] } DEFAULT ERRNO(38)").default,
        Action::Errno(38)
    );
    assert_eq!(
        x86_64("DEFAULT KILL_PROCESS ALLOW { SYSCALL[0] }").default,
        Action::KillProcess
    );
}

#[test]
fn every_action_spelling_maps_to_its_action() {
    let p = x86_64(
        "ALLOW { SYSCALL[0] } LOG { SYSCALL[1] } KILL { SYSCALL[2] } KILL_THREAD { SYSCALL[3] } \
         DENY { SYSCALL[4] } KILL_PROCESS { SYSCALL[5] } USER_NOTIF { SYSCALL[6] } \
         ERRNO(65535) { SYSCALL[7] } TRAP(0) { SYSCALL[8] } TRACE(0x10) { SYSCALL[9] }",
    );
    let actions: Vec<Action> = p.rules.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            Action::Allow,
            Action::Log,
            Action::KillThread,
            Action::KillThread,
            Action::KillThread,
            Action::KillProcess,
            Action::UserNotif,
            Action::Errno(65535),
            Action::Trap(0),
            Action::Trace(16),
        ]
    );
}

#[test]
fn a_filter_folding_to_false_removes_the_rule_and_true_makes_it_unconditional() {
    let p = x86_64(
        "ALLOW { SYSCALL[0] { 1 == 2 }, SYSCALL[1] { 1 == 1 }, SYSCALL[2](a) { a != a }, \
         SYSCALL[3](a) { a <= a }, SYSCALL[4](a) { (a & 0) == 0 }, SYSCALL[5](a) { !(a > a) }, \
         SYSCALL[6] {} }",
    );
    assert_eq!(
        p.rules,
        vec![
            rule(1, Action::Allow, None),
            rule(3, Action::Allow, None),
            rule(4, Action::Allow, None),
            rule(5, Action::Allow, None),
            rule(6, Action::Allow, None),
        ]
    );
}

#[test]
fn logic_with_a_constant_side_keeps_only_the_live_side() {
    let p = x86_64("ALLOW { SYSCALL[0](a) { 1 == 1 && a == 3 || 1 == 2 } }");
    let cond = cmp(CmpOp::Eq, arg(0, 8), Value::Num(3));
    assert_eq!(p.rules, vec![rule(0, Action::Allow, Some(cond))]);
}

#[test]
fn bit_operators_bind_tighter_than_comparisons() {
    let p = x86_64("ALLOW { SYSCALL[0](a, b) { a | 8 | b == 8, a == 1|2 } }");
    let lhs = Value::BitOr(
        Box::new(Value::BitOr(Box::new(arg(0, 8)), Box::new(Value::Num(8)))),
        Box::new(arg(1, 8)),
    );
    let first = cmp(CmpOp::Eq, lhs, Value::Num(8));
    let second = cmp(CmpOp::Eq, arg(0, 8), Value::Num(3));
    let expect = Cond::Or(Box::new(first), Box::new(second));
    assert_eq!(p.rules, vec![rule(0, Action::Allow, Some(expect))]);
}

#[test]
fn and_binds_tighter_than_or_and_comma_is_loosest() {
    let p = x86_64("ALLOW { SYSCALL[0](a) { a == 1, a == 2 || a == 3 && a == 4 } }");
    let eq = |n| cmp(CmpOp::Eq, arg(0, 8), Value::Num(n));
    let and = Cond::And(Box::new(eq(3)), Box::new(eq(4)));
    let or = Cond::Or(Box::new(eq(2)), Box::new(and));
    let expect = Cond::Or(Box::new(eq(1)), Box::new(or));
    assert_eq!(p.rules, vec![rule(0, Action::Allow, Some(expect))]);
}

#[test]
fn not_applies_to_a_whole_comparison_and_parentheses_group_either_kind() {
    let p = x86_64("ALLOW { SYSCALL[0](a) { !a == 1 && ((a) | 1) == 3 && !(a < 2 || (a > 9)) } }");
    let not_eq = Cond::Not(Box::new(cmp(CmpOp::Eq, arg(0, 8), Value::Num(1))));
    let masked = Value::BitOr(Box::new(arg(0, 8)), Box::new(Value::Num(1)));
    let grouped = cmp(CmpOp::Eq, masked, Value::Num(3));
    let range = Cond::Or(
        Box::new(cmp(CmpOp::Lt, arg(0, 8), Value::Num(2))),
        Box::new(cmp(CmpOp::Gt, arg(0, 8), Value::Num(9))),
    );
    let expect = Cond::And(
        Box::new(Cond::And(Box::new(not_eq), Box::new(grouped))),
        Box::new(Cond::Not(Box::new(range))),
    );
    assert_eq!(p.rules, vec![rule(0, Action::Allow, Some(expect))]);
}

#[test]
fn declared_arguments_are_eight_bytes_at_their_position() {
    let p = x86_64("ALLOW { SYSCALL[7](a, b, c, d, e, f) { f == 1 && a != c } }");
    let expect = Cond::And(
        Box::new(cmp(CmpOp::Eq, arg(5, 8), Value::Num(1))),
        Box::new(cmp(CmpOp::Ne, arg(0, 8), arg(2, 8))),
    );
    assert_eq!(p.rules, vec![rule(7, Action::Allow, Some(expect))]);
}

#[test]
fn a_constant_shadows_an_argument_of_the_same_name() {
    let p = x86_64("#define a 7\nALLOW { SYSCALL[0](a) { a == 7 } }");
    assert_eq!(p.rules, vec![rule(0, Action::Allow, None)]);
}

#[test]
fn a_constant_defined_after_a_rule_does_not_apply_to_it() {
    let p = x86_64("ALLOW { SYSCALL[0](a) { a == 7 } }\n#define a 7");
    let cond = cmp(CmpOp::Eq, arg(0, 8), Value::Num(7));
    assert_eq!(p.rules, vec![rule(0, Action::Allow, Some(cond))]);
}

#[test]
fn a_constant_names_a_syscall_number_and_redefinition_with_the_same_value_is_fine() {
    let p = x86_64("#define NR 39\n#define NR 39\nALLOW { NR }");
    assert_eq!(p.rules, vec![rule(39, Action::Allow, None)]);
}

#[test]
fn every_number_form_is_read() {
    let p = x86_64(
        "ALLOW { SYSCALL[0](a) { a == 0x1F, a == 017, a == 0b101, a == 0, a == -1, \
         a == 18446744073709551615, a == -9223372036854775808 } }",
    );
    let mut numbers = Vec::new();
    let mut cond = p.rules[0].filter.as_ref().unwrap();
    while let Cond::Or(l, r) = cond {
        if let Cond::Cmp(_, _, Value::Num(n)) = r.as_ref() {
            numbers.push(*n);
        }
        cond = l;
    }
    if let Cond::Cmp(_, _, Value::Num(n)) = cond {
        numbers.push(*n);
    }
    numbers.reverse();
    assert_eq!(numbers, [31, 15, 5, 0, u64::MAX, u64::MAX, 1 << 63]);
}

#[test]
fn syscall_minus_one_is_the_top_32_bit_number() {
    assert_eq!(
        x86_64("ALLOW { SYSCALL[-1] }").rules,
        vec![rule(u32::MAX, Action::Allow, None)]
    );
}

#[test]
fn use_pastes_a_policy_in_place_and_a_second_use_adds_nothing() {
    let p = x86_64(
        "POLICY a { ALLOW { SYSCALL[1] } }\n\
         POLICY b { USE a, ERRNO(2) { SYSCALL[2] } }\n\
         KILL { SYSCALL[0] }, USE b, USE a, LOG { SYSCALL[3] }, USE b",
    );
    assert_eq!(
        p.rules,
        vec![
            rule(0, Action::KillThread, None),
            rule(1, Action::Allow, None),
            rule(2, Action::Errno(2), None),
            rule(3, Action::Log, None),
        ]
    );
}

#[test]
fn unused_policies_contribute_nothing() {
    let p = x86_64("POLICY unused { ALLOW { SYSCALL[1] } }\nDEFAULT ALLOW");
    assert!(p.rules.is_empty());
    assert_eq!(p.default, Action::Allow);
}

#[test]
fn included_tokens_are_spliced_where_the_directive_stands() {
    let loader = MemLoader::new()
        .with("more.policy", "SYSCALL[2], SYSCALL[3]\n")
        .with(
            "defs.policy",
            "#define NR 9\n#include \"more-defs.policy\"\n",
        )
        .with("more-defs.policy", "POLICY p { LOG { SYSCALL[4] } }");
    let text =
        "#include \"defs.policy\"\nALLOW { SYSCALL[1],\n#include \"more.policy\"\n, NR }\nUSE p";
    let sections = resolve_with(text, &[Arch::X86_64], &loader);
    let nrs: Vec<u32> = sections[0].rules.iter().map(|r| r.nr).collect();
    assert_eq!(nrs, [1, 2, 3, 9, 4]);
}

#[test]
fn on_guards_keep_a_rule_only_for_the_listed_architectures() {
    let text = "ALLOW { SYSCALL[1] ON x86_64, SYSCALL[2] ON { i386 }, SYSCALL[3] ON AARCH64, \
                SYSCALL[4] ON { arm, AMD64 }, SYSCALL[5] ON {mips, x86}, SYSCALL[6] }";
    let sections = resolve_with(text, &[Arch::X86_64, Arch::I386], &MemLoader::new());
    let nrs = |s: &ArchPolicy| s.rules.iter().map(|r| r.nr).collect::<Vec<_>>();
    assert_eq!(sections[0].arch, Arch::X86_64);
    assert_eq!(nrs(&sections[0]), [1, 4, 6]);
    assert_eq!(sections[1].arch, Arch::I386);
    assert_eq!(nrs(&sections[1]), [2, 5, 6]);
}

#[test]
fn sections_follow_the_requested_architectures_without_repeats() {
    let sections = resolve_with(
        "ALLOW { SYSCALL[0] }",
        &[Arch::I386, Arch::X86_64, Arch::I386],
        &MemLoader::new(),
    );
    let arches: Vec<Arch> = sections.iter().map(|s| s.arch).collect();
    assert_eq!(arches, [Arch::I386, Arch::X86_64]);
}

#[test]
fn names_must_be_defined_before_use() {
    let messages = refused(
        "USE later\nPOLICY later { ALLOW { SYSCALL[0] } }\nPOLICY me { USE me }",
        &MemLoader::new(),
    );
    assert_eq!(
        messages,
        "undefined policy `later` (a policy must be defined before it is used)\n\
         undefined policy `me` (a policy must be defined before it is used)\n"
    );
}

#[test]
fn syscall_numbers_beyond_32_bits_are_refused() {
    let messages = refused(
        "#define BIG 0x100000027\nALLOW { SYSCALL[0x100000000], BIG, SYSCALL[-2147483649] }",
        &MemLoader::new(),
    );
    assert_eq!(
        messages,
        "syscall number SYSCALL[0x100000000] does not fit in 32 bits\n\
         syscall number constant `BIG` (0x100000027) does not fit in 32 bits\n\
         syscall number SYSCALL[0xffffffff7fffffff] does not fit in 32 bits\n"
    );
}
