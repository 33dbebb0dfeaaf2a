//! The live slot-move steps over the legacy MIGRATE protocol (the protocol itself is
//! `ops::slot_move`). SETSLOT calls are pipelined per batch: each one makes a node save its
//! config, and one save per batch instead of per slot is where most of redis-cli's time goes.

use std::time::Duration;

use futures::future::join_all;

use super::pool::{Pool, Reply};
use crate::error::{Error, Result, ServerKind, ServerReply};
use crate::model::NodeInfo;
use crate::ops::{MoveOpts, MoveStats, SetSlot, SlotSteps};
use crate::plan::pace::Pacer;

/// The slot-move protocol's steps (`ops::slot_move`) sent to the live cluster. Each step runs
/// to its end once started (no cancellation): the protocol never leaves a step half sent.
pub struct LiveSteps<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub pool: &'a Pool,
}

impl SlotSteps for LiveSteps<'_> {
    fn setslot(&self, node: &NodeInfo, slots: &[u16], how: &SetSlot) -> Result<Vec<Option<ServerReply>>> {
        self.rt.block_on(setslot_replies(self.pool, node, slots, how))
    }

    fn setslot_on(&self, nodes: &[&NodeInfo], slots: &[u16], how: &SetSlot) -> Vec<Result<Vec<Option<ServerReply>>>> {
        self.rt.block_on(join_all(nodes.iter().map(|n| setslot_replies(self.pool, n, slots, how))))
    }

    fn count_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>> {
        self.rt.block_on(count_keys(self.pool, node, slots))
    }

    fn migrate_keys(&self, src: &NodeInfo, dst: &NodeInfo, slots: &[u16], opts: &MoveOpts) -> Result<MoveStats> {
        self.rt.block_on(migrate_batch_keys(self.pool, src, dst, slots, opts))
    }

    fn failpoint(&self, name: &str) {
        self.pool.failpoint(name);
    }

    fn say(&self, msg: &str) {
        self.pool.out().say(msg);
    }
}

/// Connections a node's SETSLOTs are spread over. Valkey 8 answers a primary's SETSLOT only once
/// its replicas have acknowledged it (about 0.45 ms each here), so 256 of them on one connection
/// take 115 ms and a batch pays that five times; Redis answers at once, and one config save per
/// event loop still covers every connection's SETSLOTs.
const SETSLOT_LANES: usize = 8;

/// Pipelines `CLUSTER SETSLOT s <how> [<id>]` for every slot on one node: per slot, the
/// server's refusal, if any.
async fn setslot_pipelined(
    pool: &Pool,
    node: &NodeInfo,
    slots: &[u16],
    how: &SetSlot,
) -> Result<Vec<Option<ServerReply>>> {
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    // A claim is two commands a slot, kept together on one connection and in this order.
    let per_slot = if matches!(how, SetSlot::Claim(_)) { 2 } else { 1 };
    for &s in slots {
        if per_slot == 2 {
            pipe.cmd("CLUSTER").arg("SETSLOT").arg(s).arg("STABLE");
        }
        pipe.cmd("CLUSTER").arg("SETSLOT").arg(s).arg(how.word());
        if let Some(id) = how.peer() {
            pipe.arg(id);
        }
    }
    let name = format!("CLUSTER SETSLOT {}", how.word());
    let replies = pool.pipeline_spread(&node.addr, &name, &pipe, SETSLOT_LANES, per_slot).await?;
    // Per slot, the first refusal of its commands.
    Ok(replies.chunks(per_slot).map(|r| r.iter().find_map(|r| r.as_ref().err().cloned())).collect())
}

/// As `setslot_pipelined`, the first slot alone: a Valkey primary with a replica that does not
/// acknowledge holds each SETSLOT 2 s before `NOREPLICAS`, so a pipeline queued behind a first
/// refusal would wait 2 s per slot to be refused too.
async fn setslot_replies(
    pool: &Pool,
    node: &NodeInfo,
    slots: &[u16],
    how: &SetSlot,
) -> Result<Vec<Option<ServerReply>>> {
    let Some((first, rest)) = slots.split_first() else { return Ok(Vec::new()) };
    let mut replies = setslot_pipelined(pool, node, &[*first], how).await?;
    match replies.first() {
        Some(Some(r)) if r.kind == ServerKind::NoReplicas => Ok(vec![Some(r.clone()); slots.len()]),
        _ => {
            replies.extend(setslot_pipelined(pool, node, rest, how).await?);
            Ok(replies)
        }
    }
}

