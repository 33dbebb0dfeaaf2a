//! The one integration-test binary. Every test here runs real `redis-server` processes.

// Cluster harness: real redis-server processes on free loopback ports, killed on drop.
mod support;

// `runbook check` on healthy and broken clusters.
mod check;
// `runbook sandbox up|status|down`.
mod sandbox;
