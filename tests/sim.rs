//! Deterministic simulation of many cluster machines (DESIGN §4.1): `ClusterMachine`s on a
//! virtual network with seeded delay, loss, partitions, crashes and restarts from
//! nodes.conf (`sim/world.rs`), invariants checked after every step (epochs never go down,
//! at most one owner per slot per configEpoch), and agreement checked once the faults stop
//! (`sim/checks.rs`).
//!
//! Every scenario prints `sim seed=<n>` and runs a fixed list of seeds; `SIM_SEED=<n>` runs
//! only that seed (a failure prints the command that replays it), `SIM_SEEDS=<a>..<b>` a
//! range of seeds, and `SIM_VERBOSE=1` prints every input, admin command and log line.

#[path = "sim/checks.rs"]
mod checks;
#[path = "sim/rng.rs"]
mod rng;
#[path = "sim/world.rs"]
mod world;

use ferrodis::cluster::machine::Admin;
use ferrodis::cluster::machine::SetSlot;
use ferrodis::cluster::node::NodeFlags;
use ferrodis::cluster::state::{Health, Slot, CLUSTER_SLOTS};
use ferrodis::resp::Reply;

use checks::{agreement, split_slots};
use world::{Transition, Weather, World, CPORT, PORT};

/// Small enough that runs are short in virtual time.
const NODE_TIMEOUT: u64 = 2000;
/// Virtual time allowed to reach agreement once the faults stop.
const CONVERGE_LIMIT_MS: u64 = 120_000;

/// `SIM_SEED=<n>` runs one seed, `SIM_SEEDS=<a>..<b>` a range (for soaking), else the
/// scenario's own list.
fn seeds(defaults: &[u64]) -> Vec<u64> {
    if let Ok(s) = std::env::var("SIM_SEED") {
        return vec![s
            .trim()
            .parse()
            .expect("SIM_SEED must be an unsigned integer")];
    }
    if let Ok(s) = std::env::var("SIM_SEEDS") {
        let (a, b) = s
            .split_once("..")
            .expect("SIM_SEEDS must look like 100..200");
        let a: u64 = a.trim().parse().expect("SIM_SEEDS start");
        let b: u64 = b.trim().parse().expect("SIM_SEEDS end");
        return (a..b).collect();
    }
    defaults.to_vec()
}

/// Prints how to replay when the run it guards panics.
struct Replay {
    test: &'static str,
    seed: u64,
}

impl Drop for Replay {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "sim {} FAILED with seed={}: replay with SIM_SEED={} cargo test --release --test sim {}",
                self.test, self.seed, self.seed, self.test
            );
        }
    }
}

fn each_seed(test: &'static str, defaults: &[u64], run: impl Fn(u64) -> World) {
    for seed in seeds(defaults) {
        println!("sim seed={seed}");
        let guard = Replay { test, seed };
        let w = run(seed);
        println!(
            "sim seed={seed} ok: {} hosts, {} s virtual, {} steps, {} frames sent, {} lost, {} crashes",
            w.hosts.len(),
            w.elapsed() / 1000,
            w.stats.steps,
            w.stats.frames_sent,
            w.stats.frames_lost,
            w.stats.crashes
        );
        drop(guard);
    }
}

/// Runs until `agreement` on `owners`, or fails the run.
fn converge(world: &mut World, owners: &[Option<usize>], phase: &str) {
    let verdict = world.run_until(CONVERGE_LIMIT_MS, 500, |w| agreement(w, owners));
    if let Err(why) = verdict {
        world.fail(&format!(
            "{phase}: no agreement within {CONVERGE_LIMIT_MS} ms: {why}"
        ));
    }
}

fn slots_of(owners: &[Option<usize>], host: usize) -> Vec<Slot> {
    (0..CLUSTER_SLOTS as Slot)
        .filter(|s| owners[usize::from(*s)] == Some(host))
        .collect()
}

