//! The parser: tokens to the syntax tree, following Kafel's grammar.
//!
//! A hand-written recursive descent. After an error it reports, then skips to a place where
//! parsing can sensibly resume (the next `,` or `}` of a rule list, the next statement), so
//! one run reports every problem in the file. A missing comma between rules or entries is
//! reported and parsing goes on as if it were there.
//!
//! Expressions follow Kafel's precedence, which is not C's: `,` (an alternative spelling of
//! "or") binds loosest, then `||`, `&&`, `!`, the comparisons, and `|` and `&` bind tighter
//! than the comparisons, so `flags == 1|2` compares with 3.

use crate::ast::{
    ActionSpec, BitsExpr, BoolExpr, CmpOp, Entry, File, Item, Located, Name, Rule, SyscallRef,
};
use std::collections::HashSet;

use crate::diag::Report;
use crate::lex::{Tok, Token};
use crate::span::Files;

/// Kafel's limit on expression depth: a node may sit at most this far above its leaves.
pub(crate) const MAX_EXPR_DEPTH: u32 = 200;

/// How deeply parentheses may nest. Parentheses add nothing to Kafel's expression depth;
/// what bounds them there is its bison parser's stack of 10000 entries, one of which each
/// open parenthesis holds (the rest of the policy holds a few more, so Kafel gives up 9 to
/// 12 levels earlier, depending on what surrounds them).
const MAX_NESTING: u32 = 10_000;

/// How many runs of consecutive `(` may nest. A run is read in a loop, so only nested
/// runs recurse; and every run nested inside another sits under an operator (`!`, `&&`,
/// `&`, a comparison, ...) of the outer one's contents, which adds a level of depth. So
/// the contents of the outermost of `n` nested runs are at least `n - 1` deep, and more
/// runs than this exceed Kafel's depth limit. Nested `!` need no limit of their own: 200
/// of them already exceed it.
const MAX_RUNS: u32 = MAX_EXPR_DEPTH + 1;

/// Parses the whole token list, which must end in [`Tok::Eof`].
///
/// `lexical_errors` holds the token indices that follow a lexical error: the parser reports
/// nothing there, since the lexer already explained what is wrong.
pub(crate) fn parse(
    tokens: &[Token],
    files: &Files,
    lexical_errors: &[usize],
) -> (File, Vec<Report>) {
    let mut parser = Parser {
        tokens,
        files,
        pos: 0,
        reports: Vec::new(),
        lexical_errors: lexical_errors.iter().copied().collect(),
        misplaced: Vec::new(),
        nesting: 0,
        runs: 0,
        bangs: 0,
        depth_reported: false,
    };
    let file = parser.file();
    (file, parser.reports)
}

/// Marks a failed parse whose error has already been reported.
#[derive(Debug)]
struct Failed;

type PResult<T> = Result<T, Failed>;

/// An expression with its depth in Kafel's sense (leaves are 0).
type Deep<T> = (T, u32);

/// What a parenthesised group turned out to be.
enum Group {
    Bool(Deep<BoolExpr>),
    Bits(Deep<BitsExpr>),
}

