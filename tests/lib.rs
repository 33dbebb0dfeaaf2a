//! The one integration-test binary. Every test here runs real `redis-server` processes.

// Cluster harness: real redis-server processes on free loopback ports, killed on drop.
mod support;

// `runbook check` on healthy and broken clusters.
mod check;
// The seed's decommission, plain and under a write workload.
mod decommission;
// Removing nodes, re-homing replicas, BUSYKEY, auto_weights.
mod membership;
// Rebalance, weights, simulate, add_node, del_node, migrate_slot through runbooks.
mod rebalance;
// Bad input: parameters, syntax, unknown nodes, confirmation; the cluster stays untouched.
mod runbook_errors;
// Crash at several points of a decommission, then the same command finishes it.
mod resume;
// Dry run, Ctrl-C, the lease, confirmation, fix, journal, secrets.
mod safety;
// The README: quick start script and runbook examples.
mod readme;
// Big keys, rate limit and progress on the fast path.
mod speed;
// `runbook sandbox up|status|down`.
mod sandbox;
