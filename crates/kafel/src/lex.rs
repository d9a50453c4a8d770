//! The lexer: policy text to tokens, with `#include`d files spliced in.
//!
//! Kafel treats `#include` as a lexer directive, so an included file's tokens land exactly
//! where the directive stood, even in the middle of a rule list. This lexer does the same
//! and hands the parser one flat token list ending in [`Tok::Eof`]. Lexical errors are
//! recorded and skipped, so lexing always runs to the end.
//!
//! Where Kafel's lexer is buggy this one deliberately differs (see docs/kafel.md): `**/`
//! closes a block comment, CRLF line endings and identifiers starting with `_` are
//! accepted, and numbers Kafel silently mangles (octal with 8 or 9, negative decimals
//! below -2^63) are errors, as is a block comment left open at the end of an included
//! file.

use std::fmt;

use crate::diag::Report;
use crate::source::{Loader, SourceFile};
use crate::span::{FileId, Files, Span};

/// How deeply `#include`s may nest, as in Kafel.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Ident(String),
    Number(u64),
    // Statement keywords.
    Policy,
    Use,
    Default,
    Syscall,
    On,
    Define,
    // Action keywords.
    Allow,
    Log,
    Kill,
    KillThread,
    KillProcess,
    Deny,
    UserNotif,
    Errno,
    Trap,
    Trace,
    // Punctuation.
    EqEq,
    NotEq,
    Le,
    Lt,
    Ge,
    Gt,
    OrOr,
    AndAnd,
    Pipe,
    Amp,
    LBracket,
    RBracket,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Bang,
    Hash,
    Eof,
}

impl Tok {
    fn keyword(word: &str) -> Option<Tok> {
        Some(match word {
            "POLICY" => Tok::Policy,
            "USE" => Tok::Use,
            "DEFAULT" => Tok::Default,
            "SYSCALL" => Tok::Syscall,
            "ON" => Tok::On,
            "define" => Tok::Define,
            "ALLOW" => Tok::Allow,
            "LOG" => Tok::Log,
            "KILL" => Tok::Kill,
            "KILL_THREAD" => Tok::KillThread,
            "KILL_PROCESS" => Tok::KillProcess,
            "DENY" => Tok::Deny,
            "USER_NOTIF" => Tok::UserNotif,
            "ERRNO" => Tok::Errno,
            "TRAP" => Tok::Trap,
            "TRACE" => Tok::Trace,
            _ => return None,
        })
    }

    /// The word of a keyword token, which is not allowed as a name.
    pub fn keyword_word(&self) -> Option<String> {
        match self {
            Tok::Ident(_) | Tok::Number(_) | Tok::Eof => None,
            tok => {
                let text = tok.to_string();
                let is_word = text.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
                is_word.then_some(text)
            }
        }
    }

    /// Whether the token starts an action (`ALLOW`, `ERRNO`, ...).
    pub fn is_action(&self) -> bool {
        matches!(
            self,
            Tok::Allow
                | Tok::Log
                | Tok::Kill
                | Tok::KillThread
                | Tok::KillProcess
                | Tok::Deny
                | Tok::UserNotif
                | Tok::Errno
                | Tok::Trap
                | Tok::Trace
        )
    }
}

/// How a token is named in "expected ..., found ..." messages.
impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Tok::Ident(name) => return write!(f, "identifier `{name}`"),
            Tok::Number(n) => return write!(f, "number {n}"),
            Tok::Policy => "POLICY",
            Tok::Use => "USE",
            Tok::Default => "DEFAULT",
            Tok::Syscall => "SYSCALL",
            Tok::On => "ON",
            Tok::Define => "define",
            Tok::Allow => "ALLOW",
            Tok::Log => "LOG",
            Tok::Kill => "KILL",
            Tok::KillThread => "KILL_THREAD",
            Tok::KillProcess => "KILL_PROCESS",
            Tok::Deny => "DENY",
            Tok::UserNotif => "USER_NOTIF",
            Tok::Errno => "ERRNO",
            Tok::Trap => "TRAP",
            Tok::Trace => "TRACE",
            Tok::EqEq => "'=='",
            Tok::NotEq => "'!='",
            Tok::Le => "'<='",
            Tok::Lt => "'<'",
            Tok::Ge => "'>='",
            Tok::Gt => "'>'",
            Tok::OrOr => "'||'",
            Tok::AndAnd => "'&&'",
            Tok::Pipe => "'|'",
            Tok::Amp => "'&'",
            Tok::LBracket => "'['",
            Tok::RBracket => "']'",
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::LBrace => "'{'",
            Tok::RBrace => "'}'",
            Tok::Comma => "','",
            Tok::Bang => "'!'",
            Tok::Hash => "'#'",
            Tok::Eof => "end of file",
        };
        f.write_str(text)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// The lexer's output: every token of the main file and its includes, the files read,
/// and the lexical errors.
#[derive(Debug)]
pub(crate) struct Lexed {
    pub tokens: Vec<Token>,
    pub files: Files,
    pub reports: Vec<Report>,
}