/// `masters` take the slots in even ranges, every other host MEETs host 0, and the run goes
/// on until everybody agrees. Returns the slot owners.
fn form(world: &mut World, masters: &[usize]) -> Vec<Option<usize>> {
    let owners = split_slots(masters);
    for &m in masters {
        world.admin_ok(m, Admin::AddSlots(slots_of(&owners, m)));
    }
    meet_all(world);
    converge(world, &owners, "formation");
    owners
}

fn meet_all(world: &mut World) {
    let ip = world.hosts[0].ip.clone();
    for h in 1..world.hosts.len() {
        let meet = Admin::Meet {
            ip: ip.clone(),
            port: PORT,
            cport: CPORT,
        };
        world.admin_ok(h, meet);
    }
}

/// Every `stride`-th host of `n`.
fn spread(n: usize, stride: usize) -> Vec<usize> {
    (0..n).step_by(stride).collect()
}

// ---- 1. formation ------------------------------------------------------------------------

#[test]
fn formation_of_50_nodes_with_10_masters() {
    each_seed("formation_of_50_nodes_with_10_masters", &[1], |seed| {
        let mut w = World::new(seed, 50, NODE_TIMEOUT);
        w.weather = Weather::CHOPPY;
        for h in &mut w.hosts {
            h.persist = false;
        }
        form(&mut w, &spread(50, 5));
        w
    });
}

#[test]
fn formation_of_small_clusters() {
    each_seed("formation_of_small_clusters", &[2, 3, 4, 5], |seed| {
        let n = [3, 6, 12, 7][(seed % 4) as usize];
        let mut w = World::new(seed, n, NODE_TIMEOUT);
        w.weather = Weather::CHOPPY;
        form(&mut w, &spread(n, 2));
        w
    });
}

// ---- 2. faults ---------------------------------------------------------------------------

/// Random loss, delay spikes, partitions, link resets, crashes and restarts (of the hosts
/// that keep nodes.conf) for `duration` ms; then calm weather, the network heals and every
/// crashed host restarts.
fn storm(world: &mut World, duration: u64) {
    let n = world.hosts.len();
    let nt = world.node_timeout;
    let end = world.now + duration;
    let mut down: Vec<(u64, usize)> = Vec::new();
    let mut partitioned_until: Option<u64> = None;
    world.weather = Weather::STORMY;
    while world.now < end {
        world.run_for(250);
        let now = world.now;
        let (due, later): (Vec<_>, Vec<_>) = down.into_iter().partition(|(at, _)| *at <= now);
        down = later;
        for (_, h) in due {
            world.restart(h);
        }
        match partitioned_until {
            Some(until) if now >= until => {
                world.heal();
                partitioned_until = None;
            }
            None if world.rng().chance(40_000) => {
                let groups: Vec<u32> = if world.rng().chance(500_000) {
                    (0..n).map(|_| world.rng().below(2) as u32).collect()
                } else {
                    let mut g = vec![0; n];
                    for _ in 0..world.rng().range(1, 3) {
                        let h = world.rng().index(n);
                        g[h] = 1;
                    }
                    g
                };
                world.partition(&groups);
                let length = world.rng().range(300, 3 * nt);
                partitioned_until = Some(now + length);
            }
            _ => {}
        }
        let candidates: Vec<usize> = (0..n)
            .filter(|h| world.is_up(*h) && world.hosts[*h].persist)
            .collect();
        if !candidates.is_empty() && down.len() < n / 4 && world.rng().chance(40_000) {
            let h = candidates[world.rng().index(candidates.len())];
            world.crash(h);
            let back = now + world.rng().range(100, 2 * nt);
            down.push((back, h));
        }
        if world.rng().chance(100_000) {
            world.reset_random_link();
        }
    }
    world.weather = Weather::CALM;
    world.heal();
    for (_, h) in down {
        world.restart(h);
    }
}

