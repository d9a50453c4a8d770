//! The program as a graph of instructions, before it is laid out.
//!
//! Code generation builds the filter backwards, from the returns towards the first
//! instruction, as a directed acyclic graph in which identical nodes are one node (hash
//! consing). That alone merges identical argument checks, shares `RET` instructions and
//! lets adjacent syscall ranges with identical code collapse into one.
//!
//! Passes then turn the graph into instructions:
//!
//! * [`simplify`] walks it forwards, knowing which `seccomp_data` word each register holds
//!   on every path, and drops loads of a word that is already there, plus loads whose
//!   value nothing reads. It can also decide comparisons from the value an earlier `JEQ`
//!   on the same path found in a word.
//! * [`prune`] walks it backwards, knowing which registers are read later, and drops
//!   statements whose result is never read, with the jumps this leaves pointless. The two
//!   alternate while the program gets shorter.
//! * [`emit`] lays it out. BPF jumps only go forwards and a conditional jump reaches at
//!   most 255 instructions, so layout also goes backwards: every target already has a
//!   place when its jump is written. A return that is out of reach is written again next
//!   to the jump; any other target out of reach gets an unconditional `JA` trampoline.

use std::collections::HashMap;

use crate::bpf::*;

pub(super) type NodeId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Node {
    /// `RET #k`.
    Ret(u32),
    /// A conditional jump; `code` is the whole opcode (`BPF_JMP | op | src`).
    Jump {
        code: u16,
        k: u32,
        t: NodeId,
        f: NodeId,
    },
    /// Any other instruction, followed by `next`.
    Stmt { code: u16, k: u32, next: NodeId },
}

#[derive(Debug, Default)]
pub(super) struct Graph {
    nodes: Vec<Node>,
    ids: HashMap<Node, NodeId>,
}

impl Graph {
    pub(super) fn node(&self, id: NodeId) -> Node {
        self.nodes[id]
    }

