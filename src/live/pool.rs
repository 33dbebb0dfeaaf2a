//! One multiplexed connection per node, opened on first use, with explicit timeouts.
//!
//! Why not redis-rs's cluster client: an admin tool must address one node at a time (SETSLOT on
//! this node, FORGET on that one) and must never be redirected silently, so we keep our own map.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo};
use tokio::sync::Mutex;

use crate::config::Credentials;
use crate::error::{Error, Result, ServerReply};
use crate::failpoint::Failpoints;
use crate::model::Addr;
use crate::output::Output;
use crate::plan::pace::Pacer;

/// One command's reply in a pipeline: a value, or the server's refusal with its kind.
pub type Reply = std::result::Result<redis::Value, ServerReply>;

/// Connect and per-command timeouts. The crate's async default (500 ms) would kill a long
/// MIGRATE or GETKEYSINSLOT, so every command carries its own deadline instead.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub command: Duration,
    /// For reads of the cluster's state (CLUSTER NODES, INFO), connecting included. A node
    /// answers them from memory in microseconds, unless its event loop is held: a Valkey replica
    /// re-homed mid-decommission was seen silent for over 5 s on a loaded 2-core host (CI), and
    /// taken for unreachable by the run's final check. As long as any other command's bound;
    /// what saves time with a node that is really gone is not asking it again for a while.
    pub read: Duration,
    /// How long a node that failed a read is taken as unreachable without being asked again.
    /// Every step re-reads the whole cluster (each slot batch, each forget round, each poll of
    /// a wait): without this, a node the operator accepted as down costs `read` every time.
    pub retry_unreachable: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            command: Duration::from_secs(15),
            read: Duration::from_secs(15),
            retry_unreachable: Duration::from_secs(30),
        }
    }
}

/// What the live backend's operations share: the connections, and the command's own output and
/// failpoints, which the operations (`migrate`, `lease`) reach through it.
pub struct Pool {
    creds: Credentials,
    timeouts: Timeouts,
    /// By (address, lane): lane 0 is the node's connection; `pipeline_spread` adds more.
    conns: Mutex<HashMap<(String, usize), MultiplexedConnection>>,
    /// Nodes whose last read failed: since when, and why. See `Timeouts::retry_unreachable`.
    unreachable: std::sync::Mutex<HashMap<String, (Instant, String)>>,
    out: Arc<Output>,
    failpoints: Failpoints,
    /// What each source's MIGRATEs were learned to cost, by (address, pause budget): it lasts
    /// the run, so every batch starts from what the last one learned.
    pacers: std::sync::Mutex<HashMap<(String, Duration), Pacer>>,
}

impl Pool {
    pub fn new(creds: Credentials, timeouts: Timeouts) -> Self {
        Self {
            creds,
            timeouts,
            conns: Mutex::new(HashMap::new()),
            unreachable: std::sync::Mutex::default(),
            out: Arc::default(),
            failpoints: Failpoints::from_env(),
            pacers: std::sync::Mutex::default(),
        }
    }

    /// The pacer learned for MIGRATEs from `src` at `budget`, if one was.
    pub fn pacer(&self, src: &str, budget: Duration) -> Option<Pacer> {
        self.pacers.lock().ok()?.get(&(src.to_string(), budget)).cloned()
    }

    /// Keeps what a batch learned for the next one.
    pub fn keep_pacer(&self, src: &str, pacer: Pacer) {
        if let Ok(mut p) = self.pacers.lock() {
            p.insert((src.to_string(), pacer.budget()), pacer);
        }
    }

    /// Progress lines and events go to `out` (by default, to the terminal, without `--json`).
    #[must_use]
    pub fn with_output(mut self, out: Arc<Output>) -> Self {
        self.out = out;
        self
    }

    pub fn out(&self) -> &Output {
        &self.out
    }

    /// Aborts the process here if the test run armed this point (see `failpoint`).
    pub fn failpoint(&self, name: &str) {
        self.failpoints.hit(name);
    }

    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    async fn connection(&self, addr: &Addr, lane: usize) -> Result<MultiplexedConnection> {
        let key = (addr.to_string(), lane);
        if let Some(c) = self.conns.lock().await.get(&key) {
            return Ok(c.clone());
        }
        let conn = self.dedicated(addr).await?;
        self.conns.lock().await.insert(key, conn.clone());
        Ok(conn)
    }

