//! The one integration-test binary. Every test here runs real `redis-server` processes.

// Cluster harness: real redis-server processes on free loopback ports, killed on drop.
mod support;

// Bad input, tried as a new user would: message, exit code, cluster unchanged.
mod bad_input;
// The script API's edges: raw commands, sleep, Ctrl-C, rhai's limits, import.
mod edges;
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
// The cluster's own faults mid-drain: a receiver or the victim killed, its replica promoted.
mod failover;
// Crash at several points of a decommission, then the same command finishes it.
mod resume;
// A dry run of each shipped runbook against its live run: the same steps, the same outcome.
mod dry_run;
// Dry run, Ctrl-C, the lease, confirmation, fix, journal, secrets.
mod safety;
// The README and the guide: quick start script and every runbook example.
mod readme;
// Preflight gates and a least-privilege ACL user.
mod production;
// TLS end to end with client certificates.
mod tls;
// The REPL through a pseudo-terminal.
mod repl;
// Every shipped runbook, and list/describe/functions/lint.
mod shipped;
// Big keys, rate limit and progress on the fast path.
mod speed;
// `runbook sandbox up|status|down`.
mod sandbox;
// Faults of the cluster itself during a run: a node frozen through the forget.
mod faults;
// Completion scripts and the man page, generated from the clap definitions.
mod shell;
// Journal housekeeping: no journal for a run that changed nothing, `journal prune`, non-journals.
mod journal;
// Cluster profiles: `--cluster NAME`, `runbook profiles`, and the profile file's refusals.
mod profiles;
// `runbook status`, and `runbook check` while a run holds the lease.
mod status;
