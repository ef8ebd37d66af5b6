//! Helpers: opening stores of both kinds, timeouts, captured logs.

use std::future::Future;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use jamsocket_store::testing::RedisServer;
use jamsocket_store::{Snapshots, StoreConfig};
use tempfile::TempDir;

/// The longest any single wait of a test may take.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// `future`'s output, or a panic naming `what` after [`WAIT`].
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(WAIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: no answer within {WAIT:?}"),
    }
}

/// Polls `check` every 10 ms until it is true; panics naming `what` after [`WAIT`].
pub(crate) async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A temporary folder and the url of a SQLite file in it.
pub(crate) fn sqlite_url() -> (TempDir, String) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite:{}", folder.path().join("rooms.db").display());
    (folder, url)
}

/// A running redis-server (the test fails, naming the install command, if there is none).
pub(crate) fn redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|error| panic!("cannot start redis-server: {error}"))
}

pub(crate) fn open(url: &str) -> Snapshots {
    open_with(url, StoreConfig::new())
}

pub(crate) fn open_with(url: &str, config: StoreConfig) -> Snapshots {
    capture_logs();
    Snapshots::open(url, config).unwrap_or_else(|error| panic!("opening {url}: {error:?}"))
}

/// Runs the same test body against a fresh SQLite file and a fresh redis-server:
/// `on_both_stores! { async fn name(store) { ... } }` makes `name::sqlite` and `name::redis`.
macro_rules! on_both_stores {
    ($(async fn $name:ident($store:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let (_folder, url) = $crate::common::sqlite_url();
                let $store = $crate::common::open(&url);
                $body
            }

            #[tokio::test]
            async fn redis() {
                let server = $crate::common::redis();
                let $store = $crate::common::open(&server.url());
                $body
            }
        }
    )*};
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of the process (all tests, the store threads) to a buffer.
pub(crate) fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
    });
}

/// The captured log lines that contain `needle`.
pub(crate) fn logged(needle: &str) -> Vec<String> {
    let logs = LOGS.lock().unwrap();
    let text = String::from_utf8_lossy(&logs);
    text.lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// `len` bytes that zstd cannot shrink (xorshift).
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
