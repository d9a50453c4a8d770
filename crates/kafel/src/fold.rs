//! Constant folding, exactly as Kafel does it.
//!
//! Folding decides which rules exist: a filter that folds to true makes its rule
//! unconditional, one that folds to false removes the rule. To give the same decisions as
//! Kafel, these are Kafel's simplifications and no others, applied bottom-up:
//!
//! * `&` and `|` of two numbers, and a comparison of two numbers, are computed;
//! * `x & 0` is 0, `x & ~0` is `x`, `x | 0` is `x`, `x | ~0` is `~0` (either side);
//! * an argument compared with itself is true for `==`, `<=`, `>=` and false otherwise;
//! * `!` of a constant is computed, and `&&`/`||` with a constant side short-circuit.
//!
//! Anything else keeps its shape and operand order. In particular `(fd & 1) == 2` is left
//! alone although it can never hold: Kafel keeps such rules, and so must we.

use crate::ir::{CmpOp, Cond, Value};

/// A boolean expression with arguments already bound, before folding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(CmpOp, Value, Value),
}

/// The outcome of folding a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Folded {
    True,
    False,
    Cond(Cond),
}

pub(crate) fn fold(expr: Expr) -> Folded {
    match expr {
        Expr::Not(inner) => match fold(*inner) {
            Folded::True => Folded::False,
            Folded::False => Folded::True,
            Folded::Cond(c) => Folded::Cond(Cond::Not(Box::new(c))),
        },
        Expr::And(l, r) => match (fold(*l), fold(*r)) {
            (Folded::False, _) | (_, Folded::False) => Folded::False,
            (Folded::True, other) | (other, Folded::True) => other,
            (Folded::Cond(l), Folded::Cond(r)) => Folded::Cond(Cond::And(Box::new(l), Box::new(r))),
        },
        Expr::Or(l, r) => match (fold(*l), fold(*r)) {
            (Folded::True, _) | (_, Folded::True) => Folded::True,
            (Folded::False, other) | (other, Folded::False) => other,
            (Folded::Cond(l), Folded::Cond(r)) => Folded::Cond(Cond::Or(Box::new(l), Box::new(r))),
        },
        Expr::Cmp(op, l, r) => {
            let (l, r) = (fold_value(l), fold_value(r));
            match (&l, &r) {
                (Value::Num(a), Value::Num(b)) => constant(compare(op, *a, *b)),
                (Value::Arg { index: a, .. }, Value::Arg { index: b, .. })
                | (Value::ArgPair { lo: a, .. }, Value::ArgPair { lo: b, .. })
                    if a == b =>
                {
                    constant(matches!(op, CmpOp::Eq | CmpOp::Le | CmpOp::Ge))
                }
                _ => Folded::Cond(Cond::Cmp(op, l, r)),
            }
        }
    }
}

fn constant(value: bool) -> Folded {
    if value { Folded::True } else { Folded::False }
}

/// Compares two numbers on all 64 bits, as Kafel's folding does.
fn compare(op: CmpOp, a: u64, b: u64) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

