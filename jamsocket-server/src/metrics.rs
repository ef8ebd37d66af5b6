//! The server's Prometheus metrics ([`Server::with_metrics`](crate::Server::with_metrics)):
//! rooms, clients, messages, refusals, close codes, the store and cluster forwarding.
//!
//! Counting a message costs a few relaxed atomic adds: the counters of each label value used
//! per message are created once, here, and kept. Labels never name a room, client, user or
//! address, so the number of series stays small whatever clients do.

use crate::close_frame::code;
use crate::rooms::{Outbound, RoomEvent};
use crate::sync::lock;
use jamsocket_store::Snapshots;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::sync::{Arc, Mutex};

/// How a room ended, as `jamsocket_rooms_closed_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoomEnd {
    /// Its last client left and its shutdown policy ended it.
    Empty,
    /// Closed on request (`RunningServer::close_room(s)`), or by the cluster because another
    /// node took it.
    Closed,
    /// The server shut down.
    Shutdown,
    /// An idle room closed to make space for a new one (the room table was full).
    Evicted,
    /// This node lost its cluster lease.
    LeaseLost,
    /// Its service failed or panicked, or it could not be saved.
    Failed,
}

impl RoomEnd {
    const ALL: [RoomEnd; 6] = [
        RoomEnd::Empty,
        RoomEnd::Closed,
        RoomEnd::Shutdown,
        RoomEnd::Evicted,
        RoomEnd::LeaseLost,
        RoomEnd::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            RoomEnd::Empty => "empty",
            RoomEnd::Closed => "closed",
            RoomEnd::Shutdown => "shutdown",
            RoomEnd::Evicted => "evicted",
            RoomEnd::LeaseLost => "lease_lost",
            RoomEnd::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
    status: u16,
}

/// Counters of one kind of message (`text` or `binary`), taken from their families once.
#[derive(Debug)]
struct ByKind {
    text: Counter,
    binary: Counter,
}

impl ByKind {
    fn new(family: &Family<KindLabel, Counter>) -> ByKind {
        let kind = |kind| family.get_or_create_owned(&KindLabel { kind });
        ByKind {
            text: kind("text"),
            binary: kind("binary"),
        }
    }
}

/// The server's metrics and the registry that encodes them.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Behind a mutex so that collectors can be added after the metrics exist; locked only to
    /// register and to encode.
    registry: Mutex<Registry>,
    /// The store whose counters and latencies are encoded, once the server starts with one.
    store: Arc<Mutex<Option<Snapshots>>>,
    rooms: Gauge,
    rooms_created: Counter,
    /// Indexed like [`RoomEnd::ALL`].
    rooms_closed: [Counter; RoomEnd::ALL.len()],
    rooms_hibernated: Counter,
    clients: Gauge,
    pub connections: Counter,
    refused: Family<RefusalLabels, Counter>,
    received: ByKind,
    bytes_received: Counter,
    sent: ByKind,
    bytes_sent: Counter,
    close_codes: Family<CodeLabel, Counter>,
    pub outbound_queue_drops: Counter,
    pub heartbeat_timeouts: Counter,
    pub forwarded_connections: Counter,
    pub forward_failures: Counter,
}

