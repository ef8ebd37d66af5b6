//! Who may open a connection or create a room: the server-wide connection cap, per-address
//! caps, allowed origins and shutdown. Checked before the WebSocket handshake is answered, so a
//! refused client gets an HTTP status with a reason.

use crate::log_throttle::warn_throttled;
use crate::rate_limit::RateLimit;
use crate::settings::Settings;
use crate::sync::lock;
use actix_http::header::{HeaderMap, HeaderValue, ORIGIN};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Per-address room-creation buckets are swept when the table has grown to this many
/// addresses, and then each time it has doubled since the last sweep.
const FIRST_SWEEP_AT: usize = 4_096;

/// Why a client was not admitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("origin `{origin}` is not allowed to connect")]
    Origin { origin: String },
    #[error("the server holds its limit of {max} connections")]
    ServerFull { max: usize },
    #[error("too many connections from {ip} (limit {max})")]
    TooManyConnections { ip: IpAddr, max: usize },
    #[error("{ip} creates rooms too fast (limit {rate} new rooms per second)")]
    RoomCreationRate { ip: IpAddr, rate: u32 },
}

#[derive(Debug)]
pub(crate) struct Admission {
    connections: AtomicUsize,
    max_connections: usize,
    /// Bytes of partly received messages, over every connection.
    message_bytes: AtomicUsize,
    max_message_bytes: usize,
    per_ip: Option<(usize, Mutex<HashMap<IpAddr, usize>>)>,
    new_rooms: Option<(u32, Mutex<RoomBuckets>)>,
    trusted_proxies: Vec<IpNet>,
    allowed_origins: Option<Vec<String>>,
    shutting_down: AtomicBool,
}

/// How fast each address has been creating rooms.
#[derive(Debug)]
struct RoomBuckets {
    by_ip: HashMap<IpAddr, RateLimit>,
    sweep_at: usize,
}

/// A counted WebSocket connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
    /// Bytes of a partly received message this connection holds, counted in
    /// [`Admission::message_bytes`].
    held: usize,
}

impl ConnectionPermit {
    /// Records that the connection now holds `bytes` of a partly received message. `Err` (and
    /// nothing recorded) if that would take every connection's together over
    /// [`Limits::max_pending_message_bytes`](crate::Limits).
    pub(crate) fn hold(&mut self, bytes: usize) -> Result<(), usize> {
        let total = &self.admission.message_bytes;
        if bytes == self.held {
            return Ok(());
        }
        if bytes < self.held {
            total.fetch_sub(self.held - bytes, Ordering::Relaxed);
            self.held = bytes;
            return Ok(());
        }
        let more = bytes - self.held;
        let max = self.admission.max_message_bytes;
        if total.fetch_add(more, Ordering::Relaxed) + more > max {
            total.fetch_sub(more, Ordering::Relaxed);
            return Err(max);
        }
        self.held = bytes;
        Ok(())
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.admission
            .message_bytes
            .fetch_sub(self.held, Ordering::Relaxed);
        self.admission.connections.fetch_sub(1, Ordering::Relaxed);
        if let (Some((_, counts)), Some(ip)) = (&self.admission.per_ip, self.ip) {
            let mut counts = lock(counts);
            if let Some(count) = counts.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&ip);
                }
            }
        }
    }
}

