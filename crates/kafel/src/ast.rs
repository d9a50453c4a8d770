//! The syntax tree: a policy file as written, before names get their meaning.
//!
//! Every name and number keeps the index of its token, which locates it for diagnostics
//! and orders them.

/// A name or number with the index of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located<T> {
    pub value: T,
    pub token: usize,
}

pub(crate) type Name = Located<String>;

/// The top-level statements, in order.
#[derive(Debug, Default)]
pub(crate) struct File {
    pub items: Vec<Item>,
}

#[derive(Debug)]
pub(crate) enum Item {
    /// `#define NAME VALUE`; `hash` is the token of `#`. A definition whose value did not
    /// parse has `value: None`, so its uses are not reported again.
    Define {
        hash: usize,
        name: Name,
        value: Option<Located<u64>>,
    },
    /// `POLICY name { entries }`; `keyword` is the token of `POLICY`.
    Policy {
        keyword: usize,
        name: Name,
        entries: Vec<Entry>,
    },
    /// Entries written at the top level, which belong to the main policy.
    Entries(Vec<Entry>),
    /// `DEFAULT action`; `keyword` is the token of `DEFAULT`.
    Default { keyword: usize, action: ActionSpec },
}

#[derive(Debug)]
pub(crate) enum Entry {
    Use(Name),
    Block {
        action: ActionSpec,
        rules: Vec<Rule>,
    },
}

/// An action as written (the values of `ERRNO`, `TRAP` and `TRACE` are checked by the
/// parser).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ActionSpec {
    Allow,
    Log,
    Kill,
    KillProcess,
    UserNotif,
    Errno(u16),
    Trap(u16),
    Trace(u16),
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub syscall: SyscallRef,
    /// Declared argument names; `Some(vec![])` for `()`.
    pub args: Option<Vec<Name>>,
    /// The names after `ON`, if any.
    pub archs: Option<Vec<Name>>,
    /// The filter; `None` both without braces and for an empty `{ }`.
    pub filter: Option<BoolExpr>,
}

#[derive(Debug)]
pub(crate) enum SyscallRef {
    /// A syscall name, or a constant holding a syscall number.
    Name(Name),
    /// `SYSCALL[n]`; `token` is the number's.
    Number(Located<u64>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug)]
pub(crate) enum BoolExpr {
    Or(Box<BoolExpr>, Box<BoolExpr>),
    And(Box<BoolExpr>, Box<BoolExpr>),
    Not(Box<BoolExpr>),
    Cmp(CmpOp, BitsExpr, BitsExpr),
}

#[derive(Debug)]
pub(crate) enum BitsExpr {
    Number(Located<u64>),
    /// A constant or an argument name.
    Name(Name),
    Or(Box<BitsExpr>, Box<BitsExpr>),
    And(Box<BitsExpr>, Box<BitsExpr>),
}