/// Lexes `main`, reading included files through `loader`.
pub(crate) fn lex(main: &SourceFile, loader: &dyn Loader) -> Lexed {
    let mut lexer = Lexer {
        loader,
        files: Files::default(),
        tokens: Vec::new(),
        reports: Vec::new(),
    };
    let id = lexer.files.add(main.name.clone(), main.text.clone(), None);
    lexer.lex_file(id);

    let end = main.text.len();
    lexer.tokens.push(Token {
        tok: Tok::Eof,
        span: Span {
            file: id,
            start: end,
            end,
        },
    });
    Lexed {
        tokens: lexer.tokens,
        files: lexer.files,
        reports: lexer.reports,
    }
}

struct Lexer<'l> {
    loader: &'l dyn Loader,
    files: Files,
    tokens: Vec<Token>,
    reports: Vec<Report>,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Lexer<'_> {
    fn error(&mut self, span: Span, message: String) {
        self.reports.push(Report {
            span,
            order: self.tokens.len(),
            message,
        });
    }

    fn push(&mut self, tok: Tok, span: Span) {
        self.tokens.push(Token { tok, span });
    }

    fn lex_file(&mut self, file: FileId) {
        // The text is cloned so that nested includes can add files while this one is read.
        let text = self.files.get(file).text.clone();
        let b = text.as_bytes();
        let span = |start: usize, end: usize| Span { file, start, end };
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let next = b.get(i + 1).copied();
            match c {
                b' ' | b'\t' | b'\n' => i += 1,
                b'\r' if next == Some(b'\n') => i += 2,
                b'/' if next == Some(b'/') => {
                    i = text[i..].find('\n').map_or(b.len(), |n| i + n);
                }
                b'/' if next == Some(b'*') => match text[i + 2..].find("*/") {
                    Some(n) => i = i + 2 + n + 2,
                    None => {
                        self.error(span(i, i + 2), "unterminated comment".to_string());
                        i = b.len();
                    }
                },
                b'#' if text[i..].starts_with("#include") => {
                    i = self.include_directive(file, &text, i);
                }
                b'0'..=b'9' => i = self.number(file, &text, i, i),
                b'-' if matches!(next, Some(b'1'..=b'9')) => {
                    i = self.number(file, &text, i, i + 1);
                }
                _ if is_ident_start(c) => {
                    let end = text[i..]
                        .bytes()
                        .position(|b| !is_ident_char(b))
                        .map_or(b.len(), |n| i + n);
                    let word = &text[i..end];
                    let tok = Tok::keyword(word).unwrap_or_else(|| Tok::Ident(word.to_string()));
                    self.push(tok, span(i, end));
                    i = end;
                }
                _ => {
                    let two = match (c, next) {
                        (b'=', Some(b'=')) => Some(Tok::EqEq),
                        (b'!', Some(b'=')) => Some(Tok::NotEq),
                        (b'<', Some(b'=')) => Some(Tok::Le),
                        (b'>', Some(b'=')) => Some(Tok::Ge),
                        (b'|', Some(b'|')) => Some(Tok::OrOr),
                        (b'&', Some(b'&')) => Some(Tok::AndAnd),
                        _ => None,
                    };
                    if let Some(tok) = two {
                        self.push(tok, span(i, i + 2));
                        i += 2;
                        continue;
                    }
                    let one = match c {
                        b'<' => Some(Tok::Lt),
                        b'>' => Some(Tok::Gt),
                        b'|' => Some(Tok::Pipe),
                        b'&' => Some(Tok::Amp),
                        b'[' => Some(Tok::LBracket),
                        b']' => Some(Tok::RBracket),
                        b'(' => Some(Tok::LParen),
                        b')' => Some(Tok::RParen),
                        b'{' => Some(Tok::LBrace),
                        b'}' => Some(Tok::RBrace),
                        b',' => Some(Tok::Comma),
                        b'!' => Some(Tok::Bang),
                        b'#' => Some(Tok::Hash),
                        _ => None,
                    };
                    if let Some(tok) = one {
                        self.push(tok, span(i, i + 1));
                        i += 1;
                    } else {
                        i = self.unexpected_char(file, &text, i, "");
                    }
                }
            }
        }
    }

    /// Reports the character at `i` and returns the offset after it.
    fn unexpected_char(&mut self, file: FileId, text: &str, i: usize, context: &str) -> usize {
        let ch = text[i..].chars().next().unwrap_or('\0');
        let end = i + ch.len_utf8();
        let shown: String = ch.escape_debug().collect();
        self.error(
            Span {
                file,
                start: i,
                end,
            },
            format!("unexpected character `{shown}`{context}"),
        );
        end
    }

    /// Lexes the number starting at `start` (at a `-` for negative decimals, in which
    /// case `digits` is one past it) and returns the offset after it.
    fn number(&mut self, file: FileId, text: &str, start: usize, digits: usize) -> usize {
        let b = text.as_bytes();
        let run = |from: usize, ok: fn(u8) -> bool| {
            b[from..]
                .iter()
                .position(|&c| !ok(c))
                .map_or(b.len(), |n| from + n)
        };
        let negative = digits > start;
        let at = |n: usize| b.get(n).copied();

        // Kafel's forms: 0x hex, 0b binary, 0 followed by digits is octal, else decimal.
        // A prefix without a digit after it is just `0` followed by an identifier.
        let (radix, body, end) = if negative {
            let end = run(digits, |c| c.is_ascii_digit());
            (10, digits, end)
        } else if at(start) == Some(b'0')
            && at(start + 1) == Some(b'x')
            && at(start + 2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            (16, start + 2, run(start + 2, |c| c.is_ascii_hexdigit()))
        } else if at(start) == Some(b'0')
            && at(start + 1) == Some(b'b')
            && matches!(at(start + 2), Some(b'0' | b'1'))
        {
            (2, start + 2, run(start + 2, |c| c == b'0' || c == b'1'))
        } else if at(start) == Some(b'0') && at(start + 1).is_some_and(|c| c.is_ascii_digit()) {
            (8, start + 1, run(start + 1, |c| c.is_ascii_digit()))
        } else if at(start) == Some(b'0') {
            (10, start, start + 1)
        } else {
            (10, start, run(start, |c| c.is_ascii_digit()))
        };

        let span = Span { file, start, end };
        let literal = &text[start..end];
        match parse_digits(&text[body..end], radix) {
            Err(DigitsError::BadOctal(d)) => {
                self.error(
                    span,
                    format!("invalid digit `{d}` in octal number `{literal}`"),
                );
                self.push(Tok::Number(0), span);
            }
            Err(DigitsError::Overflow) => {
                self.error(span, format!("number `{literal}` out of range"));
                self.push(Tok::Number(0), span);
            }
            Ok(magnitude) if negative && magnitude > 1 << 63 => {
                // Kafel wraps these modulo 2^64 (-18446744073709551615 is 1).
                self.error(
                    span,
                    format!("number `{literal}` out of range (below -2^63)"),
                );
                self.push(Tok::Number(0), span);
            }
            Ok(magnitude) if negative => self.push(Tok::Number(magnitude.wrapping_neg()), span),
            Ok(value) => self.push(Tok::Number(value), span),
        }
        end
    }

    /// Handles `#include "a" "b" ...` up to its terminating newline or `;`, lexing each
    /// file in place. Returns the offset after the directive.
    fn include_directive(&mut self, file: FileId, text: &str, start: usize) -> usize {
        let b = text.as_bytes();
        let directive = Span {
            file,
            start,
            end: start + "#include".len(),
        };
        let mut i = directive.end;
        loop {
            let blank_start = i;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let spaced = i > blank_start;
            match b.get(i).copied() {
                None => {
                    self.error(
                        directive,
                        "unterminated #include line: end it with a newline or ';'".to_string(),
                    );
                    return i;
                }
                Some(b'\n' | b';') => return i + 1,
                Some(b'\r') if b.get(i + 1) == Some(&b'\n') => return i + 2,
                Some(b'"') => {
                    let close = text[i + 1..].find(['"', '\n']).map(|n| i + 1 + n);
                    let Some(close) = close.filter(|&c| b[c] == b'"') else {
                        let end = close.unwrap_or(b.len());
                        let span = Span {
                            file,
                            start: i,
                            end,
                        };
                        self.error(span, "unterminated file name in #include".to_string());
                        return end;
                    };
                    let name_span = Span {
                        file,
                        start: i,
                        end: close + 1,
                    };
                    if close == i + 1 {
                        self.error(name_span, "empty file name in #include".to_string());
                    } else {
                        if !spaced {
                            self.error(
                                name_span,
                                "expected a space before the #include file name".to_string(),
                            );
                        }
                        self.include(name_span, &text[i + 1..close]);
                    }
                    i = close + 1;
                }
                Some(_) => {
                    let end = self.unexpected_char(
                        file,
                        text,
                        i,
                        " in #include line (expected a quoted file name, ';' or a newline)",
                    );
                    // Skip the rest of the line so it is not read as policy text.
                    return text[end..].find('\n').map_or(b.len(), |n| end + n + 1);
                }
            }
        }
    }

    fn include(&mut self, name_span: Span, name: &str) {
        if self.files.depth(name_span.file) >= MAX_INCLUDE_DEPTH {
            self.error(
                name_span,
                format!("maximum include depth ({MAX_INCLUDE_DEPTH}) exceeded"),
            );
            return;
        }
        let source = match self.loader.load(name) {
            Ok(source) => source,
            Err(e) => {
                self.error(name_span, format!("could not include file `{name}`: {e}"));
                return;
            }
        };
        if self.files.is_on_include_stack(name_span.file, &source.name) {
            // Without conditionals a file that includes itself can only recurse until the
            // depth limit; say what is going on instead.
            self.error(
                name_span,
                format!("include cycle: `{}` includes itself", source.name),
            );
            return;
        }
        let id = self.files.add(source.name, source.text, Some(name_span));
        self.lex_file(id);
    }
}

enum DigitsError {
    Overflow,
    BadOctal(char),
}

fn parse_digits(digits: &str, radix: u32) -> Result<u64, DigitsError> {
    let mut value: u64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            return Err(DigitsError::BadOctal(c));
        };
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(DigitsError::Overflow)?;
    }
    Ok(value)
}
