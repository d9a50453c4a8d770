//! Code generation: from [`ir::Policy`] to a seccomp-BPF [`Program`].
//!
//! The stages, one file each:
//!
//! * [`ranges`] turns each architecture's rules into decisions over syscall numbers.
//! * [`cond`] lowers argument conditions to 32-bit comparisons.
//! * This file builds the program around them: the architecture check and, for each
//!   architecture, a search tree over syscall numbers.
//! * [`graph`] removes redundant loads and lays the result out as instructions.
//!
//! The program starts by loading `seccomp_data.arch` and comparing it with each target's
//! `AUDIT_ARCH_*` value; any other architecture gets `KILL_PROCESS`. (Kafel answers
//! `KILL_THREAD` there, which leaves the rest of a multi-threaded process running with a
//! thread gone.)
//!
//! The search tree is built for the calls a policy names: a program under a policy mostly
//! makes the calls the policy names, so those ranges weigh more than the gaps between
//! them, and the tree minimises the expected number of comparisons. Besides `JGE` splits
//! it uses `JEQ` on a single number, which separates a lone syscall from the gaps around
//! it in one comparison where a plain range tree needs two.

mod cond;
mod graph;
mod ranges;

use std::fmt;

use crate::bpf::*;
use crate::ir::{Action, ArchPolicy, Policy};
use graph::{Graph, NodeId};

/// Why a policy cannot be made into a program the kernel accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The program has more instructions than the kernel's limit of 4096.
    TooLong { insns: usize },
    /// An argument expression nests `&`/`|` of computed values deeper than the 16 words
    /// of scratch memory allow.
    ScratchExhausted,
    /// The policy has no architecture to compile for.
    NoArchitecture,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLong { insns } => write!(
                f,
                "the filter has {insns} instructions, more than the kernel's limit of {MAX_INSNS}"
            ),
            Error::ScratchExhausted => write!(
                f,
                "an argument expression needs more than the {MEMWORDS} words of BPF scratch memory"
            ),
            Error::NoArchitecture => f.write_str("no target architecture"),
        }
    }
}

impl std::error::Error for Error {}

/// Weight of a range of numbers the policy does not name, against 1 per named syscall.
const GAP_WEIGHT: f64 = 0.1;

/// Above this many ranges the optimal tree is too costly to compute (its cost grows with
/// the square of the count) and a weight-balanced one is built instead.
const MAX_OPTIMAL_RANGES: usize = 512;

/// Compiles `policy` to a seccomp filter.
pub fn generate(policy: &Policy) -> Result<Program, Error> {
    if policy.sections.is_empty() {
        return Err(Error::NoArchitecture);
    }
    let mut graph = Graph::default();

    let mut sections = Vec::new();
    for section in &policy.sections {
        sections.push(self::section(&mut graph, section)?);
    }

    // When every architecture does one and the same kill, foreign ones may as well
    // get it too: the program is that single return.
    let first = sections[0];
    let uniform = sections.iter().all(|&s| s == first);
    let root = match graph.node(first) {
        graph::Node::Ret(v) if uniform && is_kill(Action::from_ret_value(v)) => first,
        _ => {
            let mut next = graph.ret(SECCOMP_RET_KILL_PROCESS);
            for (section, &code) in policy.sections.iter().zip(&sections).rev() {
                next = graph.jump(BPF_JEQ, section.arch.audit_arch(), code, next);
            }
            graph.load(SECCOMP_DATA_ARCH, next)
        }
    };

    // Deciding comparisons from values learnt earlier on a path never adds to what a path
    // executes, but the copies it makes of shared code can make the program longer; then
    // the program without them is kept if that one is shorter.
    let mut insns = optimise(&graph, root, true);
    if insns.len() > MAX_INSNS {
        let plain = optimise(&graph, root, false);
        if plain.len() < insns.len() {
            insns = plain;
        }
    }
    if insns.len() > MAX_INSNS {
        return Err(Error::TooLong { insns: insns.len() });
    }
    Ok(Program::new(insns))
}

/// Drops redundant and dead code from the graph and lays it out.
fn optimise(graph: &Graph, root: NodeId, values: bool) -> Vec<Instruction> {
    let (mut graph, mut root) = graph::simplify(graph, root, values);
    let mut insns = graph::emit(&graph, root);
    // A load that a pass drops as dead may have made the load after it look necessary (the
    // word it replaced was the one already in A), so further passes can shorten the program.
    // The comparisons values decide are gone after the first pass, and learning values is
    // the costly part, so these passes do without.
    loop {
        let (pruned, pruned_root) = graph::prune(&graph, root);
        let (again, again_root) = graph::simplify(&pruned, pruned_root, false);
        let shorter = graph::emit(&again, again_root);
        if shorter.len() >= insns.len() {
            return insns;
        }
        (graph, root, insns) = (again, again_root, shorter);
    }
}

fn is_kill(action: Action) -> bool {
    matches!(action, Action::KillThread | Action::KillProcess)
}

/// One range of syscall numbers with the code that decides it.
#[derive(Debug, Clone, Copy)]
struct Leaf {
    first: u32,
    last: u32,
    code: NodeId,
    weight: f64,
}

