//! The lease: heartbeats every ttl/3, [`Health::Lost`] once none has succeeded for 2/3·ttl,
//! a new node id once Redis answers again, and the same node id with its rooms re-asserted if
//! Redis lost the node's key while the lease held (see the crate docs for why this is safe).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{NodeThread, REASSERT_BATCH};
use crate::directory::Reasserted;
use crate::error::ErrorChain;
use crate::keys::{new_node_id, unix_ms, NodeInfo};
use crate::{ClusterError, Health};

impl NodeThread {
    /// When [`tick`](NodeThread::tick) has something to do next.
    pub(super) fn next_wake(&self) -> Instant {
        match self.lease {
            Some(sent) => self.next_beat.min(sent + self.lost_after()),
            None => self.next_register,
        }
    }

    /// Heartbeats go out this often.
    fn interval(&self) -> Duration {
        self.shared.ttl / 3
    }

    /// Health is lost this long after the last heartbeat that succeeded was sent.
    fn lost_after(&self) -> Duration {
        self.shared.ttl * 2 / 3
    }

    /// A Redis request of the lease may take this long: a sixth of the ttl, and never past the
    /// moment the lease would be lost.
    fn limit(&self) -> Duration {
        let limit = self.shared.ttl / 6;
        match self.lease {
            Some(sent) => {
                limit.min((sent + self.lost_after()).saturating_duration_since(Instant::now()))
            }
            None => limit,
        }
    }

    /// Does what is due: a heartbeat, declaring the lease lost, or a new registration.
    pub(super) async fn tick(&mut self) {
        let now = Instant::now();
        match self.lease {
            Some(sent) if now >= sent + self.lost_after() => self.lose(&format!(
                "no heartbeat succeeded for {:?} ({} failed)",
                now - sent,
                self.failures
            )),
            Some(_) if now >= self.next_beat => self.beat().await,
            Some(_) => {}
            None if now >= self.next_register => self.register_new().await,
            None => {}
        }
    }

    /// What the node key holds now.
    fn info(&self) -> NodeInfo {
        NodeInfo {
            advertise: self.shared.advertise.clone(),
            rooms: self.shared.room_count.load(Ordering::Relaxed) as u64,
            started_ms: self.started_ms,
            heartbeat_ms: unix_ms(),
        }
    }

    /// Renews the lease (`SET XX`). If the node key is gone while the lease is still held,
    /// Redis lost it (restarted without its data, or someone deleted it): the same node
    /// registers again and re-asserts its rooms.
    async fn beat(&mut self) {
        let node = self.shared.node_id();
        let sent = Instant::now();
        let limit = self.limit();
        let info = self.info();
        match self.beats.renew(&node, &info, self.shared.ttl, limit).await {
            Ok(true) => {
                self.renewed(sent);
                if self.needs_reassert {
                    self.reassert(&node).await;
                }
            }
            Ok(false) => match self.lease {
                Some(last) if last.elapsed() < self.lost_after() => {
                    self.register_again(&node).await;
                }
                _ => self.lose("its node key is gone (it expired)"),
            },
            Err(error) => self.failed("renewing the lease", &error, self.shared.ttl / 12),
        }
    }

    /// A heartbeat sent at `sent` succeeded.
    fn renewed(&mut self, sent: Instant) {
        self.lease = Some(sent);
        self.next_beat = sent + self.interval();
        if self.failures > 0 {
            tracing::info!(
                node = %self.shared.node_id(),
                "heartbeats succeed again after {} failed attempts",
                self.failures
            );
            self.failures = 0;
        }
    }

    /// A request of the lease failed: retry after `retry`, logging only the first failure in a
    /// row as a warning.
    fn failed(&mut self, what: &str, error: &ClusterError, retry: Duration) {
        self.failures += 1;
        let node = self.shared.node_id();
        if self.failures == 1 {
            tracing::warn!(node = %node, "{what} failed: {}; retrying", ErrorChain(error));
        } else {
            tracing::debug!(node = %node, attempt = self.failures, "{what} failed: {}", ErrorChain(error));
        }
        let next = Instant::now() + retry;
        match self.lease {
            Some(_) => self.next_beat = next,
            None => self.next_register = next,
        }
    }

