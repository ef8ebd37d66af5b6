/// A server setting given as a string could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingError {
    /// Not a room-id strategy.
    #[error(
        "invalid room-id strategy `{0}`: expected `implicit`, `api` (or `explicit`), `uuid`, `short` or `shortN` (N = 1..=32, e.g. `short8`)"
    )]
    RoomIdStrategy(String),
    /// Not a shutdown policy.
    #[error(
        "invalid shutdown policy `{0}`: expected `never`, `immediate` or a grace period like `30sec`"
    )]
    ShutdownPolicy(String),
}

/// A room id in a request is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomIdError {
    /// The id is empty.
    #[error("room id is empty")]
    Empty,
    /// The id is longer than the limit.
    #[error("room id `{id}…` is {len} bytes long; the limit is {max} bytes")]
    TooLong {
        /// The start of the id.
        id: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The id holds a character outside [`ROOM_ID_CHARACTERS`](crate::ROOM_ID_CHARACTERS).
    #[error(
        "room id `{id}` contains `{character}`; allowed are {}",
        crate::ROOM_ID_CHARACTERS
    )]
    BadCharacter {
        /// The id.
        id: String,
        /// The first character that is not allowed.
        character: char,
    },
}