    /// A new connection of its own (not shared through the pool), e.g. for the lease.
    pub async fn dedicated(&self, addr: &Addr) -> Result<MultiplexedConnection> {
        let key = addr.to_string();
        let mut redis_info = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(u) = &self.creds.user {
            redis_info = redis_info.set_username(u);
        }
        if let Some(p) = &self.creds.password {
            redis_info = redis_info.set_password(p);
        }
        let target = match &self.creds.tls {
            Some(_) => {
                ConnectionAddr::TcpTls { host: addr.host.clone(), port: addr.port, insecure: false, tls_params: None }
            }
            None => ConnectionAddr::Tcp(addr.host.clone(), addr.port),
        };
        let info: ConnectionInfo = target
            .into_connection_info()
            .map_err(|e| Error::Connect { addr: key.clone(), reason: e.to_string() })?
            .set_redis_settings(redis_info);
        let client = match &self.creds.tls {
            Some(tls) => {
                // rustls needs a crypto provider chosen once per process; a second call is a no-op.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let certs = redis::TlsCertificates {
                    client_tls: tls
                        .client
                        .clone()
                        .map(|(cert, key)| redis::ClientTlsConfig { client_cert: cert, client_key: key }),
                    root_cert: tls.ca_pem.clone(),
                };
                Client::build_with_tls(info, certs)
            }
            None => Client::open(info),
        }
        .map_err(|e| Error::Connect { addr: key.clone(), reason: e.to_string() })?;
        let cfg =
            AsyncConnectionConfig::new().set_connection_timeout(Some(self.timeouts.connect)).set_response_timeout(None);
        let conn = match tokio::time::timeout(
            self.timeouts.connect + Duration::from_secs(1),
            client.get_multiplexed_async_connection_with_config(&cfg),
        )
        .await
        {
            Err(_) => return Err(Error::Connect { addr: key, reason: "timed out".into() }),
            Ok(Err(e)) => return Err(connect_error(&key, &e)),
            Ok(Ok(c)) => c,
        };
        Ok(conn)
    }

    /// Forgets the connections to `addr`, so the next command reconnects.
    pub async fn drop_connection(&self, addr: &Addr) {
        let addr = addr.to_string();
        self.conns.lock().await.retain(|(a, _), _| *a != addr);
    }

    /// A read of the node's state: bounded by `Timeouts::read`, and refused at once, without
    /// asking, while the node is remembered as unreachable (asked again once that has aged).
    pub async fn read<T: FromRedisValue>(&self, addr: &Addr, name: &str, cmd: &redis::Cmd) -> Result<T> {
        self.bounded_read(addr, name, self.query_with_timeout(addr, name, cmd, self.timeouts.read)).await
    }

    /// `read` for a pipeline of reads.
    pub async fn read_pipeline(&self, addr: &Addr, name: &str, pipe: &redis::Pipeline) -> Result<Vec<Reply>> {
        self.bounded_read(addr, name, self.pipeline_timeout(addr, name, pipe, self.timeouts.read)).await
    }

    async fn bounded_read<T>(
        &self,
        addr: &Addr,
        name: &str,
        read: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let key = addr.to_string();
        if let Some(why) = self.remembered_unreachable(&key) {
            return Err(Error::Connect { addr: key, reason: why });
        }
        // Connecting counts too: a frozen process still accepts TCP connections (the kernel
        // does), then never answers the handshake's AUTH.
        let r = if let Ok(r) = tokio::time::timeout(self.timeouts.read, read).await {
            r
        } else {
            self.drop_connection(addr).await;
            Err(Error::Timeout {
                what: format!("waiting for {name} on {addr}"),
                detail: format!("no reply within {:?}", self.timeouts.read),
            })
        };
        let mut down = self.unreachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &r {
            Err(Error::Timeout { .. }) => {
                down.insert(key, (Instant::now(), format!("no reply to {name} within {:?}", self.timeouts.read)));
            }
            Err(Error::Connect { reason, .. }) => {
                down.insert(key, (Instant::now(), reason.clone()));
            }
            _ => {
                down.remove(&key);
            }
        }
        r
    }

    /// Asks `addr` again at the next read, whatever its last read said: for a question about
    /// that one node (is it still there?) rather than one read of the whole cluster.
    pub fn ask_again(&self, addr: &Addr) {
        self.unreachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&addr.to_string());
    }

    /// Why `addr` is still taken as unreachable, if its last read failed recently.
    fn remembered_unreachable(&self, addr: &str) -> Option<String> {
        let down = self.unreachable.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (since, why) = down.get(addr)?;
        let age = since.elapsed();
        (age < self.timeouts.retry_unreachable).then(|| {
            format!(
                "{why} ({}s ago; asked again in {}s)",
                age.as_secs(),
                self.timeouts.retry_unreachable.saturating_sub(age).as_secs().max(1)
            )
        })
    }

    /// Runs one command on one node. `name` is what error messages call it (never its arguments,
    /// which may hold a password).
    pub async fn query<T: FromRedisValue>(&self, addr: &Addr, name: &str, cmd: &redis::Cmd) -> Result<T> {
        self.query_with_timeout(addr, name, cmd, self.timeouts.command).await
    }

    pub async fn query_with_timeout<T: FromRedisValue>(
        &self,
        addr: &Addr,
        name: &str,
        cmd: &redis::Cmd,
        timeout: Duration,
    ) -> Result<T> {
        // A pooled connection the server has closed (Valkey closes its clients' connections when
        // a primary turns replica) fails at once: reconnect and send again, once. Everything
        // runbook sends is safe to repeat (a MIGRATE of keys already moved answers NOKEY).
        for attempt in 0..2 {
            let mut conn = self.connection(addr, 0).await?;
            match tokio::time::timeout(timeout, cmd.query_async::<T>(&mut conn)).await {
                Err(_) => {
                    self.drop_connection(addr).await;
                    return Err(Error::Timeout {
                        what: format!("waiting for {name} on {addr}"),
                        detail: format!("no reply within {timeout:?}"),
                    });
                }
                Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() => {
                    self.drop_connection(addr).await;
                    if attempt == 1 {
                        return Err(command_error(addr, name, &e));
                    }
                }
                Ok(Err(e)) => return Err(command_error(addr, name, &e)),
                Ok(Ok(v)) => return Ok(v),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Sends a pipeline and returns one result per command, so one refused SETSLOT does not hide
    /// the outcome of the others.
    pub async fn pipeline(&self, addr: &Addr, name: &str, pipe: &redis::Pipeline) -> Result<Vec<Reply>> {
        self.pipeline_timeout(addr, name, pipe, self.timeouts.command).await
    }

    /// `pipeline`, its commands spread over up to `lanes` connections to the node, in contiguous
    /// runs, the replies in the pipeline's order. For commands a node answers only once its
    /// replicas have acknowledged them (Valkey 8's replicated `CLUSTER SETSLOT`): on one
    /// connection each waits for the one before it; on several they wait together. Runs are
    /// whole `group`s of commands, which stay together, in order, on one connection.
    pub async fn pipeline_spread(
        &self,
        addr: &Addr,
        name: &str,
        pipe: &redis::Pipeline,
        lanes: usize,
        group: usize,
    ) -> Result<Vec<Reply>> {
        let cmds: Vec<&redis::Cmd> = pipe.cmd_iter().collect();
        let group = group.max(1);
        let per_lane = cmds.len().div_ceil(group).div_ceil(lanes.max(1)).max(1) * group;
        let runs = cmds.chunks(per_lane).enumerate().map(|(lane, run)| {
            let mut p = redis::pipe();
            for c in run {
                p.add_command((*c).clone());
            }
            async move { self.pipeline_on(addr, lane, name, &p, self.timeouts.command).await }
        });
        let mut out = Vec::with_capacity(cmds.len());
        for replies in futures::future::join_all(runs).await {
            out.extend(replies?);
        }
        Ok(out)
    }

    /// `pipeline` with its own deadline, for pipelines of long commands (MIGRATE).
    pub async fn pipeline_timeout(
        &self,
        addr: &Addr,
        name: &str,
        pipe: &redis::Pipeline,
        timeout: Duration,
    ) -> Result<Vec<Reply>> {
        self.pipeline_on(addr, 0, name, pipe, timeout).await
    }

    async fn pipeline_on(
        &self,
        addr: &Addr,
        lane: usize,
        name: &str,
        pipe: &redis::Pipeline,
        timeout: Duration,
    ) -> Result<Vec<Reply>> {
        let mut pipe = pipe.clone();
        pipe.ignore_errors();
        let mut values = None;
        // As in `query_with_timeout`: one fresh connection when the pooled one was closed.
        for attempt in 0..2 {
            let mut conn = self.connection(addr, lane).await?;
            match tokio::time::timeout(timeout, pipe.query_async::<Vec<redis::Value>>(&mut conn)).await {
                Err(_) => {
                    self.drop_connection(addr).await;
                    return Err(Error::Timeout {
                        what: format!("waiting for {name} on {addr}"),
                        detail: format!("no reply within {timeout:?}"),
                    });
                }
                Ok(Err(e)) if (e.is_io_error() || e.is_connection_dropped()) && attempt == 0 => {
                    self.drop_connection(addr).await;
                }
                Ok(Err(e)) => {
                    self.drop_connection(addr).await;
                    return Err(command_error(addr, name, &e));
                }
                Ok(Ok(v)) => {
                    values = Some(v);
                    break;
                }
            }
        }
        let values = values.expect("the loop returns or sets it");
        Ok(values
            .into_iter()
            .map(|v| match v {
                redis::Value::ServerError(e) => {
                    Err(ServerReply::new(format!("{} {}", e.code(), e.details().unwrap_or_default()).trim()))
                }
                other => Ok(other),
            })
            .collect())
    }
}

fn connect_error(addr: &str, e: &redis::RedisError) -> Error {
    let text = e.to_string();
    if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
        || text.contains("WRONGPASS")
        || text.contains("NOAUTH")
    {
        // The server's words (WRONGPASS…, "AUTH called without any password configured…"); they
        // never contain the password itself.
        Error::Auth { addr: addr.to_string(), reason: e.detail().map_or_else(|| text.clone(), str::to_string) }
    } else {
        Error::Connect { addr: addr.to_string(), reason: text }
    }
}

pub fn command_error(addr: &Addr, name: &str, e: &redis::RedisError) -> Error {
    let text = match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    };
    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) {
        return Error::Permission { denied: vec![format!("{name} on {addr}")], reason: text };
    }
    if text.contains("NOAUTH") || text.contains("WRONGPASS") {
        return Error::Auth { addr: addr.to_string(), reason: text };
    }
    if e.is_io_error() || e.is_connection_dropped() {
        return Error::Connect { addr: addr.to_string(), reason: text };
    }
    Error::Command { node: addr.to_string(), command: name.to_string(), reason: text, state: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listening socket nobody reads: the kernel completes the TCP handshake, then nothing
    /// answers, as with a redis-server stopped by SIGSTOP.
    #[test]
    fn a_silent_node_costs_one_bounded_read_then_none_until_it_is_retried() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = Addr::new("127.0.0.1", silent.local_addr().unwrap().port());
        let timeouts = Timeouts {
            read: Duration::from_millis(300),
            retry_unreachable: Duration::from_millis(1500),
            ..Timeouts::default()
        };
        let pool = Pool::new(Credentials::default(), timeouts);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let read = || {
            let started = Instant::now();
            let r = rt.block_on(pool.read::<String>(&addr, "CLUSTER NODES", redis::cmd("CLUSTER").arg("NODES")));
            (r.unwrap_err().to_string(), started.elapsed())
        };
        let (first, took) = read();
        assert!(first.contains("timed out waiting for CLUSTER NODES") && first.contains("300ms"), "{first}");
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
        let (second, took) = read();
        assert!(
            second.contains("no reply to CLUSTER NODES within 300ms") && second.contains("asked again in"),
            "{second}"
        );
        assert!(took < Duration::from_millis(100), "a remembered node is not asked: {took:?}");
        std::thread::sleep(Duration::from_millis(1500));
        let (third, took) = read();
        assert!(third.contains("timed out waiting") && !third.contains("asked again"), "{third}");
        assert!(took >= Duration::from_millis(300), "asked again once the memory aged: {took:?}");
    }
}
