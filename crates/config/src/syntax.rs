//! The line grammar of one configuration file: entries, braces, attribute lines.
//!
//! xinetd's grammar is line-based: `service NAME` or `defaults`, then `{` alone on a line,
//! attribute lines, and `}` alone on a line; `include FILE` and `includedir DIR` stand
//! outside entries; a line whose first non-blank character is `#` is a comment. This
//! module turns one file's text into [`Item`]s and reports what does not fit; it knows
//! nothing about what the attributes mean.

use crate::diag::{Location, Sink};

/// xinetd refuses longer lines.
const MAX_LINE: usize = 16 * 1024;

/// One top-level item of a file.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Entry(Entry),
    Include { target: String, location: Location },
    IncludeDir { target: String, location: Location },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Defaults,
    Service(String),
}

/// A `service` or `defaults` block.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) kind: EntryKind,
    pub(crate) location: Location,
    pub(crate) attributes: Vec<AttrLine>,
    /// The block itself is malformed (a brace out of place); it was read as well as
    /// possible, and the error is already reported.
    pub(crate) malformed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Set,
    Add,
    Remove,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Set => "=",
            Op::Add => "+=",
            Op::Remove => "-=",
        }
    }
}

/// `name op value...`
#[derive(Debug, Clone)]
pub(crate) struct AttrLine {
    pub(crate) name: String,
    pub(crate) op: Op,
    pub(crate) values: Vec<String>,
    pub(crate) location: Location,
}

/// Reads one file's text. Never fails: every problem goes to `sink`.
pub(crate) fn parse(path: &std::path::Path, text: &[u8], sink: &mut Sink) -> Vec<Item> {
    let mut parser = Parser {
        items: Vec::new(),
        open: None,
        pending: None,
    };
    // Some Windows editors start a file with a byte order mark. xinetd reads it as part of
    // the first word and rejects the line ("missing service keyword"), with an error that
    // shows nothing wrong: the mark is invisible.
    let text = match text.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => {
            let first = Location {
                path: path.to_path_buf(),
                line: 1,
                column: 0,
            };
            sink.note(
                &first,
                "UTF-8 byte order mark at the start of the file ignored (xinetd reads it as \
                 part of the first word and rejects that line)",
            );
            rest
        }
        None => text,
    };
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let location = Location {
            path: path.to_path_buf(),
            line: index + 1,
            column: 0,
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE {
            sink.error(
                &location,
                format!("line longer than {MAX_LINE} bytes; skipped"),
            );
            continue;
        }
        let line = String::from_utf8_lossy(raw);
        if matches!(line, std::borrow::Cow::Owned(_)) {
            sink.warning(
                &location,
                "line is not valid UTF-8; odd bytes read as U+FFFD",
            );
        }
        let trimmed = line.trim_matches(is_blank);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let line = strip_brace_comment(trimmed, &location, sink);
        parser.line(line, location, sink);
    }
    parser.finish(path, sink);
    parser.items
}