impl Admission {
    pub(crate) fn new(settings: &Settings) -> Admission {
        let limits = &settings.limits;
        Admission {
            connections: AtomicUsize::new(0),
            max_connections: limits.effective_max_connections(),
            message_bytes: AtomicUsize::new(0),
            max_message_bytes: limits.max_pending_message_bytes,
            per_ip: limits
                .max_connections_per_ip
                .map(|max| (max, Mutex::new(HashMap::new()))),
            new_rooms: limits.max_new_rooms_per_ip_per_sec.map(|rate| {
                let buckets = RoomBuckets {
                    by_ip: HashMap::new(),
                    sweep_at: FIRST_SWEEP_AT,
                };
                (rate, Mutex::new(buckets))
            }),
            trusted_proxies: settings.trusted_proxies.clone(),
            allowed_origins: settings.allowed_origins.clone(),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// From now on every handshake and room creation gets 503.
    pub(crate) fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    pub(crate) fn check_running(&self) -> Result<(), Refusal> {
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err(Refusal::ShuttingDown);
        }
        Ok(())
    }

    /// The client's address, as per-address limits count it: the peer's, or, when the peer
    /// is a trusted proxy, the last address in `X-Forwarded-For` that is not one of the trusted
    /// proxies. An IPv6 address counts as its /64 network, which one client usually holds whole.
    pub(crate) fn client_ip(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Option<IpAddr> {
        Some(network_of(self.forwarded_ip(peer?.ip(), headers)))
    }

    fn forwarded_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut ip = peer;
        if !self.is_trusted(ip) {
            return ip;
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for hop in forwarded.iter().rev() {
            let Ok(hop) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            ip = hop;
            if !self.is_trusted(ip) {
                break;
            }
        }
        ip
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Refuses a browser page from an origin that is not allowed (403). Requests without an
    /// `Origin` header come from no browser and pass.
    /// The `Origin` of a browser page that may read this server's answers (for CORS), if the
    /// request comes from one.
    pub(crate) fn allowed_origin<'a>(&self, headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = headers.get(ORIGIN)?;
        let allowed = match &self.allowed_origins {
            None => true,
            Some(allowed) => {
                let origin = origin.to_str().unwrap_or("");
                allowed
                    .iter()
                    .any(|pattern| origin_matches(pattern, origin))
            }
        };
        allowed.then_some(origin)
    }

    pub(crate) fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let (Some(allowed), Some(origin)) = (&self.allowed_origins, headers.get(ORIGIN)) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("");
        if allowed
            .iter()
            .any(|pattern| origin_matches(pattern, origin))
        {
            return Ok(());
        }
        warn_throttled!(origin, "refused a WebSocket from a page of another origin");
        Err(Refusal::Origin {
            origin: origin.to_string(),
        })
    }

    /// Counts a new WebSocket connection from `ip`, or refuses it: 503 when the server holds
    /// its limit, 429 when `ip` does.
    pub(crate) fn connect(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
    ) -> Result<ConnectionPermit, Refusal> {
        let count = self.connections.fetch_add(1, Ordering::Relaxed);
        // From here on, dropping the permit undoes the count.
        let mut permit = ConnectionPermit {
            admission: self.clone(),
            ip: None,
            held: 0,
        };
        if count >= self.max_connections {
            warn_throttled!(
                max = self.max_connections,
                "connection limit reached: refused a WebSocket"
            );
            return Err(Refusal::ServerFull {
                max: self.max_connections,
            });
        }
        if let (Some((max, counts)), Some(ip)) = (&self.per_ip, ip) {
            let mut counts = lock(counts);
            let count = counts.entry(ip).or_insert(0);
            if *count >= *max {
                warn_throttled!(%ip, max, "per-address connection limit reached");
                return Err(Refusal::TooManyConnections { ip, max: *max });
            }
            *count += 1;
            permit.ip = Some(ip);
        }
        Ok(permit)
    }

    /// Counts a room created by `ip`, or refuses it with 429 when `ip` creates rooms faster
    /// than allowed.
    pub(crate) fn create_room(&self, ip: Option<IpAddr>) -> Result<(), Refusal> {
        let (Some((rate, buckets)), Some(ip)) = (&self.new_rooms, ip) else {
            return Ok(());
        };
        let now = Instant::now();
        let buckets = &mut *lock(buckets);
        if buckets.by_ip.len() >= buckets.sweep_at {
            // Addresses whose buckets have refilled are as good as new: forget them.
            buckets.by_ip.retain(|_, bucket| !bucket.is_full(now));
            buckets.sweep_at = (2 * buckets.by_ip.len()).max(FIRST_SWEEP_AT);
        }
        let bucket = buckets
            .by_ip
            .entry(ip)
            .or_insert_with(|| RateLimit::new(*rate, now));
        if bucket.take(1.0, now) {
            return Ok(());
        }
        warn_throttled!(%ip, rate, "room creation rate limit reached");
        Err(Refusal::RoomCreationRate { ip, rate: *rate })
    }
}

/// The address per-address limits count: IPv4 addresses as they are (IPv4-mapped IPv6 ones as
/// IPv4), IPv6 addresses as their /64 network.
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
    }
}