    /// Registers the same node id again after Redis lost its key, and re-asserts its rooms.
    async fn register_again(&mut self, node: &str) {
        let rooms = self.shared.state().rooms.len();
        tracing::warn!(
            node = %node, rooms,
            "node key of `{node}` is gone while its lease holds: Redis restarted without its data \
             (or the key was deleted); registering `{node}` again and re-asserting its {rooms} rooms"
        );
        let sent = Instant::now();
        let limit = self.limit();
        let info = self.info();
        match (self.beats)
            .register(node, &info, self.shared.ttl, false, limit)
            .await
        {
            Ok((_, secret)) => {
                self.shared.set_link_secret(secret);
                self.renewed(sent);
                self.needs_reassert = true;
                self.reassert(node).await;
            }
            Err(error) => self.failed("registering again", &error, self.shared.ttl / 12),
        }
    }

    /// Makes every room this node runs its own again where Redis lost the owner, and reports
    /// the rooms another node took meanwhile. Retried with the next heartbeat until it
    /// completes.
    async fn reassert(&mut self, node: &str) {
        let rooms: Vec<(String, u64)> = {
            let state = self.shared.state();
            if state.node_id != node {
                return;
            }
            state.rooms.iter().map(|(r, f)| (r.clone(), *f)).collect()
        };
        let mut taken_count = 0;
        for batch in rooms.chunks(REASSERT_BATCH) {
            let limit = self.limit();
            match self.beats.reassert(node, batch, limit).await {
                Ok(Reasserted::Done { taken }) => {
                    for (room, fence) in taken.into_iter().map(|i| &batch[i]) {
                        self.give_up(node, room, *fence);
                        taken_count += 1;
                    }
                }
                Ok(Reasserted::NodeGone) => {
                    tracing::warn!(node = %node, "node key of `{node}` vanished again while its rooms were re-asserted; retrying");
                    return;
                }
                Err(error) => {
                    let error = ErrorChain(&error);
                    tracing::warn!(node = %node, "{error}; retrying with the next heartbeat");
                    return;
                }
            }
        }
        self.needs_reassert = false;
        tracing::info!(
            node = %node, rooms = rooms.len(), taken = taken_count,
            "node `{node}` is registered again; {} of its rooms re-asserted, {taken_count} taken \
             by other nodes meanwhile",
            rooms.len() - taken_count
        );
    }

    /// Another node owns `room` now: it is no longer this node's, and the server must close it.
    fn give_up(&self, node: &str, room: &str, fence: u64) {
        let mut state = self.shared.state();
        if state.node_id == node && state.rooms.get(room) == Some(&fence) {
            state.rooms.remove(room);
        }
        drop(state);
        tracing::warn!(
            node = %node, room = %room, fence,
            "room `{room}` was taken by another node while Redis had lost the keys of `{node}`: \
             it must close here"
        );
        let _ = self.taken.send(room.to_owned());
    }

    /// The lease is lost: every room must stop. A new node id is registered later.
    fn lose(&mut self, reason: &str) {
        let node = self.shared.node_id();
        self.lease = None;
        self.needs_reassert = false;
        self.failures = 0;
        self.set_health(Health::Lost);
        let retry = self.interval();
        tracing::error!(
            node = %node,
            "node `{node}` lost its lease on the cluster: {reason}; every room must stop now \
             (another node may take them once the lease expires); registering a new node in \
             {retry:?}"
        );
        self.next_register = Instant::now() + retry;
    }

    /// While lost: registers a new node id (the rooms of the old one were closed).
    async fn register_new(&mut self) {
        let node = new_node_id(&self.name);
        let started_ms = unix_ms();
        let info = NodeInfo {
            advertise: self.shared.advertise.clone(),
            rooms: self.shared.room_count.load(Ordering::Relaxed) as u64,
            started_ms,
            heartbeat_ms: started_ms,
        };
        let sent = Instant::now();
        let limit = self.limit();
        match self
            .beats
            .register(&node, &info, self.shared.ttl, true, limit)
            .await
        {
            Ok((true, secret)) => {
                self.shared.set_link_secret(secret);
                let old = {
                    let mut state = self.shared.state();
                    state.rooms.clear();
                    std::mem::replace(&mut state.node_id, node.clone())
                };
                self.started_ms = started_ms;
                self.failures = 0;
                self.renewed(sent);
                self.set_health(Health::Live);
                tracing::info!(
                    node = %node, previous = %old,
                    "live again in the cluster as node `{node}` (was `{old}`)"
                );
            }
            // That random id exists already: try another one soon.
            Ok((false, _)) => self.next_register = Instant::now() + self.shared.ttl / 12,
            Err(error) => self.failed("registering a new node", &error, self.interval()),
        }
    }

    fn set_health(&self, health: Health) {
        self.shared
            .live
            .store(health == Health::Live, Ordering::SeqCst);
        self.health.send_replace(health);
    }
}
