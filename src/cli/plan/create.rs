//! The `cluster create` plan: which nodes become masters, the hash-slot range of each master,
//! and which master each remaining node replicates.
//!
//! Masters are taken from the nodes interleaved by host (one node per host in turn), so the
//! masters spread over as many hosts as possible. Slots are split the way redis-cli splits
//! them (a single-precision running cursor of 16384 / masters, rounded), so the same nodes get
//! the same ranges from either tool. Replicas go to a master on another host when one is free,
//! then a deterministic pairwise-swap pass reduces the remaining host sharing.

use crate::cli::nodes::SLOTS;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterPlan {
    /// Index of the node in the input list.
    pub node: usize,
    pub first: u16,
    pub last: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affinity {
    /// No replica shares a host with its master or with another replica of the same master.
    Perfect,
    /// Some replica runs on the same host as its master.
    ReplicaWithMaster,
    /// Some replicas of one master share a host (but none shares its master's host).
    ReplicasTogether,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatePlan {
    pub masters: Vec<MasterPlan>,
    /// `(replica node, master node)` in assignment order; node indexes into the input list.
    pub replicas: Vec<(usize, usize)>,
    /// Replica assignments as first made, before the anti-affinity pass, in order.
    pub first_assignment: Vec<(usize, usize)>,
    /// Whether the first assignment had host sharing (the anti-affinity pass then ran).
    pub optimized: bool,
    pub affinity: Affinity,
}

impl CreatePlan {
    /// The master a node replicates, if it is a replica.
    pub fn master_of(&self, node: usize) -> Option<usize> {
        self.replicas
            .iter()
            .find(|&&(r, _)| r == node)
            .map(|&(_, m)| m)
    }
    pub fn is_master(&self, node: usize) -> bool {
        self.masters.iter().any(|m| m.node == node)
    }
}

/// The slot range of each of `masters` masters, in master order.
pub fn slot_ranges(masters: usize) -> Vec<(u16, u16)> {
    // Single precision on purpose: it is what gives redis-cli's exact boundaries.
    let per = SLOTS as f32 / masters as f32;
    let mut cursor = 0.0f32;
    let mut first: i64 = 0;
    let mut out = Vec::with_capacity(masters);
    for i in 0..masters {
        let mut last = (cursor + per - 1.0).round() as i64;
        if last > SLOTS as i64 || i == masters - 1 {
            last = SLOTS as i64 - 1;
        }
        if last < first {
            last = first;
        }
        out.push((first as u16, last as u16));
        first = last + 1;
        cursor += per;
    }
    out
}

/// Interleaves node indexes by host: the first node of each host (hosts in order of first
/// appearance), then the second of each, and so on.
fn interleave(hosts: &[&str]) -> Vec<usize> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| g == h) {
            Some((_, v)) => v.push(i),
            None => groups.push((h, vec![i])),
        }
    }
    let mut out = Vec::with_capacity(hosts.len());
    let mut round = 0;
    while out.len() < hosts.len() {
        for (_, v) in &groups {
            if let Some(&n) = v.get(round) {
                out.push(n);
            }
        }
        round += 1;
    }
    out
}

/// How badly replicas share hosts: 10000 per replica on its master's host, plus, for replicas
/// of one master gathered on a host without their master, one per such replica.
pub fn affinity_score(hosts: &[&str], replicas: &[(usize, usize)]) -> u64 {
    let mut score = 0u64;
    // Group (host, master) -> (master present on host, replicas on host).
    let mut groups: Vec<(&str, usize, bool, u64)> = Vec::new();
    let mut masters: Vec<usize> = replicas.iter().map(|&(_, m)| m).collect();
    masters.sort_unstable();
    masters.dedup();
    for &m in &masters {
        groups.push((hosts[m], m, true, 0));
    }
    for &(r, m) in replicas {
        match groups
            .iter_mut()
            .find(|(h, gm, _, _)| *h == hosts[r] && *gm == m)
        {
            Some(g) => g.3 += 1,
            None => groups.push((hosts[r], m, false, 1)),
        }
    }
    for (_, _, with_master, n) in groups {
        if with_master {
            score += 10000 * n;
        } else if n >= 2 {
            score += n;
        }
    }
    score
}

