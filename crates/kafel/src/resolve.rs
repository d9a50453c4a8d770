//! Name resolution: the syntax tree to one [`ir::ArchPolicy`] per target architecture.
//!
//! This happens in two steps, as in Kafel:
//!
//! 1. One pass in textual order gives constants, policies and `USE`s their meaning. Kafel
//!    does this while parsing, so a constant or policy must be defined before it is used,
//!    and a policy cannot `USE` itself.
//! 2. For each target architecture, every rule guarded in for it is validated against that
//!    architecture's syscall table — in every policy, used or not — and the main policy is
//!    expanded (`USE` pasting the used policy's entries in place, a second `USE` of the same
//!    policy adding nothing) into IR rules with bound arguments and folded filters.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::arch::{Arch, Param};
use crate::ast::{self, ActionSpec, BitsExpr, BoolExpr, Entry, Item, Name, SyscallRef};
use crate::diag::Report;
use crate::fold::{self, Expr, Folded};
use crate::ir::{self, Action, CmpOp, Value};
use crate::lex::Token;

/// Resolves a parsed file for `arches`. The policy is meaningful only when no report was
/// added.
pub(crate) fn resolve(
    file: &ast::File,
    tokens: &[Token],
    arches: &[Arch],
    reports: &mut Vec<Report>,
) -> ir::Policy {
    let mut resolver = Resolver {
        tokens,
        reports,
        constants: HashMap::new(),
        bodies: Vec::new(),
        policies: HashMap::new(),
        main: None,
        default: None,
    };
    for item in &file.items {
        resolver.item(item);
    }

    let mut arch_errors: BTreeMap<(usize, String), Vec<Arch>> = BTreeMap::new();
    let mut sections = Vec::new();
    let mut seen = HashSet::new();
    for &arch in arches {
        if !seen.insert(arch) {
            continue;
        }
        for error in resolver.validate(arch) {
            arch_errors
                .entry((error.token, error.message))
                .or_default()
                .push(arch);
        }
        sections.push(ir::ArchPolicy {
            arch,
            default: resolver.default.unwrap_or(Action::KillThread),
            rules: resolver.rules(arch),
        });
    }
    for ((token, message), arches) in arch_errors {
        let names: Vec<&str> = arches.iter().map(|a| a.name()).collect();
        let message = message.replace(ARCHES, &names.join(" and "));
        resolver.error(token, message);
    }
    ir::Policy { sections }
}

/// Where per-architecture messages name the architectures they hold for.
const ARCHES: &str = "{arches}";

/// The names `ON` accepts, case-insensitively, as bits of an architecture set. Kafel
/// knows eight architectures; only x86-64 and i386 can be compiled for here, and rules
/// guarded for the others are simply left out.
const GUARD_NAMES: [(&str, u8); 13] = [
    ("arm", 1 << 0),
    ("aarch64", 1 << 1),
    ("arm64", 1 << 1),
    ("x86_64", 1 << 2),
    ("amd64", 1 << 2),
    ("x86", 1 << 3),
    ("i386", 1 << 3),
    ("mips", 1 << 4),
    ("mipso32", 1 << 4),
    ("mips64", 1 << 5),
    ("riscv64", 1 << 6),
    ("rv64", 1 << 6),
    ("m68k", 1 << 7),
];

const ALL_ARCHES: u8 = u8::MAX;

fn guard_bit(arch: Arch) -> u8 {
    match arch {
        Arch::X86_64 => 1 << 2,
        Arch::I386 => 1 << 3,
    }
}

/// A policy body after step 1.
type Body = Vec<CEntry>;

enum CEntry {
    Use(usize),
    Block(Action, Vec<CRule>),
}

struct CRule {
    syscall: CSyscall,
    args: Option<Vec<String>>,
    /// The architectures the rule is kept for (a bit set as in [`GUARD_NAMES`]).
    guard: u8,
    filter: Option<CBool>,
}

