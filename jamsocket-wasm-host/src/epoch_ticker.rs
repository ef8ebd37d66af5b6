//! The thread that advances an engine's epoch every time slice.

use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::Engine;

/// Starts a thread that calls `engine.increment_epoch()` every `interval`. It holds only a
/// weak reference, so it stops within one interval of the engine being dropped.
pub(crate) fn start(engine: &Engine, interval: Duration) -> std::io::Result<JoinHandle<()>> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("jamsocket-wasm-epoch".to_string())
        .spawn(move || loop {
            std::thread::sleep(interval);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn the_ticker_stops_with_its_engine() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).unwrap();
        let ticker = start(&engine, Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!ticker.is_finished());

        drop(engine);
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || done.send(ticker.join().is_ok()));
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(true));
    }
}
