//! Policies from the differential run against google/kafel (commit 18f2074).
//!
//! Random and hand-written policies were compiled by both compilers, for x86-64 alone and
//! for x86-64 with i386, and both filters were run on many inputs. Each test here pins one
//! behaviour that run probed at an edge: whether kafel accepts the policy, and the actions
//! its filter returned for the inputs listed. Those expected values were observed from
//! kafel's filters; they are not derived from our own compiler.
//!
//! Inputs are chosen outside the quirk classes of `tests/data/QUIRKS.md` (an architecture
//! the policy is not compiled for, x32 numbers on x86-64), where we deliberately differ.

use kafel::arch::Arch;
use kafel::interp::{self, SeccompData};
use kafel::ir::Action;
use kafel::{MemLoader, SourceFile};

const X86_64: u32 = 0xc000_003e;
const I386: u32 = 0x4000_0003;

/// One syscall as the filter sees it, with kafel's answer for it.
struct Decision {
    arch: u32,
    nr: u32,
    args: &'static [u64],
    kafel: &'static str,
}

const fn on(nr: u32, args: &'static [u64], kafel: &'static str) -> Decision {
    Decision {
        arch: X86_64,
        nr,
        args,
        kafel,
    }
}

const fn on_i386(nr: u32, args: &'static [u64], kafel: &'static str) -> Decision {
    Decision {
        arch: I386,
        nr,
        args,
        kafel,
    }
}

fn compile(text: &str, arches: &[Arch], loader: &MemLoader) -> Result<kafel::bpf::Program, String> {
    let source = SourceFile::new("main.policy", text);
    kafel::compile(&source, arches, loader).map_err(|d| d.to_string())
}

