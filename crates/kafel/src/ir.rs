//! The resolved policy: what the front end hands to code generation.
//!
//! Everything here is specific to one target architecture: names are gone, syscalls are
//! numbers, arguments are registers with a byte size, and every filter has been
//! constant-folded. The order of [`ArchPolicy::rules`] is the textual order after `USE`
//! expansion, which is what decides a syscall: the first rule for that number whose
//! filter holds wins, and when none holds the default applies.

use crate::arch::Arch;
use crate::bpf;

/// What a filter returns for a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Log,
    /// Kafel's `KILL`, `KILL_THREAD` and `DENY`.
    KillThread,
    KillProcess,
    UserNotif,
    Errno(u16),
    Trap(u16),
    Trace(u16),
}

impl Action {
    /// The seccomp return value (`SECCOMP_RET_*` with its data bits).
    pub fn ret_value(self) -> u32 {
        match self {
            Action::Allow => bpf::SECCOMP_RET_ALLOW,
            Action::Log => bpf::SECCOMP_RET_LOG,
            Action::KillThread => bpf::SECCOMP_RET_KILL_THREAD,
            Action::KillProcess => bpf::SECCOMP_RET_KILL_PROCESS,
            Action::UserNotif => bpf::SECCOMP_RET_USER_NOTIF,
            Action::Errno(n) => bpf::SECCOMP_RET_ERRNO | u32::from(n),
            Action::Trap(n) => bpf::SECCOMP_RET_TRAP | u32::from(n),
            Action::Trace(n) => bpf::SECCOMP_RET_TRACE | u32::from(n),
        }
    }

    /// Reads a seccomp return value back, the inverse of [`Action::ret_value`].
    ///
    /// Values the kernel does not define decide like `KILL_PROCESS`, as the kernel treats
    /// them, so they read back as [`Action::KillProcess`].
    pub fn from_ret_value(value: u32) -> Action {
        let data = (value & bpf::SECCOMP_RET_DATA) as u16;
        match value & bpf::SECCOMP_RET_ACTION_FULL {
            bpf::SECCOMP_RET_ALLOW => Action::Allow,
            bpf::SECCOMP_RET_LOG => Action::Log,
            bpf::SECCOMP_RET_KILL_THREAD => Action::KillThread,
            bpf::SECCOMP_RET_USER_NOTIF => Action::UserNotif,
            bpf::SECCOMP_RET_ERRNO => Action::Errno(data),
            bpf::SECCOMP_RET_TRAP => Action::Trap(data),
            bpf::SECCOMP_RET_TRACE => Action::Trace(data),
            _ => Action::KillProcess,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Allow => f.write_str("ALLOW"),
            Action::Log => f.write_str("LOG"),
            Action::KillThread => f.write_str("KILL_THREAD"),
            Action::KillProcess => f.write_str("KILL_PROCESS"),
            Action::UserNotif => f.write_str("USER_NOTIF"),
            Action::Errno(n) => write!(f, "ERRNO({n})"),
            Action::Trap(n) => write!(f, "TRAP({n})"),
            Action::Trace(n) => write!(f, "TRACE({n})"),
        }
    }
}

/// A whole policy: one section per target architecture, in the order they were asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub sections: Vec<ArchPolicy>,
}

/// The rules of one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchPolicy {
    pub arch: Arch,
    /// The `DEFAULT` action, or [`Action::KillThread`] when the policy has none.
    pub default: Action,
    /// Every rule, in textual order after `USE` expansion.
    pub rules: Vec<Rule>,
}

/// One syscall with its action and, optionally, a condition on its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub nr: u32,
    pub action: Action,
    /// `None` when the rule is unconditional, including a filter that folded to true.
    /// Rules whose filter folded to false never reach the IR.
    pub filter: Option<Cond>,
}

/// A boolean condition over the syscall's arguments, already constant-folded: it contains
/// no comparison whose outcome is known at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Cmp(CmpOp, Value, Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A 64-bit value computed from arguments and numbers with `&` and `|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Num(u64),
    /// Argument `index` (0 to 5) of the syscall, declared with `size` bytes (2, 4 or 8).
    Arg {
        index: u8,
        size: u8,
    },
    /// An 8-byte parameter that the kernel passes in two 32-bit registers, as i386 does:
    /// its low word is the low word of argument `lo`, its high word the low word of
    /// argument `hi` (`lo + 1`). The high words of both arguments are never read.
    ArgPair {
        lo: u8,
        hi: u8,
    },
    BitAnd(Box<Value>, Box<Value>),
    BitOr(Box<Value>, Box<Value>),
}

impl Value {
    /// Whether a comparison involving this value has to look at all 64 bits.
    ///
    /// This is Kafel's width rule: a comparison is done on 64 bits when any argument in
    /// it is 8 bytes wide or any number in it does not fit 32 bits; otherwise only the
    /// low 32-bit words are compared, and an argument's high word is never read.
    pub fn is_wide(&self) -> bool {
        match self {
            Value::Num(n) => *n > u64::from(u32::MAX),
            Value::Arg { size, .. } => *size == 8,
            Value::ArgPair { .. } => true,
            Value::BitAnd(a, b) | Value::BitOr(a, b) => a.is_wide() || b.is_wide(),
        }
    }
}

impl Cond {
    /// Evaluates the condition on concrete argument values, following the width rule.
    ///
    /// This is the meaning code generation must preserve; tests compare compiled programs
    /// against it.
    pub fn eval(&self, args: &[u64; 6]) -> bool {
        match self {
            Cond::Not(c) => !c.eval(args),
            Cond::And(a, b) => a.eval(args) && b.eval(args),
            Cond::Or(a, b) => a.eval(args) || b.eval(args),
            Cond::Cmp(op, lhs, rhs) => {
                let wide = lhs.is_wide() || rhs.is_wide();
                let mask = if wide { u64::MAX } else { u64::from(u32::MAX) };
                let (l, r) = (lhs.eval(args) & mask, rhs.eval(args) & mask);
                match op {
                    CmpOp::Eq => l == r,
                    CmpOp::Ne => l != r,
                    CmpOp::Lt => l < r,
                    CmpOp::Le => l <= r,
                    CmpOp::Gt => l > r,
                    CmpOp::Ge => l >= r,
                }
            }
        }
    }
}

impl Value {
    /// The value's 64 bits for concrete argument values.
    pub fn eval(&self, args: &[u64; 6]) -> u64 {
        match self {
            Value::Num(n) => *n,
            Value::Arg { index, .. } => args[usize::from(*index)],
            Value::ArgPair { lo, hi } => {
                let word = |i: &u8| args[usize::from(*i)] & u64::from(u32::MAX);
                word(lo) | word(hi) << 32
            }
            Value::BitAnd(a, b) => a.eval(args) & b.eval(args),
            Value::BitOr(a, b) => a.eval(args) | b.eval(args),
        }
    }
}