/// `{ # comment` and `} # comment`: the brace the organizer meant, with a note. xinetd
/// rejects the first ("missing '{'") and reads the second as an attribute, losing the
/// entry and the one after it (observed).
fn strip_brace_comment<'a>(line: &'a str, location: &Location, sink: &mut Sink) -> &'a str {
    for brace in ["{", "}"] {
        let Some(rest) = line.strip_prefix(brace) else {
            continue;
        };
        if !rest.trim_start_matches(is_blank).starts_with('#') {
            continue;
        }
        sink.note(
            location,
            format!("comment after '{brace}' ignored (xinetd rejects the entry for it)"),
        );
        return brace;
    }
    line
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn words(text: &str) -> Vec<String> {
    text.split(is_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

struct Parser {
    items: Vec<Item>,
    /// The entry whose body is being read.
    open: Option<Entry>,
    /// An entry header waiting for its `{`.
    pending: Option<Entry>,
}

impl Parser {
    fn line(&mut self, line: &str, location: Location, sink: &mut Sink) {
        if let Some(mut entry) = self.pending.take() {
            if line == "{" {
                self.open = Some(entry);
                return;
            }
            sink.error(
                &entry.location,
                format!(
                    "{}: missing '{{' on the line after it",
                    describe(&entry.kind)
                ),
            );
            entry.malformed = true;
            // Read what follows as the body it was meant to be, so that its lines are
            // not each reported as a stray top-level line.
            self.open = Some(entry);
        }

        if self.open.is_some() {
            self.body_line(line, location, sink);
        } else {
            self.top_line(line, location, sink);
        }
    }

    fn top_line(&mut self, line: &str, location: Location, sink: &mut Sink) {
        let mut words = words(line);
        let brace_attached = words.last().is_some_and(|w| w == "{") && words.len() > 1;
        if brace_attached {
            words.pop();
        }
        let keyword = words[0].as_str();
        let kind = match keyword {
            "service" => {
                if words.len() < 2 {
                    sink.error(&location, "expected 'service NAME'");
                    return self.skip_block(location, brace_attached);
                }
                if words.len() > 2 {
                    // Observed: xinetd ignores them silently.
                    let extra = words[2..].join(" ");
                    sink.warning(
                        &location,
                        format!("words after the service name ignored: '{extra}'"),
                    );
                }
                EntryKind::Service(words[1].clone())
            }
            "defaults" => {
                if words.len() != 1 {
                    sink.warning(&location, "words after 'defaults' ignored");
                }
                EntryKind::Defaults
            }
            "include" | "includedir" => {
                if words.len() != 2 || brace_attached {
                    sink.error(&location, format!("expected '{keyword} PATH'"));
                    return;
                }
                let target = words[1].clone();
                self.items.push(if keyword == "include" {
                    Item::Include { target, location }
                } else {
                    Item::IncludeDir { target, location }
                });
                return;
            }
            "}" => {
                sink.error(&location, "'}' with no entry open");
                return;
            }
            _ => {
                sink.error(
                    &location,
                    format!(
                        "expected 'service NAME', 'defaults', 'include' or 'includedir', \
                         found '{keyword}' (xinetd: \"missing service keyword\")"
                    ),
                );
                return self.skip_block(location, brace_attached);
            }
        };

        let mut entry = Entry {
            kind,
            location,
            attributes: Vec::new(),
            malformed: false,
        };
        if brace_attached {
            // Read the body anyway so that its own mistakes are reported too, but reject
            // the entry as xinetd does.
            sink.error(
                &entry.location,
                "'{' must be alone on the line after the entry name (xinetd drops this entry)",
            );
            entry.malformed = true;
            self.open = Some(entry);
        } else {
            self.pending = Some(entry);
        }
    }

    /// After a top-level line that starts no entry, a `{ ... }` body may follow; read it
    /// into a nameless entry that is thrown away, so its lines do not cause more errors.
    fn skip_block(&mut self, location: Location, brace_attached: bool) {
        let entry = Entry {
            kind: EntryKind::Service(String::new()),
            location,
            attributes: Vec::new(),
            malformed: true,
        };
        if brace_attached {
            self.open = Some(entry);
        } else {
            self.pending = Some(entry);
        }
    }

    fn body_line(&mut self, line: &str, location: Location, sink: &mut Sink) {
        if line == "}" {
            self.close();
            return;
        }
        if line == "{" {
            sink.error(&location, "unexpected '{' inside an entry");
            self.mark_malformed();
            return;
        }

        let first = words(line).remove(0);
        if matches!(
            first.as_str(),
            "service" | "defaults" | "include" | "includedir"
        ) && !line.contains('=')
        {
            let open = self
                .open
                .as_ref()
                .map(|e| describe(&e.kind))
                .unwrap_or_default();
            sink.error(&location, format!("{open}: missing '}}' before this line"));
            self.mark_malformed();
            self.close();
            self.top_line(line, location, sink);
            return;
        }

        let Some(mut attr) = attribute_line(line, &location, sink) else {
            self.mark_malformed();
            return;
        };
        let closes = attr.values.last().is_some_and(|v| v == "}");
        if closes {
            sink.error(
                &location,
                "'}' must be alone on its line (xinetd reads it as a value and runs on into \
                 the next entry)",
            );
            attr.values.pop();
        }
        if let Some(entry) = self.open.as_mut() {
            entry.attributes.push(attr);
        }
        if closes {
            self.mark_malformed();
            self.close();
        }
    }

    fn mark_malformed(&mut self) {
        if let Some(entry) = self.open.as_mut() {
            entry.malformed = true;
        }
    }

    fn close(&mut self) {
        if let Some(entry) = self.open.take() {
            self.items.push(Item::Entry(entry));
        }
    }

    fn finish(&mut self, path: &std::path::Path, sink: &mut Sink) {
        if let Some(mut entry) = self.pending.take() {
            sink.error(
                &entry.location,
                format!("{}: missing '{{'", describe(&entry.kind)),
            );
            entry.malformed = true;
            self.items.push(Item::Entry(entry));
        }
        if let Some(mut entry) = self.open.take() {
            let end = Location {
                path: path.to_path_buf(),
                line: entry.location.line,
                column: 0,
            };
            sink.error(
                &end,
                format!(
                    "{}: missing '}}' before the end of the file",
                    describe(&entry.kind)
                ),
            );
            entry.malformed = true;
            self.items.push(Item::Entry(entry));
        }
    }
}

fn describe(kind: &EntryKind) -> String {
    match kind {
        EntryKind::Defaults => "defaults".to_owned(),
        EntryKind::Service(name) if name.is_empty() => "entry".to_owned(),
        EntryKind::Service(name) => format!("service {name}"),
    }
}

/// Splits `name op values...`. Where xinetd's reading loses the organizer's intent, the
/// intent is kept and a note says so.
fn attribute_line(line: &str, location: &Location, sink: &mut Sink) -> Option<AttrLine> {
    let name_end = line
        .find(|c: char| is_blank(c) || matches!(c, '=' | '+' | '-'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let rest = &line[name_end..];
    let touching = !rest.starts_with(is_blank);
    let rest = rest.trim_start_matches(is_blank);

    let (op, values) = if let Some(v) = rest.strip_prefix("+=") {
        (Op::Add, v)
    } else if let Some(v) = rest.strip_prefix("-=") {
        (Op::Remove, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (Op::Set, v)
    } else if rest.is_empty() {
        sink.error(
            location,
            format!("'{name}': expected '=', '+=' or '-=' and a value"),
        );
        return None;
    } else {
        let found = rest.split(is_blank).next().unwrap_or(rest);
        sink.error(
            location,
            format!("'{name}': expected '=', '+=' or '-=', found '{found}' (bad operator)"),
        );
        return None;
    };
    if name.is_empty() {
        sink.error(
            location,
            format!("'{}' with no attribute name before it", op.as_str()),
        );
        return None;
    }

    if touching {
        sink.note(
            location,
            format!(
                "no space between '{name}' and '{}': xinetd drops the whole entry for this, \
                 kinetd accepts it",
                op.as_str()
            ),
        );
    }

    let mut values = words(values);
    if let Some(hash) = values.iter().position(|w| w.starts_with('#')) {
        let comment = values.split_off(hash).join(" ");
        sink.note(
            location,
            format!(
                "trailing comment '{comment}' stripped and the value applied (xinetd has \
                 no trailing comments: it reads the words as values and drops the line)"
            ),
        );
    }

    Some(AttrLine {
        name: name.to_owned(),
        op,
        values,
        location: location.clone(),
    })
}
