//! A linearizability checker for one key's history: Wing and Gong's search with Lowe's
//! memoization, as Porcupine implements it, extended to models whose step may lead to several
//! states (an operation whose outcome is unknown may or may not have taken effect).
//!
//! Operations are given with their invocation and return times; an operation that never
//! returned (its outcome is unknown) has no return time and may take effect at any point after
//! its invocation, or not at all, as Jepsen treats such operations.

use std::collections::HashSet;
use std::hash::Hash;

/// A sequential specification: the states a history is explained by.
pub trait Model {
    /// A state of the object. Compared and hashed for memoization.
    type State: Clone + Eq + Hash;
    /// One operation: what was asked and what came back.
    type Op;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The states `op` may lead to from `state`; empty when `op` cannot have returned what it
    /// returned from `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Vec<Self::State>;
}

/// An operation placed in time (nanoseconds from a common origin).
#[derive(Debug, Clone)]
pub struct Timed<O> {
    /// The operation.
    pub op: O,
    /// When it was invoked.
    pub call: u64,
    /// When it returned; `None` when its outcome is unknown.
    pub ret: Option<u64>,
}

/// What the search concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An order of the operations explains every result; the order (indices into the input).
    Linearizable(Vec<usize>),
    /// No order does. `stuck_at` is the operation whose return the search could never get past,
    /// and `longest` the most operations it managed to order before it.
    NotLinearizable {
        /// Index of the operation that could not be placed before its return.
        stuck_at: usize,
        /// The longest order found of a prefix of the history.
        longest: Vec<usize>,
    },
    /// The search took more than its budget of steps.
    Undecided {
        /// Steps taken.
        steps: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call,
    Return,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: Kind,
    op: usize,
    time: u64,
}

/// A doubly linked list of call and return entries, in time order, with a sentinel head at
/// index 0. Lifting an operation unlinks its call and return; unlifting puts them back.
struct Entries {
    entries: Vec<Entry>,
    prev: Vec<usize>,
    next: Vec<usize>,
    /// The list index of each operation's call and return entries.
    call_of: Vec<usize>,
    ret_of: Vec<usize>,
}

const NONE: usize = usize::MAX;

