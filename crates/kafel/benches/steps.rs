//! Instructions a filter executes per syscall decision, beside google/kafel's figure.
//!
//! `cargo bench -p kinetd-kafel` compiles realistic policies from the decision cases
//! (tests/data) and runs each on the inputs recorded there, which also hold how many
//! instructions kafel's filter executed for each one (`kafel_steps`). It prints both
//! averages and maxima, per policy and over the whole main corpus, and the time one
//! decision takes in the interpreter.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kafel::arch::Arch;
use kafel::bpf::Program;
use kafel::interp;
use kafel::ir::Action;
use kafel::{FsLoader, SourceFile};

#[path = "../tests/support/mod.rs"]
mod support;
use support::expect::{Expect, parse_expect};

const POLICIES: &[(&str, &str)] = &[
    ("200", "CTF allow-list (dynamic glibc start-up, stdio)"),
    ("212", "allow-list with an explicit DENY block"),
    ("202", "deny-list on DEFAULT ALLOW"),
    ("203", "ERRNO deny-list"),
    ("205", "argument checks: local sockets only"),
    ("206", "argument checks: no PROT_EXEC"),
];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn compile(id: &str) -> Option<Program> {
    compile_in(&data_dir(), id, &[Arch::X86_64])
}

fn compile_in(dir: &Path, id: &str, arches: &[Arch]) -> Option<Program> {
    let text = fs::read_to_string(dir.join(format!("{id}.policy"))).ok()?;
    let search = text
        .lines()
        .map_while(|l| l.strip_prefix("// include-dir:"))
        .map(|d| dir.join(d.trim()))
        .collect();
    let source = SourceFile {
        name: format!("{id}.policy"),
        text,
    };
    kafel::compile(&source, arches, &FsLoader::new(search)).ok()
}

fn expects(id: &str) -> Option<Vec<Expect>> {
    expects_in(&data_dir(), id)
}

fn expects_in(dir: &Path, id: &str) -> Option<Vec<Expect>> {
    let text = fs::read_to_string(dir.join(format!("{id}.expect"))).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.is_empty())
            .map(parse_expect)
            .collect(),
    )
}

#[derive(Default)]
struct Tally {
    decisions: usize,
    ours: usize,
    kafel: usize,
    ours_max: usize,
    kafel_max: usize,
    /// Decisions with kafel's exact action (the rest are accepted deviations: x32 and
    /// foreign architectures, checked by tests/cases.rs).
    same: usize,
}

impl Tally {
    fn add(&mut self, program: &Program, inputs: &[Expect]) {
        for e in inputs {
            let out = interp::run(program, &e.data).expect("valid program");
            let steps = out.steps;
            self.same += usize::from(Action::from_ret_value(out.ret).to_string() == e.action);
            self.decisions += 1;
            self.ours += steps;
            self.kafel += e.kafel_steps;
            self.ours_max = self.ours_max.max(steps);
            self.kafel_max = self.kafel_max.max(e.kafel_steps);
        }
    }

    fn line(&self) -> String {
        let n = self.decisions as f64;
        format!(
            "ours {:5.2} (max {:2})   kafel {:5.2} (max {:2})   over {} decisions, {} as kafel",
            self.ours as f64 / n,
            self.ours_max,
            self.kafel as f64 / n,
            self.kafel_max,
            self.decisions,
            self.same
        )
    }
}

fn main() {
    println!("instructions executed per syscall decision (x86-64 filters)\n");
    for (id, what) in POLICIES {
        let (Some(program), Some(inputs)) = (compile(id), expects(id)) else {
            println!("{id} {what}: does not compile");
            continue;
        };
        let mut tally = Tally::default();
        tally.add(&program, &inputs);
        println!("{id} {what:<48} {:4} insns", program.len());
        println!("    {}", tally.line());
    }

    let ids = case_ids(&data_dir());
    let mut total = Tally::default();
    let mut timed = Vec::new();
    for id in &ids {
        if let (Some(program), Some(inputs)) = (compile(id), expects(id)) {
            total.add(&program, &inputs);
            timed.push((program, inputs));
        }
    }
    println!("\nall {} main cases\n    {}", ids.len(), total.line());

    let multi = data_dir().join("multiarch");
    let mut both = Tally::default();
    let multi_ids = case_ids(&multi);
    for id in &multi_ids {
        let compiled = compile_in(&multi, id, &[Arch::X86_64, Arch::I386]);
        if let (Some(program), Some(inputs)) = (compiled, expects_in(&multi, id)) {
            both.add(&program, &inputs);
        }
    }
    println!(
        "all {} multiarch cases (x86-64 + i386)\n    {}",
        multi_ids.len(),
        both.line()
    );

    let start = Instant::now();
    let mut runs = 0u32;
    for (program, inputs) in &timed {
        for e in inputs {
            std::hint::black_box(interp::run(program, &e.data).ok());
            runs += 1;
        }
    }
    let per = start.elapsed() / runs.max(1);
    println!("\ninterpreter: {per:?} per decision (checks included)");
}

/// The cases with recorded decisions, quirk cases (9xx) left out.
fn case_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(dir)
        .expect("case folder")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let id = name.strip_suffix(".expect")?;
            (!id.contains('.') && !id.starts_with('9')).then(|| id.to_owned())
        })
        .collect();
    ids.sort();
    ids
}
