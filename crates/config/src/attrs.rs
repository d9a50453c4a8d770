//! The attribute table, and how `=`, `+=` and `-=` combine an entry's lines into one
//! list of words per attribute.
//!
//! What the words mean is decided later (`service.rs`); this stage only knows each
//! attribute's shape and where it may appear, which is enough to apply xinetd's operator
//! rules and to catch unknown names.

use std::collections::BTreeMap;

use crate::diag::{Location, Sink};
use crate::model::Origin;
use crate::suggest::nearest;
use crate::syntax::{AttrLine, Op};

/// How many values an attribute takes and which operators it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Exactly this many values, with `=` only.
    Exact(usize),
    /// Any number of values, with `=` only.
    Words,
    /// A list: `=` replaces (in `defaults` it adds), `+=` adds, `-=` removes unless the
    /// attribute forbids it.
    List { removable: bool },
}

/// Where an attribute may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Service,
    /// In a service, or in `defaults` as every service's default.
    Both,
    DefaultsOnly,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) shape: Shape,
    pub(crate) scope: Scope,
    /// Accepted for compatibility but without effect in kinetd: the reason.
    pub(crate) ignored: Option<&'static str>,
}

const fn spec(name: &'static str, shape: Shape, scope: Scope) -> Spec {
    Spec {
        name,
        shape,
        scope,
        ignored: None,
    }
}

const fn ignored(name: &'static str, shape: Shape, scope: Scope, why: &'static str) -> Spec {
    Spec {
        name,
        shape,
        scope,
        ignored: Some(why),
    }
}

const ONE: Shape = Shape::Exact(1);
const TWO: Shape = Shape::Exact(2);
const LIST: Shape = Shape::List { removable: true };

/// Every attribute kinetd knows. `interface` is read as `bind`.
pub(crate) const SPECS: &[Spec] = &[
    spec("id", ONE, Scope::Service),
    spec("type", Shape::Words, Scope::Service),
    spec("flags", Shape::Words, Scope::Service),
    spec("socket_type", ONE, Scope::Service),
    spec("protocol", ONE, Scope::Service),
    spec("wait", ONE, Scope::Service),
    spec("user", ONE, Scope::Service),
    spec("group", ONE, Scope::Service),
    spec("groups", ONE, Scope::Both),
    spec("server", ONE, Scope::Service),
    spec("server_args", Shape::Words, Scope::Service),
    spec("port", ONE, Scope::Service),
    spec("bind", ONE, Scope::Both),
    spec("interface", ONE, Scope::Both),
    spec("v6only", ONE, Scope::Both),
    spec("instances", ONE, Scope::Both),
    spec("per_source", ONE, Scope::Both),
    spec("cps", TWO, Scope::Both),
    spec("max_load", ONE, Scope::Both),
    spec("nice", ONE, Scope::Service),
    spec("umask", ONE, Scope::Both),
    spec("rlimit_as", ONE, Scope::Service),
    spec("rlimit_cpu", ONE, Scope::Service),
    spec("rlimit_data", ONE, Scope::Service),
    spec("rlimit_rss", ONE, Scope::Service),
    spec("rlimit_stack", ONE, Scope::Service),
    spec("rlimit_files", ONE, Scope::Service),
    spec("env", Shape::List { removable: false }, Scope::Service),
    spec("passenv", LIST, Scope::Both),
    spec("log_type", Shape::Words, Scope::Both),
    spec("log_on_success", LIST, Scope::Both),
    spec("log_on_failure", LIST, Scope::Both),
    spec("only_from", LIST, Scope::Both),
    spec("no_access", LIST, Scope::Both),
    spec("access_times", Shape::Words, Scope::Service),
    spec("banner", ONE, Scope::Both),
    spec("banner_success", ONE, Scope::Both),
    spec("banner_fail", ONE, Scope::Both),
    spec("redirect", TWO, Scope::Service),
    spec("disable", ONE, Scope::Service),
    spec("kafel_rule", ONE, Scope::Both),
    spec("kafel_arch", Shape::Words, Scope::Both),
    spec("disabled", LIST, Scope::DefaultsOnly),
    spec("enabled", LIST, Scope::DefaultsOnly),
    ignored(
        "deny_time",
        ONE,
        Scope::Service,
        "kinetd has no SENSOR services",
    ),
    ignored(
        "libwrap",
        ONE,
        Scope::Service,
        "kinetd does not consult TCP wrappers",
    ),
    ignored(
        "rpc_version",
        ONE,
        Scope::Service,
        "kinetd does not serve RPC",
    ),
    ignored(
        "rpc_number",
        ONE,
        Scope::Service,
        "kinetd does not serve RPC",
    ),
    ignored(
        "mdns",
        ONE,
        Scope::Both,
        "mDNS registration exists only on macOS",
    ),
];

pub(crate) fn lookup(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// The words an attribute ended up with, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub(crate) values: Vec<String>,
    /// The line that set it (for a list, the last line that changed it).
    pub(crate) location: Location,
    pub(crate) origin: Origin,
}

