//! Choosing each node's layer-0 links again, from its own links and the links pointing at
//! it, with the diversity rule HNSW uses when it inserts a node.
//!
//! Why: hnsw_rs selects a new node's links with that rule, but when a node's list overflows
//! with links added back from newer nodes, it keeps the nearest and drops the farthest. The
//! farthest are the links between clusters, so as lists fill, clusters become islands on
//! layer 0: a query whose descent lands in the wrong cluster then finds none of its
//! neighbours at any ef (recall 0). Every such link still exists in one direction or the
//! other, so offering each node both directions and keeping diverse ones first restores
//! them.

use crate::FlatGraph;

impl FlatGraph {
    /// Reselect every node's layer-0 links (same slot size, so the same memory): candidates
    /// are its links and its back-links, nearest first; a candidate is kept when it is nearer
    /// to the node than to every link kept so far (so one link per direction), and the
    /// slots left are filled with the nearest of the rest. `threads` nodes at a time.
    pub fn reselect_base_links(&mut self, threads: usize) {
        let n = self.len();
        if n == 0 {
            return;
        }
        let back = self.back_links();
        let capacity = self.base_slot - 1;
        let chosen: Vec<Vec<u32>> = {
            let graph = &*self;
            let back = &back;
            let per = n.div_ceil(threads.max(1));
            std::thread::scope(|s| {
                let parts: Vec<_> = (0..n)
                    .step_by(per)
                    .map(|start| {
                        s.spawn(move || {
                            (start..(start + per).min(n))
                                .map(|node| graph.select_for(node as u32, &back[node], capacity))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                parts
                    .into_iter()
                    .flat_map(|p| p.join().expect("a reselection thread panicked"))
                    .collect()
            })
        };
        for (node, links) in chosen.iter().enumerate() {
            self.set_base_links(node as u32, links);
        }
    }

    /// Who links to each node on layer 0.
    fn back_links(&self) -> Vec<Vec<u32>> {
        let mut back = vec![Vec::new(); self.len()];
        for node in 0..self.len() as u32 {
            for &to in self.neighbours(node, 0) {
                back[to as usize].push(node);
            }
        }
        back
    }

    fn select_for(&self, node: u32, back: &[u32], capacity: usize) -> Vec<u32> {
        let me = self.vector(node);
        let mut candidates: Vec<(f32, u32)> = self
            .neighbours(node, 0)
            .iter()
            .chain(back)
            .filter(|&&c| c != node)
            .map(|&c| (self.distance(me, c), c))
            .collect();
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        candidates.dedup_by_key(|c| c.1);
        let mut kept: Vec<(f32, u32)> = Vec::with_capacity(capacity);
        let mut rest = Vec::new();
        for &(dist, c) in &candidates {
            if kept.len() == capacity {
                break;
            }
            let v = self.vector(c);
            let diverse = kept.iter().all(|&(_, k)| self.distance(v, k) > dist);
            if diverse {
                kept.push((dist, c));
            } else {
                rest.push((dist, c));
            }
        }
        // Fill the slots left with the nearest of the rest: more links, more recall.
        kept.extend(rest.into_iter().take(capacity - kept.len()));
        kept.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        kept.into_iter().map(|(_, c)| c).collect()
    }
}

impl FlatGraph {
    /// Give each node no path leads to one link in: from its nearest reachable neighbour
    /// (or the nearest node a search finds), into a free slot or over that node's farthest
    /// link. Repeated while it helps (a link given up can strand another node). Returns the
    /// nodes still unreachable.
    pub fn link_unreachable(&mut self) -> Vec<u32> {
        let mut unreachable = self.reachability().unreachable;
        for _ in 0..8 {
            if unreachable.is_empty() {
                break;
            }
            let mut stranded = vec![false; self.len()];
            for &u in &unreachable {
                stranded[u as usize] = true;
            }
            // Each node gives up at most one link per pass, or repairs would overwrite
            // each other in a hub many stranded nodes link to.
            let mut giver = vec![false; self.len()];
            for &u in &unreachable {
                // Its nearest reachable links first, then (an island linking only among
                // itself) the nearest nodes a search finds: a search only finds reachable
                // nodes.
                let v = self.vector(u).to_vec();
                let mut options: Vec<u32> = self.neighbours(u, 0).to_vec();
                options.extend(self.search(&v, 8, 32).iter().map(|f| f.0));
                let Some(from) = options
                    .into_iter()
                    .find(|&o| o != u && !stranded[o as usize] && !giver[o as usize])
                else {
                    continue;
                };
                giver[from as usize] = true;
                let mut links = self.neighbours(from, 0).to_vec();
                if links.contains(&u) {
                    continue;
                }
                if links.len() < self.base_slot - 1 {
                    links.push(u);
                } else if let Some(last) = links.last_mut() {
                    *last = u;
                }
                self.set_base_links(from, &links);
            }
            let after = self.reachability().unreachable;
            if after.len() >= unreachable.len() {
                return after;
            }
            unreachable = after;
        }
        unreachable
    }
}

#[cfg(test)]
mod tests {
    use crate::{GraphBuilder, Space};

    /// Two clusters on a line whose links were pruned to the nearest only: the bridge
    /// exists one way (5 -> 6), so cluster B is reachable but its nodes link only inward;
    /// node 9 has no link in at all.
    fn islands() -> crate::FlatGraph {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 50.0, 51.0, 52.0, 53.0];
        let links: [&[u32]; 10] = [
            &[1, 2],
            &[0, 2],
            &[1, 3],
            &[2, 4],
            &[3, 5],
            &[4, 6],
            &[7, 8],
            &[6, 8],
            &[7, 6],
            &[8, 7],
        ];
        let mut b = GraphBuilder::new(Space::SquaredL2, 1, 10).unwrap();
        for (i, (x, l)) in xs.iter().zip(links).enumerate() {
            let layers = if i == 0 {
                vec![l.to_vec(), vec![]]
            } else {
                vec![l.to_vec()]
            };
            b.set_node(i as u32, &[*x], layers).unwrap();
        }
        b.set_entry(0);
        b.finish().unwrap()
    }

    #[test]
    fn reselection_offers_back_links_and_keeps_one_per_direction() {
        let mut g = islands();
        assert_eq!(g.reachability().unreachable, vec![9]);
        g.reselect_base_links(2);
        // 6 now links back across the gap to 5 (its back-link), the diverse choice.
        assert!(g.neighbours(6, 0).contains(&5), "{:?}", g.neighbours(6, 0));
        // 8 keeps 9 (a back-link) and the search from cluster B's side reaches A.
        assert!(g.neighbours(8, 0).contains(&9), "{:?}", g.neighbours(8, 0));
        assert!(g.reachability().unreachable.is_empty());
        assert_eq!(g.search(&[2.2], 1, 4)[0].0, 2);
    }

    #[test]
    fn an_island_linking_only_among_itself_is_joined_to_the_nearest_node_found() {
        let mut b = GraphBuilder::new(Space::SquaredL2, 1, 5).unwrap();
        b.set_node(0, &[0.0], vec![vec![1], vec![]]).unwrap();
        b.set_node(1, &[1.0], vec![vec![0, 2]]).unwrap();
        b.set_node(2, &[2.0], vec![vec![1]]).unwrap();
        b.set_node(3, &[9.0], vec![vec![4]]).unwrap();
        b.set_node(4, &[10.0], vec![vec![3]]).unwrap();
        b.set_entry(0);
        let mut g = b.finish().unwrap();
        assert_eq!(g.reachability().unreachable, vec![3, 4]);
        assert!(g.link_unreachable().is_empty());
        assert_eq!(g.search(&[10.0], 1, 4)[0].0, 4);
        assert!(
            (0..5).all(|n| !g.neighbours(n, 0).contains(&n)),
            "no node links to itself"
        );
    }

    #[test]
    fn a_node_nothing_links_to_gets_a_link_from_its_nearest_reachable_neighbour() {
        let mut g = islands();
        assert!(g.link_unreachable().is_empty());
        assert!(g.neighbours(8, 0).contains(&9));
        assert_eq!(g.search(&[53.1], 1, 4)[0].0, 9);
    }
}
