//! A seccomp-BPF interpreter that follows the kernel's rules.
//!
//! [`run`] first checks the program the way the kernel does when a filter is installed
//! (`seccomp_check_filter` and `bpf_check_classic` in the kernel sources): only the
//! instructions seccomp allows, loads only from `struct seccomp_data` at aligned offsets,
//! jumps that stay inside the program, scratch memory read only after it was written on
//! every path, and a `RET` at the end. A program the kernel would refuse is an error here
//! too, so a test that passes in the interpreter also installs.
//!
//! It then runs the program on one `seccomp_data` and counts the instructions executed,
//! the figure the benchmarks compare.

use std::fmt;

use crate::bpf::*;

/// The input of a filter, as `struct seccomp_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at `offset`, in the little-endian layout of the supported targets.
    fn word(&self, offset: u32) -> u32 {
        match offset {
            SECCOMP_DATA_NR => self.nr,
            SECCOMP_DATA_ARCH => self.arch,
            _ => {
                let field = (offset - SECCOMP_DATA_IP) / 8;
                let value = if field == 0 {
                    self.instruction_pointer
                } else {
                    self.args[field as usize - 1]
                };
                if offset.is_multiple_of(8) {
                    value as u32
                } else {
                    (value >> 32) as u32
                }
            }
        }
    }
}

/// What a filter returned, and how many instructions it executed to get there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub ret: u32,
    pub steps: usize,
}

/// Why the kernel would refuse the program; `at` is the index of the offending
/// instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Empty,
    TooLong {
        insns: usize,
    },
    /// An opcode seccomp does not allow.
    BadOpcode {
        at: usize,
        code: u16,
    },
    /// A load outside `seccomp_data` or not aligned to 4 bytes.
    BadLoad {
        at: usize,
        offset: u32,
    },
    /// A jump past the last instruction.
    JumpOutOfRange {
        at: usize,
    },
    /// A scratch memory index of 16 or more.
    BadMemIndex {
        at: usize,
        index: u32,
    },
    /// A read of scratch memory that some path reaches before writing it.
    UninitMem {
        at: usize,
        index: u32,
    },
    /// Division by the constant zero, or a shift by 32 or more.
    BadConstant {
        at: usize,
    },
    /// The last instruction is not a `RET`.
    NoFinalRet,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Empty => f.write_str("empty program"),
            Error::TooLong { insns } => {
                write!(
                    f,
                    "{insns} instructions, more than the kernel's {MAX_INSNS}"
                )
            }
            Error::BadOpcode { at, code } => {
                write!(
                    f,
                    "instruction {at}: opcode {code:#06x} is not allowed in seccomp"
                )
            }
            Error::BadLoad { at, offset } => write!(
                f,
                "instruction {at}: load at offset {offset} is outside seccomp_data or unaligned"
            ),
            Error::JumpOutOfRange { at } => {
                write!(f, "instruction {at}: jump past the end of the program")
            }
            Error::BadMemIndex { at, index } => {
                write!(
                    f,
                    "instruction {at}: scratch memory index {index} is not below 16"
                )
            }
            Error::UninitMem { at, index } => {
                write!(
                    f,
                    "instruction {at}: M[{index}] may be read before it is written"
                )
            }
            Error::BadConstant { at } => {
                write!(
                    f,
                    "instruction {at}: division by zero or shift by 32 or more"
                )
            }
            Error::NoFinalRet => f.write_str("the last instruction is not a return"),
        }
    }
}

impl std::error::Error for Error {}

/// Checks `program` as the kernel would on install, then runs it on `data`.
pub fn run(program: &Program, data: &SeccompData) -> Result<Outcome, Error> {
    check(program)?;
    Ok(execute(program.instructions(), data))
}

/// The kernel's install-time checks, without running anything.
pub fn check(program: &Program) -> Result<(), Error> {
    let insns = program.instructions();
    if insns.is_empty() {
        return Err(Error::Empty);
    }
    if insns.len() > MAX_INSNS {
        return Err(Error::TooLong { insns: insns.len() });
    }
    for (at, insn) in insns.iter().enumerate() {
        check_insn(insns.len(), at, insn)?;
    }
    if insns[insns.len() - 1].code & 0x07 != BPF_RET {
        return Err(Error::NoFinalRet);
    }
    check_memory(insns)
}