pub(crate) fn fold_value(value: Value) -> Value {
    match value {
        Value::BitAnd(l, r) => match (fold_value(*l), fold_value(*r)) {
            (Value::Num(a), Value::Num(b)) => Value::Num(a & b),
            (Value::Num(0), _) | (_, Value::Num(0)) => Value::Num(0),
            (Value::Num(u64::MAX), other) | (other, Value::Num(u64::MAX)) => other,
            (l, r) => Value::BitAnd(Box::new(l), Box::new(r)),
        },
        Value::BitOr(l, r) => match (fold_value(*l), fold_value(*r)) {
            (Value::Num(a), Value::Num(b)) => Value::Num(a | b),
            (Value::Num(u64::MAX), _) | (_, Value::Num(u64::MAX)) => Value::Num(u64::MAX),
            (Value::Num(0), other) | (other, Value::Num(0)) => other,
            (l, r) => Value::BitOr(Box::new(l), Box::new(r)),
        },
        leaf => leaf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(index: u8, size: u8) -> Value {
        Value::Arg { index, size }
    }

    fn cmp(op: CmpOp, l: Value, r: Value) -> Expr {
        Expr::Cmp(op, l, r)
    }

    #[test]
    fn comparing_two_numbers_folds_on_64_bits() {
        let e = cmp(CmpOp::Eq, Value::Num(0x1_0000_0001), Value::Num(1));
        assert_eq!(fold(e), Folded::False);
        assert_eq!(
            fold(cmp(CmpOp::Lt, Value::Num(1), Value::Num(2))),
            Folded::True
        );
    }

    #[test]
    fn an_argument_compared_with_itself_folds() {
        for (op, expect) in [
            (CmpOp::Eq, Folded::True),
            (CmpOp::Le, Folded::True),
            (CmpOp::Ge, Folded::True),
            (CmpOp::Ne, Folded::False),
            (CmpOp::Lt, Folded::False),
            (CmpOp::Gt, Folded::False),
        ] {
            assert_eq!(fold(cmp(op, arg(0, 4), arg(0, 4))), expect, "{op:?}");
        }
    }

    #[test]
    fn masks_with_zero_and_all_ones_simplify_on_either_side() {
        let and0 = Value::BitAnd(Box::new(Value::Num(0)), Box::new(arg(1, 8)));
        assert_eq!(fold_value(and0), Value::Num(0));
        let and_ones = Value::BitAnd(Box::new(arg(1, 8)), Box::new(Value::Num(u64::MAX)));
        assert_eq!(fold_value(and_ones), arg(1, 8));
        let or0 = Value::BitOr(Box::new(Value::Num(0)), Box::new(arg(1, 8)));
        assert_eq!(fold_value(or0), arg(1, 8));
        let or_ones = Value::BitOr(Box::new(arg(1, 8)), Box::new(Value::Num(u64::MAX)));
        assert_eq!(fold_value(or_ones), Value::Num(u64::MAX));
    }

    #[test]
    fn a_mask_that_becomes_a_number_lets_the_comparison_fold() {
        // (fd | -1) == -1 is always true once the mask folds to ~0.
        let mask = Value::BitOr(Box::new(arg(0, 4)), Box::new(Value::Num(u64::MAX)));
        assert_eq!(
            fold(cmp(CmpOp::Eq, mask, Value::Num(u64::MAX))),
            Folded::True
        );
    }

    #[test]
    fn other_masks_and_operand_order_are_kept() {
        let mask = Value::BitAnd(Box::new(Value::Num(1)), Box::new(arg(0, 4)));
        let e = cmp(CmpOp::Eq, mask.clone(), Value::Num(2));
        assert_eq!(
            fold(e),
            Folded::Cond(Cond::Cmp(CmpOp::Eq, mask, Value::Num(2)))
        );
        let e = cmp(CmpOp::Lt, Value::Num(3), arg(2, 8));
        let expect = Cond::Cmp(CmpOp::Lt, Value::Num(3), arg(2, 8));
        assert_eq!(fold(e), Folded::Cond(expect));
    }

    #[test]
    fn logic_with_constant_sides_short_circuits() {
        let live = || cmp(CmpOp::Eq, arg(0, 4), Value::Num(1));
        let live_cond = Cond::Cmp(CmpOp::Eq, arg(0, 4), Value::Num(1));
        let t = || cmp(CmpOp::Eq, Value::Num(1), Value::Num(1));
        let f = || cmp(CmpOp::Eq, Value::Num(1), Value::Num(2));

        let and = |a, b| Expr::And(Box::new(a), Box::new(b));
        let or = |a, b| Expr::Or(Box::new(a), Box::new(b));
        assert_eq!(fold(and(t(), live())), Folded::Cond(live_cond.clone()));
        assert_eq!(fold(and(live(), f())), Folded::False);
        assert_eq!(fold(or(f(), live())), Folded::Cond(live_cond.clone()));
        assert_eq!(fold(or(live(), t())), Folded::True);
        assert_eq!(fold(Expr::Not(Box::new(f()))), Folded::True);
        let not_live = Folded::Cond(Cond::Not(Box::new(live_cond)));
        assert_eq!(fold(Expr::Not(Box::new(live()))), not_live);
    }
}
