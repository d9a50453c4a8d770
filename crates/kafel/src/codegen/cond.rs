//! Lowering of argument conditions to jumps.
//!
//! BPF registers are 32 bits wide, so every comparison is taken apart into 32-bit words.
//! A comparison that Kafel's width rule makes 64-bit ([`Value::is_wide`]) compares the
//! high words first: for `==` both words must match, for the orderings the high words
//! decide unless they are equal, and then the low words do. A narrow comparison looks at
//! the low words only.
//!
//! Each word of a value is an expression over argument words built with `&` and `|`.
//! Constants are folded word by word, so a mask whose high word is zero makes the whole
//! high-word comparison disappear. `(x & m) == 0` and its negation become one `JSET`.
//! Otherwise the value is computed in A: constants through `ALU AND/OR #k`, a second
//! argument word through X, and only a value that combines two computed values needs
//! scratch memory, one word per level of such nesting.

use super::Error;
use super::graph::{Graph, NodeId};
use crate::bpf::*;
use crate::ir::{CmpOp, Cond, Value};

/// One 32-bit word of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Const(u32),
    /// The `seccomp_data` word at this offset.
    Load(u32),
    /// `items` combined with AND (or OR), then with `konst` if there is one.
    Op {
        and: bool,
        items: Vec<Word>,
        konst: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Low,
    High,
}

impl Word {
    fn of(value: &Value, half: Half) -> Word {
        match value {
            Value::Num(n) => Word::Const(match half {
                Half::Low => *n as u32,
                Half::High => (*n >> 32) as u32,
            }),
            Value::Arg { index, .. } => {
                let low = SECCOMP_DATA_ARGS + 8 * u32::from(*index);
                Word::Load(if half == Half::Low { low } else { low + 4 })
            }
            // Each half is the low word of its own register.
            Value::ArgPair { lo, hi } => {
                let reg = if half == Half::Low { lo } else { hi };
                Word::Load(SECCOMP_DATA_ARGS + 8 * u32::from(*reg))
            }
            Value::BitAnd(..) => Word::combine(true, value, half),
            Value::BitOr(..) => Word::combine(false, value, half),
        }
    }

    /// Flattens a chain of one operator, folding its constants into one.
    fn combine(and: bool, value: &Value, half: Half) -> Word {
        let (absorbing, identity) = if and { (0, u32::MAX) } else { (u32::MAX, 0) };
        let mut operands = Vec::new();
        flatten(and, value, &mut operands);
        let mut konst = identity;
        let mut items: Vec<Word> = Vec::new();
        for operand in operands {
            match Word::of(operand, half) {
                Word::Const(c) if and => konst &= c,
                Word::Const(c) => konst |= c,
                word if !items.contains(&word) => items.push(word),
                _ => {}
            }
        }
        if konst == absorbing || items.is_empty() {
            return Word::Const(konst);
        }
        let konst = (konst != identity).then_some(konst);
        if items.len() == 1 && konst.is_none() {
            return items.pop().expect("one item");
        }
        // Computed operands first: the first one needs no scratch memory.
        items.sort_by_key(|w| matches!(w, Word::Load(_)));
        Word::Op { and, items, konst }
    }
}

fn flatten<'v>(and: bool, value: &'v Value, out: &mut Vec<&'v Value>) {
    match value {
        Value::BitAnd(a, b) if and => {
            flatten(and, a, out);
            flatten(and, b, out);
        }
        Value::BitOr(a, b) if !and => {
            flatten(and, a, out);
            flatten(and, b, out);
        }
        other => out.push(other),
    }
}

pub(super) struct Lower<'g> {
    pub(super) graph: &'g mut Graph,
}