fn check_insn(len: usize, at: usize, insn: &Instruction) -> Result<(), Error> {
    let k = insn.k;
    let code = insn.code;
    let remaining = len - at - 1;
    match code {
        c if c == BPF_LD | BPF_W | BPF_ABS => {
            if k >= SECCOMP_DATA_SIZE || !k.is_multiple_of(4) {
                return Err(Error::BadLoad { at, offset: k });
            }
        }
        c if c == BPF_LD | BPF_W | BPF_LEN
            || c == BPF_LDX | BPF_W | BPF_LEN
            || c == BPF_RET | BPF_K
            || c == BPF_RET | BPF_A
            || c == BPF_LD | BPF_IMM
            || c == BPF_LDX | BPF_IMM
            || c == BPF_MISC | BPF_TAX
            || c == BPF_MISC | BPF_TXA
            || c == BPF_ALU | BPF_NEG => {}
        c if c == BPF_LD | BPF_MEM || c == BPF_LDX | BPF_MEM || c == BPF_ST || c == BPF_STX => {
            if k as usize >= MEMWORDS {
                return Err(Error::BadMemIndex { at, index: k });
            }
        }
        c if c & 0x07 == BPF_ALU && c <= 0xff => {
            let op = c & 0xf0;
            let shift = op == BPF_LSH || op == BPF_RSH;
            let allowed = [BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_AND, BPF_OR, BPF_XOR];
            if !(shift || allowed.contains(&op)) {
                return Err(Error::BadOpcode { at, code });
            }
            if c & BPF_X == 0 && ((op == BPF_DIV && k == 0) || (shift && k >= 32)) {
                return Err(Error::BadConstant { at });
            }
        }
        c if c == BPF_JMP | BPF_JA => {
            if k as usize >= remaining {
                return Err(Error::JumpOutOfRange { at });
            }
        }
        c if c & 0x07 == BPF_JMP && c <= 0xff => {
            let op = c & 0xf0;
            if ![BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JSET].contains(&op) {
                return Err(Error::BadOpcode { at, code });
            }
            if usize::from(insn.jt) >= remaining || usize::from(insn.jf) >= remaining {
                return Err(Error::JumpOutOfRange { at });
            }
        }
        _ => return Err(Error::BadOpcode { at, code }),
    }
    Ok(())
}

/// Every scratch word read must have been written on every path to the read, as the
/// kernel's `check_load_and_stores` demands.
fn check_memory(insns: &[Instruction]) -> Result<(), Error> {
    // written[i]: the words certainly written when instruction i starts. Jumps only go
    // forward, so one pass in order sees every predecessor before its successors.
    let all = u16::MAX;
    let mut written = vec![all; insns.len()];
    written[0] = 0;
    for (at, insn) in insns.iter().enumerate() {
        let mut state = written[at];
        let code = insn.code;
        if code == BPF_LD | BPF_MEM || code == BPF_LDX | BPF_MEM {
            if state & (1 << insn.k) == 0 {
                return Err(Error::UninitMem { at, index: insn.k });
            }
        } else if code == BPF_ST || code == BPF_STX {
            state |= 1 << insn.k;
        }
        let mut flow = |to: usize| written[to] &= state;
        match code & 0x07 {
            BPF_RET => {}
            BPF_JMP if code == BPF_JMP | BPF_JA => flow(at + 1 + insn.k as usize),
            BPF_JMP => {
                flow(at + 1 + usize::from(insn.jt));
                flow(at + 1 + usize::from(insn.jf));
            }
            _ => flow(at + 1),
        }
    }
    Ok(())
}