enum CSyscall {
    Name(Name),
    Number(u32),
    /// A number that was already reported as invalid.
    Invalid,
}

/// A filter with constants replaced by their values; the remaining names are arguments.
enum CBool {
    Or(Box<CBool>, Box<CBool>),
    And(Box<CBool>, Box<CBool>),
    Not(Box<CBool>),
    Cmp(CmpOp, CBits, CBits),
}

enum CBits {
    Num(u64),
    Name(Name),
    Or(Box<CBits>, Box<CBits>),
    And(Box<CBits>, Box<CBits>),
}

/// An error found while validating for one architecture; `{arches}` in the message is
/// replaced by the architectures it holds for.
struct ArchError {
    token: usize,
    message: String,
}

struct Resolver<'a> {
    tokens: &'a [Token],
    reports: &'a mut Vec<Report>,
    /// Constants defined so far; `None` for one whose value did not parse.
    constants: HashMap<String, Option<u64>>,
    /// Every policy body, registered or not (a redefinition is still validated).
    bodies: Vec<Body>,
    policies: HashMap<String, usize>,
    main: Option<usize>,
    default: Option<Action>,
}

impl Resolver<'_> {
    fn error(&mut self, token: usize, message: String) {
        self.reports.push(Report {
            span: self.tokens[token].span,
            order: token,
            message,
        });
    }

    // ---- Step 1: textual order ----

    fn item(&mut self, item: &Item) {
        match item {
            Item::Define { hash, name, value } => {
                let value = value.as_ref().map(|v| v.value);
                match self.constants.get(&name.value) {
                    Some(Some(old)) if value.is_some_and(|v| v != *old) => {
                        let message = format!(
                            "redefinition of constant `{}` with a different value \
                             (was: {old}, is: {})",
                            name.value,
                            value.unwrap_or_default()
                        );
                        self.error(*hash, message);
                    }
                    Some(Some(_)) => {}
                    _ => {
                        self.constants.insert(name.value.clone(), value);
                    }
                }
            }
            Item::Policy {
                keyword,
                name,
                entries,
            } => {
                let body = self.entries(entries);
                self.bodies.push(body);
                let id = self.bodies.len() - 1;
                if self.policies.contains_key(&name.value) {
                    self.error(*keyword, format!("redefinition of policy `{}`", name.value));
                } else {
                    self.policies.insert(name.value.clone(), id);
                }
            }
            Item::Entries(entries) => {
                let body = self.entries(entries);
                match self.main {
                    Some(main) => self.bodies[main].extend(body),
                    None => {
                        self.bodies.push(body);
                        self.main = Some(self.bodies.len() - 1);
                    }
                }
            }
            Item::Default { keyword, action } => {
                if self.default.is_some() {
                    self.error(*keyword, "redefinition of default action".to_string());
                } else {
                    self.default = Some(action_of(action));
                }
            }
        }
    }

    fn entries(&mut self, entries: &[Entry]) -> Body {
        let mut body = Vec::new();
        for entry in entries {
            match entry {
                Entry::Use(name) => match self.policies.get(&name.value) {
                    Some(&id) => body.push(CEntry::Use(id)),
                    None => {
                        let message = format!(
                            "undefined policy `{}` (a policy must be defined before it is used)",
                            name.value
                        );
                        self.error(name.token, message);
                    }
                },
                Entry::Block { action, rules } => {
                    let rules = rules.iter().map(|r| self.rule(r)).collect();
                    body.push(CEntry::Block(action_of(action), rules));
                }
            }
        }
        body
    }

    fn rule(&mut self, rule: &ast::Rule) -> CRule {
        let syscall = match &rule.syscall {
            SyscallRef::Name(name) => match self.constants.get(&name.value) {
                Some(Some(value)) => {
                    let what = format!("constant `{}` ({value:#x})", name.value);
                    self.syscall_number(name.token, *value, &what)
                }
                Some(None) => CSyscall::Invalid,
                None => CSyscall::Name(name.clone()),
            },
            SyscallRef::Number(n) => {
                self.syscall_number(n.token, n.value, &format!("SYSCALL[{:#x}]", n.value))
            }
        };
        let guard = match &rule.archs {
            None => ALL_ARCHES,
            Some(names) => self.guard(names),
        };
        CRule {
            syscall,
            args: rule
                .args
                .as_ref()
                .map(|names| names.iter().map(|n| n.value.clone()).collect()),
            guard,
            filter: rule.filter.as_ref().map(|f| self.bool_expr(f)),
        }
    }

    /// Kafel truncates syscall numbers to 32 bits without a word; here a number that does
    /// not fit is an error. Small negative numbers are kept as their 32-bit pattern, so
    /// `SYSCALL[-1]` is 0xffffffff as in Kafel.
    fn syscall_number(&mut self, token: usize, value: u64, what: &str) -> CSyscall {
        if let Ok(nr) = u32::try_from(value) {
            return CSyscall::Number(nr);
        }
        if let Ok(negative) = i32::try_from(value as i64) {
            return CSyscall::Number(negative as u32);
        }
        self.error(
            token,
            format!("syscall number {what} does not fit in 32 bits"),
        );
        CSyscall::Invalid
    }

    fn guard(&mut self, names: &[Name]) -> u8 {
        let mut set = 0u8;
        for name in names {
            let lower = name.value.to_ascii_lowercase();
            let Some(&(_, bit)) = GUARD_NAMES.iter().find(|(n, _)| *n == lower) else {
                let known: Vec<&str> = GUARD_NAMES.iter().map(|(n, _)| *n).collect();
                let message = format!(
                    "unknown architecture `{}` (known: {})",
                    name.value,
                    known.join(", ")
                );
                self.error(name.token, message);
                continue;
            };
            if set & bit != 0 {
                self.error(
                    name.token,
                    format!("duplicate architecture `{}`", name.value),
                );
            }
            set |= bit;
        }
        set
    }

    fn bool_expr(&mut self, expr: &BoolExpr) -> CBool {
        match expr {
            BoolExpr::Or(l, r) => {
                CBool::Or(Box::new(self.bool_expr(l)), Box::new(self.bool_expr(r)))
            }
            BoolExpr::And(l, r) => {
                CBool::And(Box::new(self.bool_expr(l)), Box::new(self.bool_expr(r)))
            }
            BoolExpr::Not(e) => CBool::Not(Box::new(self.bool_expr(e))),
            BoolExpr::Cmp(op, l, r) => CBool::Cmp(cmp_op(*op), self.bits(l), self.bits(r)),
        }
    }

    fn bits(&mut self, expr: &BitsExpr) -> CBits {
        match expr {
            BitsExpr::Number(n) => CBits::Num(n.value),
            // A constant shadows an argument of the same name; a constant whose definition
            // failed stands in as 0 (its error is already reported).
            BitsExpr::Name(name) => match self.constants.get(&name.value) {
                Some(value) => CBits::Num(value.unwrap_or(0)),
                None => CBits::Name(name.clone()),
            },
            BitsExpr::Or(l, r) => CBits::Or(Box::new(self.bits(l)), Box::new(self.bits(r))),
            BitsExpr::And(l, r) => CBits::And(Box::new(self.bits(l)), Box::new(self.bits(r))),
        }
    }

    // ---- Step 2: per architecture ----

    /// Checks every rule kept for `arch`, in every policy: syscall names against the
    /// architecture's table, argument names against the syscall's.
    fn validate(&self, arch: Arch) -> Vec<ArchError> {
        let mut errors = Vec::new();
        for body in &self.bodies {
            for entry in body {
                let CEntry::Block(_, rules) = entry else {
                    continue;
                };
                for rule in rules.iter().filter(|r| r.guard & guard_bit(arch) != 0) {
                    validate_rule(rule, arch, &mut errors);
                }
            }
        }
        errors
    }

    /// The main policy's rules for `arch`, in textual order after `USE` expansion.
    fn rules(&self, arch: Arch) -> Vec<ir::Rule> {
        let mut rules = Vec::new();
        let Some(main) = self.main else {
            return rules;
        };
        let mut used = HashSet::new();
        // Explicit stack of (body, next entry) so long USE chains cannot exhaust the stack.
        let mut stack = vec![(main, 0usize)];
        while let Some((body, index)) = stack.pop() {
            let Some(entry) = self.bodies[body].get(index) else {
                continue;
            };
            stack.push((body, index + 1));
            match entry {
                CEntry::Use(id) => {
                    if used.insert(*id) {
                        stack.push((*id, 0));
                    }
                }
                CEntry::Block(action, block) => {
                    for rule in block.iter().filter(|r| r.guard & guard_bit(arch) != 0) {
                        if let Some(rule) = ir_rule(rule, *action, arch) {
                            rules.push(rule);
                        }
                    }
                }
            }
        }
        rules
    }
}

