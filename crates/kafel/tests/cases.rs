//! The decision cases: every policy in `tests/data` compiled and run on every recorded
//! input, compared with what google/kafel's filter returned.
//!
//! `tests/data/README.md` describes the files; `QUIRKS.md` (and `multiarch/QUIRKS.md`)
//! list where we deliberately differ from kafel. Those rules are applied here exactly:
//!
//! * Quirk cases (ids 900 and up) are judged by the allowance in the QUIRKS table.
//! * In every case, an input from an architecture the case is not compiled for may get
//!   `KILL_PROCESS` instead of kafel's answer, and an x86-64 input with an x32 number
//!   (`0x40000000 <= nr < 0xffffffff`) may get any denial instead of kafel's answer.
//! * Against an `.alt.expect`, an i386 input with a high word set in some argument is
//!   not judged. The kernel zero-extends i386 registers, so no such input reaches a
//!   filter, and the alternative policy's answer to it only reflects how it spells the
//!   meaning (its declared arguments are read on 64 bits, where a compiler that reads
//!   an 8-byte i386 parameter from its register pair looks at the low words only).
//!
//! Each test gathers every mismatch before failing, so one run shows them all.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use kafel::arch::Arch;
use kafel::bpf::Program;
use kafel::interp;
use kafel::ir::Action;
use kafel::{FsLoader, SourceFile};

mod support;
use support::expect::{Expect, parse_expect};

const X86_64: u32 = 0xc000_003e;
const I386: u32 = 0x4000_0003;

/// How a quirk case is judged besides matching kafel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowance {
    Refuse,
    AltExpect,
    X32Deny,
    ForeignKill,
}

/// A folder of cases: the main corpus or `multiarch/`.
struct Corpus {
    dir: PathBuf,
    arches: Vec<Arch>,
    quirks: BTreeMap<String, Allowance>,
}

impl Corpus {
    fn open(sub: &str) -> Corpus {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(sub);
        let arches = match fs::read_to_string(dir.join("ARCHS")) {
            Ok(list) => list
                .trim()
                .split(',')
                .map(|name| Arch::from_name(name.trim()).expect("known arch in ARCHS"))
                .collect(),
            Err(_) => vec![Arch::X86_64],
        };
        let quirks = read_quirks(&dir.join("QUIRKS.md"));
        assert!(!quirks.is_empty(), "no quirk table in {}", dir.display());
        Corpus {
            dir,
            arches,
            quirks,
        }
    }

    /// The ids of every case, sorted (`NNN` of each `NNN.policy`, without the `.alt` ones).
    fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(&self.dir)
            .expect("case folder")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let id = name.strip_suffix(".policy")?;
                (!id.contains('.')).then(|| id.to_owned())
            })
            .collect();
        ids.sort();
        assert!(ids.len() > 10, "cases missing from {}", self.dir.display());
        ids
    }

    fn compile(&self, file: &str) -> Result<Program, String> {
        let path = self.dir.join(file);
        let bytes = fs::read(&path).expect("policy file");
        let text = String::from_utf8(bytes).expect("policy files are UTF-8");
        let mut search = Vec::new();
        for line in text.lines() {
            match line.strip_prefix("// include-dir:") {
                Some(dir) => search.push(self.dir.join(dir.trim())),
                None => break,
            }
        }
        let source = SourceFile {
            name: file.to_owned(),
            text,
        };
        kafel::compile(&source, &self.arches, &FsLoader::new(search)).map_err(|d| d.to_string())
    }

    fn expects(&self, file: &str) -> Option<Vec<Expect>> {
        let text = fs::read_to_string(self.dir.join(file)).ok()?;
        Some(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(parse_expect)
                .collect(),
        )
    }

    fn is_foreign(&self, arch: u32) -> bool {
        !self.arches.iter().any(|a| a.audit_arch() == arch)
    }
}

/// Reads the `| id | name | allowance | ...` rows of a QUIRKS table.
fn read_quirks(path: &Path) -> BTreeMap<String, Allowance> {
    let text = fs::read_to_string(path).expect("QUIRKS.md");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || cells[1].len() != 3 || !cells[1].bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let allowance = match cells[3] {
            "refuse" => Allowance::Refuse,
            "alt-expect" => Allowance::AltExpect,
            "x32-deny" => Allowance::X32Deny,
            "foreign-kill" => Allowance::ForeignKill,
            other => panic!("unknown allowance {other:?} in {}", path.display()),
        };
        out.insert(cells[1].to_owned(), allowance);
    }
    out
}

fn is_deny(action: Action) -> bool {
    matches!(
        action,
        Action::KillThread | Action::KillProcess | Action::Errno(_) | Action::Trap(_)
    )
}

/// Whether the kernel can pass this input to a filter: i386 registers are 32 bits,
/// zero-extended in `seccomp_data.args`.
fn kernel_can_produce(e: &Expect) -> bool {
    e.data.arch != I386 || e.data.args.iter().all(|&a| a >> 32 == 0)
}