    fn add(&mut self, node: Node) -> NodeId {
        if let Some(&id) = self.ids.get(&node) {
            return id;
        }
        self.nodes.push(node);
        self.ids.insert(node, self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    pub(super) fn ret(&mut self, value: u32) -> NodeId {
        self.add(Node::Ret(value))
    }

    /// A conditional jump `BPF_JMP | op | BPF_K` on `k`, or `BPF_JMP | op | BPF_X` when
    /// `op` already has `BPF_X` set. Jumps whose outcome is known are not built.
    pub(super) fn jump(&mut self, op: u16, k: u32, t: NodeId, f: NodeId) -> NodeId {
        if t == f {
            return t;
        }
        if op & BPF_X == 0 {
            match op {
                BPF_JGE if k == 0 => return t,
                BPF_JGT if k == u32::MAX => return f,
                BPF_JSET if k == 0 => return f,
                _ => {}
            }
        }
        self.add(Node::Jump {
            code: BPF_JMP | op,
            k,
            t,
            f,
        })
    }

    pub(super) fn stmt(&mut self, code: u16, k: u32, next: NodeId) -> NodeId {
        self.add(Node::Stmt { code, k, next })
    }

    /// `LD [offset]`, a word of `seccomp_data`.
    pub(super) fn load(&mut self, offset: u32, next: NodeId) -> NodeId {
        self.stmt(BPF_LD | BPF_W | BPF_ABS, offset, next)
    }
}

/// What a register is known to hold: a word of `seccomp_data`, or anything.
type Known = Option<u32>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Regs {
    a: Known,
    x: Known,
    /// A `seccomp_data` word (by offset) and the value a `JEQ` taken on this path found
    /// in it. The data does not change while the filter runs, so the fact holds to the
    /// end of the path.
    value: Option<(u32, u32)>,
}

/// How many nodes [`simplify`] visits before it stops learning values from comparisons. Each value learnt can revisit what follows it, so a long chain of
/// comparisons with distinct constants costs the square of its length.
const VALUE_BUDGET: usize = 1 << 21;

/// Rebuilds the graph from `root` without redundant or dead loads. With `values`, a
/// comparison whose outcome follows from an earlier `JEQ` on the same path is decided:
/// after `hi == 1` held, `hi == 2` cannot, so in a chain of 64-bit equalities a low word
/// that does not match leaves the whole chain at once instead of testing every
/// alternative's high word again.
pub(super) fn simplify(graph: &Graph, root: NodeId, values: bool) -> (Graph, NodeId) {
    let mut pass = Simplify {
        old: graph,
        new: Graph::default(),
        done: HashMap::new(),
        budget: if values { VALUE_BUDGET } else { 0 },
    };
    let regs = Regs {
        a: None,
        x: None,
        value: None,
    };
    let root = pass.run(root, regs);
    (pass.new, root)
}

struct Simplify<'g> {
    old: &'g Graph,
    new: Graph,
    done: HashMap<(NodeId, Regs), NodeId>,
    /// Visits left before values are forgotten; forgetting is always sound.
    budget: usize,
}

/// A step of [`Simplify`]'s depth-first walk. The walk keeps its own stack, since the
/// paths of a program far over the kernel's limit are tens of thousands of nodes long.
enum SimplifyStep {
    /// Visit a node with what the registers hold there.
    Enter(NodeId, Regs),
    /// The successors of `id` are built, the last one on top of the results: build `id`,
    /// which the walk reached at `entry` (the same node, or one that vanishes into it).
    Leave {
        entry: NodeId,
        id: NodeId,
        regs: Regs,
    },
}

impl Simplify<'_> {
    /// The replacement of `root`, every node's built after those of its successors, true
    /// branch first.
    fn run(&mut self, root: NodeId, regs: Regs) -> NodeId {
        let mut steps = vec![SimplifyStep::Enter(root, regs)];
        let mut built = Vec::new();
        while let Some(step) = steps.pop() {
            match step {
                SimplifyStep::Enter(id, regs) => {
                    if let Some(done) = self.enter(id, regs, &mut steps) {
                        built.push(done);
                    }
                }
                SimplifyStep::Leave { entry, id, regs } => {
                    let mut successor = || built.pop().expect("successors are built first");
                    let new = match self.old.node(id) {
                        Node::Jump { code, k, .. } => {
                            let f = successor();
                            let t = successor();
                            self.new.jump(code & !BPF_JMP, k, t, f)
                        }
                        Node::Stmt { code, k, .. } => {
                            let next = successor();
                            self.stmt(code, k, next)
                        }
                        Node::Ret(_) => unreachable!("returns are built when entered"),
                    };
                    self.done.insert((id, regs), new);
                    self.done.insert((entry, regs), new);
                    built.push(new);
                }
            }
        }
        built.pop().expect("the root is built")
    }

    /// Starts the visit of `id`: returns its replacement if that is known at once, and
    /// otherwise pushes the steps that build it.
    fn enter(&mut self, id: NodeId, regs: Regs, steps: &mut Vec<SimplifyStep>) -> Option<NodeId> {
        let mut regs = regs;
        if self.budget == 0 {
            regs.value = None;
        }
        if let Some(&done) = self.done.get(&(id, regs)) {
            return Some(done);
        }
        self.budget = self.budget.saturating_sub(1);
        // Nodes that vanish are followed here: a chain of decided comparisons can be as
        // long as the program, and the walk's stack stays as deep as what is kept.
        let entry = id;
        let mut id = id;
        while let Some(next) = self.vanishes(id, regs) {
            id = next;
            self.budget = self.budget.saturating_sub(1);
            if let Some(&done) = self.done.get(&(id, regs)) {
                self.done.insert((entry, regs), done);
                return Some(done);
            }
        }
        match self.old.node(id) {
            Node::Ret(value) => {
                let new = self.new.ret(value);
                self.done.insert((id, regs), new);
                self.done.insert((entry, regs), new);
                Some(new)
            }
            Node::Jump { code, k, t, f } => {
                let mut on_true = regs;
                if code == BPF_JMP | BPF_JEQ | BPF_K
                    && let Some(word) = regs.a
                {
                    on_true.value = Some((word, k));
                }
                steps.push(SimplifyStep::Leave { entry, id, regs });
                steps.push(SimplifyStep::Enter(f, regs));
                steps.push(SimplifyStep::Enter(t, on_true));
                None
            }
            Node::Stmt { code, k, next } => {
                steps.push(SimplifyStep::Leave { entry, id, regs });
                steps.push(SimplifyStep::Enter(next, after(code, k, regs)));
                None
            }
        }
    }

