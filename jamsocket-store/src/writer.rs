//! The store thread, "jamsocket-store": a current-thread tokio runtime that owns the connection,
//! answers loads and listings, and writes pending changes in batches. Callers never run on it
//! and it never runs on theirs: requests arrive over a channel and are answered over oneshot
//! channels, which work from any runtime (or none).

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::backend::{Backend, FencedOut, Request, Write};
use crate::compression::Compressor;
use crate::error::ErrorChain;
use crate::pending::{Batch, Change, Outcome, RoomWrite};
use crate::snapshots::Shared;
use crate::store_url::StoreUrl;
use crate::StoreError;

/// A batch holds at most this many rooms...
const MAX_BATCH_ROOMS: usize = 256;
/// ...and, past its first snapshot, this many uncompressed bytes.
const MAX_BATCH_RAW_BYTES: usize = 8 * 1024 * 1024;
/// Loads are served between the compression of snapshots at least this large, so that a load
/// waits for one compression at most, not for a whole batch of them.
const YIELD_AFTER_RAW_BYTES: usize = 64 * 1024;
/// After a failed write, the next try waits this long, doubling up to `MAX_RETRY_DELAY`.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Once every handle is dropped, unwritten changes are retried this long before they are given up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// At most one warning about failed writes per this interval; the rest are counted.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the store thread and opens the store on it; returns once the store is open.
pub(crate) fn start(
    url: StoreUrl,
    shared: Arc<Shared>,
) -> Result<mpsc::UnboundedSender<Request>, StoreError> {
    let (loads, requests) = mpsc::unbounded_channel();
    let (opened, is_open) = std::sync::mpsc::sync_channel(1);
    let shown_url = shared.url.clone();
    let thread = std::thread::Builder::new().name("jamsocket-store".into());
    let thread_error = |source| StoreError::Thread {
        url: shown_url.clone(),
        source,
    };
    thread
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let runtime = match runtime {
                Ok(runtime) => runtime,
                Err(source) => {
                    let url = shared.url.clone();
                    let _ = opened.send(Err(StoreError::Thread { url, source }));
                    return;
                }
            };
            runtime.block_on(async move {
                let backend = match Backend::open(&url, &shared.url).await {
                    Ok(backend) => backend,
                    Err(error) => {
                        let _ = opened.send(Err(error));
                        return;
                    }
                };
                let _ = opened.send(Ok(()));
                StoreThread { backend, shared }.run(requests).await;
            });
        })
        .map_err(thread_error)?;
    match is_open.recv() {
        Ok(result) => result.map(|()| loads),
        Err(_) => Err(StoreError::Unavailable {
            url: shown_url,
            reason: "the store thread stopped while opening the store".into(),
        }),
    }
}

struct StoreThread {
    backend: Backend,
    shared: Arc<Shared>,
}

impl StoreThread {
    /// Serves requests and writes changes until every handle is gone and everything is written.
    async fn run(self, mut requests: mpsc::UnboundedReceiver<Request>) {
        let closed = Cell::new(false);
        let serve = async {
            while let Some(request) = requests.recv().await {
                self.backend.serve(request);
            }
            closed.set(true);
            self.shared.wake.notify_one();
        };
        tokio::join!(serve, self.write_all(&closed));
    }

    async fn write_all(&self, closed: &Cell<bool>) {
        let mut writer = Writer {
            compressor: Compressor::new(),
            retry_delay: FIRST_RETRY_DELAY,
            failed_attempts: 0,
            last_warning: None,
            suppressed_warnings: 0,
        };
        let mut closed_at = None;
        loop {
            let batch = (self.shared.pending).take_batch(MAX_BATCH_ROOMS, MAX_BATCH_RAW_BYTES);
            let Some(batch) = batch else {
                if closed.get() {
                    return;
                }
                self.shared.wake.notified().await;
                continue;
            };
            if self.write_batch(batch, &mut writer).await {
                writer.retry_delay = FIRST_RETRY_DELAY;
            } else {
                let closing_since = closed
                    .get()
                    .then(|| *closed_at.get_or_insert_with(Instant::now));
                if closing_since.is_some_and(|since| since.elapsed() > SHUTDOWN_GRACE) {
                    let dropped = self.shared.pending.abandon();
                    tracing::error!(
                        url = %self.shared.url,
                        "snapshot store closed with {dropped} changes it could not write after \
                         {SHUTDOWN_GRACE:?}: they are lost"
                    );
                    return;
                }
                tokio::time::sleep(writer.retry_delay).await;
                writer.retry_delay = (writer.retry_delay * 2).min(MAX_RETRY_DELAY);
            }
            // Let loads that arrived during the batch go first.
            tokio::task::yield_now().await;
        }
    }

