//! Classic BPF as seccomp uses it: the instruction record and the opcodes.
//!
//! Opcode values and names follow the kernel's `include/uapi/linux/bpf_common.h` and
//! `include/uapi/linux/filter.h`; the return values and the layout of the data a filter
//! reads follow `include/uapi/linux/seccomp.h`.

/// The most instructions the kernel accepts in one seccomp filter (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// One instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Instruction {
    /// A non-jump instruction (`BPF_STMT`).
    pub const fn stmt(code: u16, k: u32) -> Self {
        Instruction {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// A jump instruction (`BPF_JUMP`); `jt` and `jf` are relative to the next instruction.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Self {
        Instruction { code, jt, jf, k }
    }

    /// The 8-byte little-endian encoding the kernel reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut out = [0; 8];
        out[0..2].copy_from_slice(&self.code.to_le_bytes());
        out[2] = self.jt;
        out[3] = self.jf;
        out[4..8].copy_from_slice(&self.k.to_le_bytes());
        out
    }

    /// Decodes one 8-byte record, the inverse of [`Instruction::to_bytes`].
    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        Instruction {
            code: u16::from_le_bytes([bytes[0], bytes[1]]),
            jt: bytes[2],
            jf: bytes[3],
            k: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

// Instruction classes.
pub const BPF_LD: u16 = 0x00;
pub const BPF_LDX: u16 = 0x01;
pub const BPF_ST: u16 = 0x02;
pub const BPF_STX: u16 = 0x03;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_MISC: u16 = 0x07;

// Load sizes and modes.
pub const BPF_W: u16 = 0x00;
pub const BPF_H: u16 = 0x08;
pub const BPF_B: u16 = 0x10;
pub const BPF_IMM: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_IND: u16 = 0x40;
pub const BPF_MEM: u16 = 0x60;
pub const BPF_LEN: u16 = 0x80;
pub const BPF_MSH: u16 = 0xa0;

// ALU operations.
pub const BPF_ADD: u16 = 0x00;
pub const BPF_SUB: u16 = 0x10;
pub const BPF_MUL: u16 = 0x20;
pub const BPF_DIV: u16 = 0x30;
pub const BPF_OR: u16 = 0x40;
pub const BPF_AND: u16 = 0x50;
pub const BPF_LSH: u16 = 0x60;
pub const BPF_RSH: u16 = 0x70;
pub const BPF_NEG: u16 = 0x80;
pub const BPF_MOD: u16 = 0x90;
pub const BPF_XOR: u16 = 0xa0;

// Jump conditions.
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;

// Operand sources.
pub const BPF_K: u16 = 0x00;
pub const BPF_X: u16 = 0x08;
pub const BPF_A: u16 = 0x10;

// Miscellaneous register moves.
pub const BPF_TAX: u16 = 0x00;
pub const BPF_TXA: u16 = 0x80;

/// Number of scratch memory words (`BPF_MEMWORDS`).
pub const MEMWORDS: usize = 16;

// Offsets into `struct seccomp_data`.
pub const SECCOMP_DATA_NR: u32 = 0;
pub const SECCOMP_DATA_ARCH: u32 = 4;
pub const SECCOMP_DATA_IP: u32 = 8;
pub const SECCOMP_DATA_ARGS: u32 = 16;
/// Size of `struct seccomp_data`; loads at or past it are rejected.
pub const SECCOMP_DATA_SIZE: u32 = 64;

// Filter return values (`SECCOMP_RET_*`).
pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;
pub const SECCOMP_RET_DATA: u32 = 0x0000_ffff;

/// A complete filter: the instructions in the order the kernel runs them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Program(Vec<Instruction>);

/// Why bytes could not be read as a [`Program`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The length is not a multiple of the 8-byte record size.
    TrailingBytes { len: usize },
    /// There are no records at all.
    Empty,
    /// More records than the kernel accepts.
    TooLong { insns: usize },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TrailingBytes { len } => {
                write!(
                    f,
                    "{len} bytes is not a whole number of 8-byte sock_filter records"
                )
            }
            DecodeError::Empty => f.write_str("the program has no instructions"),
            DecodeError::TooLong { insns } => {
                write!(
                    f,
                    "the program has {insns} instructions, more than the {MAX_INSNS} allowed"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl Program {
    /// Wraps instructions as they are; nothing is checked (see `interp` for that).
    pub fn new(instructions: Vec<Instruction>) -> Self {
        Program(instructions)
    }

    pub fn instructions(&self) -> &[Instruction] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Consecutive 8-byte little-endian `struct sock_filter` records.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|insn| insn.to_bytes()).collect()
    }

    /// Reads records written by [`Program::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, DecodeError> {
        if !bytes.len().is_multiple_of(8) {
            return Err(DecodeError::TrailingBytes { len: bytes.len() });
        }
        let insns = bytes.len() / 8;
        if insns == 0 {
            return Err(DecodeError::Empty);
        }
        if insns > MAX_INSNS {
            return Err(DecodeError::TooLong { insns });
        }
        let instructions = bytes
            .chunks_exact(8)
            .map(|chunk| Instruction::from_bytes(chunk.try_into().expect("chunks are 8 bytes")))
            .collect();
        Ok(Program(instructions))
    }
}

impl From<Vec<Instruction>> for Program {
    fn from(instructions: Vec<Instruction>) -> Self {
        Program(instructions)
    }
}
