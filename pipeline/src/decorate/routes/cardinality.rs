//! The `low-cardinality` unmatched mode: a tree of the path segments seen so
//! far, where each position keeps at most `max` distinct values of its own.
//!
//! Rule: under a given parent route, the first `max` distinct values seen at
//! the next segment keep their own name, forever. The `max + 1`-th distinct
//! value, and every later unseen value, is replaced by the wildcard and
//! continues in one shared wildcard child. So a position yields at most
//! `max + 1` distinct routes.
//!
//! Memory is bounded: at most [`MAX_TRACKED_NODES`] nodes in all, paths of at
//! most [`MAX_TRACKED_DEPTH`] segments, and segment values longer than
//! [`MAX_TRACKED_SEGMENT_LEN`] bytes are never stored (they go straight to the
//! wildcard child). A path that would need a node beyond the cap, or is too
//! deep, gets `None`: the caller falls back to the heuristic.

use std::collections::HashMap;

/// Nodes (route prefixes) tracked in all, the root included.
pub const MAX_TRACKED_NODES: usize = 10_000;
/// Deeper paths are not tracked.
pub const MAX_TRACKED_DEPTH: usize = 32;
/// Longer segment values are not stored; they count as unseen values.
pub const MAX_TRACKED_SEGMENT_LEN: usize = 256;

#[derive(Debug, Default)]
struct Node {
    /// Values that keep their own name, at most `max` of them.
    children: HashMap<Box<str>, u32>,
    /// Where every other value goes.
    wildcard: Option<u32>,
}

#[derive(Debug)]
pub(super) struct LowCardinality {
    max: usize,
    /// `nodes[0]` is the root (the empty prefix).
    nodes: Vec<Node>,
}

impl LowCardinality {
    pub(super) fn new(max_segment_cardinality: usize) -> Self {
        Self {
            max: max_segment_cardinality,
            nodes: vec![Node::default()],
        }
    }

    /// Appends the route for `path` to `out` (an empty buffer the caller
    /// reuses); `None` when it cannot be tracked within the memory bounds (or
    /// does not start with `/`), `out` then holding a part to discard.
    pub(super) fn route(&mut self, path: &str, wildcard: &str, out: &mut String) -> Option<()> {
        let body = path.strip_prefix('/')?;
        if body.is_empty() {
            out.push('/');
            return Some(());
        }
        if body.bytes().filter(|&b| b == b'/').count() >= MAX_TRACKED_DEPTH {
            return None;
        }
        let mut node = 0;
        for value in body.split('/') {
            let (next, own) = self.step(node, value)?;
            out.push('/');
            out.push_str(if own { value } else { wildcard });
            node = next;
        }
        Some(())
    }

    /// The child of `node` for `value`, and whether `value` keeps its name.
    fn step(&mut self, node: usize, value: &str) -> Option<(usize, bool)> {
        if let Some(&child) = self.nodes[node].children.get(value) {
            return Some((child as usize, true));
        }
        if value.len() <= MAX_TRACKED_SEGMENT_LEN && self.nodes[node].children.len() < self.max {
            let child = self.alloc()?;
            self.nodes[node].children.insert(value.into(), child as u32);
            return Some((child, true));
        }
        let child = match self.nodes[node].wildcard {
            Some(child) => child as usize,
            None => {
                let child = self.alloc()?;
                self.nodes[node].wildcard = Some(child as u32);
                child
            }
        };
        Some((child, false))
    }

    fn alloc(&mut self) -> Option<usize> {
        if self.nodes.len() >= MAX_TRACKED_NODES {
            return None;
        }
        self.nodes.push(Node::default());
        Some(self.nodes.len() - 1)
    }

    #[cfg(test)]
    pub(super) fn node_count(&self) -> usize {
        self.nodes.len()
    }
}