#[test]
fn faults_then_convergence() {
    each_seed("faults_then_convergence", &[11, 12, 13], |seed| {
        let n = 16;
        let mut w = World::new(seed, n, NODE_TIMEOUT);
        w.weather = Weather::CHOPPY;
        let owners = form(&mut w, &spread(n, 3));
        storm(&mut w, 40_000);
        converge(&mut w, &owners, "after the storm");
        if w.hosts.iter().all(|h| h.restarts == 0) {
            w.fail("the storm restarted no host");
        }
        w
    });
}

#[test]
fn faults_then_convergence_50_nodes() {
    each_seed("faults_then_convergence_50_nodes", &[14], |seed| {
        let n = 50;
        let mut w = World::new(seed, n, NODE_TIMEOUT);
        w.weather = Weather::CHOPPY;
        // Ten hosts, masters among them, may crash.
        for (h, host) in w.hosts.iter_mut().enumerate() {
            host.persist = h % 5 == 0 || h % 5 == 1;
            host.persist &= h < 25;
        }
        let owners = form(&mut w, &spread(n, 5));
        storm(&mut w, 20_000);
        converge(&mut w, &owners, "after the storm");
        w
    });
}

// ---- 3. failure detection ----------------------------------------------------------------

fn first(ts: &[Transition], mut pred: impl FnMut(&Transition) -> bool) -> Option<Transition> {
    ts.iter().copied().find(|t| pred(t))
}

const PFAIL: u16 = NodeFlags::PFAIL;
const FAIL: u16 = NodeFlags::FAIL;

#[test]
fn failure_detection_and_fail_undo() {
    each_seed("failure_detection_and_fail_undo", &[21, 22, 23], |seed| {
        let n = 10;
        let nt = NODE_TIMEOUT;
        let mut w = World::new(seed, n, nt);
        w.weather = Weather::CHOPPY;
        // Hosts 0..5 serve the slots, 5..10 are empty masters.
        let owners = form(&mut w, &[0, 1, 2, 3, 4]);
        let (x, y) = (1usize, 6usize);
        w.watch(x);
        w.watch(y);
        let majority: Vec<usize> = (0..n).filter(|h| *h != x && *h != y).collect();
        let cut_at = w.now;
        let mut groups = vec![0u32; n];
        groups[x] = 1;
        groups[y] = 1;
        w.partition(&groups);
        let all_failed = w.run_until(10 * nt, 100, |w| {
            for &o in &majority {
                let s = w.hosts[o].state().expect("majority hosts stay up");
                for subject in [x, y] {
                    let node = s.node(&w.hosts[subject].id).expect("known");
                    if !node.failed() {
                        return Err(format!("host {o} does not see host {subject} FAIL"));
                    }
                }
                if s.state != Health::Fail {
                    return Err(format!("host {o} still has cluster_state ok"));
                }
            }
            let sx = w.hosts[x].state().expect("up");
            if sx.state != Health::Fail {
                return Err("the cut-off master still has cluster_state ok".into());
            }
            Ok(())
        });
        if let Err(why) = all_failed {
            w.fail(&format!("the cut-off hosts were not failed: {why}"));
        }
        let ts = w.transitions.clone();
        for subject in [x, y] {
            let fail = first(&ts, |t| t.subject == subject && t.flags & FAIL != 0)
                .unwrap_or_else(|| w.fail("no FAIL transition"));
            let pfail = first(&ts, |t| t.subject == subject && t.flags & PFAIL != 0)
                .unwrap_or_else(|| w.fail("no PFAIL transition"));
            if pfail.time > fail.time {
                w.fail(&format!("host {subject}: FAIL before any PFAIL"));
            }
            if fail.time - cut_at <= nt {
                w.fail(&format!(
                    "host {subject} failed {} ms after the cut, node timeout is {nt}",
                    fail.time - cut_at
                ));
            }
        }
        if let Some(t) = first(&ts, |t| [x, y].contains(&t.observer) && t.flags & FAIL != 0) {
            w.fail(&format!("the minority marked host {} FAIL", t.subject));
        }
        // Heal at once: the empty master comes back when reachable, the master with slots
        // only 2 * node_timeout after it was failed.
        w.heal();
        converge(&mut w, &owners, "after healing");
        let ts = w.transitions.clone();
        for &o in &majority {
            let set = |s: usize| {
                ts.iter()
                    .rev()
                    .find(|t| t.observer == o && t.subject == s && t.flags & FAIL != 0)
                    .copied()
            };
            let cleared = |s: usize, after: u64| {
                first(&ts, |t| {
                    t.observer == o && t.subject == s && t.time > after && t.flags & FAIL == 0
                })
            };
            let (Some(fx), Some(fy)) = (set(x), set(y)) else {
                w.fail(&format!("host {o} never had the cut-off hosts FAIL"));
            };
            let (Some(cx), Some(cy)) = (cleared(x, fx.time), cleared(y, fy.time)) else {
                w.fail(&format!("host {o} never cleared FAIL"));
            };
            if cx.time - fx.time <= 2 * nt {
                w.fail(&format!(
                    "host {o} cleared FAIL of a master with slots {} ms after setting it",
                    cx.time - fx.time
                ));
            }
            if cy.time >= cx.time {
                w.fail(&format!(
                    "host {o} cleared the empty master's FAIL no sooner than the other's"
                ));
            }
        }
        w
    });
}