pub async fn count_keys(pool: &Pool, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(slots.len());
    for chunk in slots.chunks(1024) {
        let mut pipe = redis::pipe();
        for &s in chunk {
            pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(s);
        }
        for reply in pool.pipeline(&node.addr, "CLUSTER COUNTKEYSINSLOT", &pipe).await? {
            match reply {
                Ok(redis::Value::Int(n)) => out.push(n.max(0) as u64),
                Ok(other) => {
                    return Err(Error::Protocol {
                        node: node.addr.to_string(),
                        reason: format!("COUNTKEYSINSLOT replied {other:?}"),
                    });
                }
                Err(reason) => {
                    return Err(Error::Command {
                        node: node.addr.to_string(),
                        command: "CLUSTER COUNTKEYSINSLOT".into(),
                        reason: reason.text,
                        state: None,
                    });
                }
            }
        }
    }
    Ok(out)
}

// How long the source's other clients wait. A node runs a client's pipelined commands back to
// back and serves no one else meanwhile, and MIGRATE holds the source until the target has
// restored the keys, so a pipeline of MIGRATEs stalls the source for all of them. Measured with
// the benchmark's probe (a PING a millisecond on the source, 1M keys of 100 B): 64 MIGRATEs a
// pipeline, p99 wait 23 ms; 8, 12 ms; 2, 4 ms at the same total time (redis-cli: 0.7 ms, 3x
// slower). Two keep one MIGRATE queued behind the running one, which hides our round trip.
//
// Under a pause budget, tried on the benchmark's trial (1M keys, 3 alternating pairs each) and
// not kept: one MIGRATE a pipeline of the whole pipeline's keys halved the calls (18k against
// 37k) but not the source's time in MIGRATE (7.2-8.6 s against 8.3-8.7 s), nor the time: the
// cost goes with pipelines, the source and the target waking up for each, not with calls. A
// second pipeline queued behind the running one (timed on the source's clock, which the queue
// does not fool) was about 10% faster with the probe's p50 0.1 ms and p99 0.3-0.9 ms worse: the
// two often arrive in one read, and the source runs both back to back. A current-thread runtime
// (no hand-off between tokio's threads per pipeline) cut runbook's part of a round trip from
// 250 to 200-215 µs at the median, about 5% of a drain: not kept, since Ctrl-C and the lease's
// keep-alive would then run only while a call is waiting. Listing 256 keys a slot at once
// instead of a call's worth (8k GETKEYSINSLOT instead of 31k, each pipeline cut to the pacer's
// latest size) was 12% faster in 5 alternating pairs, but the probe's p99 was 0.3-1.2 ms worse
// in every pair, and 4.33 ms against redis-cli's 2.04 in a 3-round bench: the listings' round
// trips are the source's breathing room, and the issue puts clients first.
//
// Why MIGRATE at all: a prototype moving keys by WATCH + PTTL/DUMP on the source, ASKING +
// RESTORE on the target, then MULTI/DEL/EXEC on the source (retried when EXEC aborts) took
// 10.7-12.3 s against MIGRATE's 13.5-18.3 (3 pairs), the probe's p50 0.13-0.16 ms against
// 0.25-0.30 and its p99 1.57-2.05 against 1.61-2.48, the source's CPU 3.9 s against 6.3: the
// source never waits for the target. With 3 keys lanes, 7.6-8.0 s, and a p99 of 3.4-3.8 ms.
// It is not safe: a client deleting a key between the DUMP and the EXEC aborts the EXEC and
// leaves the restored copy on the target, which ASK then serves, and removing that copy can
// delete what a client wrote there since. MIGRATE moves and deletes as one step.

/// A MIGRATE carries about this much data when the key count is sized automatically.
const TARGET_BYTES: u64 = 1 << 20;
/// MIGRATEs sent in one pipeline.
const MIGRATES_PER_PIPELINE: usize = 2;
/// A key smaller than this moves in microseconds: one over the pause budget is the host's delay.
const SMALL_KEY_BYTES: u64 = 64 << 10;
/// A pipeline over the budget with at most this many keys names them (with their sizes).
const NAMED_KEYS: usize = 3;
/// Slots whose keys are listed in one pipeline (GETKEYSINSLOT builds its reply in one go).
const SLOTS_PER_LISTING: usize = 8;
/// A pipeline carries about this much data at most: with big values, one MIGRATE's worth.
const PIPELINE_BYTES: u64 = TARGET_BYTES;