impl Entries {
    fn new<O>(ops: &[Timed<O>]) -> Self {
        let mut list: Vec<Entry> = Vec::with_capacity(ops.len() * 2);
        for (i, t) in ops.iter().enumerate() {
            list.push(Entry {
                kind: Kind::Call,
                op: i,
                time: t.call,
            });
            list.push(Entry {
                kind: Kind::Return,
                op: i,
                time: t.ret.unwrap_or(u64::MAX),
            });
        }
        // Calls before returns at one instant: operations that touch are taken as concurrent.
        list.sort_by_key(|e| (e.time, e.kind == Kind::Return, e.op));
        let n = list.len() + 1;
        let mut entries = Vec::with_capacity(n);
        entries.push(Entry {
            kind: Kind::Call,
            op: NONE,
            time: 0,
        });
        entries.extend(list);
        let mut call_of = vec![0; ops.len()];
        let mut ret_of = vec![0; ops.len()];
        for (i, e) in entries.iter().enumerate().skip(1) {
            match e.kind {
                Kind::Call => call_of[e.op] = i,
                Kind::Return => ret_of[e.op] = i,
            }
        }
        let prev = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
        let next = (0..n).map(|i| if i + 1 < n { i + 1 } else { NONE }).collect();
        Entries {
            entries,
            prev,
            next,
            call_of,
            ret_of,
        }
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        if p != NONE {
            self.next[p] = n;
        }
        if n != NONE {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        if p != NONE {
            self.next[p] = i;
        }
        if n != NONE {
            self.prev[n] = i;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        self.unlink(self.ret_of[op]);
    }

    fn unlift(&mut self, op: usize) {
        // Reverse order of unlinking.
        self.relink(self.ret_of[op]);
        self.relink(self.call_of[op]);
    }
}

struct Frame<S> {
    op: usize,
    before: S,
    alternatives: Vec<S>,
}

/// Decides whether `ops` is linearizable against `model`, taking at most `budget` search
/// steps.
pub fn check<M: Model>(model: &M, ops: &[Timed<M::Op>], budget: u64) -> Verdict {
    let mut list = Entries::new(ops);
    let words = ops.len().div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut state = model.init();
    let mut entry = list.next[0];
    let mut steps = 0u64;
    let mut longest: Vec<usize> = Vec::new();
    let mut stuck_at = None;
    let set = |bits: &mut Vec<u64>, i: usize, on: bool| {
        if on {
            bits[i / 64] |= 1 << (i % 64);
        } else {
            bits[i / 64] &= !(1 << (i % 64));
        }
    };
    while list.next[0] != NONE {
        steps += 1;
        if steps > budget {
            return Verdict::Undecided { steps };
        }
        let current = list.entries[entry];
        match current.kind {
            Kind::Call => {
                let op = current.op;
                let mut candidates = model.step(&state, &ops[op].op);
                let mut chosen = None;
                set(&mut linearized, op, true);
                while let Some(candidate) = candidates.pop() {
                    if cache.insert((linearized.clone(), candidate.clone())) {
                        chosen = Some(candidate);
                        break;
                    }
                }
                match chosen {
                    Some(next_state) => {
                        stack.push(Frame {
                            op,
                            before: std::mem::replace(&mut state, next_state),
                            alternatives: candidates,
                        });
                        list.lift(op);
                        if stack.len() > longest.len() {
                            longest = stack.iter().map(|f| f.op).collect();
                        }
                        entry = list.next[0];
                    }
                    None => {
                        set(&mut linearized, op, false);
                        entry = list.next[entry];
                    }
                }
            }
            Kind::Return => {
                if stuck_at.is_none() || stack.len() >= longest.len() {
                    stuck_at = Some(current.op);
                }
                // Backtrack until a frame has an untried alternative, or move past its call.
                loop {
                    let Some(mut frame) = stack.pop() else {
                        return Verdict::NotLinearizable {
                            stuck_at: stuck_at.unwrap_or(current.op),
                            longest,
                        };
                    };
                    list.unlift(frame.op);
                    state = frame.before.clone();
                    let mut chosen = None;
                    while let Some(candidate) = frame.alternatives.pop() {
                        if cache.insert((linearized.clone(), candidate.clone())) {
                            chosen = Some(candidate);
                            break;
                        }
                    }
                    if let Some(next_state) = chosen {
                        list.lift(frame.op);
                        let before = std::mem::replace(&mut state, next_state);
                        stack.push(Frame {
                            op: frame.op,
                            before,
                            alternatives: frame.alternatives,
                        });
                        entry = list.next[0];
                        break;
                    }
                    set(&mut linearized, frame.op, false);
                    entry = list.next[list.call_of[frame.op]];
                    if entry != NONE {
                        break;
                    }
                }
            }
        }
    }
    Verdict::Linearizable(stack.iter().map(|f| f.op).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register: write(v) and read() -> v, with unknown writes.
    struct Register;

    #[derive(Debug, Clone)]
    enum RegOp {
        Write(u8),
        WriteUnknown(u8),
        Read(u8),
        /// Compare-and-set old -> new; true when it swapped.
        Cas(u8, u8, bool),
    }

    impl Model for Register {
        type State = u8;
        type Op = RegOp;
        fn init(&self) -> u8 {
            0
        }
        fn step(&self, s: &u8, op: &RegOp) -> Vec<u8> {
            match op {
                RegOp::Write(v) => vec![*v],
                RegOp::WriteUnknown(v) => vec![*s, *v],
                RegOp::Read(v) => {
                    if v == s {
                        vec![*s]
                    } else {
                        vec![]
                    }
                }
                RegOp::Cas(old, new, swapped) => match (s == old, swapped) {
                    (true, true) => vec![*new],
                    (false, false) => vec![*s],
                    _ => vec![],
                },
            }
        }
    }

    fn t(op: RegOp, call: u64, ret: Option<u64>) -> Timed<RegOp> {
        Timed { op, call, ret }
    }

    fn linearizable(ops: &[Timed<RegOp>]) -> bool {
        match check(&Register, ops, 1_000_000) {
            Verdict::Linearizable(order) => {
                assert_eq!(order.len(), ops.len());
                true
            }
            Verdict::NotLinearizable { .. } => false,
            Verdict::Undecided { .. } => panic!("undecided"),
        }
    }

    #[test]
    fn sequential_histories() {
        assert!(linearizable(&[
            t(RegOp::Write(1), 0, Some(1)),
            t(RegOp::Read(1), 2, Some(3))
        ]));
        assert!(!linearizable(&[
            t(RegOp::Write(1), 0, Some(1)),
            t(RegOp::Read(0), 2, Some(3))
        ]));
        assert!(linearizable(&[]));
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The read overlaps the write: it may see the old or the new value.
        assert!(linearizable(&[
            t(RegOp::Write(1), 0, Some(10)),
            t(RegOp::Read(0), 5, Some(6))
        ]));
        assert!(linearizable(&[
            t(RegOp::Write(1), 0, Some(10)),
            t(RegOp::Read(1), 5, Some(6))
        ]));
        // Two reads after the write began, the first sees new, the later one old: impossible.
        assert!(!linearizable(&[
            t(RegOp::Write(1), 0, Some(10)),
            t(RegOp::Read(1), 1, Some(2)),
            t(RegOp::Read(0), 3, Some(4)),
        ]));
    }

    #[test]
    fn two_compare_and_sets_from_one_value_cannot_both_win() {
        assert!(!linearizable(&[
            t(RegOp::Cas(0, 1, true), 0, Some(10)),
            t(RegOp::Cas(0, 2, true), 1, Some(9)),
        ]));
        assert!(linearizable(&[
            t(RegOp::Cas(0, 1, true), 0, Some(10)),
            t(RegOp::Cas(0, 2, false), 1, Some(9)),
            t(RegOp::Read(1), 11, Some(12)),
        ]));
    }

    #[test]
    fn an_unknown_outcome_may_or_may_not_have_taken_effect_any_time_after_its_call() {
        // Applied: seen later.
        assert!(linearizable(&[
            t(RegOp::WriteUnknown(1), 0, None),
            t(RegOp::Read(1), 50, Some(60))
        ]));
        // Not applied.
        assert!(linearizable(&[
            t(RegOp::WriteUnknown(1), 0, None),
            t(RegOp::Read(0), 50, Some(60))
        ]));
        // Applied late: seen as 0, then as 1.
        assert!(linearizable(&[
            t(RegOp::WriteUnknown(1), 0, None),
            t(RegOp::Read(0), 50, Some(60)),
            t(RegOp::Read(1), 70, Some(80)),
        ]));
        // But never before its call, and it cannot flip back.
        assert!(!linearizable(&[
            t(RegOp::Read(1), 0, Some(10)),
            t(RegOp::WriteUnknown(1), 20, None),
        ]));
        assert!(!linearizable(&[
            t(RegOp::WriteUnknown(1), 0, None),
            t(RegOp::Read(1), 50, Some(60)),
            t(RegOp::Read(0), 70, Some(80)),
        ]));
        // A known write's result is not optional.
        assert!(!linearizable(&[
            t(RegOp::Write(1), 0, Some(10)),
            t(RegOp::Read(0), 50, Some(60))
        ]));
    }

    #[test]
    fn the_report_names_where_the_search_got_stuck() {
        let ops = [
            t(RegOp::Write(1), 0, Some(10)),
            t(RegOp::Read(1), 20, Some(30)),
            t(RegOp::Read(2), 40, Some(50)),
        ];
        match check(&Register, &ops, 1_000_000) {
            Verdict::NotLinearizable { stuck_at, longest } => {
                assert_eq!(stuck_at, 2);
                assert_eq!(longest, vec![0, 1]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_budget_bounds_the_search() {
        let ops: Vec<_> = (0..40).map(|i| t(RegOp::WriteUnknown(i), 0, None)).collect();
        let mut with_read = ops.clone();
        with_read.push(t(RegOp::Read(200), 1, Some(2)));
        assert!(matches!(
            check(&Register, &with_read, 1000),
            Verdict::Undecided { .. }
        ));
    }
}