fn action_of(action: &ActionSpec) -> Action {
    match *action {
        ActionSpec::Allow => Action::Allow,
        ActionSpec::Log => Action::Log,
        ActionSpec::Kill => Action::KillThread,
        ActionSpec::KillProcess => Action::KillProcess,
        ActionSpec::UserNotif => Action::UserNotif,
        ActionSpec::Errno(n) => Action::Errno(n),
        ActionSpec::Trap(n) => Action::Trap(n),
        ActionSpec::Trace(n) => Action::Trace(n),
    }
}

fn cmp_op(op: ast::CmpOp) -> CmpOp {
    match op {
        ast::CmpOp::Eq => CmpOp::Eq,
        ast::CmpOp::Ne => CmpOp::Ne,
        ast::CmpOp::Lt => CmpOp::Lt,
        ast::CmpOp::Le => CmpOp::Le,
        ast::CmpOp::Gt => CmpOp::Gt,
        ast::CmpOp::Ge => CmpOp::Ge,
    }
}

/// The argument names a rule's filter can use, with the registers and sizes behind them.
enum Binding<'a> {
    Declared(&'a [String]),
    BuiltIn(Arch, &'a str, &'static [Param]),
    /// A syscall given by number, without declared names.
    None,
}

impl Binding<'_> {
    fn lookup(&self, name: &str) -> Option<Value> {
        match self {
            // Declared arguments are one register each, always treated as 8 bytes wide.
            Binding::Declared(names) => {
                let index = names.iter().position(|n| n == name)?;
                let index = u8::try_from(index).unwrap_or(u8::MAX);
                Some(Value::Arg { index, size: 8 })
            }
            // The table says which register holds the parameter; one wider than a
            // register (8 bytes on i386) is read from the pair, as the kernel passes it.
            Binding::BuiltIn(arch, _, params) => {
                let param = params.iter().find(|p| p.name == name)?;
                Some(if param.is_pair(*arch) {
                    Value::ArgPair {
                        lo: param.reg,
                        hi: param.reg + 1,
                    }
                } else {
                    Value::Arg {
                        index: param.reg,
                        size: param.size,
                    }
                })
            }
            Binding::None => None,
        }
    }
}