/// The MIGRATE calls for `work` (keys per slot): each slot's keys cut into calls of `per_call`
/// keys, since a page of keys listed before the sizes were known may hold far more bytes.
fn migrate_calls<T>(work: &[(u16, Vec<T>)], per_call: usize) -> Vec<(u16, &[T])> {
    work.iter().flat_map(|(slot, keys)| keys.chunks(per_call.max(1)).map(move |c| (*slot, c))).collect()
}

/// Cuts `calls` into pipelines of at most `MIGRATES_PER_PIPELINE` MIGRATEs and about
/// `PIPELINE_BYTES` each (at `avg_bytes` a key); a single MIGRATE is never split.
fn pipelines<'a, T>(calls: &'a [(u16, &'a [T])], avg_bytes: u64) -> Vec<&'a [(u16, &'a [T])]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, (_, keys)) in calls.iter().enumerate() {
        let size = keys.len() as u64 * avg_bytes;
        if i > start && (i - start == MIGRATES_PER_PIPELINE || bytes + size > PIPELINE_BYTES) {
            out.push(&calls[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < calls.len() {
        out.push(&calls[start..]);
    }
    out
}

/// Moves every key of `slots` from `src` to `dst`: per round and per group of slots still
/// holding keys, a pipelined GETKEYSINSLOT, then MIGRATEs in short pipelines (MIGRATE refuses
/// keys of different slots in one call). Keys per MIGRATE are `opts.keys_per_migrate`, or with 0
/// sized to carry about 1 MiB each from a `MEMORY USAGE` sample, or with a pause budget
/// (`opts.max_pause`) so that a pipeline holds the source for about that long, learned from the
/// source's own time in MIGRATE.
/// Returns the keys moved, an estimate of their bytes, and how long the source was held.
async fn migrate_batch_keys(
    pool: &Pool,
    src: &NodeInfo,
    dst: &NodeInfo,
    slots: &[u16],
    opts: &MoveOpts,
) -> Result<MoveStats> {
    let auto = opts.keys_per_migrate == 0;
    let budget = opts.max_pause.unwrap_or(Duration::ZERO);
    // What earlier batches of this run learned about this source: a batch that started from the
    // first guess again would pay a misjudged pipeline each time.
    let mut pacer: Option<Pacer> = if budget.is_zero() { None } else { pool.pacer(&src.addr.to_string(), budget) };
    let mut stats = MoveStats::default();
    let mut avg_bytes = 0u64;
    let mut per_call = if auto { 1000 } else { opts.keys_per_migrate };
    let mut sized = !auto;
    let mut pending: Vec<u16> = slots.to_vec();
    let mut moved = 0u64;
    let mut migrate_usec_seen: Option<u64> = None;
    let client_timeout = opts.timeout * 4 + Duration::from_secs(5);
    let started = std::time::Instant::now();
    while !pending.is_empty() {
        let mut next = Vec::new();
        let mut retry: Vec<u16> = Vec::new();
        // A few slots at a time: listing every slot of a batch at once would keep the source
        // busy (and its clients waiting) while it builds one long reply.
        for group in pending.chunks(SLOTS_PER_LISTING) {
            let work = list_keys(pool, src, group, per_call).await?;
            if work.is_empty() {
                continue;
            }
            let page = per_call;
            if avg_bytes == 0 {
                avg_bytes = average_key_bytes(pool, src, &work).await;
            }
            if !sized {
                sized = true;
                per_call = (TARGET_BYTES / avg_bytes.max(1)).clamp(1, 10_000) as usize;
                if !budget.is_zero() && pacer.is_none() {
                    pacer = Some(Pacer::new(budget, avg_bytes));
                }
            }
            if let Some(p) = &pacer {
                per_call = (p.keys() / MIGRATES_PER_PIPELINE).max(1);
            }
            let calls = migrate_calls(&work, per_call);
            for chunk in pipelines(&calls, avg_bytes) {
                let mut pipe = redis::pipe();
                let keys_sent: usize = chunk.iter().map(|(_, k)| k.len()).sum();
                // A pipeline of so few keys is a big key's, or a sparse slot's: their sizes,
                // read on the source in the same round trip, name the key if it holds the source
                // too long. Read afterwards on the target, they may be refused: restoring a big
                // key can outlast the node timeout, and the cluster is down for seconds (CI).
                let sizes_read = if pacer.is_some() && keys_sent <= NAMED_KEYS { keys_sent } else { 0 };
                // With a budget, the source's own count of time in MIGRATE is what its clients
                // waited: runbook's clock adds two trips through a busy host's run queue. It is
                // read after the calls, and before them when the last reading is not a baseline.
                let timed = pacer.is_some();
                let baseline = if timed { migrate_usec_seen } else { None };
                if timed && baseline.is_none() {
                    pipe.cmd("INFO").arg("commandstats");
                }
                for k in chunk.iter().flat_map(|(_, keys)| keys.iter()).take(sizes_read) {
                    pipe.cmd("MEMORY").arg("USAGE").arg(k.as_slice());
                }
                for (_, keys) in chunk {
                    pipe.add_command(migrate_cmd(pool, dst, keys, opts.timeout, opts.replace));
                }
                if timed {
                    pipe.cmd("INFO").arg("commandstats");
                }
                let sent = std::time::Instant::now();
                let mut replies = pool.pipeline_timeout(&src.addr, "MIGRATE", &pipe, client_timeout).await?;
                let round_trip = sent.elapsed();
                let held = if timed && replies.len() >= 2 {
                    let after = replies.pop().and_then(|r| migrate_usec(&r));
                    let before = match baseline {
                        Some(b) => Some(b),
                        None => migrate_usec(&replies.remove(0)),
                    };
                    migrate_usec_seen = after;
                    before.zip(after).map(|(b, a)| Duration::from_micros(a.saturating_sub(b)))
                } else {
                    None
                };
                // Any other MIGRATE (a retry, after a refusal) would count in the next difference.
                if replies.iter().any(Result::is_err) {
                    migrate_usec_seen = None;
                }
                // What the source's clients waited, as near as runbook can tell.
                let took = held.unwrap_or(round_trip);
                let sizes: Vec<Option<u64>> = replies
                    .drain(..sizes_read.min(replies.len()))
                    .map(|r| r.ok().and_then(|v| redis::from_redis_value::<u64>(v).ok()))
                    .collect();
                stats.longest_hold_ms = stats.longest_hold_ms.max(took.as_millis() as u64);
                if pacer.as_mut().is_some_and(|p| p.observe(chunk.len(), keys_sent, took)) {
                    stats.over_budget += 1;
                    let keys = chunk.iter().flat_map(|(_, keys)| keys.iter()).take(NAMED_KEYS);
                    if let Some(what) = keys_that_held(keys.zip(sizes.iter().copied().chain(std::iter::repeat(None)))) {
                        pool.out().say(&format!(
                            "{what} of slot {} held {} for {} ms, over the {} ms pause budget (--max-pause): a key moves in one MIGRATE and cannot be cut smaller",
                            chunk[0].0,
                            src.addr,
                            took.as_millis(),
                            budget.as_secs_f64() * 1000.0
                        ));
                    }
                }
                for ((slot, keys), reply) in chunk.iter().zip(replies) {
                    match reply {
                        Ok(_) => {}
                        Err(reason) if reason.kind == ServerKind::BusyKey && opts.keep_target => {
                            // The keys that did not conflict moved; the source's copies of the
                            // others predate the move (see `MoveOpts::keep_target`): drop them.
                            let dropped = drop_duplicates(pool, src, dst, keys).await?;
                            pool.out().say(&format!(
                                "slot {slot}: {dropped} key(s) were on both {} and {}: kept the copy on {}, which took them by MIGRATE (the other predates the move)",
                                src.addr, dst.addr, dst.addr
                            ));
                            retry.push(*slot);
                        }
                        Err(reason) if reason.kind == ServerKind::BusyKey && !opts.replace => {
                            let key =
                                first_existing(pool, dst, keys).await.unwrap_or_else(|| "(one of the batch)".into());
                            return Err(Error::Command {
                                node: src.addr.to_string(),
                                command: "MIGRATE".into(),
                                reason: format!(
                                    "key `{key}` of slot {slot} already exists on the target {}; nothing was overwritten",
                                    dst.addr
                                ),
                                state: Some(
                                    "pass `replace: true` to overwrite the target's copy with the source's".into(),
                                ),
                            });
                        }
                        Err(reason) if reason.kind == ServerKind::IoErr => {
                            migrate_retrying(pool, src, dst, keys, opts).await?;
                        }
                        Err(reason) => {
                            return Err(Error::Command {
                                node: src.addr.to_string(),
                                command: "MIGRATE".into(),
                                reason: reason.text,
                                state: None,
                            });
                        }
                    }
                    moved += keys.len() as u64;
                }
                pool.failpoint("after-migrate");
                throttle(opts.rate_limit, moved, started).await;
            }
            // A slot that filled its page may hold more keys; the others are empty now (no key
            // can be created on a MIGRATING source: writes to missing keys go to the target).
            next.extend(work.iter().filter(|(s, k)| k.len() >= page || retry.contains(s)).map(|(s, _)| *s));
        }
        pending = next;
    }
    if let Some(p) = pacer {
        pool.keep_pacer(&src.addr.to_string(), p);
    }
    stats.keys = moved;
    stats.bytes = moved * avg_bytes;
    Ok(stats)
}

/// `CLUSTER GETKEYSINSLOT slot count` for each of `slots`, pipelined; the slots that hold keys.
async fn list_keys(pool: &Pool, src: &NodeInfo, slots: &[u16], count: usize) -> Result<Vec<(u16, Vec<Vec<u8>>)>> {
    let mut pipe = redis::pipe();
    for &s in slots {
        pipe.cmd("CLUSTER").arg("GETKEYSINSLOT").arg(s).arg(count);
    }
    let mut work = Vec::new();
    for (&slot, reply) in slots.iter().zip(pool.pipeline(&src.addr, "CLUSTER GETKEYSINSLOT", &pipe).await?) {
        let reply = reply.map_err(|r| r.text);
        let keys: Vec<Vec<u8>> =
            reply.and_then(|v| redis::from_redis_value(v).map_err(|e| e.to_string())).map_err(|reason| {
                Error::Command {
                    node: src.addr.to_string(),
                    command: "CLUSTER GETKEYSINSLOT".into(),
                    reason,
                    state: None,
                }
            })?;
        if !keys.is_empty() {
            work.push((slot, keys));
        }
    }
    Ok(work)
}

/// The average size of a key, from `MEMORY USAGE` of up to 16 of them (one per slot).
async fn average_key_bytes(pool: &Pool, src: &NodeInfo, work: &[(u16, Vec<Vec<u8>>)]) -> u64 {
    let mut pipe = redis::pipe();
    let sample: Vec<&Vec<u8>> = work.iter().take(16).filter_map(|(_, k)| k.first()).collect();
    for k in &sample {
        pipe.cmd("MEMORY").arg("USAGE").arg(k.as_slice());
    }
    let sizes: Vec<u64> = match pool.pipeline(&src.addr, "MEMORY USAGE", &pipe).await {
        Ok(replies) => {
            replies.into_iter().filter_map(|r| r.ok().and_then(|v| redis::from_redis_value::<u64>(v).ok())).collect()
        }
        Err(_) => Vec::new(),
    };
    if sizes.is_empty() {
        return 1;
    }
    (sizes.iter().sum::<u64>() / sizes.len() as u64).max(1)
}

/// Which keys of a pipeline over the budget held the source, as its line names them ("key `k`
/// (3.2 MiB)"), from the first keys and their sizes where read. The server does not say which
/// key was slow; among few keys, their sizes tell. Small keys (all read, all small) say the host
/// was busy, not that a key is big: none is named (on a loaded host that would be a line each),
/// the summary counts it. A small key that shared the pipeline with a big one is left out.
fn keys_that_held<'a>(keys: impl Iterator<Item = (&'a Vec<u8>, Option<u64>)>) -> Option<String> {
    let mut named: Vec<(String, Option<u64>)> =
        keys.map(|(k, size)| (String::from_utf8_lossy(k).into(), size)).collect();
    let big = |size: &Option<u64>| size.is_none_or(|b| b >= SMALL_KEY_BYTES);
    if named.is_empty() || !named.iter().any(|(_, size)| big(size)) {
        return None;
    }
    if named.iter().any(|(_, size)| size.is_some_and(|b| b >= SMALL_KEY_BYTES)) {
        named.retain(|(_, size)| big(size));
    }
    let names: Vec<String> = named
        .iter()
        .map(|(name, size)| match size {
            Some(b) => format!("`{name}` ({})", crate::ops::bytes::human_bytes(*b)),
            None => format!("`{name}`"),
        })
        .collect();
    Some(if names.len() == 1 { format!("key {}", names[0]) } else { format!("keys {}", names.join(", ")) })
}

/// The microseconds the server has spent in MIGRATE since it started, from `INFO commandstats`
/// (`cmdstat_migrate:calls=2,usec=1234,…`); 0 before its first MIGRATE, none if refused.
fn migrate_usec(reply: &Reply) -> Option<u64> {
    let text: String = redis::from_redis_value(reply.as_ref().ok()?.clone()).ok()?;
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("cmdstat_migrate:")) else {
        return Some(0);
    };
    line.split(',').find_map(|f| f.strip_prefix("usec="))?.trim().parse().ok()
}

/// Keeps the average under `rate` keys per second, if set.
async fn throttle(rate: Option<u64>, moved: u64, started: std::time::Instant) {
    if let Some(rate) = rate.filter(|r| *r > 0) {
        let due = Duration::from_secs_f64(moved as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// After an I/O error a key may exist on both sides; the source's copy is the one clients still
/// write to (existing keys are served by a MIGRATING source), so retrying with REPLACE is both
/// safe and needed. A big key may need longer than MIGRATE's idle timeout to restore: each retry
/// doubles it.
async fn migrate_retrying(
    pool: &Pool,
    src: &NodeInfo,
    dst: &NodeInfo,
    keys: &[Vec<u8>],
    opts: &MoveOpts,
) -> Result<()> {
    let mut timeout = opts.timeout;
    for attempt in 1..=4 {
        // An I/O error may mean the target died or froze (a failover is coming): retrying with
        // ever longer timeouts would hold the batch for minutes. Only a target that answers is
        // retried.
        let ping =
            pool.query_with_timeout::<String>(&dst.addr, "PING", &redis::cmd("PING"), Duration::from_secs(2)).await;
        if let Err(e) = ping {
            return Err(Error::Command {
                node: src.addr.to_string(),
                command: "MIGRATE".into(),
                reason: format!("the target {} does not answer ({e}): it may be failing over", dst.addr),
                state: None,
            });
        }
        timeout *= 2;
        let cmd = migrate_cmd(pool, dst, keys, timeout, true);
        match pool
            .query_with_timeout::<redis::Value>(&src.addr, "MIGRATE", &cmd, timeout * 2 + Duration::from_secs(5))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.server_kind() == Some(ServerKind::IoErr) && attempt < 4 => {}
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// MIGRATEs every key `src` holds in `slot` to `dst`, whoever owns the slot (for `fix`).
pub async fn migrate_keys(pool: &Pool, src: &NodeInfo, dst: &NodeInfo, slot: u16, opts: &MoveOpts) -> Result<u64> {
    Ok(migrate_batch_keys(pool, src, dst, &[slot], opts).await?.keys)
}

/// MIGRATE's `AUTH pw` or `AUTH2 user pw`, so the target accepts the keys as our user.
fn push_auth(pool: &Pool, cmd: &mut redis::Cmd) {
    let creds = pool.credentials();
    match (&creds.user, &creds.password) {
        (Some(user), Some(pw)) => {
            cmd.arg("AUTH2").arg(user).arg(pw);
        }
        (None, Some(pw)) => {
            cmd.arg("AUTH").arg(pw);
        }
        _ => {}
    }
}

fn migrate_cmd(pool: &Pool, dst: &NodeInfo, keys: &[Vec<u8>], timeout: Duration, replace: bool) -> redis::Cmd {
    let mut cmd = redis::cmd("MIGRATE");
    cmd.arg(&dst.addr.host).arg(dst.addr.port).arg("").arg(0).arg(timeout.as_millis() as u64);
    if replace {
        cmd.arg("REPLACE");
    }
    push_auth(pool, &mut cmd);
    cmd.arg("KEYS");
    for k in keys {
        cmd.arg(k.as_slice());
    }
    cmd
}

/// Deletes from `src` each of `keys` that `dst` holds too; returns how many.
async fn drop_duplicates(pool: &Pool, src: &NodeInfo, dst: &NodeInfo, keys: &[Vec<u8>]) -> Result<usize> {
    let mut dropped = 0;
    for k in keys {
        let mut pipe = redis::pipe();
        pipe.cmd("ASKING").ignore().cmd("EXISTS").arg(k.as_slice());
        let on_target =
            matches!(pool.pipeline(&dst.addr, "EXISTS", &pipe).await?.first(), Some(Ok(redis::Value::Int(1))));
        if on_target {
            // The source may hold the key in a slot it imports back from nobody (a stranded key
            // `fix` returns): there, like the target, it serves the key only after ASKING.
            let mut del = redis::pipe();
            del.cmd("ASKING").ignore().cmd("DEL").arg(k.as_slice());
            match pool.pipeline(&src.addr, "DEL", &del).await?.into_iter().next() {
                // A MIGRATING source answers ASK for a key it no longer holds: this one moved in
                // the MIGRATE whose other keys conflicted (seen when the victim died mid-drain
                // and its promoted replica was settled).
                Some(Err(reason)) if reason.kind == ServerKind::Ask => {}
                Some(Err(reason)) => return Err(refused(&src.addr, "DEL", reason)),
                _ => dropped += 1,
            }
        }
    }
    Ok(dropped)
}

async fn first_existing(pool: &Pool, dst: &NodeInfo, keys: &[Vec<u8>]) -> Option<String> {
    for k in keys {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(k.as_slice());
        // The target imports the slot, so it answers only when asked with ASKING first.
        let mut pipe = redis::pipe();
        pipe.cmd("ASKING").ignore().add_command(cmd);
        if let Ok(replies) = pool.pipeline(&dst.addr, "EXISTS", &pipe).await
            && matches!(replies.first(), Some(Ok(redis::Value::Int(1))))
        {
            return Some(String::from_utf8_lossy(k).into_owned());
        }
    }
    None
}

/// The biggest keys (by `MEMORY USAGE`) among up to 10 keys of each slot, largest first.
pub async fn largest_keys(pool: &Pool, node: &NodeInfo, slots: &[u16]) -> Result<Vec<(String, u64)>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    // Small pipelines, for the same reason as a drain's: the source serves no one else while it
    // answers one.
    for chunk in slots.chunks(64) {
        let mut pipe = redis::pipe();
        for &s in chunk {
            pipe.cmd("CLUSTER").arg("GETKEYSINSLOT").arg(s).arg(10);
        }
        for reply in pool.pipeline(&node.addr, "CLUSTER GETKEYSINSLOT", &pipe).await? {
            let reply = reply.map_err(|reason| refused(&node.addr, "CLUSTER GETKEYSINSLOT", reason))?;
            keys.extend(redis::from_redis_value::<Vec<Vec<u8>>>(reply).unwrap_or_default());
        }
    }
    let mut sized: Vec<(String, u64)> = Vec::new();
    for chunk in keys.chunks(64) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("MEMORY").arg("USAGE").arg(k.as_slice());
        }
        for (k, reply) in chunk.iter().zip(pool.pipeline(&node.addr, "MEMORY USAGE", &pipe).await?) {
            // A key gone meanwhile answers nil; a refusal is an answer the gate must not ignore.
            let reply = reply.map_err(|reason| refused(&node.addr, "MEMORY USAGE", reason))?;
            if let Ok(bytes) = redis::from_redis_value::<u64>(reply) {
                sized.push((String::from_utf8_lossy(k).into_owned(), bytes));
            }
        }
    }
    sized.sort_by_key(|k| std::cmp::Reverse(k.1));
    sized.truncate(3);
    Ok(sized)
}

/// A pipelined reply's error as the error it is: a missing permission stays one.
fn refused(addr: &crate::model::Addr, command: &str, reason: ServerReply) -> Error {
    if reason.kind == ServerKind::NoPerm {
        Error::Permission { denied: vec![format!("{command} on {addr}")], reason: reason.text }
    } else {
        Error::Command { node: addr.to_string(), command: command.into(), reason: reason.text, state: None }
    }
}

/// MIGRATE COPY of a throwaway key from `src` to `dst` with the real credentials; `MOVED` (the
/// target does not own the slot) proves the pair can connect and authenticate.
pub async fn canary(pool: &Pool, src: &NodeInfo, dst: &NodeInfo, key: &str) -> Result<std::result::Result<(), String>> {
    let _: redis::Value =
        pool.query(&src.addr, "SET", redis::cmd("SET").arg(key).arg("runbook canary").arg("PX").arg(30_000)).await?;
    let mut cmd = redis::cmd("MIGRATE");
    cmd.arg(&dst.addr.host).arg(dst.addr.port).arg("").arg(0).arg(5000).arg("COPY").arg("REPLACE");
    push_auth(pool, &mut cmd);
    cmd.arg("KEYS").arg(key);
    let outcome = match pool.query::<redis::Value>(&src.addr, "MIGRATE", &cmd).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.server_kind(), Some(ServerKind::Moved | ServerKind::Ask)) => Ok(()),
        Err(Error::Command { reason, .. }) => Err(reason),
        Err(e) => Err(e.to_string()),
    };
    let _: Result<redis::Value> = pool.query(&src.addr, "DEL", redis::cmd("DEL").arg(key)).await;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_that_held_the_source_are_named_with_their_sizes() {
        let (small, big) = (b"small".to_vec(), b"big".to_vec());
        let name = |keys: &[(&Vec<u8>, Option<u64>)]| keys_that_held(keys.iter().copied());
        assert_eq!(name(&[(&small, Some(120)), (&big, Some(3 << 20))]).unwrap(), "key `big` (3.0 MiB)");
        assert_eq!(name(&[(&small, Some(120)), (&big, Some(200))]), None, "a busy host, not a big key");
        assert_eq!(name(&[(&small, None), (&big, None)]).unwrap(), "keys `small`, `big`", "sizes unread");
        assert_eq!(name(&[]), None);
    }

    #[test]
    fn the_time_in_migrate_is_read_off_commandstats() {
        let info = |text: &str| -> Reply { Ok(redis::Value::BulkString(text.as_bytes().to_vec())) };
        let seen = "# Commandstats\r\ncmdstat_ping:calls=9,usec=4,usec_per_call=0.44,rejected_calls=0,failed_calls=0\r\n\
                    cmdstat_migrate:calls=2,usec=1234,usec_per_call=617.00,rejected_calls=0,failed_calls=0\r\n";
        assert_eq!(migrate_usec(&info(seen)), Some(1234));
        assert_eq!(migrate_usec(&info("# Commandstats\r\ncmdstat_ping:calls=1,usec=1\r\n")), Some(0), "no MIGRATE yet");
        assert_eq!(migrate_usec(&Err(crate::error::ServerReply::new("NOPERM no INFO for you"))), None);
    }

    fn work(slots: usize, keys: usize) -> Vec<(u16, Vec<u8>)> {
        (0..slots).map(|s| (s as u16, vec![0; keys])).collect()
    }

    fn sizes<T>(p: &[&[(u16, &[T])]]) -> Vec<usize> {
        p.iter().map(|c| c.len()).collect()
    }

    #[test]
    fn small_keys_fill_a_pipeline_by_count() {
        let w = work(2 * MIGRATES_PER_PIPELINE + 2, 60);
        let calls = migrate_calls(&w, 10_000);
        assert_eq!(calls.len(), w.len());
        assert_eq!(sizes(&pipelines(&calls, 100)), vec![MIGRATES_PER_PIPELINE, MIGRATES_PER_PIPELINE, 2]);
    }

    #[test]
    fn big_keys_are_bounded_by_bytes() {
        // A page of 1000 keys of 64 KiB listed before sizing: 16 keys (1 MiB) a MIGRATE.
        let w = work(2, 1000);
        let calls = migrate_calls(&w, 16);
        assert_eq!(calls.len(), 2 * 63);
        assert!(calls.iter().all(|(_, k)| k.len() <= 16));
        assert_eq!(calls.iter().map(|(_, k)| k.len()).sum::<usize>(), 2000);
        // 1 MiB calls: one per pipeline; so are 600 KiB ones, since two would pass the budget.
        assert!(sizes(&pipelines(&calls, 64 << 10)).iter().all(|n| *n == 1));
        assert_eq!(sizes(&pipelines(&migrate_calls(&work(3, 600), 600), 1024)), vec![1, 1, 1]);
        // One MIGRATE over the budget still goes, alone.
        let huge = work(3, 1);
        assert_eq!(sizes(&pipelines(&migrate_calls(&huge, 1), 100 << 20)), vec![1, 1, 1]);
        assert!(pipelines(&migrate_calls(&work(0, 1), 1), 1).is_empty());
    }
}
