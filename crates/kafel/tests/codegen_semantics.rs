//! Property tests: a generated program decides every input the way the rules say.
//!
//! Random rule lists with random conditions (64-bit and 32-bit comparisons, masks, `&`
//! and `|` of arguments and constants) are compiled, and the program run in the
//! interpreter must agree with first-match evaluation of the rules using
//! [`Cond::eval`], the reference meaning of a condition.

use kafel::arch::Arch;
use kafel::bpf::SECCOMP_RET_KILL_PROCESS;
use kafel::interp::{self, SeccompData};
use kafel::ir::{Action, ArchPolicy, CmpOp, Cond, Policy, Rule, Value};
use kafel::{bpf, codegen};
use proptest::prelude::*;

/// Numbers that sit on the edges comparisons care about.
const EDGES: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0xffff_ffff_0000_0000,
    0x8000_0000_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

const NRS: &[u32] = &[
    0,
    1,
    2,
    3,
    5,
    60,
    231,
    0x4000_0001,
    0x4000_0003,
    0xffff_ffff,
];

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(EDGES),
        any::<u64>(),
        any::<u32>().prop_map(u64::from),
        0u64..8,
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        number().prop_map(Value::Num),
        (0u8..6, prop::sample::select(&[2u8, 4, 8][..]))
            .prop_map(|(index, size)| Value::Arg { index, size }),
        (0u8..5).prop_map(|lo| Value::ArgPair { lo, hi: lo + 1 }),
    ];
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Value::BitAnd(a.into(), b.into())),
            (inner.clone(), inner).prop_map(|(a, b)| Value::BitOr(a.into(), b.into())),
        ]
    })
}

fn cond() -> impl Strategy<Value = Cond> {
    let op = prop::sample::select(
        &[
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ][..],
    );
    let cmp = (op, value(), value()).prop_map(|(op, l, r)| Cond::Cmp(op, l, r));
    cmp.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| Cond::Not(c.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::And(a.into(), b.into())),
            (inner.clone(), inner).prop_map(|(a, b)| Cond::Or(a.into(), b.into())),
        ]
    })
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        Just(Action::Log),
        Just(Action::KillThread),
        Just(Action::KillProcess),
        (0u16..3).prop_map(Action::Errno),
        (0u16..3).prop_map(Action::Trap),
        Just(Action::Trace(1)),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::sample::select(NRS),
        action(),
        prop::option::weighted(0.7, cond()),
    )
        .prop_map(|(nr, action, filter)| Rule { nr, action, filter })
}