/// The binding for `rule` on `arch`, or `None` when its syscall name is unknown there.
fn binding(rule: &CRule, arch: Arch) -> Option<Binding<'_>> {
    if let Some(names) = &rule.args {
        return Some(Binding::Declared(names));
    }
    match &rule.syscall {
        CSyscall::Name(name) => {
            let syscall = arch.syscall(&name.value)?;
            Some(Binding::BuiltIn(arch, syscall.name, syscall.params))
        }
        CSyscall::Number(_) | CSyscall::Invalid => Some(Binding::None),
    }
}

fn validate_rule(rule: &CRule, arch: Arch, errors: &mut Vec<ArchError>) {
    if let CSyscall::Name(name) = &rule.syscall
        && arch.syscall(&name.value).is_none()
    {
        errors.push(ArchError {
            token: name.token,
            message: format!("unknown syscall `{}` on {ARCHES}", name.value),
        });
        return;
    }
    let (Some(filter), Some(binding)) = (&rule.filter, binding(rule, arch)) else {
        return;
    };
    let mut names = Vec::new();
    collect_names(filter, &mut names);
    for name in names {
        if binding.lookup(&name.value).is_some() {
            continue;
        }
        let why = match &binding {
            Binding::Declared(_) => "not a constant or a declared argument".to_string(),
            Binding::BuiltIn(_, syscall, _) => {
                format!("not a constant or an argument of `{syscall}` on {ARCHES}")
            }
            Binding::None => "a syscall given by number has no argument names; declare them, \
                              as in SYSCALL[n](a, b)"
                .to_string(),
        };
        errors.push(ArchError {
            token: name.token,
            message: format!("undefined identifier `{}`: {why}", name.value),
        });
    }
}

