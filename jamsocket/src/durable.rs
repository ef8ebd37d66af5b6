use crate::{ClientId, JamsocketContext, Response, RestoreError, SimpleJamsocketService};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The encoding of [`Durable`] snapshots: a version byte, then JSON.
const FORMAT_JSON_V1: u8 = 1;

/// A [`SimpleJamsocketService`] whose state is saved with serde: derive `Serialize` and
/// `Deserialize` on your service and serve `Durable<YourService>` instead of `YourService`
/// (natively, or as `#[jamsocket_wasm] type Service = Durable<YourService>;`). Every handler is
/// your service's; [`snapshot`](SimpleJamsocketService::snapshot) and
/// [`restore`](SimpleJamsocketService::restore) encode it as versioned JSON, which survives
/// code changes that serde can read (added fields with `#[serde(default)]`, say).
///
/// ```
/// use jamsocket::{ClientId, Durable, JamsocketContext, RecordingContext, SimpleJamsocketService};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Counter(i32);
///
/// impl SimpleJamsocketService for Counter {
///     fn new(_: &str, _: &impl JamsocketContext) -> Self {
///         Counter(0)
///     }
///     fn message(&mut self, _: ClientId, _: &str, _: &impl JamsocketContext) {
///         self.0 += 1;
///     }
/// }
///
/// let ctx = RecordingContext::default();
/// let mut room = Durable::<Counter>::new("room", &ctx);
/// room.message(ClientId::from(1), "increment", &ctx);
/// let saved = room.snapshot().unwrap();
/// let restored = Durable::<Counter>::restore("room", &saved, &ctx).unwrap();
/// assert_eq!(restored.0 .0, 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durable<S>(pub S);

impl<S> SimpleJamsocketService for Durable<S>
where
    S: SimpleJamsocketService + Serialize + DeserializeOwned,
{
    fn new(room_id: &str, ctx: &impl JamsocketContext) -> Self {
        Durable(S::new(room_id, ctx))
    }

    fn connect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        self.0.connect(client, ctx);
    }

    fn disconnect(&mut self, client: ClientId, ctx: &impl JamsocketContext) {
        self.0.disconnect(client, ctx);
    }

    fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
        self.0.message(client, message, ctx);
    }

    fn binary(&mut self, client: ClientId, message: &[u8], ctx: &impl JamsocketContext) {
        self.0.binary(client, message, ctx);
    }

    fn timer(&mut self, ctx: &impl JamsocketContext) {
        self.0.timer(ctx);
    }

    fn request(&mut self, body: &[u8], ctx: &impl JamsocketContext) -> Response {
        self.0.request(body, ctx)
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        let mut bytes = vec![FORMAT_JSON_V1];
        // Serializing to memory fails only for maps with non-string keys and the like: a bug in
        // the service's types, reported by the host as "keeps no snapshots".
        serde_json::to_writer(&mut bytes, &self.0).ok()?;
        Some(bytes)
    }

    fn restore(_: &str, snapshot: &[u8], _: &impl JamsocketContext) -> Result<Self, RestoreError> {
        match snapshot {
            [FORMAT_JSON_V1, json @ ..] => serde_json::from_slice(json)
                .map(Durable)
                .map_err(RestoreError::corrupt),
            [version, ..] => Err(RestoreError::corrupt(format!(
                "unknown snapshot format {version} (this build reads format {FORMAT_JSON_V1})"
            ))),
            [] => Err(RestoreError::corrupt("empty snapshot")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordingContext;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Notes(Vec<String>);

    impl SimpleJamsocketService for Notes {
        fn new(_: &str, _: &impl JamsocketContext) -> Self {
            Notes(Vec::new())
        }
        fn message(&mut self, _: ClientId, message: &str, _: &impl JamsocketContext) {
            self.0.push(message.to_string());
        }
        fn request(&mut self, _: &[u8], _: &impl JamsocketContext) -> Response {
            Response::ok(self.0.join(","))
        }
    }

    #[test]
    fn state_round_trips_and_bad_bytes_are_corrupt() {
        let ctx = RecordingContext::default();
        let mut notes = Durable::<Notes>::new("r", &ctx);
        notes.message(ClientId::from(1), "a", &ctx);
        let saved = notes.snapshot().unwrap();
        assert_eq!(saved[0], FORMAT_JSON_V1);
        let mut restored = Durable::<Notes>::restore("r", &saved, &ctx).unwrap();
        assert_eq!(restored, notes);
        assert_eq!(restored.request(b"", &ctx), Response::ok("a"));
        for bad in [&b""[..], b"\x01{", b"\x09[]"] {
            assert!(matches!(
                Durable::<Notes>::restore("r", bad, &ctx),
                Err(RestoreError::Corrupt(_))
            ));
        }
    }
}