    /// Compresses and writes one batch: the one place where changes reach the store. Returns
    /// false if the store failed (the batch stays pending, to be retried).
    async fn write_batch(&self, batch: Batch, writer: &mut Writer) -> bool {
        // Compressing is part of writing: the latency counts from here.
        let started = Instant::now();
        let max = self.shared.config.max_snapshot_bytes();
        let mut ready: Vec<(RoomWrite, Option<Arc<Vec<u8>>>)> = Vec::new();
        let mut refused = Vec::new();
        for mut write in batch.rooms {
            let Change::Save { snapshot: raw, .. } = &write.change else {
                ready.push((write, None));
                continue;
            };
            let compressed = match write.compressed.take() {
                Some(compressed) => Ok(compressed),
                None => {
                    let compressed = writer.compressor.compress(raw).map(Arc::new);
                    // Compressing a large snapshot takes a millisecond or more: let loads in.
                    if raw.len() >= YIELD_AFTER_RAW_BYTES {
                        tokio::task::yield_now().await;
                    }
                    compressed
                }
            };
            match compressed {
                Ok(compressed) if compressed.len() <= max => ready.push((write, Some(compressed))),
                Ok(compressed) => {
                    tracing::error!(
                        room = %write.room,
                        "snapshot of room `{}` not written: {} bytes compressed ({} bytes raw) is \
                         over the limit of {max} bytes; the previous snapshot stays",
                        write.room, compressed.len(), raw.len(),
                    );
                    refused.push((write, Outcome::Refused));
                }
                Err(error) => {
                    tracing::error!(room = %write.room, "compressing the snapshot of room `{}` failed: {error}", write.room);
                    refused.push((write, Outcome::Refused));
                }
            }
        }
        self.shared.counters.add_failures(refused.len() as u64);
        let result = {
            let writes: Vec<Write<'_>> = (ready.iter())
                .map(|(write, compressed)| match (&write.change, compressed) {
                    (Change::Save { fence, .. }, Some(bytes)) => Write::Put {
                        room: &write.room,
                        bytes,
                        fence: *fence,
                    },
                    _ => Write::Delete { room: &write.room },
                })
                .chain(batch.quarantined.iter().map(|q| Write::Quarantine {
                    room: &q.room,
                    unix_ms: q.unix_ms,
                    bytes: &q.bytes,
                }))
                .collect();
            if writes.is_empty() {
                Ok(Vec::new())
            } else {
                let written = self.backend.write(&writes).await;
                (self.shared.counters.write_latency).record(started.elapsed());
                written
            }
        };
        let ok = result.is_ok();
        let mut outcomes = refused;
        match result {
            Ok(fenced_out) => {
                (self.shared.counters).add_fenced_out(fenced_out.len() as u64);
                let (mut put_count, mut put_bytes) = (0, 0);
                let mut fenced_out = fenced_out.into_iter().peekable();
                for (index, (write, compressed)) in ready.into_iter().enumerate() {
                    if let Some(refusal) = fenced_out.next_if(|f| f.index == index) {
                        warn_fenced_out(&write, refusal);
                        outcomes.push((write, Outcome::Refused));
                        continue;
                    }
                    if let Some(compressed) = compressed {
                        put_count += 1;
                        put_bytes += compressed.len() as u64;
                    }
                    outcomes.push((write, Outcome::Written));
                }
                (self.shared.counters).add_written(put_count, put_bytes);
                self.shared.pending.finish_batch(outcomes, None);
                if writer.failed_attempts > 0 {
                    tracing::info!(
                        url = %self.shared.url,
                        "snapshot store reachable again after {} failed attempts",
                        writer.failed_attempts
                    );
                    writer.failed_attempts = 0;
                }
            }
            Err(error) => {
                writer.failed_attempts += 1;
                let rooms: Vec<&str> = (ready.iter().map(|(w, _)| w.room.as_str()))
                    .chain(batch.quarantined.iter().map(|q| q.room.as_str()))
                    .collect();
                self.shared.counters.add_failures(rooms.len() as u64);
                writer.warn(&rooms, &error);
                let failed = ready.into_iter().map(|(w, c)| (w, Outcome::Failed(c)));
                outcomes.extend(failed);
                (self.shared.pending).finish_batch(outcomes, Some(batch.quarantined));
            }
        }
        ok
    }
}

/// Logs a fenced save the store refused.
fn warn_fenced_out(write: &RoomWrite, refusal: FencedOut) {
    let Change::Save {
        fence: Some(fence), ..
    } = write.change
    else {
        return;
    };
    let room = &write.room;
    let current = match refusal.current {
        Some(current) => format!("current fence is {current}"),
        None => "current fence is unknown".to_owned(),
    };
    tracing::warn!(
        room = %room,
        fence,
        current = refusal.current,
        "snapshot of room `{room}` fenced out: its fence is {fence}, the room's {current} (another \
         node owns it); dropped, the stored snapshot stays"
    );
}

/// The write loop's own state.
struct Writer {
    compressor: Compressor,
    retry_delay: Duration,
    failed_attempts: u64,
    last_warning: Option<Instant>,
    suppressed_warnings: u64,
}

impl Writer {
    /// Logs a failed batch, at most once per [`WARN_INTERVAL`] (a dead Redis must not flood the
    /// log); lines left out are counted on the next one.
    fn warn(&mut self, rooms: &[&str], error: &StoreError) {
        if (self.last_warning).is_some_and(|last| last.elapsed() < WARN_INTERVAL) {
            self.suppressed_warnings += 1;
            return;
        }
        self.last_warning = Some(Instant::now());
        let suppressed = std::mem::take(&mut self.suppressed_warnings);
        let shown = &rooms[..rooms.len().min(5)];
        let more = match rooms.len().saturating_sub(shown.len()) {
            0 => String::new(),
            more => format!(" and {more} more"),
        };
        tracing::warn!(
            suppressed,
            attempt = self.failed_attempts,
            "writing snapshots failed (rooms {}{more}): {}; retrying in {:?}",
            shown.join(", "),
            ErrorChain(error),
            self.retry_delay,
        );
    }
}