impl Metrics {
    /// Every metric of the server, registered, all at zero.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let rooms = Gauge::default();
        registry.register("jamsocket_rooms", "Rooms open", rooms.clone());
        let rooms_created = Counter::default();
        registry.register(
            "jamsocket_rooms_created",
            "Rooms opened, new or restored from their snapshot",
            rooms_created.clone(),
        );
        let closed = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "jamsocket_rooms_closed",
            "Rooms that ended, by how: empty, closed, shutdown, evicted, lease_lost or failed",
            closed.clone(),
        );
        let rooms_closed = RoomEnd::ALL.map(|end| {
            closed.get_or_create_owned(&ReasonLabel {
                reason: end.label(),
            })
        });
        let rooms_hibernated = Counter::default();
        registry.register(
            "jamsocket_rooms_hibernated",
            "Durable rooms that ended empty (or evicted while idle) with their snapshot saved",
            rooms_hibernated.clone(),
        );
        let clients = Gauge::default();
        registry.register(
            "jamsocket_clients",
            "WebSocket connections joined to a room",
            clients.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "jamsocket_connections",
            "WebSocket handshakes accepted (answered 101)",
            connections.clone(),
        );
        let refused = Family::default();
        registry.register(
            "jamsocket_connections_refused",
            "WebSocket handshakes refused with an HTTP status, by reason and status",
            refused.clone(),
        );
        let received = Family::default();
        registry.register(
            "jamsocket_messages_received",
            "Messages from clients handed to their room, by kind (text or binary)",
            received.clone(),
        );
        let bytes_received = Counter::default();
        registry.register(
            "jamsocket_bytes_received",
            "Payload bytes of the messages from clients handed to their room",
            bytes_received.clone(),
        );
        let sent = Family::default();
        registry.register(
            "jamsocket_messages_sent",
            "Messages queued for clients, one per recipient, by kind (text or binary)",
            sent.clone(),
        );
        let bytes_sent = Counter::default();
        registry.register(
            "jamsocket_bytes_sent",
            "Payload bytes of the messages queued for clients, once per recipient",
            bytes_sent.clone(),
        );
        let close_codes = Family::default();
        // Every code from the start, so a dashboard shows 0 rather than no data.
        for code in [
            1000, 1001, 1002, 1007, 1008, 1009, 1011, 1012, 1013, 4000, 0,
        ] {
            let code = close_code_label(code);
            drop(close_codes.get_or_create(&CodeLabel { code }));
        }
        registry.register(
            "jamsocket_close_codes_sent",
            "Close frames sent to clients, by code (`other` for a code a client chose and the server echoed)",
            close_codes.clone(),
        );
        let outbound_queue_drops = Counter::default();
        registry.register(
            "jamsocket_outbound_queue_drops",
            "Clients closed (or sessions ended) because their outbound queue was full",
            outbound_queue_drops.clone(),
        );
        let heartbeat_timeouts = Counter::default();
        registry.register(
            "jamsocket_heartbeat_timeouts",
            "Clients dropped for staying silent past the heartbeat timeout",
            heartbeat_timeouts.clone(),
        );
        let forwarded_connections = Counter::default();
        registry.register(
            "jamsocket_forwarded_connections",
            "Connections forwarded to the cluster node that owns their room",
            forwarded_connections.clone(),
        );
        let forward_failures = Counter::default();
        registry.register(
            "jamsocket_forward_failures",
            "Connections that could not be forwarded to their room's owner",
            forward_failures.clone(),
        );
        let store = Arc::new(Mutex::new(None));
        registry.register_collector(Box::new(StoreCollector {
            store: store.clone(),
        }));
        Metrics {
            registry: Mutex::new(registry),
            store,
            rooms,
            rooms_created,
            rooms_closed,
            rooms_hibernated,
            clients,
            connections,
            refused,
            received: ByKind::new(&received),
            bytes_received,
            sent: ByKind::new(&sent),
            bytes_sent,
            close_codes,
            outbound_queue_drops,
            heartbeat_timeouts,
            forwarded_connections,
            forward_failures,
        }
    }

    /// Adds a collector whose metrics are encoded with the server's.
    pub(crate) fn register_collector(&self, collector: Box<dyn Collector>) {
        lock(&self.registry).register_collector(collector);
    }

    /// Encodes `store`'s counters and latencies with the server's metrics from now on.
    pub(crate) fn watch_store(&self, store: Option<&Snapshots>) {
        *lock(&self.store) = store.cloned();
    }

    /// Every metric in the OpenMetrics text format (which Prometheus reads; serve it as
    /// `application/openmetrics-text; version=1.0.0; charset=utf-8`).
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a `String` fails only if a collector fails.
        if let Err(err) =
            prometheus_client::encoding::text::encode(&mut text, &lock(&self.registry))
        {
            tracing::warn!(error = %err, "a metrics collector failed: its metrics are left out");
        }
        text
    }

    /// Counts a room that opened; the room is counted as closed when what this returns is
    /// dropped.
    pub(crate) fn room_opened(self: &Arc<Self>) -> LiveRoom {
        self.rooms.inc();
        self.rooms_created.inc();
        LiveRoom {
            metrics: self.clone(),
            end: RoomEnd::Failed,
            hibernated: false,
        }
    }

    /// Counts a client whose connection runs until what this returns is dropped.
    pub(crate) fn client_connected(&self) -> ConnectedClient {
        self.clients.inc();
        ConnectedClient(self.clients.clone())
    }

    /// Counts a refused handshake.
    pub(crate) fn refused(&self, reason: &'static str, status: u16) {
        self.refused
            .get_or_create(&RefusalLabels { reason, status })
            .inc();
    }

    /// Counts a message from a client handed to its room.
    pub(crate) fn received(&self, event: &RoomEvent) {
        let (counter, bytes) = match event {
            RoomEvent::Text { text, .. } => (&self.received.text, text.len()),
            RoomEvent::Binary { data, .. } => (&self.received.binary, data.len()),
            _ => return,
        };
        counter.inc();
        self.bytes_received.inc_by(bytes as u64);
    }

    /// Counts a message queued for `recipients` clients.
    pub(crate) fn sent(&self, message: &Outbound, recipients: u64) {
        let (counter, bytes) = match message {
            Outbound::Text(text) => (&self.sent.text, text.len()),
            Outbound::Binary(data) => (&self.sent.binary, data.len()),
            Outbound::Ack(_) => return,
        };
        if recipients > 0 {
            counter.inc_by(recipients);
            self.bytes_sent.inc_by(bytes as u64 * recipients);
        }
    }

    /// Counts a close frame sent to a client.
    pub(crate) fn close_sent(&self, code: u16) {
        let code = close_code_label(code);
        self.close_codes.get_or_create(&CodeLabel { code }).inc();
    }
}