/// Compiles `text` and checks every decision; reports all mismatches at once.
fn assert_decides_with(text: &str, arches: &[Arch], loader: &MemLoader, decisions: &[Decision]) {
    let program = match compile(text, arches, loader) {
        Ok(program) => program,
        Err(diagnostics) => panic!("kafel compiles this policy, we refuse it:\n{diagnostics}"),
    };
    let mut wrong = Vec::new();
    for d in decisions {
        let mut args = [0u64; 6];
        args[..d.args.len()].copy_from_slice(d.args);
        let data = SeccompData {
            nr: d.nr,
            arch: d.arch,
            instruction_pointer: 0,
            args,
        };
        let ours = Action::from_ret_value(interp::run(&program, &data).expect("valid filter").ret);
        if ours.to_string() != d.kafel {
            wrong.push(format!(
                "arch={:#x} nr={:#x} args={:#x?}: kafel {}, ours {ours}",
                d.arch, d.nr, d.args, d.kafel
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "decisions differ from kafel:\n{}",
        wrong.join("\n")
    );
}

fn assert_decides(text: &str, decisions: &[Decision]) {
    assert_decides_with(text, &[Arch::X86_64], &MemLoader::new(), decisions);
}

fn assert_refused_with(text: &str, loader: &MemLoader) {
    for arches in [&[Arch::X86_64][..], &[Arch::X86_64, Arch::I386]] {
        assert!(
            compile(text, arches, loader).is_err(),
            "kafel refuses this policy, we compile it for {arches:?}:\n{text}"
        );
    }
}

fn assert_refused(text: &str) {
    assert_refused_with(text, &MemLoader::new());
}

fn alternatives(n: usize, term: impl Fn(usize) -> String, op: &str) -> String {
    (0..n).map(term).collect::<Vec<_>>().join(op)
}

// Lexical structure and #include lines.

#[test]
fn define_may_be_split_by_whitespace_comments_and_newlines() {
    // `#` and `define` are two tokens in kafel, so anything blank may sit between the parts.
    assert_decides(
        "# define A 3\n#/* c */define B\n4\nALLOW { read { fd == A || fd == B } }\nDEFAULT ERRNO(1)\n",
        &[
            on(0, &[3], "ALLOW"),
            on(0, &[4], "ALLOW"),
            on(0, &[5], "ERRNO(1)"),
        ],
    );
}

#[test]
fn include_cannot_be_split_like_define() {
    let loader = MemLoader::new().with("a.policy", "ALLOW { write }\n");
    assert_refused_with("# include \"a.policy\"\nALLOW { read }\n", &loader);
}

#[test]
fn a_semicolon_ends_an_include_line() {
    let loader = MemLoader::new().with("a.policy", "ERRNO(5) { write }\n");
    assert_decides_with(
        "#include \"a.policy\";ALLOW { read }\n",
        &[Arch::X86_64],
        &loader,
        &[
            on(0, &[], "ALLOW"),
            on(1, &[], "ERRNO(5)"),
            on(3, &[], "KILL_THREAD"),
        ],
    );
}

#[test]
fn an_include_line_without_a_file_name_includes_nothing() {
    assert_decides(
        "#include\nALLOW { read }\n",
        &[on(0, &[], "ALLOW"), on(1, &[], "KILL_THREAD")],
    );
}

#[test]
fn an_included_rule_list_fragment_joins_the_surrounding_list() {
    let loader = MemLoader::new().with("list.policy", "write, getpid,\n");
    assert_decides_with(
        "ALLOW { read,\n#include \"list.policy\"\n close }\n",
        &[Arch::X86_64],
        &loader,
        &[
            on(1, &[], "ALLOW"),
            on(39, &[], "ALLOW"),
            on(3, &[], "ALLOW"),
            on(2, &[], "KILL_THREAD"),
        ],
    );
}

#[test]
fn an_include_line_must_end_before_the_end_of_its_file() {
    // The line that names a file ends at a newline or `;`; the end of the file is not enough,
    // in the main file or in an included one.
    let loader = MemLoader::new()
        .with("a.policy", "#include \"b.policy\"")
        .with("b.policy", "ALLOW { write }\n");
    assert_refused_with("ALLOW { read }\n#include \"b.policy\"", &loader);
    assert_refused_with("#include \"a.policy\"\nALLOW { read }\n", &loader);
}

#[test]
fn file_names_on_one_include_line_need_blanks_between_them() {
    let loader = MemLoader::new()
        .with("a.policy", "ALLOW { write }\n")
        .with("b.policy", "ALLOW { read }\n");
    assert_refused_with("#include \"a.policy\"\"b.policy\"\n", &loader);
}

#[test]
fn a_comment_after_an_include_is_refused() {
    let loader = MemLoader::new().with("a.policy", "ALLOW { write }\n");
    assert_refused_with("#include \"a.policy\" // the rules\n", &loader);
}

#[test]
fn a_minus_sign_belongs_only_to_nonzero_decimal_numbers() {
    for number in ["-0", "-0x1", "- 1", "-01"] {
        assert_refused(&format!("ALLOW {{ read {{ fd == {number} }} }}\n"));
    }
}

#[test]
fn a_base_prefix_without_digits_is_not_a_number() {
    assert_refused("ALLOW { read { fd == 0x } }\n");
    assert_refused("ALLOW { read { fd == 0b } }\n");
}

// Numbers as syscalls.

#[test]
fn negative_syscall_numbers_keep_their_low_32_bits() {
    assert_decides(
        "ALLOW { SYSCALL[-2147483648] }\nDEFAULT ERRNO(1)\n",
        &[
            on(0x8000_0000, &[], "ALLOW"),
            on(0x7fff_ffff, &[], "ERRNO(1)"),
        ],
    );
    assert_decides(
        "#define N -5\nALLOW { N }\nDEFAULT ERRNO(1)\n",
        &[
            on(0xffff_fffb, &[], "ALLOW"),
            on(0xffff_ffff, &[], "ERRNO(1)"),
        ],
    );
}

#[test]
fn syscall_numbers_in_the_x32_range_named_by_the_policy_keep_their_rules() {
    assert_decides(
        "ALLOW { SYSCALL[0x40000001] }\nERRNO(2) { SYSCALL[0x40000002](a) { a == 1 } }\n\
         KILL { read }\nDEFAULT ALLOW\n",
        &[
            on(0x4000_0001, &[], "ALLOW"),
            on(0x4000_0002, &[1], "ERRNO(2)"),
            on(0, &[], "KILL_THREAD"),
        ],
    );
}

#[test]
fn a_constant_may_be_redefined_with_the_same_value_in_another_base() {
    assert_decides(
        "#define A 0x10\n#define A 020\n#define A 0b10000\n#define A 16\n\
         ALLOW { read { fd == A } }\nDEFAULT ERRNO(1)\n",
        &[on(0, &[16], "ALLOW"), on(0, &[17], "ERRNO(1)")],
    );
}

// Folding decides the width of a comparison.

#[test]
fn and_with_all_ones_folds_away_leaving_a_32_bit_comparison() {
    assert_decides(
        "ALLOW { read { fd & -1 == 1 } }\nDEFAULT ERRNO(1)\n",
        &[on(0, &[0x1_0000_0001], "ALLOW"), on(0, &[2], "ERRNO(1)")],
    );
    assert_decides(
        "#define M 0xffffffffffffffff\nALLOW { read { M & fd == 1 } }\nDEFAULT ERRNO(1)\n",
        &[on(0, &[0x1_0000_0001], "ALLOW"), on(0, &[2], "ERRNO(1)")],
    );
}

#[test]
fn and_with_zero_folds_to_zero_and_or_with_zero_away() {
    // `(count & 0) | fd` is `fd`, a 4-byte argument: only its low word is compared.
    assert_decides(
        "ALLOW { read { (count & 0) | fd == 1 } }\nDEFAULT ERRNO(1)\n",
        &[
            on(0, &[0x1_0000_0001, 0, 5], "ALLOW"),
            on(0, &[2], "ERRNO(1)"),
        ],
    );
}

#[test]
fn or_with_zero_keeps_a_64_bit_literal_and_so_a_64_bit_comparison() {
    assert_decides(
        "ALLOW { read { (fd | 0) == 0x100000001 } }\nDEFAULT ERRNO(1)\n",
        &[on(0, &[0x1_0000_0001], "ALLOW"), on(0, &[1], "ERRNO(1)")],
    );
}

#[test]
fn or_with_all_ones_folds_to_a_64_bit_number() {
    // `count | -1` is the number 2^64-1, so the 4-byte fd is compared on both words.
    assert_decides(
        "ALLOW { read { (count | -1) == fd } }\nDEFAULT ERRNO(1)\n",
        &[
            on(0, &[u64::MAX], "ALLOW"),
            on(0, &[0xffff_ffff], "ERRNO(1)"),
        ],
    );
}

// Names: constants shadow arguments and syscalls from their definition on.

#[test]
fn a_define_after_a_rule_leaves_that_rule_alone() {
    assert_decides(
        "ALLOW { read { fd == 1 } }\n#define fd 3\nERRNO(1) { read { fd == 3 } }\nDEFAULT ERRNO(2)\n",
        &[
            on(0, &[1], "ALLOW"),
            on(0, &[3], "ERRNO(1)"),
            on(0, &[4], "ERRNO(1)"),
        ],
    );
    assert_decides(
        "ALLOW { getpid }\n#define getpid 0\nERRNO(3) { getpid }\nDEFAULT ERRNO(2)\n",
        &[on(39, &[], "ALLOW"), on(0, &[], "ERRNO(3)")],
    );
}

#[test]
fn a_declared_argument_named_like_a_constant_reads_as_the_constant() {
    // `A == 2` is `1 == 2`: the first rule vanishes; `A == 1` makes the second unconditional.
    assert_decides(
        "#define A 1\nALLOW { SYSCALL[1](A) { A == 2 } }\nERRNO(3) { SYSCALL[1](A) { A == 1 } }\n\
         DEFAULT ERRNO(2)\n",
        &[on(1, &[2], "ERRNO(3)"), on(1, &[1], "ERRNO(3)")],
    );
}

#[test]
fn guards_and_their_aliases_select_rules_per_architecture() {
    assert_decides_with(
        "ALLOW { read ON x86_64, write ON { i386 }, close ON { amd64, x86 } }\nDEFAULT ERRNO(1)\n",
        &[Arch::X86_64, Arch::I386],
        &MemLoader::new(),
        &[
            on(0, &[], "ALLOW"),
            on(1, &[], "ERRNO(1)"),
            on(3, &[], "ALLOW"),
            on_i386(3, &[], "ERRNO(1)"),
            on_i386(4, &[], "ALLOW"),
            on_i386(6, &[], "ALLOW"),
        ],
    );
}

// The depth limit of 200 counts every operator, whatever the shape of the expression.

#[test]
fn alternatives_of_conjunctions_reach_the_depth_limit_at_200() {
    let policy = |n| {
        let cond = alternatives(n, |i| format!("(a == {i} && b != {i})"), " || ");
        format!("ALLOW {{ write(a, b) {{ {cond} }} }}\nDEFAULT ERRNO(1)\n")
    };
    assert_decides(
        &policy(199),
        &[
            on(1, &[198, 0], "ALLOW"),
            on(1, &[198, 198], "ERRNO(1)"),
            on(1, &[199, 0], "ERRNO(1)"),
        ],
    );
    assert_refused(&policy(200));
}

#[test]
fn a_chain_of_bitwise_ors_reaches_the_depth_limit_at_201_operands() {
    let policy = |n| {
        let value = alternatives(
            n,
            |i| {
                if i == 0 {
                    "a".into()
                } else {
                    (1u64 << ((i - 1) % 3)).to_string()
                }
            },
            " | ",
        );
        format!("ALLOW {{ write(a) {{ {value} == 7 }} }}\nDEFAULT ERRNO(1)\n")
    };
    assert_decides(
        &policy(200),
        &[on(1, &[0], "ALLOW"), on(1, &[8], "ERRNO(1)")],
    );
    assert_refused(&policy(201));
}

#[test]
fn alternatives_nested_to_the_right_count_towards_the_depth_limit() {
    let policy = |n| {
        let open = alternatives(n, |i| format!("a == {i} || ("), "");
        let close = ")".repeat(n);
        format!("ALLOW {{ write(a, b) {{ {open}b == 1{close} }} }}\nDEFAULT ERRNO(1)\n")
    };
    assert_decides(
        &policy(199),
        &[
            on(1, &[198, 0], "ALLOW"),
            on(1, &[500, 1], "ALLOW"),
            on(1, &[500, 0], "ERRNO(1)"),
        ],
    );
    assert_refused(&policy(200));
}

// Filter length.

/// `n` 64-bit equalities on one argument, 199 to an action block, under `DEFAULT ALLOW`.
fn long_equality_chain(n: usize) -> String {
    let mut blocks = Vec::new();
    for (block, start) in (0..n).step_by(199).enumerate() {
        let action = if block == 0 {
            "ALLOW".to_owned()
        } else {
            format!("ERRNO({block})")
        };
        let end = n.min(start + 199);
        let cond = alternatives(
            end - start,
            |i| {
                format!(
                    "a == {:#x}",
                    (((start + i + 1) as u64) << 32) | (start + i + 7) as u64
                )
            },
            " || ",
        );
        blocks.push(format!("{action} {{ write(a) {{ {cond} }} }}"));
    }
    blocks.push("DEFAULT ALLOW".to_owned());
    blocks.join("\n") + "\n"
}

#[test]
fn a_policy_a_few_instructions_under_the_kernel_limit_in_kafel_compiles() {
    // kafel's filter has 4092 instructions.
    assert_decides(
        &long_equality_chain(1016),
        &[
            on(1, &[(1 << 32) | 7], "ALLOW"),
            on(1, &[(1016 << 32) | 1022], "ERRNO(5)"),
            on(1, &[1], "ALLOW"),
        ],
    );
}

#[test]
fn a_policy_exactly_at_the_kernel_limit_in_kafel_compiles() {
    // kafel's filter has exactly 4096 instructions, which the kernel installs.
    assert_decides(
        &long_equality_chain(1017),
        &[
            on(1, &[(1017 << 32) | 1023], "ERRNO(5)"),
            on(1, &[1], "ALLOW"),
        ],
    );
}

#[test]
fn a_policy_far_over_the_kernel_limit_is_refused_with_its_length() {
    // kafel emits a filter the kernel refuses; we say so at compile time. Its paths are
    // tens of thousands of instructions long, which code generation must survive.
    let refused = compile(
        &long_equality_chain(10_000),
        &[Arch::X86_64],
        &MemLoader::new(),
    )
    .expect_err("a filter over 4096 instructions");
    assert!(
        refused.contains("more than the kernel's limit of 4096"),
        "{refused}"
    );
}

// Nesting of parentheses.

/// `a == 1` in `n` parentheses: around the comparison, around the operand `a`, or (any other
/// `shape`) `n` around each, `2n` deep.
fn parenthesised(n: usize, shape: &str) -> String {
    let (open, close) = ("(".repeat(n), ")".repeat(n));
    let cond = match shape {
        "comparison" => format!("{open}a == 1{close}"),
        "operand" => format!("{open}a{close} == 1"),
        _ => format!("{open}{open}a{close} == 1{close}"),
    };
    format!("ALLOW {{ write(a) {{ {cond} }} }}\nDEFAULT ERRNO(1)\n")
}

#[test]
fn parentheses_nest_as_deep_as_kafels_parser_stack_allows() {
    // Parentheses add no expression depth in kafel; its bison stack of 10000 entries
    // holds one per open parenthesis and a few for the rest of the policy. These are the
    // deepest of each shape kafel accepts.
    for (n, shape) in [(9990, "comparison"), (9991, "operand"), (4995, "both")] {
        assert_decides(
            &parenthesised(n, shape),
            &[
                on(1, &[1], "ALLOW"),
                on(1, &[2], "ERRNO(1)"),
                on(1, &[0x1_0000_0001], "ERRNO(1)"),
            ],
        );
    }
    // Kafel's stack is exhausted ("memory exhausted").
    assert_refused(&parenthesised(10_001, "comparison"));
    assert_refused(&parenthesised(5_001, "both"));
}

#[test]
fn runs_of_parentheses_under_operators_still_count_only_the_operators_depth() {
    // `a == 0 && (((...(a == 0 && (((...(b == 1)...)))...)))`, 40 parentheses a level.
    let policy = |levels| {
        let (open, close) = ("(".repeat(40), ")".repeat(40));
        let mut cond = "b == 1".to_owned();
        for _ in 0..levels {
            cond = format!("a == 0 && {open}{cond}{close}");
        }
        format!("ALLOW {{ write(a, b) {{ {cond} }} }}\nDEFAULT ERRNO(1)\n")
    };
    assert_decides(
        &policy(199),
        &[
            on(1, &[0, 1], "ALLOW"),
            on(1, &[0, 0], "ERRNO(1)"),
            on(1, &[1, 1], "ERRNO(1)"),
        ],
    );
    assert_refused(&policy(200));
}