    /// Where control goes on from a node that `regs` make pointless: a comparison with a
    /// known outcome, a load of the word already in A, a copy of A into X that X holds.
    fn vanishes(&self, id: NodeId, regs: Regs) -> Option<NodeId> {
        match self.old.node(id) {
            Node::Jump { code, k, t, f } => decided(code, k, regs).map(|d| if d { t } else { f }),
            Node::Stmt { code, k, next } => {
                let reload = code == BPF_LD | BPF_W | BPF_ABS && regs.a == Some(k);
                let retax = code == BPF_MISC | BPF_TAX && regs.a.is_some() && regs.x == regs.a;
                (reload || retax).then_some(next)
            }
            Node::Ret(_) => None,
        }
    }

    /// The statement, followed by the replacement of its successor, unless it is dead.
    fn stmt(&mut self, code: u16, k: u32, next: NodeId) -> NodeId {
        match self.new.node(next) {
            // No instruction has an effect outside the registers and scratch memory,
            // so whatever runs right before a return is dead.
            Node::Ret(_) => next,
            // A value put in A and replaced before anything reads it.
            Node::Stmt { code: then, .. } if writes_only_a(code) && overwrites_a(then) => next,
            _ => self.new.stmt(code, k, next),
        }
    }
}

/// What the registers hold after a statement.
fn after(code: u16, k: u32, regs: Regs) -> Regs {
    let load_abs = code == BPF_LD | BPF_W | BPF_ABS;
    match code & 0x07 {
        BPF_LD if load_abs => Regs { a: Some(k), ..regs },
        BPF_LD | BPF_ALU => Regs { a: None, ..regs },
        BPF_LDX => Regs { x: None, ..regs },
        BPF_MISC if code == BPF_MISC | BPF_TAX => Regs { x: regs.a, ..regs },
        BPF_MISC => Regs { a: regs.x, ..regs },
        _ => regs,
    }
}

/// The outcome of a jump on a constant when A holds a word whose value is known.
fn decided(code: u16, k: u32, regs: Regs) -> Option<bool> {
    let (word, value) = regs.value?;
    if regs.a != Some(word) || code & BPF_X != 0 {
        return None;
    }
    match code & !(BPF_JMP | BPF_K) {
        BPF_JEQ => Some(value == k),
        BPF_JGT => Some(value > k),
        BPF_JGE => Some(value >= k),
        BPF_JSET => Some(value & k != 0),
        _ => None,
    }
}

fn writes_only_a(code: u16) -> bool {
    matches!(code & 0x07, BPF_LD | BPF_ALU) || code == BPF_MISC | BPF_TXA
}

fn overwrites_a(code: u16) -> bool {
    code & 0x07 == BPF_LD
}

/// Which registers the code from a node on reads before writing them.
#[derive(Debug, Clone, Copy, Default)]
struct Live {
    a: bool,
    x: bool,
}

/// Rebuilds the graph from `root` without statements whose result nothing reads, and so
/// without the jumps that are left with both branches on one node.
///
/// [`simplify`] cannot see these: a comparison that can no longer change the outcome still
/// sets up X for a next comparison on one branch only, so its two branches differ until the
/// unread `TAX` (and what computed its value) is gone.
pub(super) fn prune(graph: &Graph, root: NodeId) -> (Graph, NodeId) {
    let mut pass = Prune {
        old: graph,
        new: Graph::default(),
        done: HashMap::new(),
    };
    let (root, _) = pass.run(root);
    (pass.new, root)
}

struct Prune<'g> {
    old: &'g Graph,
    new: Graph,
    done: HashMap<NodeId, (NodeId, Live)>,
}

/// A step of [`Prune`]'s depth-first walk, which keeps its own stack for the same reason
/// as [`Simplify`]'s.
enum PruneStep {
    Enter(NodeId),
    /// The successors are built, the last one on top of the results: build the node.
    Leave(NodeId),
}