/// Whether `origin` (`scheme://host[:port]`) matches `pattern`: the same origin, ignoring
/// case; `*` matches every origin and a pattern ending in `:*` any port (or none).
pub(crate) fn origin_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern = pattern.trim_end_matches('/');
    match pattern.strip_suffix(":*") {
        Some(base) => {
            let Some(rest) = origin.get(..base.len()) else {
                return false;
            };
            let port = &origin[base.len()..];
            rest.eq_ignore_ascii_case(base)
                && (port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        }
        None => pattern.eq_ignore_ascii_case(origin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::header::{HeaderName, HeaderValue};

    fn admission(trusted: &[&str]) -> Admission {
        let settings = Settings {
            trusted_proxies: trusted.iter().map(|net| net.parse().unwrap()).collect(),
            ..Settings::default()
        };
        Admission::new(&settings)
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let headers = forwarded(&["1.2.3.4, 10.0.0.7"]);
        let untrusting = admission(&[]);
        assert_eq!(untrusting.client_ip(Some(peer), &headers), Some(peer.ip()));
        let trusting = admission(&["10.0.0.0/8"]);
        assert_eq!(
            trusting.client_ip(Some(peer), &headers),
            Some("1.2.3.4".parse().unwrap())
        );
        // A client cannot pretend to be someone else by adding hops before the proxy's.
        let spoofed = forwarded(&["6.6.6.6", "1.2.3.4"]);
        assert_eq!(
            trusting.client_ip(Some(peer), &spoofed),
            Some("1.2.3.4".parse().unwrap())
        );
        // A malformed hop stops the walk at the last good address.
        let garbage = forwarded(&["1.2.3.4, nonsense"]);
        assert_eq!(trusting.client_ip(Some(peer), &garbage), Some(peer.ip()));
    }

    #[test]
    fn ipv6_clients_count_as_their_64_bit_network() {
        let admission = admission(&[]);
        let peer = |ip: &str| Some(SocketAddr::new(ip.parse().unwrap(), 1));
        let headers = HeaderMap::new();
        let a = admission.client_ip(peer("2001:db8:1:2:aaaa::1"), &headers);
        let b = admission.client_ip(peer("2001:db8:1:2:bbbb::2"), &headers);
        assert_eq!(a, b);
        assert_eq!(a, Some("2001:db8:1:2::".parse().unwrap()));
        let mapped = admission.client_ip(peer("::ffff:1.2.3.4"), &headers);
        assert_eq!(mapped, Some("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn origins_match_exactly_or_by_port_wildcard() {
        assert!(origin_matches("https://app.example", "https://APP.example"));
        assert!(!origin_matches(
            "https://app.example",
            "https://app.example.evil"
        ));
        assert!(!origin_matches("https://app.example", "null"));
        assert!(origin_matches(
            "http://localhost:*",
            "http://localhost:5173"
        ));
        assert!(origin_matches("http://localhost:*", "http://localhost"));
        assert!(!origin_matches(
            "http://localhost:*",
            "http://localhost.evil.example"
        ));
        assert!(!origin_matches(
            "http://localhost:*",
            "http://localhost:80x"
        ));
        assert!(origin_matches("*", "https://anything.example"));
    }

    #[test]
    fn connections_are_counted_and_freed() {
        let mut settings = Settings::default();
        settings.limits.max_connections = Some(2);
        settings.limits.max_connections_per_ip = Some(1);
        let admission = Arc::new(Admission::new(&settings));
        let a: IpAddr = "1.1.1.1".parse().unwrap();
        let b: IpAddr = "2.2.2.2".parse().unwrap();
        let first = admission.connect(Some(a)).unwrap();
        assert!(matches!(
            admission.connect(Some(a)),
            Err(Refusal::TooManyConnections { max: 1, .. })
        ));
        let second = admission.connect(Some(b)).unwrap();
        assert!(matches!(
            admission.connect(None),
            Err(Refusal::ServerFull { max: 2 })
        ));
        drop(first);
        drop(second);
        let _again = admission.connect(Some(a)).unwrap();
        let _other = admission.connect(Some(b)).unwrap();
    }

    #[test]
    fn partly_received_messages_share_one_budget() {
        let mut settings = Settings::default();
        settings.limits.max_pending_message_bytes = 100;
        let admission = Arc::new(Admission::new(&settings));
        let mut first = admission.connect(None).unwrap();
        let mut second = admission.connect(None).unwrap();
        assert_eq!(first.hold(60), Ok(()));
        assert_eq!(second.hold(50), Err(100));
        assert_eq!(second.hold(40), Ok(()));
        assert_eq!(first.hold(0), Ok(()));
        assert_eq!(second.hold(100), Ok(()));
        drop(second);
        assert_eq!(first.hold(100), Ok(()));
    }
}
