//! A readable listing of a program, one instruction per line.
//!
//! ```text
//!    0: ld   [arch]
//!    1: jeq  #0xc000003e         jt 3     jf 2
//!    2: ret  KILL_PROCESS
//!    3: ld   [nr]
//! ```
//!
//! Jump targets are absolute indexes, loads name the `seccomp_data` field they read and
//! returns name the seccomp action, so a listing can be checked by eye against a policy.

use std::fmt::Write;

use crate::bpf::*;
use crate::ir::Action;

/// The whole listing, each line ending in a newline.
pub fn listing(program: &Program) -> String {
    let mut out = String::new();
    for (at, insn) in program.instructions().iter().enumerate() {
        let _ = writeln!(out, "{at:4}: {}", instruction(at, insn));
    }
    out
}

/// One instruction at index `at` (needed to make jump targets absolute).
pub fn instruction(at: usize, insn: &Instruction) -> String {
    let k = insn.k;
    let code = insn.code;
    let next = at + 1;
    let src = |name: &str| {
        if code & BPF_X != 0 {
            format!("{name:<4} x")
        } else {
            format!("{name:<4} #{k:#x}")
        }
    };
    match code & 0x07 {
        BPF_LD => match code & 0xe0 {
            BPF_ABS if code & 0x18 == BPF_W => format!("ld   [{}]", field(k)),
            BPF_IMM => format!("ld   #{k:#x}"),
            BPF_MEM => format!("ld   M[{k}]"),
            BPF_LEN => "ld   #len".to_owned(),
            _ => unknown(insn),
        },
        BPF_LDX => match code & 0xe0 {
            BPF_IMM => format!("ldx  #{k:#x}"),
            BPF_MEM => format!("ldx  M[{k}]"),
            BPF_LEN => "ldx  #len".to_owned(),
            _ => unknown(insn),
        },
        BPF_ST => format!("st   M[{k}]"),
        BPF_STX => format!("stx  M[{k}]"),
        BPF_ALU => match code & 0xf0 {
            BPF_ADD => src("add"),
            BPF_SUB => src("sub"),
            BPF_MUL => src("mul"),
            BPF_DIV => src("div"),
            BPF_OR => src("or"),
            BPF_AND => src("and"),
            BPF_LSH => src("lsh"),
            BPF_RSH => src("rsh"),
            BPF_NEG => "neg".to_owned(),
            BPF_MOD => src("mod"),
            BPF_XOR => src("xor"),
            _ => unknown(insn),
        },
        BPF_JMP => {
            let name = match code & 0xf0 {
                BPF_JA => return format!("ja   {}", next + k as usize),
                BPF_JEQ => "jeq",
                BPF_JGT => "jgt",
                BPF_JGE => "jge",
                BPF_JSET => "jset",
                _ => return unknown(insn),
            };
            let jt = next + usize::from(insn.jt);
            let jf = next + usize::from(insn.jf);
            format!("{:<24} jt {jt:<5} jf {jf}", src(name))
        }
        BPF_RET if code & BPF_A != 0 => "ret  a".to_owned(),
        BPF_RET => format!("ret  {}", action_name(k)),
        _ => match code & 0xf8 {
            BPF_TAX => "tax".to_owned(),
            BPF_TXA => "txa".to_owned(),
            _ => unknown(insn),
        },
    }
}

/// The name of the `seccomp_data` word at `offset`.
fn field(offset: u32) -> String {
    match offset {
        SECCOMP_DATA_NR => "nr".to_owned(),
        SECCOMP_DATA_ARCH => "arch".to_owned(),
        SECCOMP_DATA_IP => "ip".to_owned(),
        o if o == SECCOMP_DATA_IP + 4 => "ip.hi".to_owned(),
        o if (SECCOMP_DATA_ARGS..SECCOMP_DATA_SIZE).contains(&o) && o.is_multiple_of(4) => {
            let index = (o - SECCOMP_DATA_ARGS) / 8;
            let half = if o.is_multiple_of(8) { "lo" } else { "hi" };
            format!("args[{index}].{half}")
        }
        o => format!("{o}"),
    }
}

fn unknown(insn: &Instruction) -> String {
    format!(
        ".insn code={:#06x} jt={} jf={} k={:#x}",
        insn.code, insn.jt, insn.jf, insn.k
    )
}

/// The action's name, or the raw value when the kernel does not define it.
fn action_name(value: u32) -> String {
    let action = Action::from_ret_value(value);
    if action.ret_value() == value {
        action.to_string()
    } else {
        format!("{value:#x} (acts as KILL_PROCESS)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_names_fields_actions_and_absolute_targets() {
        let program = Program::new(vec![
            Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARCH),
            Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, 0xc000_003e, 1, 0),
            Instruction::stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
            Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARGS + 12),
            Instruction::stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 13),
        ]);
        let text = listing(&program);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "   0: ld   [arch]");
        assert_eq!(lines[1], "   1: jeq  #0xc000003e         jt 3     jf 2");
        assert_eq!(lines[2], "   2: ret  KILL_PROCESS");
        assert_eq!(lines[3], "   3: ld   [args[1].hi]");
        assert_eq!(lines[4], "   4: ret  ERRNO(13)");
    }
}