/// Plans a new cluster over `hosts.len()` nodes (`hosts[i]` is node i's host) with `replicas`
/// replicas per master. Errs, with the operator-facing text, when fewer than 3 masters result.
pub fn plan_create(hosts: &[&str], replicas: usize) -> Result<CreatePlan, String> {
    let n = hosts.len();
    let masters_count = n / (replicas + 1);
    if masters_count < 3 {
        return Err(format!(
            "*** ERROR: Invalid configuration for cluster creation.\n\
             *** Redis Cluster requires at least 3 master nodes.\n\
             *** This is not possible with {n} nodes and {replicas} replicas per node.\n\
             *** At least {} nodes are required.",
            3 * (replicas + 1)
        ));
    }
    let order = interleave(hosts);
    let masters: Vec<MasterPlan> = order[..masters_count]
        .iter()
        .zip(slot_ranges(masters_count))
        .map(|(&node, (first, last))| MasterPlan { node, first, last })
        .collect();
    // The rest, rotated by one: it tends to start replicas off on a different host.
    let mut free: Vec<Option<usize>> = order[masters_count..].iter().map(|&i| Some(i)).collect();
    if !free.is_empty() {
        free.rotate_left(1);
    }
    let mut assigned: Vec<(usize, usize)> = Vec::new();
    let take_for = |master: usize, free: &mut Vec<Option<usize>>| -> Option<usize> {
        let pos = free
            .iter()
            .position(|c| c.is_some_and(|r| hosts[r] != hosts[master]))
            .or_else(|| free.iter().position(Option::is_some))?;
        free[pos].take()
    };
    for m in &masters {
        for _ in 0..replicas {
            if let Some(r) = take_for(m.node, &mut free) {
                assigned.push((r, m.node));
            }
        }
    }
    // Nodes left over by the integer division: one more replica per master, in turn.
    while free.iter().any(Option::is_some) {
        for m in &masters {
            if let Some(r) = take_for(m.node, &mut free) {
                assigned.push((r, m.node));
            }
        }
    }
    let first_assignment = assigned.clone();
    let mut score = affinity_score(hosts, &assigned);
    let optimized = score > 0;
    // Swap the masters of two replicas whenever that lowers the score; repeat until no swap
    // helps. Each accepted swap lowers the score, so this ends.
    'improve: while score > 0 {
        for a in 0..assigned.len() {
            for b in a + 1..assigned.len() {
                if assigned[a].1 == assigned[b].1 {
                    continue;
                }
                let mut trial = assigned.clone();
                let (ma, mb) = (trial[a].1, trial[b].1);
                trial[a].1 = mb;
                trial[b].1 = ma;
                let s = affinity_score(hosts, &trial);
                if s < score {
                    assigned = trial;
                    score = s;
                    continue 'improve;
                }
            }
        }
        break;
    }
    let affinity = if score == 0 {
        Affinity::Perfect
    } else if score >= 10000 {
        Affinity::ReplicaWithMaster
    } else {
        Affinity::ReplicasTogether
    };
    Ok(CreatePlan {
        masters,
        replicas: assigned,
        first_assignment,
        optimized,
        affinity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges_of(plan: &CreatePlan) -> Vec<(u16, u16)> {
        plan.masters.iter().map(|m| (m.first, m.last)).collect()
    }

    #[test]
    fn slot_split_matches_redis_cli() {
        assert_eq!(
            slot_ranges(3),
            vec![(0, 5460), (5461, 10922), (10923, 16383)]
        );
        assert_eq!(
            slot_ranges(4),
            vec![(0, 4095), (4096, 8191), (8192, 12287), (12288, 16383)]
        );
        assert_eq!(
            slot_ranges(5),
            vec![
                (0, 3276),
                (3277, 6553),
                (6554, 9829),
                (9830, 13106),
                (13107, 16383)
            ]
        );
        assert_eq!(
            slot_ranges(6),
            vec![
                (0, 2730),
                (2731, 5460),
                (5461, 8191),
                (8192, 10922),
                (10923, 13652),
                (13653, 16383)
            ]
        );
    }

    #[test]
    fn ranges_cover_every_slot_once() {
        for masters in 3..=200 {
            let r = slot_ranges(masters);
            assert_eq!(r.len(), masters);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[masters - 1].1, 16383);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0, "{masters} masters: {r:?}");
                assert!(w[0].0 <= w[0].1);
            }
        }
    }

    #[test]
    fn too_few_masters_is_refused() {
        let e = plan_create(&["h"; 2], 0).unwrap_err();
        assert!(e.contains("at least 3 master nodes"), "{e}");
        let e = plan_create(&["h"; 5], 1).unwrap_err();
        assert!(e.contains("At least 6 nodes are required."), "{e}");
    }

    #[test]
    fn three_to_six_masters_without_replicas() {
        for n in 3..=6 {
            let plan = plan_create(&vec!["127.0.0.1"; n], 0).unwrap();
            assert_eq!(
                plan.masters.iter().map(|m| m.node).collect::<Vec<_>>(),
                (0..n).collect::<Vec<_>>()
            );
            assert_eq!(ranges_of(&plan), slot_ranges(n));
            assert!(plan.replicas.is_empty());
            assert_eq!(plan.affinity, Affinity::Perfect);
            assert!(!plan.optimized);
        }
    }

    #[test]
    fn one_host_six_nodes_one_replica_like_redis_cli() {
        // redis-cli 7.0.15 prints for ports 1..6 on one host: replica 5 -> 1, 6 -> 2, 4 -> 3.
        let plan = plan_create(&["127.0.0.1"; 6], 1).unwrap();
        assert_eq!(
            plan.masters.iter().map(|m| m.node).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(plan.first_assignment, vec![(4, 0), (5, 1), (3, 2)]);
        assert_eq!(plan.affinity, Affinity::ReplicaWithMaster);
        assert!(plan.optimized);
        assert_eq!(plan.master_of(3), Some(2));
        assert!(plan.is_master(0) && !plan.is_master(3));
    }

    #[test]
    fn masters_spread_over_hosts_and_replicas_avoid_their_master() {
        let hosts = ["a", "a", "b", "b", "c", "c"];
        let plan = plan_create(&hosts, 1).unwrap();
        let master_hosts: Vec<&str> = plan.masters.iter().map(|m| hosts[m.node]).collect();
        assert_eq!(master_hosts, vec!["a", "b", "c"]);
        assert_eq!(plan.affinity, Affinity::Perfect);
        for &(r, m) in &plan.replicas {
            assert_ne!(hosts[r], hosts[m]);
        }
    }

    #[test]
    fn two_replicas_each_over_three_hosts_is_perfect() {
        let hosts = ["a", "b", "c", "a", "a", "b", "b", "c", "c"];
        let plan = plan_create(&hosts, 2).unwrap();
        assert_eq!(plan.replicas.len(), 6);
        for &(r, m) in &plan.replicas {
            assert_ne!(hosts[r], hosts[m], "{plan:?}");
        }
        assert_eq!(plan.affinity, Affinity::Perfect, "{plan:?}");
        for m in &plan.masters {
            assert_eq!(plan.replicas.iter().filter(|r| r.1 == m.node).count(), 2);
        }
    }

    #[test]
    fn the_swap_pass_never_worsens_and_sometimes_repairs() {
        let names = ["a", "b", "c"];
        let mut repaired = 0;
        for (n, replicas) in [(6usize, 1usize), (7, 1), (9, 2)] {
            for code in 0..3usize.pow(n as u32) {
                let mut c = code;
                let hosts: Vec<&str> = (0..n)
                    .map(|_| {
                        let h = names[c % 3];
                        c /= 3;
                        h
                    })
                    .collect();
                let plan = plan_create(&hosts, replicas).unwrap();
                let before = affinity_score(&hosts, &plan.first_assignment);
                let after = affinity_score(&hosts, &plan.replicas);
                assert!(after <= before, "{hosts:?}");
                if after < before {
                    repaired += 1;
                }
                // Per-master replica counts are what the first pass gave.
                for m in &plan.masters {
                    let count = |v: &[(usize, usize)]| v.iter().filter(|r| r.1 == m.node).count();
                    assert_eq!(count(&plan.replicas), count(&plan.first_assignment));
                }
                if plan.affinity == Affinity::Perfect {
                    assert_eq!(after, 0);
                }
            }
        }
        assert!(repaired > 0, "no layout needed the swap pass");
    }

    #[test]
    fn leftover_nodes_become_extra_replicas() {
        let plan = plan_create(&["h"; 8], 1).unwrap();
        assert_eq!(plan.masters.len(), 4);
        assert_eq!(plan.replicas.len(), 4);
        let plan = plan_create(&["h"; 7], 1).unwrap();
        assert_eq!(plan.masters.len(), 3);
        assert_eq!(plan.replicas.len(), 4);
        // 43 nodes, 10 replicas each: 3 masters, 40 replicas (the 10 left over included).
        let plan = plan_create(&["h"; 43], 10).unwrap();
        assert_eq!(plan.masters.len(), 3);
        assert_eq!(plan.replicas.len(), 40);
        let mut seen: Vec<usize> = plan.replicas.iter().map(|r| r.0).collect();
        seen.extend(plan.masters.iter().map(|m| m.node));
        seen.sort_unstable();
        assert_eq!(seen, (0..43).collect::<Vec<_>>());
    }

    #[test]
    fn scores() {
        let hosts = ["a", "b", "a", "b", "b"];
        assert_eq!(affinity_score(&hosts, &[(2, 0)]), 10000);
        assert_eq!(affinity_score(&hosts, &[(2, 1)]), 0);
        assert_eq!(affinity_score(&hosts, &[(3, 0), (4, 0)]), 2);
    }
}