fn collect_names<'a>(expr: &'a CBool, out: &mut Vec<&'a Name>) {
    fn bits<'a>(expr: &'a CBits, out: &mut Vec<&'a Name>) {
        match expr {
            CBits::Num(_) => {}
            CBits::Name(name) => out.push(name),
            CBits::Or(l, r) | CBits::And(l, r) => {
                bits(l, out);
                bits(r, out);
            }
        }
    }
    match expr {
        CBool::Or(l, r) | CBool::And(l, r) => {
            collect_names(l, out);
            collect_names(r, out);
        }
        CBool::Not(e) => collect_names(e, out),
        CBool::Cmp(_, l, r) => {
            bits(l, out);
            bits(r, out);
        }
    }
}

/// The IR rule for `rule` on `arch`, or `None` when its filter folds to false (or the rule
/// has an error, already reported).
fn ir_rule(rule: &CRule, action: Action, arch: Arch) -> Option<ir::Rule> {
    let nr = match &rule.syscall {
        CSyscall::Name(name) => arch.syscall(&name.value)?.nr,
        CSyscall::Number(nr) => *nr,
        CSyscall::Invalid => return None,
    };
    let filter = match &rule.filter {
        None => None,
        Some(filter) => {
            let binding = binding(rule, arch)?;
            match fold::fold(bind(filter, &binding)) {
                Folded::True => None,
                Folded::False => return None,
                Folded::Cond(cond) => Some(cond),
            }
        }
    };
    Some(ir::Rule { nr, action, filter })
}

fn bind(expr: &CBool, binding: &Binding) -> Expr {
    match expr {
        CBool::Or(l, r) => Expr::Or(Box::new(bind(l, binding)), Box::new(bind(r, binding))),
        CBool::And(l, r) => Expr::And(Box::new(bind(l, binding)), Box::new(bind(r, binding))),
        CBool::Not(e) => Expr::Not(Box::new(bind(e, binding))),
        CBool::Cmp(op, l, r) => Expr::Cmp(*op, bind_bits(l, binding), bind_bits(r, binding)),
    }
}

fn bind_bits(expr: &CBits, binding: &Binding) -> Value {
    match expr {
        CBits::Num(n) => Value::Num(*n),
        // An unknown name was reported by validation; 0 keeps the (discarded) IR total.
        CBits::Name(name) => binding.lookup(&name.value).unwrap_or(Value::Num(0)),
        CBits::Or(l, r) => Value::BitOr(
            Box::new(bind_bits(l, binding)),
            Box::new(bind_bits(r, binding)),
        ),
        CBits::And(l, r) => Value::BitAnd(
            Box::new(bind_bits(l, binding)),
            Box::new(bind_bits(r, binding)),
        ),
    }
}