/// Runs a program that passed [`check`].
fn execute(insns: &[Instruction], data: &SeccompData) -> Outcome {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS];
    let mut pc = 0;
    let mut steps = 0;
    loop {
        let insn = insns[pc];
        let k = insn.k;
        steps += 1;
        pc += 1;
        match insn.code & 0x07 {
            BPF_RET => {
                let ret = if insn.code & BPF_A != 0 { a } else { k };
                return Outcome { ret, steps };
            }
            BPF_LD => {
                a = match insn.code & 0xe0 {
                    BPF_ABS => data.word(k),
                    BPF_LEN => SECCOMP_DATA_SIZE,
                    BPF_MEM => mem[k as usize],
                    _ => k,
                }
            }
            BPF_LDX => {
                x = match insn.code & 0xe0 {
                    BPF_LEN => SECCOMP_DATA_SIZE,
                    BPF_MEM => mem[k as usize],
                    _ => k,
                }
            }
            BPF_ST => mem[k as usize] = a,
            BPF_STX => mem[k as usize] = x,
            BPF_MISC => {
                if insn.code & 0xf8 == BPF_TXA {
                    a = x;
                } else {
                    x = a;
                }
            }
            BPF_ALU => {
                let operand = if insn.code & BPF_X != 0 { x } else { k };
                a = match insn.code & 0xf0 {
                    BPF_ADD => a.wrapping_add(operand),
                    BPF_SUB => a.wrapping_sub(operand),
                    BPF_MUL => a.wrapping_mul(operand),
                    // The kernel ends the filter with 0 on division by a zero X.
                    BPF_DIV if operand == 0 => return Outcome { ret: 0, steps },
                    BPF_DIV => a / operand,
                    BPF_AND => a & operand,
                    BPF_OR => a | operand,
                    BPF_XOR => a ^ operand,
                    BPF_LSH => a.wrapping_shl(operand),
                    BPF_RSH => a.wrapping_shr(operand),
                    _ => a.wrapping_neg(),
                }
            }
            _ => {
                if insn.code == BPF_JMP | BPF_JA {
                    pc += k as usize;
                    continue;
                }
                let operand = if insn.code & BPF_X != 0 { x } else { k };
                let taken = match insn.code & 0xf0 {
                    BPF_JEQ => a == operand,
                    BPF_JGT => a > operand,
                    BPF_JGE => a >= operand,
                    _ => a & operand != 0,
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(insns: &[Instruction]) -> Program {
        Program::new(insns.to_vec())
    }

    fn ret(k: u32) -> Instruction {
        Instruction::stmt(BPF_RET | BPF_K, k)
    }

    #[test]
    fn counts_every_executed_instruction_including_the_return() {
        let p = prog(&[
            Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR),
            Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 1),
            ret(SECCOMP_RET_ALLOW),
            ret(SECCOMP_RET_KILL_PROCESS),
        ]);
        let out = run(
            &p,
            &SeccompData {
                nr: 3,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            out,
            Outcome {
                ret: SECCOMP_RET_ALLOW,
                steps: 3
            }
        );
        let out = run(
            &p,
            &SeccompData {
                nr: 4,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            out,
            Outcome {
                ret: SECCOMP_RET_KILL_PROCESS,
                steps: 3
            }
        );
    }

    #[test]
    fn argument_words_are_little_endian() {
        let p = prog(&[
            Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARGS + 8 + 4),
            Instruction::stmt(BPF_RET | BPF_A, 0),
        ]);
        let mut data = SeccompData::default();
        data.args[1] = 0x1122_3344_5566_7788;
        assert_eq!(run(&p, &data).unwrap().ret, 0x1122_3344);
    }

    #[test]
    fn unaligned_or_out_of_bounds_loads_are_refused() {
        for offset in [2, 64, 1000] {
            let p = prog(&[Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, offset), ret(0)]);
            assert_eq!(check(&p), Err(Error::BadLoad { at: 0, offset }));
        }
    }

    #[test]
    fn jumps_past_the_end_are_refused() {
        let p = prog(&[
            Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
            ret(0),
        ]);
        assert_eq!(check(&p), Err(Error::JumpOutOfRange { at: 0 }));
        let p = prog(&[Instruction::stmt(BPF_JMP | BPF_JA, 1), ret(0)]);
        assert_eq!(check(&p), Err(Error::JumpOutOfRange { at: 0 }));
    }

    #[test]
    fn program_must_end_in_a_return() {
        let p = prog(&[ret(0), Instruction::stmt(BPF_LD | BPF_IMM, 1)]);
        assert_eq!(check(&p), Err(Error::NoFinalRet));
    }

    #[test]
    fn opcodes_outside_seccomp_are_refused() {
        // BPF_MOD and indirect loads exist in classic BPF but not in seccomp.
        for code in [
            BPF_ALU | BPF_MOD | BPF_K,
            BPF_LD | BPF_W | BPF_IND,
            BPF_LD | BPF_B | BPF_ABS,
        ] {
            let p = prog(&[Instruction::stmt(code, 1), ret(0)]);
            assert_eq!(check(&p), Err(Error::BadOpcode { at: 0, code }));
        }
    }

    #[test]
    fn reading_scratch_memory_before_writing_it_on_some_path_is_refused() {
        let p = prog(&[
            Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
            Instruction::stmt(BPF_ST, 3),
            Instruction::stmt(BPF_LD | BPF_MEM, 3),
            ret(0),
        ]);
        assert_eq!(check(&p), Err(Error::UninitMem { at: 2, index: 3 }));
    }

    #[test]
    fn division_by_zero_in_x_returns_zero() {
        let p = prog(&[
            Instruction::stmt(BPF_LD | BPF_IMM, 10),
            Instruction::stmt(BPF_ALU | BPF_DIV | BPF_X, 0),
            ret(SECCOMP_RET_ALLOW),
        ]);
        let out = run(&p, &SeccompData::default()).unwrap();
        assert_eq!(out, Outcome { ret: 0, steps: 2 });
        let p = prog(&[Instruction::stmt(BPF_ALU | BPF_DIV | BPF_K, 0), ret(0)]);
        assert_eq!(check(&p), Err(Error::BadConstant { at: 0 }));
    }

    #[test]
    fn scratch_memory_and_registers_round_trip() {
        let p = prog(&[
            Instruction::stmt(BPF_LD | BPF_IMM, 0xf0),
            Instruction::stmt(BPF_ST, 15),
            Instruction::stmt(BPF_LDX | BPF_IMM, 0x0f),
            Instruction::stmt(BPF_LD | BPF_MEM, 15),
            Instruction::stmt(BPF_ALU | BPF_OR | BPF_X, 0),
            Instruction::stmt(BPF_MISC | BPF_TAX, 0),
            Instruction::stmt(BPF_MISC | BPF_TXA, 0),
            Instruction::stmt(BPF_RET | BPF_A, 0),
        ]);
        assert_eq!(run(&p, &SeccompData::default()).unwrap().ret, 0xff);
    }

    proptest::proptest! {
        /// Arbitrary records, most of them with seccomp's opcodes: the checks refuse
        /// what the kernel refuses, and whatever passes runs to a return without panic.
        #[test]
        fn any_program_is_refused_or_runs_to_a_return(
            insns in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::sample::select(&[
                            0x20u16, 0x00, 0x01, 0x60, 0x61, 0x02, 0x03, 0x04, 0x0c, 0x14,
                            0x24, 0x34, 0x3c, 0x44, 0x54, 0x5c, 0x64, 0x74, 0x84, 0xa4,
                            0x05, 0x15, 0x1d, 0x25, 0x35, 0x45, 0x06, 0x16, 0x07, 0x87,
                        ][..]),
                        proptest::prelude::any::<u16>(),
                    ],
                    0u8..6,
                    0u8..6,
                    proptest::prop_oneof![0u32..70, proptest::prelude::any::<u32>()],
                ),
                1..40,
            ),
            nr in proptest::prelude::any::<u32>(),
            args in proptest::prelude::any::<[u64; 6]>(),
        ) {
            let program = Program::new(
                insns.iter().map(|&(code, jt, jf, k)| Instruction { code, jt, jf, k }).collect(),
            );
            let data = SeccompData { nr, arch: 0xc000_003e, instruction_pointer: 0, args };
            if let Ok(out) = run(&program, &data) {
                proptest::prop_assert!(out.steps >= 1 && out.steps <= program.len());
            }
        }
    }
}