// ---- 4. epochs and slot ownership --------------------------------------------------------

/// Runs until every host has the same currentEpoch and the masters' configEpochs are
/// distinct and known to all. An epoch taken without consensus (BUMPEPOCH, SETSLOT NODE on
/// the importer) is only safe then: two such bumps racing each other can give two masters
/// the same configEpoch while both still claim the slot being moved (Redis behaves the
/// same; seed 131 of this scenario found it when bumps were not spaced).
fn settle_epochs(world: &mut World) {
    let settled = world.run_until(CONVERGE_LIMIT_MS, 50, |w| {
        let states: Vec<_> = w.hosts.iter().filter_map(|h| h.state()).collect();
        let current = states.first().map_or(0, |s| s.current_epoch);
        if states.iter().any(|s| s.current_epoch != current) {
            return Err("currentEpoch differs".into());
        }
        let mut epochs = std::collections::BTreeSet::new();
        for s in &states {
            let me = s.myself();
            if !me.is_master() {
                continue;
            }
            if !epochs.insert(me.config_epoch) {
                return Err(format!("configEpoch {} is shared", me.config_epoch));
            }
            let seen = states.iter().all(|o| {
                o.node(&me.name)
                    .is_some_and(|n| n.config_epoch == me.config_epoch)
            });
            if !seen {
                return Err(format!("{} is not known everywhere", me.config_epoch));
            }
        }
        Ok(())
    });
    if let Err(why) = settled {
        world.fail(&format!("epochs never settled: {why}"));
    }
}

