//! Rebalance, weights, simulate, add_node and del_node through runbooks on real clusters.

use crate::support::{TestCluster, runbook, script};

fn slots_by_port(c: &TestCluster) -> std::collections::BTreeMap<u16, usize> {
    c.topology().masters().map(|m| (m.addr.port, m.slots.len())).collect()
}

#[test]
fn add_empty_master_then_rebalance_with_use_empty_masters() {
    let mut c = TestCluster::start(3, 0);
    c.load_keys(6000);
    let spare = c.add_server();
    let (_d, path) = script(&format!(
        r#"
let c = cluster();
let n = c.add_node("{}");
print(`added ${{n}}`);
let r = c.rebalance(#{{ use_empty_masters: true }});
c.wait_converged(30);
print(`moved ${{r.slots}}`);
"#,
        c.nodes[spare].addr()
    ));
    let out = runbook(&["run", &path, "-c", &c.seed()]).run();
    out.expect_code(0).stdout_has("added 127.0.0.1:");
    let counts = slots_by_port(&c);
    assert_eq!(counts.len(), 4);
    assert_eq!(counts[&c.port(spare)], 4096, "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 16384);
    assert_eq!(c.total_keys(), 6000);
    c.assert_sample_keys(6000);
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}

#[test]
fn weight_zero_empties_a_node_and_simulate_changes_nothing() {
    let c = TestCluster::start(3, 0);
    c.load_keys(3000);
    let port = c.port(2);
    let before = slots_by_port(&c);
    let (_d, sim) = script(&format!(
        "let c = cluster();\nlet r = c.rebalance(#{{ weights: #{{ \"{port}\": 0 }}, simulate: true }});\nprint(r.plan);\nprint(`simulated ${{r.plan.slots}}`);\n"
    ));
    runbook(&["run", &sim, "-c", &c.seed()]).run().expect_code(0).stdout_has("simulated 5462");
    assert_eq!(slots_by_port(&c), before, "simulate moved nothing");

    let (_d, real) = script(&format!(
        "let c = cluster();\nc.rebalance(#{{ weights: #{{ \"{port}\": 0 }} }});\nc.wait_converged(30);\n"
    ));
    runbook(&["run", &real, "-c", &c.seed()]).run().expect_code(0);
    let after = slots_by_port(&c);
    // An emptied master turns itself into a replica of a receiver (Redis 7's replica migration),
    // so it may no longer be listed among the masters at all.
    assert_eq!(after.get(&port).copied().unwrap_or(0), 0, "{after:?}");
    assert_eq!(after.values().sum::<usize>(), 16384);
    assert_eq!(c.total_keys(), 3000);
    c.assert_sample_keys(3000);
}

#[test]
fn del_node_of_a_master_with_slots_is_refused() {
    let c = TestCluster::start(3, 0);
    let before = c.cluster_nodes(0);
    let (_d, path) = script(&format!("let c = cluster();\nc.del_node(\"{}\");\n", c.port(1)));
    runbook(&["run", &path, "-c", &c.seed()])
        .run()
        .expect_code(3)
        .stderr_has("still owns 5461 slots")
        .stderr_has("plan_drain")
        .stderr_has(":2:3");
    let same = |text: &str| {
        text.lines()
            .map(|l| l.split(' ').filter(|f| !f.chars().all(|c| c.is_ascii_digit())).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    assert_eq!(same(&c.cluster_nodes(0)), same(&before), "the cluster is unchanged");
}

#[test]
fn migrate_slot_and_slots_of() {
    let c = TestCluster::start(3, 0);
    c.load_keys(2000);
    let (_d, path) = script(&format!(
        "
let c = cluster();
let to = c.node({});
let r = c.migrate_slot(0, to);
print(`slot 0 moved with ${{r.keys}} keys`);
c.migrate_slots([1, 2, 3], to);
let owned = c.slots_of(to);
print(`owns ${{owned}}: ${{owned.count}} slots, from ${{owned[0][0]}}; 2 in it: ${{owned.contains(2)}}`);
for r in owned {{ print(`range ${{r[0]}}..${{r[1]}}`); }}
",
        c.port(2)
    ));
    runbook(&["run", &path, "-c", &c.seed()])
        .run()
        .expect_code(0)
        .stdout_has("owns 0-3,10922-16383: 5466 slots, from 0; 2 in it: true")
        .stdout_has("range 10922..16383");
    c.assert_sample_keys(2000);
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}