impl Lower<'_> {
    /// Code that goes to `t` when `cond` holds and to `f` otherwise.
    pub(super) fn cond(&mut self, cond: &Cond, t: NodeId, f: NodeId) -> Result<NodeId, Error> {
        match cond {
            Cond::Not(c) => self.cond(c, f, t),
            Cond::And(a, b) => {
                let b = self.cond(b, t, f)?;
                self.cond(a, b, f)
            }
            Cond::Or(a, b) => {
                let b = self.cond(b, t, f)?;
                self.cond(a, t, b)
            }
            Cond::Cmp(op, l, r) => self.compare(*op, l, r, t, f),
        }
    }

    fn compare(
        &mut self,
        op: CmpOp,
        l: &Value,
        r: &Value,
        t: NodeId,
        f: NodeId,
    ) -> Result<NodeId, Error> {
        // `<`, `<=` and `!=` are the negations of `>=`, `>` and `==`.
        let (op, t, f) = match op {
            CmpOp::Lt => (CmpOp::Ge, f, t),
            CmpOp::Le => (CmpOp::Gt, f, t),
            CmpOp::Ne => (CmpOp::Eq, f, t),
            other => (other, t, f),
        };
        let jump = match op {
            CmpOp::Eq => BPF_JEQ,
            CmpOp::Gt => BPF_JGT,
            _ => BPF_JGE,
        };
        let (l_lo, r_lo) = (Word::of(l, Half::Low), Word::of(r, Half::Low));
        if !(l.is_wide() || r.is_wide()) {
            return self.word(jump, &l_lo, &r_lo, t, f);
        }
        let (l_hi, r_hi) = (Word::of(l, Half::High), Word::of(r, Half::High));
        let low = self.word(jump, &l_lo, &r_lo, t, f)?;
        if jump == BPF_JEQ {
            return self.word(BPF_JEQ, &l_hi, &r_hi, low, f);
        }
        // Higher high word: decided. Equal high words: the low words decide.
        let equal_high = self.word(BPF_JGE, &l_hi, &r_hi, low, f)?;
        self.word(BPF_JGT, &l_hi, &r_hi, t, equal_high)
    }

    /// One 32-bit comparison `l op r`, op being `JEQ`, `JGT` or `JGE`.
    fn word(&mut self, op: u16, l: &Word, r: &Word, t: NodeId, f: NodeId) -> Result<NodeId, Error> {
        match (l, r) {
            (Word::Const(a), Word::Const(b)) => {
                let holds = match op {
                    BPF_JEQ => a == b,
                    BPF_JGT => a > b,
                    _ => a >= b,
                };
                Ok(if holds { t } else { f })
            }
            // `k > x` is `!(x >= k)` and `k >= x` is `!(x > k)`.
            (Word::Const(_), _) => match op {
                BPF_JEQ => self.word(op, r, l, t, f),
                BPF_JGT => self.word(BPF_JGE, r, l, f, t),
                _ => self.word(BPF_JGT, r, l, f, t),
            },
            (
                Word::Op {
                    and: true,
                    items,
                    konst: Some(mask),
                },
                Word::Const(0),
            ) if op != BPF_JGE => {
                // `(x & m) == 0` and `(x & m) > 0` test bits: JSET.
                let rest = if items.len() == 1 {
                    items[0].clone()
                } else {
                    Word::Op {
                        and: true,
                        items: items.clone(),
                        konst: None,
                    }
                };
                let (t, f) = if op == BPF_JEQ { (f, t) } else { (t, f) };
                let test = self.graph.jump(BPF_JSET, *mask, t, f);
                if test == t || test == f {
                    return Ok(test);
                }
                self.compute(&rest, test, 0)
            }
            (_, Word::Const(k)) => {
                let test = self.graph.jump(op, *k, t, f);
                if test == t || test == f {
                    return Ok(test);
                }
                self.compute(l, test, 0)
            }
            (Word::Load(offset), _) => {
                // Right side into X through A, then the argument word into A.
                let test = self.graph.jump(op | BPF_X, 0, t, f);
                let test = self.graph.load(*offset, test);
                let test = self.graph.stmt(BPF_MISC | BPF_TAX, 0, test);
                self.compute(r, test, 0)
            }
            (_, Word::Load(offset)) => {
                // With the sides swapped, `l > r` is `!(r >= l)`, `l >= r` is `!(r > l)`.
                let test = match op {
                    BPF_JEQ => self.graph.jump(BPF_JEQ | BPF_X, 0, t, f),
                    BPF_JGT => self.graph.jump(BPF_JGE | BPF_X, 0, f, t),
                    _ => self.graph.jump(BPF_JGT | BPF_X, 0, f, t),
                };
                let test = self.graph.load(*offset, test);
                let test = self.graph.stmt(BPF_MISC | BPF_TAX, 0, test);
                self.compute(l, test, 0)
            }
            _ => {
                // Both sides computed: the right one waits in M[0].
                let test = self.graph.jump(op | BPF_X, 0, t, f);
                let test = self.graph.stmt(BPF_LDX | BPF_MEM, 0, test);
                let test = self.compute(l, test, 1)?;
                let test = self.graph.stmt(BPF_ST, 0, test);
                self.compute(r, test, 0)
            }
        }
    }

    /// Code that leaves `word` in A and goes on to `next`, using scratch words from
    /// `depth` up.
    fn compute(&mut self, word: &Word, next: NodeId, depth: u32) -> Result<NodeId, Error> {
        match word {
            Word::Const(k) => Ok(self.graph.stmt(BPF_LD | BPF_IMM, *k, next)),
            Word::Load(offset) => Ok(self.graph.load(*offset, next)),
            Word::Op { and, items, konst } => {
                let op = if *and { BPF_AND } else { BPF_OR };
                let mut next = next;
                if let Some(k) = konst {
                    next = self.graph.stmt(BPF_ALU | op | BPF_K, *k, next);
                }
                for item in items[1..].iter().rev() {
                    next = self.graph.stmt(BPF_ALU | op | BPF_X, 0, next);
                    if let Word::Load(offset) = item {
                        next = self.graph.load(*offset, next);
                        next = self.graph.stmt(BPF_MISC | BPF_TAX, 0, next);
                    } else {
                        if depth as usize >= MEMWORDS {
                            return Err(Error::ScratchExhausted);
                        }
                        next = self.graph.stmt(BPF_LDX | BPF_MEM, depth, next);
                        next = self.compute(item, next, depth + 1)?;
                        next = self.graph.stmt(BPF_ST, depth, next);
                    }
                }
                self.compute(&items[0], next, depth)
            }
        }
    }
}