#[test]
fn resharding_with_epoch_bumps() {
    each_seed("resharding_with_epoch_bumps", &[31, 32, 33], |seed| {
        let n = 8;
        let mut w = World::new(seed, n, NODE_TIMEOUT);
        w.weather = Weather::CHOPPY;
        let mut owners = form(&mut w, &[0, 1, 2, 3]);
        for _ in 0..30 {
            let slot = w.rng().below(CLUSTER_SLOTS as u64) as Slot;
            let Some(from) = owners[usize::from(slot)] else {
                continue;
            };
            if slots_of(&owners, from).len() < 2 {
                continue;
            }
            let to = (from + 1 + w.rng().index(n - 1)) % n;
            let (from_id, to_id) = (w.hosts[from].id, w.hosts[to].id);
            let setslot = |action| Admin::SetSlot {
                slot,
                action,
                keys_in_slot: 0,
            };
            w.admin_ok(to, setslot(SetSlot::Importing(from_id)));
            w.admin_ok(from, setslot(SetSlot::Migrating(to_id)));
            let gap = w.rng().range(0, 300);
            w.run_for(gap);
            // SETSLOT NODE on the importer takes a configEpoch without consensus.
            settle_epochs(&mut w);
            let importer_first = w.rng().chance(700_000);
            let order = if importer_first {
                [to, from]
            } else {
                [from, to]
            };
            for (i, h) in order.into_iter().enumerate() {
                w.admin_ok(h, setslot(SetSlot::Node(to_id)));
                if i == 0 {
                    let gap = w.rng().range(0, 500);
                    w.run_for(gap);
                }
            }
            owners[usize::from(slot)] = Some(to);
            if w.rng().chance(300_000) {
                settle_epochs(&mut w);
                let h = w.rng().index(n);
                match w.admin(h, Admin::BumpEpoch) {
                    Ok(Reply::Simple(s)) if s.starts_with("BUMPED ") || s.starts_with("STILL ") => {
                    }
                    other => w.fail(&format!("BUMPEPOCH replied {other:?}")),
                }
            }
            let gap = w.rng().range(0, 2000);
            w.run_for(gap);
        }
        converge(&mut w, &owners, "after resharding");
        // Drain one master completely: it follows the node that took its last slot.
        let drained = (4..n)
            .chain(1..4)
            .find(|h| !slots_of(&owners, *h).is_empty())
            .unwrap_or_else(|| w.fail("no master to drain"));
        let (from_id, to_id) = (w.hosts[drained].id, w.hosts[0].id);
        for slot in slots_of(&owners, drained) {
            let setslot = |action| Admin::SetSlot {
                slot,
                action,
                keys_in_slot: 0,
            };
            w.admin_ok(0, setslot(SetSlot::Importing(from_id)));
            w.admin_ok(drained, setslot(SetSlot::Migrating(to_id)));
            settle_epochs(&mut w);
            w.admin_ok(drained, setslot(SetSlot::Node(to_id)));
            w.admin_ok(0, setslot(SetSlot::Node(to_id)));
            owners[usize::from(slot)] = Some(0);
            let gap = w.rng().range(0, 200);
            w.run_for(gap);
        }
        converge(&mut w, &owners, "after draining a master");
        let me = w.hosts[drained].state().expect("up").myself();
        if !me.is_replica() || me.slaveof != Some(to_id) {
            w.fail(&format!(
                "the drained host {drained} is not a replica of host 0"
            ));
        }
        w
    });
}

#[test]
fn config_epoch_collisions_resolve() {
    each_seed("config_epoch_collisions_resolve", &[41, 42, 43], |seed| {
        let n = 6;
        let mut w = World::new(seed, n, NODE_TIMEOUT);
        w.weather = Weather::CHOPPY;
        let masters: Vec<usize> = (0..n).collect();
        let owners = split_slots(&masters);
        let epochs = [5u64, 5, 5, 7, 7, 9];
        for (h, epoch) in epochs.into_iter().enumerate() {
            w.admin_ok(h, Admin::SetConfigEpoch(epoch));
            w.admin_ok(h, Admin::AddSlots(slots_of(&owners, h)));
        }
        meet_all(&mut w);
        converge(&mut w, &owners, "after meeting");
        for (h, epoch) in epochs.into_iter().enumerate() {
            let e = w.hosts[h].state().expect("up").myself().config_epoch;
            if e < epoch {
                w.fail(&format!("host {h} went from configEpoch {epoch} to {e}",));
            }
        }
        w
    });
}

// ---- the checks can fail -----------------------------------------------------------------

#[test]
#[should_panic(expected = "claimed with configEpoch 0 by host 0 and by host 1")]
fn two_owners_of_a_slot_in_one_epoch_are_caught() {
    let mut w = World::new(7, 3, NODE_TIMEOUT);
    w.admin_ok(0, Admin::AddSlots(vec![100]));
    w.admin_ok(1, Admin::AddSlots(vec![100]));
}

#[test]
#[should_panic(expected = "no agreement within")]
fn a_partition_that_never_heals_is_caught() {
    let mut w = World::new(8, 4, NODE_TIMEOUT);
    let owners = form(&mut w, &[0, 1]);
    w.partition(&[0, 0, 1, 1]);
    w.run_for(3 * NODE_TIMEOUT);
    converge(&mut w, &owners, "partitioned");
}
