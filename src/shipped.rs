//! The runbooks shipped in `runbooks/`, embedded so an installed binary has them. Depends on
//! nothing, so the argument parser can offer their names without reaching into the script layer.

/// (name, source), in the order `runbook list` shows them.
pub const SHIPPED: &[(&str, &str)] = &[
    ("decommission", include_str!("../runbooks/decommission.rhai")),
    ("scale-out", include_str!("../runbooks/scale-out.rhai")),
    ("replace-node", include_str!("../runbooks/replace-node.rhai")),
    ("rebalance", include_str!("../runbooks/rebalance.rhai")),
    ("fix", include_str!("../runbooks/fix.rhai")),
];

/// The first line of a runbook's `//!` header: a short description for shell completion (the
/// script layer reads the whole header).
pub fn first_line(source: &str) -> &str {
    source.lines().next().and_then(|l| l.strip_prefix("//!")).map_or("", str::trim)
}