/// Runs every input; returns one line per decision that no rule accepts. Against an
/// `.alt.expect` (`alt`), inputs the kernel cannot produce are not judged.
fn judge(corpus: &Corpus, program: &Program, expects: &[Expect], alt: bool) -> Vec<String> {
    let mut bad = Vec::new();
    let judged = expects.iter().filter(|e| !alt || kernel_can_produce(e));
    for e in judged {
        let got = match interp::run(program, &e.data) {
            Ok(out) => Action::from_ret_value(out.ret),
            Err(err) => {
                bad.push(format!("program refused by the kernel's checks: {err}"));
                break;
            }
        };
        let got_name = got.to_string();
        if got_name == e.action {
            continue;
        }
        let foreign = corpus.is_foreign(e.data.arch);
        let x32 = e.data.arch == X86_64 && (0x4000_0000..0xffff_ffff).contains(&e.data.nr);
        // The class rules hold in every case; quirk cases 905 (x32-deny) and 906
        // (foreign-kill) are judged by exactly these rules.
        let accepted = (foreign && got == Action::KillProcess) || (x32 && is_deny(got));
        if !accepted {
            bad.push(format!(
                "arch={:#x} nr={} args={:x?}: kafel {} ours {}",
                e.data.arch, e.data.nr, e.data.args, e.action, got_name
            ));
        }
    }
    bad
}

/// Checks one case; returns its problems.
fn check_case(corpus: &Corpus, id: &str) -> Vec<String> {
    let allowance = corpus.quirks.get(id).copied();
    let refused_by_kafel = corpus.dir.join(format!("{id}.error")).exists();
    let compiled = corpus.compile(&format!("{id}.policy"));
    let expects = corpus.expects(&format!("{id}.expect"));
    let alt = corpus.expects(&format!("{id}.alt.expect"));

    match (compiled, refused_by_kafel) {
        (Err(_), true) => Vec::new(),
        (Err(_), false) if allowance == Some(Allowance::Refuse) => Vec::new(),
        (Err(diag), false) => vec![format!("refused, but kafel compiles it:\n{diag}")],
        (Ok(_), true) if allowance != Some(Allowance::AltExpect) => {
            vec!["compiled, but kafel refuses it".to_owned()]
        }
        (Ok(program), _) => {
            let mut problems = Vec::new();
            if let Some(expects) = &expects {
                problems = judge(corpus, &program, expects, false);
                if problems.is_empty() {
                    return problems;
                }
            }
            if allowance == Some(Allowance::AltExpect) {
                let alt = alt.as_ref().expect("alt-expect cases have an .alt.expect");
                let alt_problems = judge(corpus, &program, alt, true);
                if alt_problems.is_empty() {
                    return alt_problems;
                }
                problems.push("and against the .alt.expect:".to_owned());
                problems.extend(alt_problems);
            }
            if expects.is_none() && alt.is_none() {
                problems.push("no .expect file".to_owned());
            }
            problems
        }
    }
}

fn check_corpus(sub: &str) {
    let corpus = Corpus::open(sub);
    let mut report = String::new();
    let mut failed = 0;
    let ids = corpus.ids();
    for id in &ids {
        let problems = check_case(&corpus, id);
        if problems.is_empty() {
            continue;
        }
        failed += 1;
        let _ = writeln!(report, "case {sub}{id}: {} mismatches", problems.len());
        for p in problems.iter().take(8) {
            let _ = writeln!(report, "    {p}");
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} cases fail:\n{report}",
        ids.len()
    );
}

#[test]
fn main_cases_decide_like_kafel_or_its_accepted_deviations() {
    check_corpus("");
}

#[test]
fn multiarch_cases_decide_like_kafel_or_its_accepted_deviations() {
    check_corpus("multiarch/");
}

#[test]
fn filters_execute_no_more_instructions_per_decision_than_kafel() {
    let corpus = Corpus::open("");
    let (mut ours, mut theirs, mut decisions) = (0usize, 0usize, 0usize);
    for id in corpus.ids() {
        if corpus.quirks.contains_key(&id) {
            continue;
        }
        let (Ok(program), Some(expects)) = (
            corpus.compile(&format!("{id}.policy")),
            corpus.expects(&format!("{id}.expect")),
        ) else {
            continue;
        };
        for e in &expects {
            ours += interp::run(&program, &e.data).expect("valid program").steps;
            theirs += e.kafel_steps;
            decisions += 1;
        }
    }
    assert!(decisions > 10_000, "only {decisions} decisions measured");
    let (ours, theirs) = (
        ours as f64 / decisions as f64,
        theirs as f64 / decisions as f64,
    );
    println!(
        "instructions per decision over {decisions} decisions: ours {ours:.2}, kafel {theirs:.2}"
    );
    assert!(
        ours <= theirs,
        "ours {ours:.2} > kafel {theirs:.2} instructions per decision"
    );
}