/// The code for one architecture, entered with anything in A.
fn section(graph: &mut Graph, section: &ArchPolicy) -> Result<NodeId, Error> {
    let mut leaves: Vec<Leaf> = Vec::new();
    for span in ranges::spans(section) {
        let mut code = graph.ret(span.decision.otherwise.ret_value());
        for (cond, action) in span.decision.tests.iter().rev() {
            let hit = graph.ret(action.ret_value());
            code = cond::Lower { graph }.cond(cond, hit, code)?;
        }
        let weight = f64::from(span.named) + if span.has_gap { GAP_WEIGHT } else { 0.0 };
        match leaves.last_mut() {
            // Different decisions can still compile to the same code.
            Some(prev) if prev.code == code => {
                prev.last = span.last;
                prev.weight += weight;
            }
            _ => leaves.push(Leaf {
                first: span.first,
                last: span.last,
                code,
                weight,
            }),
        }
    }
    let tree = if leaves.len() <= MAX_OPTIMAL_RANGES {
        Optimal::new(&leaves).build(graph, 0, leaves.len() - 1)
    } else {
        balanced(graph, &leaves)
    };
    Ok(graph.load(SECCOMP_DATA_NR, tree))
}

/// How a run of leaves is searched.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Choice {
    Leaf,
    /// `JGE` on the first number of leaf `s`.
    Split(usize),
    /// `JEQ` on the first leaf, a single number.
    First,
    /// `JEQ` on the last leaf, a single number.
    Last,
    /// `JEQ` on the middle one of three leaves, between two with the same code.
    Middle,
}

/// The search tree with the least expected number of comparisons, by dynamic
/// programming over runs of leaves. The split point is searched between the best split
/// points of the two runs one leaf shorter (Knuth's bound for optimal search trees),
/// which keeps the work quadratic.
struct Optimal<'l> {
    leaves: &'l [Leaf],
    n: usize,
    cost: Vec<f64>,
    choice: Vec<Choice>,
    split: Vec<usize>,
}

impl<'l> Optimal<'l> {
    fn new(leaves: &'l [Leaf]) -> Self {
        let n = leaves.len();
        let mut table = Optimal {
            leaves,
            n,
            cost: vec![0.0; n * n],
            choice: vec![Choice::Leaf; n * n],
            split: vec![0; n * n],
        };
        let mut prefix = vec![0.0; n + 1];
        for (i, leaf) in leaves.iter().enumerate() {
            prefix[i + 1] = prefix[i] + leaf.weight;
        }
        let single = |i: usize| leaves[i].first == leaves[i].last;
        for len in 2..=n {
            for i in 0..=n - len {
                let j = i + len - 1;
                let weight = prefix[j + 1] - prefix[i];
                let (lo, hi) = if len == 2 {
                    (j, j)
                } else {
                    let (a, b) = (
                        table.split[table.at(i, j - 1)],
                        table.split[table.at(i + 1, j)],
                    );
                    if a <= b { (a, b) } else { (i + 1, j) }
                };
                let mut best = (f64::INFINITY, Choice::Leaf);
                let mut best_split = lo;
                for s in lo..=hi {
                    let c = table.cost[table.at(i, s - 1)] + table.cost[table.at(s, j)];
                    if c < best.0 {
                        best = (c, Choice::Split(s));
                        best_split = s;
                    }
                }
                if single(i) && table.cost[table.at(i + 1, j)] < best.0 {
                    best = (table.cost[table.at(i + 1, j)], Choice::First);
                }
                if single(j) && table.cost[table.at(i, j - 1)] < best.0 {
                    best = (table.cost[table.at(i, j - 1)], Choice::Last);
                }
                if len == 3 && single(i + 1) && leaves[i].code == leaves[j].code {
                    best = (0.0, Choice::Middle);
                }
                let at = table.at(i, j);
                table.cost[at] = best.0 + weight;
                table.choice[at] = best.1;
                table.split[at] = best_split;
            }
        }
        table
    }

    fn at(&self, i: usize, j: usize) -> usize {
        i * self.n + j
    }

    fn build(&self, graph: &mut Graph, i: usize, j: usize) -> NodeId {
        let l = self.leaves;
        match self.choice[self.at(i, j)] {
            Choice::Leaf => l[i].code,
            Choice::Split(s) => {
                let high = self.build(graph, s, j);
                let low = self.build(graph, i, s - 1);
                graph.jump(BPF_JGE, l[s].first, high, low)
            }
            Choice::First => {
                let rest = self.build(graph, i + 1, j);
                graph.jump(BPF_JEQ, l[i].first, l[i].code, rest)
            }
            Choice::Last => {
                let rest = self.build(graph, i, j - 1);
                graph.jump(BPF_JEQ, l[j].first, l[j].code, rest)
            }
            Choice::Middle => graph.jump(BPF_JEQ, l[i + 1].first, l[i + 1].code, l[i].code),
        }
    }
}

/// A tree that splits each run where the weight on both sides is closest to equal.
fn balanced(graph: &mut Graph, leaves: &[Leaf]) -> NodeId {
    if leaves.len() == 1 {
        return leaves[0].code;
    }
    let total: f64 = leaves.iter().map(|l| l.weight).sum();
    let mut below = 0.0;
    let mut split = 1;
    for (s, leaf) in leaves.iter().enumerate().skip(1) {
        below += leaves[s - 1].weight;
        split = s;
        if below + leaf.weight / 2.0 >= total / 2.0 {
            break;
        }
    }
    let high = balanced(graph, &leaves[split..]);
    let low = balanced(graph, &leaves[..split]);
    graph.jump(BPF_JGE, leaves[split].first, high, low)
}
