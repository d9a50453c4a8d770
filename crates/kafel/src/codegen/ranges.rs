//! From a rule list to decisions over the whole range of syscall numbers.
//!
//! Every 32-bit syscall number gets a [`Decision`]: the conditional rules naming it, in
//! textual order, each tried in turn, and the action that applies when none holds (an
//! unconditional rule for the number, or the default). Numbers no rule names form gaps
//! with the default. Neighbouring numbers with equal decisions are merged into one
//! [`Span`], so the spans cover `0..=u32::MAX` without overlap.
//!
//! x32 on x86-64: the kernel also accepts x86-64 syscalls with bit 30 set (`__X32_SYSCALL_BIT`)
//! through the x32 ABI, with the same arch value. A deny-list written for x86-64 numbers
//! would let all of them through under `DEFAULT ALLOW`, so in an x86-64 section every
//! number from `0x40000000` to `0xfffffffe` that the policy does not name is denied: with
//! the default when that is already a denial (`KILL*`, `ERRNO`, `TRAP`), otherwise with
//! `KILL_PROCESS`. `0xffffffff` is what `syscall(-1)` passes and what policies name as
//! `SYSCALL[-1]`; it keeps the default.

use std::collections::BTreeMap;

use crate::arch::Arch;
use crate::ir::{Action, ArchPolicy, Cond};

/// The first and last x32 number that is denied unless named.
pub(super) const X32_FIRST: u32 = 0x4000_0000;
pub(super) const X32_LAST: u32 = 0xffff_fffe;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decision {
    /// Tried in order; the first condition that holds gives the action.
    pub(super) tests: Vec<(Cond, Action)>,
    pub(super) otherwise: Action,
}

impl Decision {
    fn plain(action: Action) -> Decision {
        Decision {
            tests: Vec::new(),
            otherwise: action,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) first: u32,
    pub(super) last: u32,
    pub(super) decision: Decision,
    /// How many numbers in the span the policy names.
    pub(super) named: u32,
    /// Whether the span holds numbers the policy does not name.
    pub(super) has_gap: bool,
}

/// The action for x32 numbers a policy does not name.
pub(super) fn x32_denial(default: Action) -> Action {
    match default {
        Action::KillThread | Action::KillProcess | Action::Errno(_) | Action::Trap(_) => default,
        _ => Action::KillProcess,
    }
}

/// The decisions of one section, as sorted spans covering every syscall number.
pub(super) fn spans(section: &ArchPolicy) -> Vec<Span> {
    let mut by_nr: BTreeMap<u32, Decision> = BTreeMap::new();
    let mut closed: BTreeMap<u32, bool> = BTreeMap::new();
    for rule in &section.rules {
        let decision = by_nr
            .entry(rule.nr)
            .or_insert_with(|| Decision::plain(section.default));
        let done = closed.entry(rule.nr).or_insert(false);
        if *done {
            continue;
        }
        match &rule.filter {
            Some(cond) => decision.tests.push((cond.clone(), rule.action)),
            None => {
                decision.otherwise = rule.action;
                *done = true;
            }
        }
    }

    let mut out: Vec<Span> = Vec::new();
    let mut push = |first: u32, last: u32, decision: Decision, named: bool| {
        let mut decision = decision;
        // A last test whose action is the fallback's changes nothing.
        while decision
            .tests
            .last()
            .is_some_and(|(_, action)| *action == decision.otherwise)
        {
            decision.tests.pop();
        }
        let count = if named { last - first + 1 } else { 0 };
        if let Some(prev) = out.last_mut()
            && prev.decision == decision
        {
            prev.last = last;
            prev.named += count;
            prev.has_gap |= !named;
            return;
        }
        out.push(Span {
            first,
            last,
            decision,
            named: count,
            has_gap: !named,
        });
    };

    let x32 = (section.arch == Arch::X86_64).then(|| x32_denial(section.default));
    let gap = |first: u32, last: u32, push: &mut dyn FnMut(u32, u32, Decision, bool)| {
        // Split the gap where it meets the x32 block.
        let mut start = first;
        while start <= last {
            let (end, action) = match x32 {
                Some(deny) if (X32_FIRST..=X32_LAST).contains(&start) => (last.min(X32_LAST), deny),
                Some(_) if start < X32_FIRST => (last.min(X32_FIRST - 1), section.default),
                _ => (last, section.default),
            };
            push(start, end, Decision::plain(action), false);
            if end == u32::MAX {
                break;
            }
            start = end + 1;
        }
    };

    let mut next: u64 = 0;
    for (nr, decision) in by_nr {
        if u64::from(nr) > next {
            gap(next as u32, nr - 1, &mut push);
        }
        push(nr, nr, decision, true);
        next = u64::from(nr) + 1;
    }
    if next <= u64::from(u32::MAX) {
        gap(next as u32, u32::MAX, &mut push);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{CmpOp, Rule, Value};

    fn rule(nr: u32, action: Action, filter: Option<Cond>) -> Rule {
        Rule { nr, action, filter }
    }

    fn fd_is(n: u64) -> Cond {
        Cond::Cmp(CmpOp::Eq, Value::Arg { index: 0, size: 4 }, Value::Num(n))
    }

    #[test]
    fn unconditional_rule_ends_the_chain_and_later_rules_are_ignored() {
        let section = ArchPolicy {
            arch: Arch::I386,
            default: Action::KillThread,
            rules: vec![
                rule(3, Action::Errno(1), Some(fd_is(1))),
                rule(3, Action::Allow, None),
                rule(3, Action::Log, Some(fd_is(2))),
            ],
        };
        let spans = spans(&section);
        assert_eq!(spans.len(), 3);
        assert_eq!((spans[1].first, spans[1].last), (3, 3));
        assert_eq!(spans[1].decision.tests, vec![(fd_is(1), Action::Errno(1))]);
        assert_eq!(spans[1].decision.otherwise, Action::Allow);
    }

    #[test]
    fn adjacent_numbers_with_the_same_action_merge() {
        let section = ArchPolicy {
            arch: Arch::I386,
            default: Action::KillThread,
            rules: vec![rule(0, Action::Allow, None), rule(1, Action::Allow, None)],
        };
        let spans = spans(&section);
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].first, spans[0].last, spans[0].named), (0, 1, 2));
        assert_eq!((spans[1].first, spans[1].last), (2, u32::MAX));
    }

    #[test]
    fn x32_numbers_are_denied_on_x86_64_but_minus_one_keeps_the_default() {
        let section = ArchPolicy {
            arch: Arch::X86_64,
            default: Action::Allow,
            rules: vec![rule(101, Action::KillProcess, None)],
        };
        let spans = spans(&section);
        let at = |nr: u32| {
            let span = spans
                .iter()
                .find(|s| s.first <= nr && nr <= s.last)
                .unwrap();
            span.decision.otherwise
        };
        assert_eq!(at(101), Action::KillProcess);
        assert_eq!(at(102), Action::Allow);
        assert_eq!(at(0x4000_0065), Action::KillProcess);
        assert_eq!(at(0x8000_0000), Action::KillProcess);
        assert_eq!(at(0xffff_ffff), Action::Allow);
    }

    #[test]
    fn x32_denial_reuses_a_denying_default() {
        assert_eq!(x32_denial(Action::Errno(1)), Action::Errno(1));
        assert_eq!(x32_denial(Action::KillThread), Action::KillThread);
        assert_eq!(x32_denial(Action::Log), Action::KillProcess);
        assert_eq!(x32_denial(Action::Trace(3)), Action::KillProcess);
    }
}