impl Prune<'_> {
    /// The replacement of `root` and the registers it reads, every node's built after
    /// those of its successors, true branch first.
    fn run(&mut self, root: NodeId) -> (NodeId, Live) {
        let mut steps = vec![PruneStep::Enter(root)];
        let mut built: Vec<(NodeId, Live)> = Vec::new();
        while let Some(step) = steps.pop() {
            let id = match step {
                PruneStep::Enter(id) => {
                    if let Some(&done) = self.done.get(&id) {
                        built.push(done);
                        continue;
                    }
                    match self.old.node(id) {
                        Node::Ret(_) => id,
                        Node::Jump { t, f, .. } => {
                            steps.push(PruneStep::Leave(id));
                            steps.push(PruneStep::Enter(f));
                            steps.push(PruneStep::Enter(t));
                            continue;
                        }
                        Node::Stmt { next, .. } => {
                            steps.push(PruneStep::Leave(id));
                            steps.push(PruneStep::Enter(next));
                            continue;
                        }
                    }
                }
                PruneStep::Leave(id) => id,
            };
            let mut successor = || built.pop().expect("successors are built first");
            let new = match self.old.node(id) {
                Node::Ret(value) => (self.new.ret(value), Live::default()),
                Node::Jump { code, k, .. } => {
                    let (f, live_f) = successor();
                    let (t, live_t) = successor();
                    let jump = self.new.jump(code & !BPF_JMP, k, t, f);
                    if jump == t || jump == f {
                        // Decided without looking at A: the jump is gone.
                        (jump, if jump == t { live_t } else { live_f })
                    } else {
                        let live = Live {
                            a: true,
                            x: live_t.x || live_f.x || code & BPF_X != 0,
                        };
                        (jump, live)
                    }
                }
                Node::Stmt { code, k, .. } => {
                    let (next, after) = successor();
                    let (reads, writes) = effect(code);
                    let read_later = (writes.a && after.a) || (writes.x && after.x);
                    let touches_memory = matches!(code & 0x07, BPF_ST | BPF_STX);
                    if !read_later && !touches_memory {
                        (next, after)
                    } else {
                        let live = Live {
                            a: reads.a || (after.a && !writes.a),
                            x: reads.x || (after.x && !writes.x),
                        };
                        (self.new.stmt(code, k, next), live)
                    }
                }
            };
            self.done.insert(id, new);
            built.push(new);
        }
        built.pop().expect("the root is built")
    }
}

/// The registers a statement reads and those it writes.
fn effect(code: u16) -> (Live, Live) {
    let uses_x = code & BPF_X != 0;
    let (a, x) = (Live { a: true, x: false }, Live { a: false, x: true });
    let none = Live::default();
    match code & 0x07 {
        BPF_LD if code & 0xe0 == BPF_IND => (x, a),
        BPF_LD => (none, a),
        BPF_LDX => (none, x),
        BPF_ST => (a, none),
        BPF_STX => (x, none),
        BPF_ALU => (Live { a: true, x: uses_x }, a),
        BPF_MISC if code == BPF_MISC | BPF_TAX => (a, x),
        BPF_MISC => (x, a),
        // Nothing else is built as a statement; if it were, it stays, reading both.
        _ => (Live { a: true, x: true }, Live { a: true, x: true }),
    }
}

/// Lays the graph out as instructions, the node `root` first.
pub(super) fn emit(graph: &Graph, root: NodeId) -> Vec<Instruction> {
    let mut layout = Layout {
        graph,
        out: Vec::new(),
        placed: HashMap::new(),
    };
    for id in postorder(graph, root) {
        layout.place(id);
    }
    if let Node::Ret(value) = graph.node(root) {
        layout.out.push(Instruction::stmt(BPF_RET | BPF_K, value));
    }
    layout.out.reverse();
    layout.out
}