/// An entry's attributes after the operators are applied, keyed by attribute name
/// (`interface` is stored as `bind`).
pub(crate) type Settings = BTreeMap<&'static str, Setting>;

/// Where the lines being combined stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    Defaults,
    Service,
}

/// Applies an entry's lines in order. `inherited` holds the lists that a service starts
/// from (xinetd copies the defaults' lists in before reading the body, which is why a
/// `+=` in a service adds to them). Returns the settings and whether every line was
/// valid.
pub(crate) fn combine(
    lines: &[AttrLine],
    block: Block,
    inherited: Settings,
    sink: &mut Sink,
) -> (Settings, bool) {
    let mut settings = inherited;
    let mut ok = true;
    for line in lines {
        ok &= apply(line, block, &mut settings, sink);
    }
    (settings, ok)
}

fn apply(line: &AttrLine, block: Block, settings: &mut Settings, sink: &mut Sink) -> bool {
    let location = &line.location;
    let Some(spec) = lookup(&line.name) else {
        let names = SPECS.iter().map(|s| s.name);
        let hint = match nearest(&line.name, names) {
            Some(near) => format!(" (did you mean '{near}'?)"),
            None => String::new(),
        };
        sink.error(location, format!("unknown attribute '{}'{hint}", line.name));
        return false;
    };

    match (spec.scope, block) {
        (Scope::Service, Block::Defaults) => {
            sink.error(
                location,
                format!(
                    "'{}' cannot be set in defaults; set it in each service (xinetd warns \
                     and ignores it)",
                    spec.name
                ),
            );
            return false;
        }
        (Scope::DefaultsOnly, Block::Service) => {
            sink.error(
                location,
                format!("'{}' can only be set in defaults", spec.name),
            );
            return false;
        }
        _ => {}
    }

    if let Some(why) = spec.ignored {
        sink.note(location, format!("'{}' ignored: {why}", spec.name));
        return true;
    }

    let key = if spec.name == "interface" {
        "bind"
    } else {
        spec.name
    };
    match spec.shape {
        Shape::Exact(_) | Shape::Words => set_once(line, spec, key, settings, sink),
        Shape::List { removable } => apply_list(line, spec, key, removable, block, settings, sink),
    }
}

fn set_once(
    line: &AttrLine,
    spec: &Spec,
    key: &'static str,
    settings: &mut Settings,
    sink: &mut Sink,
) -> bool {
    let location = &line.location;
    if line.op != Op::Set {
        // xinetd's meaning: the line is ignored with a warning, and the service runs.
        sink.warning(
            location,
            format!(
                "'{}' cannot be used with '{}', which is not a list; line ignored",
                line.op.as_str(),
                spec.name
            ),
        );
        return true;
    }
    if let Shape::Exact(count) = spec.shape
        && line.values.len() != count
    {
        let plural = if count == 1 { "value" } else { "values" };
        sink.error(
            location,
            format!(
                "'{}' takes {count} {plural}, found {}{}",
                spec.name,
                line.values.len(),
                if line.values.is_empty() {
                    String::new()
                } else {
                    quoted(&line.values)
                }
            ),
        );
        return false;
    }
    if let Some(previous) = settings.get(key) {
        sink.warning(
            location,
            format!(
                "'{}' is already set at line {}; the first value is kept, as in xinetd",
                spec.name, previous.location.line
            ),
        );
        return true;
    }
    let setting = Setting {
        values: line.values.clone(),
        location: location.clone(),
        origin: Origin::Service,
    };
    settings.insert(key, setting);
    true
}

fn apply_list(
    line: &AttrLine,
    spec: &Spec,
    key: &'static str,
    removable: bool,
    block: Block,
    settings: &mut Settings,
    sink: &mut Sink,
) -> bool {
    let location = line.location.clone();
    if line.op == Op::Remove && !removable {
        sink.error(
            &location,
            format!("'-=' cannot be used with '{}'", spec.name),
        );
        return false;
    }
    let entry = settings.entry(key).or_insert_with(|| Setting {
        values: Vec::new(),
        location: location.clone(),
        origin: Origin::Service,
    });
    let inherited = entry.origin == Origin::Defaults || entry.origin == Origin::Merged;
    match (line.op, block) {
        // In defaults `=` accumulates, as xinetd's "cumulative" attributes do.
        (Op::Set, Block::Defaults) | (Op::Add, _) => {
            for value in &line.values {
                if !entry.values.contains(value) {
                    entry.values.push(value.clone());
                }
            }
            if inherited {
                entry.origin = Origin::Merged;
            }
        }
        (Op::Set, Block::Service) => {
            entry.values = line.values.clone();
            entry.origin = Origin::Service;
        }
        (Op::Remove, _) => {
            entry.values.retain(|v| !line.values.contains(v));
            if inherited {
                entry.origin = Origin::Merged;
            }
        }
    }
    entry.location = location;
    true
}

fn quoted(values: &[String]) -> String {
    format!(": '{}'", values.join(" "))
}