struct Parser<'a> {
    tokens: &'a [Token],
    files: &'a Files,
    pos: usize,
    reports: Vec<Report>,
    lexical_errors: HashSet<usize>,
    /// Statements found where they are not allowed (inside a POLICY), already reported;
    /// they are still kept so their names do not cause further errors.
    misplaced: Vec<Item>,
    /// Current nesting of parentheses.
    nesting: u32,
    /// Current nesting of runs of consecutive `(`.
    runs: u32,
    /// Current nesting of `!`.
    bangs: u32,
    /// Whether the current filter already has a depth error.
    depth_reported: bool,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].tok
    }

    fn at(&self, tok: &Tok) -> bool {
        self.peek() == tok
    }

    /// Moves past the current token (never past the final `Eof`) and returns its index.
    fn bump(&mut self) -> usize {
        let index = self.pos;
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        index
    }

    /// Records an error at a token, unless one was already recorded there: the first error
    /// at a place is the informative one.
    fn error_at(&mut self, token: usize, message: String) {
        if self.reports.last().is_some_and(|r| r.order == token)
            || self.lexical_errors.contains(&token)
        {
            return;
        }
        self.reports.push(Report {
            span: self.tokens[token].span,
            order: token,
            message,
        });
    }

    /// How the current token is named in messages.
    fn found(&self) -> String {
        let token = &self.tokens[self.pos];
        match &token.tok {
            Tok::Number(_) => format!("number `{}`", self.files.text(token.span)),
            tok => tok.to_string(),
        }
    }

    fn expected(&mut self, what: &str) -> Failed {
        let message = format!("expected {what}, found {}", self.found());
        self.error_at(self.pos, message);
        Failed
    }

    fn expect(&mut self, tok: Tok, what: &str) -> PResult<usize> {
        if self.at(&tok) {
            Ok(self.bump())
        } else {
            Err(self.expected(what))
        }
    }

    fn name(&mut self, what: &str) -> PResult<Name> {
        if let Tok::Ident(name) = self.peek() {
            let value = name.clone();
            let token = self.bump();
            Ok(Located { value, token })
        } else {
            Err(self.expected(what))
        }
    }

    /// A name being defined (a policy, constant or argument). A keyword is reported but
    /// taken as the name, so the rest of the definition is still checked.
    fn new_name(&mut self, what: &str) -> PResult<Name> {
        if let Some(word) = self.peek().keyword_word() {
            let message = format!("`{word}` is a keyword and cannot be used as {what}");
            self.error_at(self.pos, message);
            let token = self.bump();
            return Ok(Located { value: word, token });
        }
        self.name(what)
    }

    fn number(&mut self, what: &str) -> PResult<Located<u64>> {
        if let Tok::Number(value) = *self.peek() {
            let token = self.bump();
            Ok(Located { value, token })
        } else {
            Err(self.expected(what))
        }
    }

    /// Tokens that can only begin a top-level statement or an entry; skipping stops there.
    fn at_statement_start(&self) -> bool {
        let tok = self.peek();
        tok.is_action()
            || matches!(
                tok,
                Tok::Use | Tok::Policy | Tok::Default | Tok::Hash | Tok::Eof
            )
    }

    /// Skips tokens until, outside any brackets opened while skipping, one of `stop`
    /// matches (the token is not consumed), or a statement begins.
    fn skip_until(&mut self, stop: &[Tok]) {
        let mut depth = 0usize;
        loop {
            if self.at_statement_start() {
                return;
            }
            let tok = self.peek().clone();
            if depth == 0 && stop.contains(&tok) {
                return;
            }
            match tok {
                Tok::LBrace | Tok::LParen | Tok::LBracket => depth += 1,
                Tok::RBrace | Tok::RParen | Tok::RBracket if depth > 0 => depth -= 1,
                _ => {}
            }
            self.bump();
        }
    }

    // ---- Statements ----

    fn file(&mut self) -> File {
        let mut file = File::default();
        if self.at(&Tok::Eof) {
            self.expected("a policy statement (an action block, USE, POLICY, DEFAULT or #define)");
        }
        while !self.at(&Tok::Eof) {
            let start = self.pos;
            let item = self.item();
            file.items.append(&mut self.misplaced);
            match item {
                Ok(item) => file.items.push(item),
                Err(Failed) => {
                    self.skip_until(&[]);
                    if self.pos == start {
                        self.bump();
                    }
                }
            }
        }
        file
    }

    fn item(&mut self) -> PResult<Item> {
        match self.peek() {
            Tok::Hash => self.define(),
            Tok::Policy => self.policy(),
            Tok::Default => {
                let keyword = self.bump();
                let action = self.action()?;
                Ok(Item::Default { keyword, action })
            }
            tok if tok.is_action() || *tok == Tok::Use => Ok(Item::Entries(self.top_entries()?)),
            _ => Err(self.expected("an action block, USE, POLICY, DEFAULT or #define")),
        }
    }

    fn define(&mut self) -> PResult<Item> {
        let hash = self.bump();
        self.expect(Tok::Define, "`define` after '#'")?;
        let name = self.new_name("a constant name")?;
        let value = self
            .number("a number (a constant's value must be a literal)")
            .ok();
        Ok(Item::Define { hash, name, value })
    }

    fn policy(&mut self) -> PResult<Item> {
        let keyword = self.bump();
        let name = self.new_name("a policy name")?;
        self.expect(Tok::LBrace, "'{'")?;
        let mut entries = Vec::new();
        if self.at(&Tok::RBrace) {
            self.bump();
            return Ok(Item::Policy {
                keyword,
                name,
                entries,
            });
        }
        loop {
            if matches!(self.peek(), Tok::Default | Tok::Hash) {
                let what = if self.at(&Tok::Default) {
                    "DEFAULT"
                } else {
                    "#define"
                };
                let message = format!("{what} is only allowed at the top level, not inside POLICY");
                self.error_at(self.pos, message);
                if let Ok(item) = self.item() {
                    self.misplaced.push(item);
                }
                let tok = self.peek();
                if tok.is_action() || matches!(tok, Tok::Use | Tok::Default | Tok::Hash) {
                    continue;
                }
            } else {
                match self.entry() {
                    Ok(entry) => entries.push(entry),
                    Err(Failed) => self.skip_until(&[Tok::Comma, Tok::RBrace]),
                }
            }
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBrace => {
                    self.bump();
                    break;
                }
                tok if tok.is_action() || *tok == Tok::Use => {
                    // A missing comma: say so and read on as if it were there.
                    self.expected("',' or '}'");
                }
                _ => {
                    self.expected("',' or '}'");
                    self.skip_until(&[Tok::Comma, Tok::RBrace]);
                    match self.peek() {
                        Tok::Comma => {
                            self.bump();
                        }
                        Tok::RBrace => {
                            self.bump();
                            break;
                        }
                        tok if tok.is_action() || *tok == Tok::Use => {}
                        _ => break,
                    }
                }
            }
        }
        Ok(Item::Policy {
            keyword,
            name,
            entries,
        })
    }

    /// Entries at the top level: commas between them are optional, but a comma must be
    /// followed by another entry.
    fn top_entries(&mut self) -> PResult<Vec<Entry>> {
        let mut entries = vec![self.entry()?];
        while self.at(&Tok::Comma) {
            self.bump();
            if !(self.peek().is_action() || self.at(&Tok::Use)) {
                return Err(self.expected("an action block or USE after ','"));
            }
            entries.push(self.entry()?);
        }
        Ok(entries)
    }

    fn entry(&mut self) -> PResult<Entry> {
        if self.at(&Tok::Use) {
            self.bump();
            return Ok(Entry::Use(self.new_name("a policy name")?));
        }
        if !self.peek().is_action() {
            return Err(self.expected("an action block or USE"));
        }
        let action = self.action()?;
        self.expect(Tok::LBrace, "'{'")?;
        let mut rules = Vec::new();
        if self.at(&Tok::RBrace) {
            self.bump();
            return Ok(Entry::Block { action, rules });
        }
        loop {
            match self.rule() {
                Ok(rule) => rules.push(rule),
                Err(Failed) => self.skip_until(&[Tok::Comma, Tok::RBrace]),
            }
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBrace => {
                    self.bump();
                    break;
                }
                Tok::Ident(_) | Tok::Syscall => {
                    self.expected("',' or '}'");
                }
                _ => {
                    self.expected("',' or '}'");
                    self.skip_until(&[Tok::Comma, Tok::RBrace]);
                    match self.peek() {
                        Tok::Comma => {
                            self.bump();
                        }
                        Tok::RBrace => {
                            self.bump();
                            break;
                        }
                        _ => break,
                    }
                }
            }
        }
        Ok(Entry::Block { action, rules })
    }

    fn action(&mut self) -> PResult<ActionSpec> {
        let tok = self.peek().clone();
        let simple = match tok {
            Tok::Allow => Some(ActionSpec::Allow),
            Tok::Log => Some(ActionSpec::Log),
            Tok::Kill | Tok::KillThread | Tok::Deny => Some(ActionSpec::Kill),
            Tok::KillProcess => Some(ActionSpec::KillProcess),
            Tok::UserNotif => Some(ActionSpec::UserNotif),
            Tok::Errno | Tok::Trap | Tok::Trace => None,
            _ => return Err(self.expected("an action")),
        };
        self.bump();
        if let Some(action) = simple {
            return Ok(action);
        }
        self.expect(Tok::LParen, "'('")?;
        let value = self.number("a number")?;
        self.expect(Tok::RParen, "')'")?;
        let data = match u16::try_from(value.value) {
            Ok(data) => data,
            Err(_) => {
                let text = self.files.text(self.tokens[value.token].span).to_string();
                self.error_at(
                    value.token,
                    format!("{tok} value {text} out of range (0-65535)"),
                );
                0
            }
        };
        Ok(match tok {
            Tok::Errno => ActionSpec::Errno(data),
            Tok::Trap => ActionSpec::Trap(data),
            _ => ActionSpec::Trace(data),
        })
    }

    // ---- Rules ----

    fn rule(&mut self) -> PResult<Rule> {
        let syscall = match self.peek() {
            Tok::Ident(_) => SyscallRef::Name(self.name("a syscall name")?),
            Tok::Syscall => {
                self.bump();
                self.expect(Tok::LBracket, "'['")?;
                let number = self.number("a number")?;
                self.expect(Tok::RBracket, "']'")?;
                SyscallRef::Number(number)
            }
            _ => return Err(self.expected("a syscall name or SYSCALL[n]")),
        };

        let args = if self.at(&Tok::LParen) {
            Some(self.arg_list()?)
        } else {
            None
        };

        let archs = if self.at(&Tok::On) {
            self.bump();
            Some(self.arch_list()?)
        } else {
            None
        };

        let filter = if self.at(&Tok::LBrace) {
            self.filter()
        } else {
            None
        };
        Ok(Rule {
            syscall,
            args,
            archs,
            filter,
        })
    }

    /// The architectures after `ON`: one name, or names in braces.
    fn arch_list(&mut self) -> PResult<Vec<Name>> {
        if !self.at(&Tok::LBrace) {
            return Ok(vec![self.name("an architecture name or '{'")?]);
        }
        self.bump();
        let mut names = Vec::new();
        if self.at(&Tok::RBrace) {
            // Reported, but read on as an empty list so the braces stay balanced.
            self.expected("an architecture name");
            self.bump();
            return Ok(names);
        }
        loop {
            names.push(self.name("an architecture name")?);
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBrace => {
                    self.bump();
                    return Ok(names);
                }
                _ => return Err(self.expected("',' or '}'")),
            }
        }
    }

    fn arg_list(&mut self) -> PResult<Vec<Name>> {
        self.bump();
        let mut names: Vec<Name> = Vec::new();
        if self.at(&Tok::RParen) {
            self.bump();
            return Ok(names);
        }
        loop {
            let name = self.new_name("an argument name")?;
            if names.iter().any(|n| n.value == name.value) {
                let message = format!("redefinition of argument `{}`", name.value);
                self.error_at(name.token, message);
            } else if names.len() == 6 {
                let message = "too many arguments declared for syscall (at most 6)".to_string();
                self.error_at(name.token, message);
            }
            names.push(name);
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RParen => {
                    self.bump();
                    return Ok(names);
                }
                _ => return Err(self.expected("',' or ')'")),
            }
        }
    }

    /// `{ [expr] }`. An empty filter is `None`, as is a filter with errors: those are
    /// reported, and the parser skips to the closing brace.
    fn filter(&mut self) -> Option<BoolExpr> {
        self.bump();
        if self.at(&Tok::RBrace) {
            self.bump();
            return None;
        }
        self.depth_reported = false;
        self.nesting = 0;
        self.runs = 0;
        self.bangs = 0;
        let parsed = self.bool_expr().and_then(|expr| {
            if self.at(&Tok::RBrace) {
                self.bump();
                Ok(expr)
            } else {
                Err(self.expected("'&&', '||', ',' or '}'"))
            }
        });
        match parsed {
            Ok((expr, _)) if !self.depth_reported => Some(expr),
            Ok(_) => None,
            Err(Failed) => {
                self.skip_until(&[Tok::RBrace]);
                if self.at(&Tok::RBrace) {
                    self.bump();
                }
                None
            }
        }
    }

    // ---- Expressions ----

    /// Builds a binary node unless that would exceed Kafel's depth limit; then it reports
    /// (once per filter) and keeps only the left side, so no tree ever gets deeper than the
    /// limit and later passes can recurse safely.
    fn join<T>(
        &mut self,
        at: usize,
        left: Deep<T>,
        right: Deep<T>,
        node: fn(T, T) -> T,
    ) -> Deep<T> {
        if left.1 >= MAX_EXPR_DEPTH || right.1 >= MAX_EXPR_DEPTH {
            self.depth_error(at);
            return left;
        }
        (node(left.0, right.0), left.1.max(right.1) + 1)
    }

    fn depth_error(&mut self, at: usize) {
        if !self.depth_reported {
            self.depth_reported = true;
            let message = format!(
                "expression too deep: more than {MAX_EXPR_DEPTH} levels (split long chains of \
                 alternatives into several rules for the same syscall)"
            );
            self.error_at(at, message);
        }
    }

    /// Opens the run of consecutive `(` at the current token and returns how many there
    /// are; every one of them is closed by [`Parser::close`].
    fn open_run(&mut self) -> PResult<u32> {
        let start = self.pos;
        self.runs += 1;
        if self.runs > MAX_RUNS {
            self.depth_error(start);
            return Err(Failed);
        }
        let mut opened = 0;
        while self.at(&Tok::LParen) {
            let paren = self.bump();
            self.nesting += 1;
            opened += 1;
            if self.nesting > MAX_NESTING {
                let message = format!(
                    "expression nested too deeply (more than {MAX_NESTING} levels of parentheses)"
                );
                self.error_at(paren, message);
                self.depth_reported = true;
                return Err(Failed);
            }
        }
        Ok(opened)
    }

    /// Closes one parenthesis of the current run, reporting `what` was expected otherwise.
    fn close(&mut self, what: &str) -> PResult<()> {
        self.nesting -= 1;
        self.expect(Tok::RParen, what)?;
        Ok(())
    }

    fn bool_expr(&mut self) -> PResult<Deep<BoolExpr>> {
        let start = self.pos;
        let first = self.primary()?;
        self.bool_rest(start, first)
    }

    /// Continues a boolean expression whose first primary (starting at token `start`) is
    /// already parsed.
    fn bool_rest(&mut self, start: usize, first: Deep<BoolExpr>) -> PResult<Deep<BoolExpr>> {
        let mut and = first;
        while self.at(&Tok::AndAnd) {
            self.bump();
            let right = self.primary()?;
            and = self.join(start, and, right, |l, r| {
                BoolExpr::And(Box::new(l), Box::new(r))
            });
        }
        let mut or = and;
        while self.at(&Tok::OrOr) {
            self.bump();
            let right = self.and_expr()?;
            or = self.join(start, or, right, |l, r| {
                BoolExpr::Or(Box::new(l), Box::new(r))
            });
        }
        let mut comma = or;
        while self.at(&Tok::Comma) {
            self.bump();
            let right = self.or_expr()?;
            comma = self.join(start, comma, right, |l, r| {
                BoolExpr::Or(Box::new(l), Box::new(r))
            });
        }
        Ok(comma)
    }

    fn or_expr(&mut self) -> PResult<Deep<BoolExpr>> {
        let start = self.pos;
        let mut or = self.and_expr()?;
        while self.at(&Tok::OrOr) {
            self.bump();
            let right = self.and_expr()?;
            or = self.join(start, or, right, |l, r| {
                BoolExpr::Or(Box::new(l), Box::new(r))
            });
        }
        Ok(or)
    }

    fn and_expr(&mut self) -> PResult<Deep<BoolExpr>> {
        let start = self.pos;
        let mut and = self.primary()?;
        while self.at(&Tok::AndAnd) {
            self.bump();
            let right = self.primary()?;
            and = self.join(start, and, right, |l, r| {
                BoolExpr::And(Box::new(l), Box::new(r))
            });
        }
        Ok(and)
    }

    fn primary(&mut self) -> PResult<Deep<BoolExpr>> {
        let start = self.pos;
        match self.peek() {
            Tok::Bang => {
                self.bump();
                // The operand of the 200th nested `!` is at least 200 deep: Kafel's limit,
                // reported before recursing any further.
                self.bangs += 1;
                if self.bangs >= MAX_EXPR_DEPTH {
                    self.depth_error(start);
                    return Err(Failed);
                }
                let inner = self.primary()?;
                self.bangs -= 1;
                if inner.1 >= MAX_EXPR_DEPTH {
                    self.depth_error(start);
                    return Ok(inner);
                }
                Ok((BoolExpr::Not(Box::new(inner.0)), inner.1 + 1))
            }
            Tok::LParen => match self.group()? {
                Group::Bool(expr) => Ok(expr),
                Group::Bits(bits) => {
                    let bits = self.bits_rest(start, bits)?;
                    self.comparison(start, bits)
                }
            },
            _ => {
                let bits = self.bits()?;
                self.comparison(start, bits)
            }
        }
    }

    /// A parenthesised group at the start of a primary: `(` may open a boolean expression
    /// or a bit expression, and only what follows inside tells which.
    ///
    /// A run of `(` is opened at once and its levels are closed in a loop, innermost first,
    /// each continuing the expression at its level: parentheses around parentheses cost no
    /// stack, however deep.
    fn group(&mut self) -> PResult<Group> {
        let first_paren = self.pos;
        let opened = self.open_run()?;
        let innermost_start = self.pos;
        let mut group = match self.peek() {
            Tok::Bang => Group::Bool(self.bool_expr()?),
            _ => {
                let first = self.operand()?;
                self.bits_or_comparison(innermost_start, first)?
            }
        };
        for level in (0..opened).rev() {
            if level + 1 < opened {
                // The expression inside this level's `(` started right after it.
                let inner_start = first_paren + level as usize + 1;
                group = match group {
                    Group::Bool(first) => Group::Bool(self.bool_rest(inner_start, first)?),
                    Group::Bits(first) => self.bits_or_comparison(inner_start, first)?,
                };
            }
            let what = match group {
                Group::Bool(_) => "'&&', '||', ',' or ')'",
                Group::Bits(_) => "'&', '|', a comparison or ')'",
            };
            self.close(what)?;
        }
        self.runs -= 1;
        Ok(group)
    }

    /// Inside a group, after a first bit operand: either the group is a bit expression,
    /// or a comparison follows and it is a boolean one.
    fn bits_or_comparison(&mut self, start: usize, first: Deep<BitsExpr>) -> PResult<Group> {
        let bits = self.bits_rest(start, first)?;
        if comparison_op(self.peek()).is_some() {
            let cmp = self.comparison(start, bits)?;
            Ok(Group::Bool(self.bool_rest(start, cmp)?))
        } else {
            Ok(Group::Bits(bits))
        }
    }

    fn comparison(&mut self, start: usize, left: Deep<BitsExpr>) -> PResult<Deep<BoolExpr>> {
        let Some(op) = comparison_op(self.peek()) else {
            return Err(self.expected("a comparison (==, !=, <, <=, > or >=)"));
        };
        self.bump();
        let right = self.bits()?;
        if left.1 >= MAX_EXPR_DEPTH || right.1 >= MAX_EXPR_DEPTH {
            self.depth_error(start);
        }
        let depth = left.1.max(right.1) + 1;
        Ok((BoolExpr::Cmp(op, left.0, right.0), depth))
    }

    fn bits(&mut self) -> PResult<Deep<BitsExpr>> {
        let start = self.pos;
        let first = self.operand()?;
        self.bits_rest(start, first)
    }

    /// Continues a bit expression whose first operand is already parsed.
    fn bits_rest(&mut self, start: usize, first: Deep<BitsExpr>) -> PResult<Deep<BitsExpr>> {
        let mut and = first;
        while self.at(&Tok::Amp) {
            self.bump();
            let right = self.operand()?;
            and = self.join(start, and, right, |l, r| {
                BitsExpr::And(Box::new(l), Box::new(r))
            });
        }
        let mut or = and;
        while self.at(&Tok::Pipe) {
            self.bump();
            let right = self.bit_and()?;
            or = self.join(start, or, right, |l, r| {
                BitsExpr::Or(Box::new(l), Box::new(r))
            });
        }
        Ok(or)
    }

    fn bit_and(&mut self) -> PResult<Deep<BitsExpr>> {
        let start = self.pos;
        let mut and = self.operand()?;
        while self.at(&Tok::Amp) {
            self.bump();
            let right = self.operand()?;
            and = self.join(start, and, right, |l, r| {
                BitsExpr::And(Box::new(l), Box::new(r))
            });
        }
        Ok(and)
    }

    fn operand(&mut self) -> PResult<Deep<BitsExpr>> {
        match self.peek() {
            Tok::Number(_) => Ok((BitsExpr::Number(self.number("a number")?), 0)),
            Tok::Ident(_) => Ok((BitsExpr::Name(self.name("a name")?), 0)),
            Tok::LParen => {
                // A run of `(`, read as in `group`.
                let first_paren = self.pos;
                let opened = self.open_run()?;
                let mut inner = self.bits()?;
                for level in (0..opened).rev() {
                    if level + 1 < opened {
                        inner = self.bits_rest(first_paren + level as usize + 1, inner)?;
                    }
                    self.close("'&', '|' or ')'")?;
                }
                self.runs -= 1;
                Ok(inner)
            }
            _ => Err(self.expected("a number, a name or '('")),
        }
    }
}

fn comparison_op(tok: &Tok) -> Option<CmpOp> {
    Some(match tok {
        Tok::EqEq => CmpOp::Eq,
        Tok::NotEq => CmpOp::Ne,
        Tok::Lt => CmpOp::Lt,
        Tok::Le => CmpOp::Le,
        Tok::Gt => CmpOp::Gt,
        Tok::Ge => CmpOp::Ge,
        _ => return None,
    })
}