/// The label of a close code: the codes the server sends, by number; `other` for a code a
/// client chose (its close frame is answered with its own code), so that clients cannot make
/// up new series.
fn close_code_label(sent: u16) -> &'static str {
    match sent {
        code::NORMAL => "1000",
        code::AWAY => "1001",
        code::PROTOCOL => "1002",
        code::INVALID_PAYLOAD => "1007",
        code::POLICY => "1008",
        code::TOO_BIG => "1009",
        code::INTERNAL_ERROR => "1011",
        code::SERVICE_RESTART => "1012",
        code::TRY_AGAIN_LATER => "1013",
        code::TAKEN_OVER => "4000",
        _ => "other",
    }
}

/// A room counted in `jamsocket_rooms`. Dropped, it counts the room as closed: as
/// [`end`](LiveRoom::end) says, or as failed if the room's task panicked before saying.
#[derive(Debug)]
pub(crate) struct LiveRoom {
    metrics: Arc<Metrics>,
    end: RoomEnd,
    hibernated: bool,
}

impl LiveRoom {
    /// The room ended as `end`, with its snapshot saved if `hibernated`.
    pub(crate) fn end(mut self, end: RoomEnd, hibernated: bool) {
        self.end = end;
        self.hibernated = hibernated;
    }
}

impl Drop for LiveRoom {
    fn drop(&mut self) {
        let metrics = &self.metrics;
        metrics.rooms.dec();
        if let Some(index) = RoomEnd::ALL.iter().position(|end| *end == self.end) {
            metrics.rooms_closed[index].inc();
        }
        if self.hibernated {
            metrics.rooms_hibernated.inc();
        }
    }
}

/// A client counted in `jamsocket_clients` until this is dropped.
#[derive(Debug)]
pub(crate) struct ConnectedClient(Gauge);

impl Drop for ConnectedClient {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Encodes the store's counters ([`Snapshots::stats`]) and latencies
/// ([`Snapshots::latency`]) at each scrape, when the server has a store.
#[derive(Debug)]
struct StoreCollector {
    store: Arc<Mutex<Option<Snapshots>>>,
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = lock(&self.store).clone() else {
            return Ok(());
        };
        let stats = store.stats();
        let counters = [
            (
                "jamsocket_snapshot_writes",
                "Room snapshots written to the store.",
                stats.written,
            ),
            (
                "jamsocket_snapshot_write_failures",
                "Snapshot writes that failed (each room of each failed attempt), or were refused for their size.",
                stats.failures,
            ),
            (
                "jamsocket_snapshot_fenced_out",
                "Snapshots the store refused because another node owns their room now.",
                stats.fenced_out,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let latency = store.latency();
        let histograms = [
            (
                "jamsocket_snapshot_write",
                "Time to write one batch of snapshots on the store thread, compression included.",
                latency.write,
            ),
            (
                "jamsocket_snapshot_load",
                "Time to load a room's snapshot from the store.",
                latency.load,
            ),
        ];
        for (name, help, histogram) in histograms {
            let unit = Unit::Seconds;
            let mut metric =
                encoder.encode_descriptor(name, help, Some(&unit), MetricType::Histogram)?;
            let buckets: Vec<(f64, u64)> = histogram.buckets().collect();
            metric.encode_histogram::<NoLabelSet>(
                histogram.sum_seconds,
                histogram.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_counts_once_per_recipient_and_codes_clients_chose_are_other() {
        let metrics = Arc::new(Metrics::new());
        metrics.sent(&Outbound::Text("hello".into()), 3);
        metrics.sent(&Outbound::Ack(32), 3);
        metrics.close_sent(code::AWAY);
        metrics.close_sent(4321);
        metrics.room_opened().end(RoomEnd::Empty, true);
        drop(metrics.room_opened());
        let text = metrics.encode();
        for line in [
            "jamsocket_messages_sent_total{kind=\"text\"} 3",
            "jamsocket_messages_sent_total{kind=\"binary\"} 0",
            "jamsocket_bytes_sent_total 15",
            "jamsocket_close_codes_sent_total{code=\"1001\"} 1",
            "jamsocket_close_codes_sent_total{code=\"other\"} 1",
            "jamsocket_rooms 0",
            "jamsocket_rooms_created_total 2",
            "jamsocket_rooms_closed_total{reason=\"empty\"} 1",
            "jamsocket_rooms_closed_total{reason=\"failed\"} 1",
            "jamsocket_rooms_hibernated_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        // Without a store, no store metrics.
        assert!(!text.contains("jamsocket_snapshot"), "{text}");
    }
}