fn section(arch: Arch) -> impl Strategy<Value = ArchPolicy> {
    (action(), prop::collection::vec(rule(), 0..8)).prop_map(move |(default, rules)| ArchPolicy {
        arch,
        default,
        rules,
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        section(Arch::X86_64).prop_map(|s| Policy { sections: vec![s] }),
        (section(Arch::X86_64), section(Arch::I386)).prop_map(|(a, b)| Policy {
            sections: vec![a, b]
        }),
    ]
}

fn input() -> impl Strategy<Value = SeccompData> {
    let arch = prop::sample::select(&[0xc000_003e_u32, 0x4000_0003, 0xc000_00b7, 0][..]);
    let nr = prop_oneof![
        prop::sample::select(NRS),
        any::<u32>(),
        0x4000_0000u32..0x4000_0200
    ];
    (arch, nr, prop::array::uniform6(number())).prop_map(|(arch, nr, args)| SeccompData {
        nr,
        arch,
        instruction_pointer: 0,
        args,
    })
}

/// What the rules say, independently of code generation.
fn expected(policy: &Policy, program: &bpf::Program, data: &SeccompData) -> u32 {
    let Some(section) = policy
        .sections
        .iter()
        .find(|s| s.arch.audit_arch() == data.arch)
    else {
        // A program that is one return gives that kill to every architecture.
        if let [only] = program.instructions() {
            return only.k;
        }
        return SECCOMP_RET_KILL_PROCESS;
    };
    let named = section.rules.iter().any(|r| r.nr == data.nr);
    let x32 = (0x4000_0000..0xffff_ffff).contains(&data.nr);
    if section.arch == Arch::X86_64 && x32 && !named {
        return match section.default {
            Action::KillThread | Action::KillProcess | Action::Errno(_) | Action::Trap(_) => {
                section.default.ret_value()
            }
            _ => SECCOMP_RET_KILL_PROCESS,
        };
    }
    section
        .rules
        .iter()
        .filter(|r| r.nr == data.nr)
        .find(|r| r.filter.as_ref().is_none_or(|c| c.eval(&data.args)))
        .map_or(section.default, |r| r.action)
        .ret_value()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn program_decides_like_first_match_over_the_rules(
        policy in policy(),
        inputs in prop::collection::vec(input(), 40),
    ) {
        let program = codegen::generate(&policy).expect("small policies compile");
        for data in &inputs {
            let out = interp::run(&program, data).expect("the kernel would accept it");
            let want = expected(&policy, &program, data);
            prop_assert_eq!(
                out.ret, want,
                "input {:?}\n{}", data, kafel::disasm::listing(&program)
            );
        }
    }

    #[test]
    fn single_comparison_matches_cond_eval_on_edge_values(
        op in prop::sample::select(&[CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge][..]),
        l in value(),
        r in value(),
        args in prop::array::uniform6(number()),
    ) {
        let cond = Cond::Cmp(op, l, r);
        let rule = Rule { nr: 1, action: Action::Allow, filter: Some(cond.clone()) };
        let section = ArchPolicy { arch: Arch::I386, default: Action::Errno(9), rules: vec![rule] };
        let program = codegen::generate(&Policy { sections: vec![section] }).unwrap();
        let data = SeccompData { nr: 1, arch: Arch::I386.audit_arch(), instruction_pointer: 0, args };
        let out = interp::run(&program, &data).unwrap();
        let want = if cond.eval(&args) { Action::Allow } else { Action::Errno(9) };
        prop_assert_eq!(Action::from_ret_value(out.ret), want, "{}", kafel::disasm::listing(&program));
    }
}

#[test]
fn long_or_chain_of_arguments_and_constants_needs_no_scratch_memory() {
    // `a | b | 1 | c | 2 | ...`: Kafel runs out of scratch memory on such chains.
    let mut value = Value::Arg { index: 0, size: 8 };
    for i in 0..40u64 {
        let next = if i % 2 == 0 {
            Value::Arg {
                index: (i % 6) as u8,
                size: 8,
            }
        } else {
            Value::Num(1 << (i % 5))
        };
        value = Value::BitOr(value.into(), next.into());
    }
    let cond = Cond::Cmp(CmpOp::Eq, value, Value::Num(0x1f));
    let rule = Rule {
        nr: 1,
        action: Action::Allow,
        filter: Some(cond.clone()),
    };
    let section = ArchPolicy {
        arch: Arch::X86_64,
        default: Action::KillThread,
        rules: vec![rule],
    };
    let program = codegen::generate(&Policy {
        sections: vec![section],
    })
    .unwrap();
    for args in [[0; 6], [0x10, 0, 0, 0, 0, 0], [0x20, 0, 0, 0, 0, 0]] {
        let data = SeccompData {
            nr: 1,
            arch: 0xc000_003e,
            instruction_pointer: 0,
            args,
        };
        let out = interp::run(&program, &data).unwrap();
        let want = if cond.eval(&args) {
            Action::Allow
        } else {
            Action::KillThread
        };
        assert_eq!(Action::from_ret_value(out.ret), want);
    }
}

#[test]
fn program_over_4096_instructions_is_refused_with_its_length() {
    // 1500 syscalls, each allowed for its own fd: too many distinct checks for 4096.
    let rules = (0..1500u32)
        .map(|i| {
            let fd = Value::Arg { index: 0, size: 8 };
            let cond = Cond::Cmp(CmpOp::Eq, fd, Value::Num(u64::from(i)));
            Rule {
                nr: 2 * i,
                action: Action::Allow,
                filter: Some(cond),
            }
        })
        .collect();
    let section = ArchPolicy {
        arch: Arch::X86_64,
        default: Action::KillThread,
        rules,
    };
    let Err(err) = codegen::generate(&Policy {
        sections: vec![section],
    }) else {
        panic!("a program over the limit was generated");
    };
    let codegen::Error::TooLong { insns } = err else {
        panic!("unexpected error {err}")
    };
    assert!(insns > 4096);
    assert!(err.to_string().contains(&insns.to_string()), "{err}");
}

#[test]
fn jumps_longer_than_255_go_through_trampolines() {
    // Distinct checks on many syscalls spread the program well past 255 instructions.
    let rules: Vec<Rule> = (0..300u32)
        .map(|i| Rule {
            nr: 3 * i,
            action: Action::Errno((i % 7) as u16),
            filter: Some(Cond::Cmp(
                CmpOp::Eq,
                Value::Arg { index: 1, size: 4 },
                Value::Num(u64::from(i)),
            )),
        })
        .collect();
    let section = ArchPolicy {
        arch: Arch::X86_64,
        default: Action::Allow,
        rules: rules.clone(),
    };
    let policy = Policy {
        sections: vec![section],
    };
    let program = codegen::generate(&policy).unwrap();
    assert!(program.len() > 600, "{}", program.len());
    for rule in &rules {
        for arg in [0, 1, 2, 150, 299] {
            let data = SeccompData {
                nr: rule.nr,
                arch: 0xc000_003e,
                instruction_pointer: 0,
                args: [0, arg, 0, 0, 0, 0],
            };
            let got = Action::from_ret_value(interp::run(&program, &data).unwrap().ret);
            let hit = rule.filter.as_ref().unwrap().eval(&data.args);
            assert_eq!(
                got,
                if hit { rule.action } else { Action::Allow },
                "nr {} arg {arg}",
                rule.nr
            );
        }
    }
}

/// The action an i386 policy's compiled filter returns for `nr` with `args`.
fn i386_decision(policy: &str, nr: u32, args: [u64; 6]) -> Action {
    let source = kafel::SourceFile::new("test.policy", policy);
    let program = kafel::compile(&source, &[Arch::I386], &kafel::MemLoader::new())
        .unwrap_or_else(|d| panic!("policy refused:\n{d}"));
    let data = SeccompData {
        nr,
        arch: Arch::I386.audit_arch(),
        instruction_pointer: 0,
        args,
    };
    Action::from_ret_value(interp::run(&program, &data).unwrap().ret)
}

#[test]
fn i386_fallocate_len_is_compared_on_its_register_pair() {
    let policy = "ALLOW { fallocate { len <= 0x100000 } } DEFAULT ERRNO(1)";
    const FALLOCATE: u32 = 324;
    // len = 0x1000 (registers 4 and 5); a huge offset (registers 2 and 3) is irrelevant.
    let small = [3, 0, 0xffff_ffff, 0xffff_ffff, 0x1000, 0];
    assert_eq!(i386_decision(policy, FALLOCATE, small), Action::Allow);
    // len = 1 << 32: only its high word (register 5) is set.
    let high = [3, 0, 0, 0, 0, 1];
    assert_eq!(i386_decision(policy, FALLOCATE, high), Action::Errno(1));
    // len = 0x100001, just over the limit.
    let over = [3, 0, 0, 0, 0x10_0001, 0];
    assert_eq!(i386_decision(policy, FALLOCATE, over), Action::Errno(1));
}

#[test]
fn i386_pread64_pos_high_word_is_the_next_register() {
    let policy = "ALLOW { pread64 { pos < 0x100000000 } } DEFAULT ERRNO(1)";
    const PREAD64: u32 = 180;
    assert_eq!(
        i386_decision(policy, PREAD64, [3, 0x1000, 16, 0xffff_ffff, 0, 0]),
        Action::Allow
    );
    assert_eq!(
        i386_decision(policy, PREAD64, [3, 0x1000, 16, 0, 1, 0]),
        Action::Errno(1)
    );
}

#[test]
fn i386_parameter_after_a_pair_is_read_from_the_shifted_register() {
    // fadvise64_64(fd, offset, len, advice): advice is register 5.
    let policy = "ALLOW { fadvise64_64 { advice == 4 } } DEFAULT ERRNO(1)";
    const FADVISE64_64: u32 = 272;
    assert_eq!(
        i386_decision(policy, FADVISE64_64, [3, 0, 0, 0, 0, 4]),
        Action::Allow
    );
    assert_eq!(
        i386_decision(policy, FADVISE64_64, [3, 0, 0, 4, 0, 0]),
        Action::Errno(1)
    );
}

#[test]
fn a_policy_far_over_the_limit_is_refused_on_a_small_stack() {
    // One syscall with 10,000 alternatives, each on a 64-bit value with its own high word:
    // a path of tens of thousands of nodes, which code generation walks without recursing.
    let rules = (0..10_000u64)
        .map(|i| Rule {
            nr: 1,
            action: Action::Allow,
            filter: Some(Cond::Cmp(
                CmpOp::Eq,
                Value::Arg { index: 0, size: 8 },
                Value::Num((i + 1) << 32 | i),
            )),
        })
        .collect();
    let policy = Policy {
        sections: vec![ArchPolicy {
            arch: Arch::X86_64,
            default: Action::KillThread,
            rules,
        }],
    };
    let result = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || codegen::generate(&policy).map(|program| program.len()))
        .unwrap()
        .join()
        .expect("code generation ran within a 256 KiB stack");
    assert!(
        matches!(result, Err(codegen::Error::TooLong { insns }) if insns > 4096),
        "{result:?}"
    );
}
