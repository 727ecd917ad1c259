//! Which nodes a search can reach at all: a node no path leads to from the entry point is
//! never returned, whatever ef is, and a query whose true neighbours are such nodes gets
//! recall 0.

use crate::FlatGraph;

/// Nodes reachable from the entry point over the links of every layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachability {
    pub reachable: usize,
    /// The nodes no path leads to, in id order.
    pub unreachable: Vec<u32>,
}

impl FlatGraph {
    /// Walk every layer's links from the entry point (a search descends the upper layers to
    /// its layer-0 start, so a node reachable only through an upper layer still counts).
    pub fn reachability(&self) -> Reachability {
        let n = self.len();
        if n == 0 {
            return Reachability {
                reachable: 0,
                unreachable: Vec::new(),
            };
        }
        let mut seen = vec![false; n];
        let mut stack = vec![self.entry];
        seen[self.entry as usize] = true;
        while let Some(node) = stack.pop() {
            for layer in 0..=self.level(node) {
                for &next in self.neighbours(node, layer) {
                    if !seen[next as usize] {
                        seen[next as usize] = true;
                        stack.push(next);
                    }
                }
            }
        }
        let unreachable: Vec<u32> = (0..n as u32).filter(|i| !seen[*i as usize]).collect();
        Reachability {
            reachable: n - unreachable.len(),
            unreachable,
        }
    }
}