/// The non-return nodes reachable from `root`, every node after all of its successors.
/// Read backwards this is a topological order in which a statement is directly followed
/// by its successor whenever that successor is reached first through it.
fn postorder(graph: &Graph, root: NodeId) -> Vec<NodeId> {
    let mut order = Vec::new();
    let mut seen = vec![false; graph.nodes.len()];
    let mut stack = vec![(root, false)];
    while let Some((id, expanded)) = stack.pop() {
        if expanded {
            order.push(id);
            continue;
        }
        if seen[id] {
            continue;
        }
        seen[id] = true;
        stack.push((id, true));
        match graph.node(id) {
            Node::Ret(_) => {
                stack.pop();
            }
            Node::Jump { t, f, .. } => {
                stack.push((t, false));
                stack.push((f, false));
            }
            Node::Stmt { next, .. } => stack.push((next, false)),
        }
    }
    order
}

struct Layout<'g> {
    graph: &'g Graph,
    /// The program so far, last instruction first.
    out: Vec<Instruction>,
    /// Where each node, or the nearest copy of or trampoline to it, sits in `out`.
    placed: HashMap<NodeId, usize>,
}

impl Layout<'_> {
    /// How far a jump written next would have to skip to reach `id`.
    fn distance(&self, id: NodeId) -> Option<usize> {
        self.placed.get(&id).map(|&at| self.out.len() - at - 1)
    }

    fn push(&mut self, insn: Instruction) -> usize {
        self.out.push(insn);
        self.out.len() - 1
    }

    /// Makes `id` reachable by a conditional jump written next.
    fn reach(&mut self, id: NodeId) {
        let near = self.distance(id).is_some_and(|d| d <= usize::from(u8::MAX));
        if near {
            return;
        }
        let at = match self.graph.node(id) {
            Node::Ret(value) => self.push(Instruction::stmt(BPF_RET | BPF_K, value)),
            // Trampoline: `JA` to the node (or to its nearest trampoline), which is
            // further away than a conditional jump can reach.
            _ => {
                let d = self.distance(id).expect("successors are placed first");
                self.push(Instruction::stmt(BPF_JMP | BPF_JA, d as u32))
            }
        };
        self.placed.insert(id, at);
    }

    fn place(&mut self, id: NodeId) {
        let at = match self.graph.node(id) {
            Node::Ret(_) => return,
            Node::Stmt { code, k, next } => {
                if self.distance(next) != Some(0) {
                    match self.graph.node(next) {
                        Node::Ret(value) => {
                            let at = self.push(Instruction::stmt(BPF_RET | BPF_K, value));
                            self.placed.insert(next, at);
                        }
                        // The successor was placed through another path; jump to it.
                        _ => {
                            let d = self.distance(next).expect("successors are placed first");
                            self.push(Instruction::stmt(BPF_JMP | BPF_JA, d as u32));
                        }
                    }
                }
                self.push(Instruction::stmt(code, k))
            }
            Node::Jump { code, k, t, f } => {
                // Making one target reachable may push the other out of reach.
                loop {
                    self.reach(f);
                    self.reach(t);
                    let fits = |d: Option<usize>| d.is_some_and(|d| d <= usize::from(u8::MAX));
                    if fits(self.distance(f)) && fits(self.distance(t)) {
                        break;
                    }
                }
                let jt = self.distance(t).expect("reached") as u8;
                let jf = self.distance(f).expect("reached") as u8;
                self.push(Instruction::jump(code, k, jt, jf))
            }
        };
        self.placed.insert(id, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_of_the_word_already_in_a_is_dropped() {
        let mut g = Graph::default();
        let (yes, no) = (g.ret(1), g.ret(2));
        let second = g.jump(BPF_JEQ, 7, yes, no);
        let second = g.load(SECCOMP_DATA_ARGS, second);
        let first = g.jump(BPF_JEQ, 3, yes, second);
        let root = g.load(SECCOMP_DATA_ARGS, first);
        let (g, root) = simplify(&g, root, false);
        let loads = emit(&g, root)
            .iter()
            .filter(|i| i.code == BPF_LD | BPF_W | BPF_ABS)
            .count();
        assert_eq!(loads, 1);
    }

    #[test]
    fn a_comparison_whose_branches_differ_only_by_an_unread_tax_is_dropped() {
        let mut g = Graph::default();
        let (yes, no) = (g.ret(1), g.ret(2));
        let check = g.jump(BPF_JEQ, 5, yes, no);
        let check = g.load(SECCOMP_DATA_NR, check);
        let set_x = g.stmt(BPF_MISC | BPF_TAX, 0, check);
        let pointless = g.jump(BPF_JGT, 3, set_x, check);
        let root = g.load(SECCOMP_DATA_ARGS, pointless);
        let (g, root) = prune(&g, root);
        let (g, root) = simplify(&g, root, false);
        assert_eq!(
            emit(&g, root),
            vec![
                Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR),
                Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, 5, 0, 1),
                Instruction::stmt(BPF_RET | BPF_K, 1),
                Instruction::stmt(BPF_RET | BPF_K, 2),
            ]
        );
    }

    #[test]
    fn a_comparison_decided_by_an_earlier_equality_on_the_path_is_dropped() {
        // hi == 1 ? (lo == 7 ? yes : (hi == 2 ? yes : no)) : ...: once hi == 1 held,
        // hi == 2 cannot, so a mismatching low word goes straight to `no`.
        let mut g = Graph::default();
        let (yes, no) = (g.ret(1), g.ret(2));
        let second = g.jump(BPF_JEQ, 2, yes, no);
        let second = g.load(SECCOMP_DATA_ARGS + 4, second);
        let low = g.jump(BPF_JEQ, 7, yes, second);
        let low = g.load(SECCOMP_DATA_ARGS, low);
        let first = g.jump(BPF_JEQ, 1, low, second);
        let root = g.load(SECCOMP_DATA_ARGS + 4, first);
        let jumps = |g: &Graph, root| {
            emit(g, root)
                .iter()
                .filter(|i| i.code == BPF_JMP | BPF_JEQ | BPF_K)
                .count()
        };
        let (plain, plain_root) = simplify(&g, root, false);
        assert_eq!(jumps(&plain, plain_root), 3);
        let (g, root) = simplify(&g, root, true);
        assert_eq!(
            emit(&g, root),
            vec![
                Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARGS + 4),
                Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 2),
                Instruction::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARGS),
                // A low word other than 7 answers `no` without looking at hi again.
                Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, 7, 1, 2),
                Instruction::jump(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 1),
                Instruction::stmt(BPF_RET | BPF_K, 1),
                Instruction::stmt(BPF_RET | BPF_K, 2),
            ]
        );
    }

    #[test]
    fn a_statement_right_before_a_return_is_dead() {
        let mut g = Graph::default();
        let ret = g.ret(5);
        let root = g.load(SECCOMP_DATA_NR, ret);
        let (g, root) = simplify(&g, root, false);
        assert_eq!(emit(&g, root), vec![Instruction::stmt(BPF_RET | BPF_K, 5)]);
    }

    #[test]
    fn far_targets_get_a_repeated_return_or_a_trampoline() {
        // A chain of 300 jumps, leaving either for one shared check at the end or for a
        // return.
        let mut g = Graph::default();
        let (yes, no) = (g.ret(1), g.ret(2));
        let shared = g.jump(BPF_JSET, 0x10, yes, no);
        let shared = g.load(SECCOMP_DATA_ARGS, shared);
        let mut node = no;
        for k in 0..300 {
            let target = if k % 2 == 0 { shared } else { yes };
            node = g.jump(BPF_JEQ, k, target, node);
        }
        let insns = emit(&g, node);
        let trampolines = insns.iter().filter(|i| i.code == BPF_JMP | BPF_JA).count();
        assert!(
            trampolines >= 1,
            "no trampoline in {} instructions",
            insns.len()
        );
        let copies = insns
            .iter()
            .filter(|i| *i == &Instruction::stmt(BPF_RET | BPF_K, 1));
        assert!(copies.count() >= 2, "the far return was not repeated");
        for (at, insn) in insns.iter().enumerate() {
            if insn.code & 0x07 == BPF_JMP && insn.code != BPF_JMP | BPF_JA {
                assert!(at + 1 + usize::from(insn.jt.max(insn.jf)) < insns.len());
            }
        }
    }
}
