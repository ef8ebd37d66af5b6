//! Room ids: validation and the strategies that decide where rooms come from.

use crate::error::{RoomIdError, SettingError};
use rand::Rng;
use std::str::FromStr;

/// The longest room id the server accepts, in bytes.
pub const MAX_ROOM_ID_BYTES: usize = 128;

/// The characters a room id may hold, as messages and docs name them: the ones a URL path
/// segment carries unescaped. [`is_room_id_char`] is the rule.
pub const ROOM_ID_CHARACTERS: &str = "A-Z a-z 0-9 - _ . ~";

/// Whether `c` may appear in a room id (see [`ROOM_ID_CHARACTERS`]).
pub fn is_room_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~')
}

/// Where room ids come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoomIdStrategy {
    /// Connecting to `/ws/<room>` creates the room if it does not exist (the default).
    #[default]
    Implicit,
    /// Rooms are created with `POST /ws/<room>`; connecting to an unknown room gets 404.
    Explicit,
    /// `POST /new_room` creates a room with a random UUID (v4) id.
    Uuid,
    /// `POST /new_room` creates a room with a random id of this many lowercase letters and digits.
    Short(usize),
}

impl RoomIdStrategy {
    /// Whether connecting to an unknown room creates it.
    pub fn creates_on_connect(self) -> bool {
        self == RoomIdStrategy::Implicit
    }

    /// A fresh random id, for the generator strategies; `None` for the others.
    ///
    /// Ids come from a cryptographically secure generator, so they cannot be guessed.
    pub fn generate(self) -> Option<String> {
        match self {
            RoomIdStrategy::Uuid => Some(uuid::Uuid::new_v4().to_string()),
            RoomIdStrategy::Short(len) => {
                // No 0/o or 1/l/i: ids are read and typed by people.
                const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
                let mut rng = rand::rng();
                let id = (0..len)
                    .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                    .collect();
                Some(id)
            }
            RoomIdStrategy::Implicit | RoomIdStrategy::Explicit => None,
        }
    }
}

impl FromStr for RoomIdStrategy {
    type Err = SettingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SettingError::RoomIdStrategy(s.to_string());
        match s {
            "implicit" => Ok(RoomIdStrategy::Implicit),
            "api" | "explicit" => Ok(RoomIdStrategy::Explicit),
            "uuid" => Ok(RoomIdStrategy::Uuid),
            "short" => Ok(RoomIdStrategy::Short(4)),
            _ => {
                let len: usize = s
                    .strip_prefix("short")
                    .filter(|n| !n.starts_with('+') && !n.starts_with('0'))
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(err)?;
                if (1..=32).contains(&len) {
                    Ok(RoomIdStrategy::Short(len))
                } else {
                    Err(err())
                }
            }
        }
    }
}

/// Checks a room id from a request: 1 to [`MAX_ROOM_ID_BYTES`] bytes of
/// [`ROOM_ID_CHARACTERS`], and neither `.` nor `..`.
pub fn validate_room_id(id: &str) -> Result<(), RoomIdError> {
    if id.is_empty() {
        return Err(RoomIdError::Empty);
    }
    if id.len() > MAX_ROOM_ID_BYTES {
        let mut end = 32;
        while !id.is_char_boundary(end) {
            end -= 1;
        }
        return Err(RoomIdError::TooLong {
            id: id[..end].to_string(),
            len: id.len(),
            max: MAX_ROOM_ID_BYTES,
        });
    }
    if let Some(character) = id.chars().find(|&c| !is_room_id_char(c)) {
        return Err(RoomIdError::BadCharacter {
            id: id.to_string(),
            character,
        });
    }
    if id == "." || id == ".." {
        return Err(RoomIdError::BadCharacter {
            id: id.to_string(),
            character: '.',
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_strategy() {
        assert_eq!("implicit".parse(), Ok(RoomIdStrategy::Implicit));
        assert_eq!("api".parse(), Ok(RoomIdStrategy::Explicit));
        assert_eq!("explicit".parse(), Ok(RoomIdStrategy::Explicit));
        assert_eq!("uuid".parse(), Ok(RoomIdStrategy::Uuid));
        assert_eq!("short".parse(), Ok(RoomIdStrategy::Short(4)));
        assert_eq!("short12".parse(), Ok(RoomIdStrategy::Short(12)));
        for bad in [
            "", "short0", "short33", "short+3", "short03", "shortx", "Implicit", "uuid4",
        ] {
            let err = bad.parse::<RoomIdStrategy>().unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        for strategy in [
            RoomIdStrategy::Uuid,
            RoomIdStrategy::Short(4),
            RoomIdStrategy::Short(32),
        ] {
            let ids: std::collections::HashSet<String> =
                (0..1000).map(|_| strategy.generate().unwrap()).collect();
            assert!(ids.len() >= 990, "{strategy:?} repeated ids");
            for id in &ids {
                validate_room_id(id).unwrap();
            }
        }
        assert_eq!(RoomIdStrategy::Short(7).generate().unwrap().len(), 7);
        assert_eq!(RoomIdStrategy::Implicit.generate(), None);
    }

    #[test]
    fn the_readme_states_the_rule_of_this_file() {
        let readme = include_str!("../../README.md");
        let rule = format!("1-{MAX_ROOM_ID_BYTES} characters of `{ROOM_ID_CHARACTERS}`");
        assert!(readme.contains(&rule), "README.md should say: {rule}");
    }

    #[test]
    fn validates_room_ids() {
        validate_room_id("1").unwrap();
        validate_room_id("Room_1.a-b~c").unwrap();
        assert_eq!(validate_room_id(""), Err(RoomIdError::Empty));
        assert!(matches!(
            validate_room_id(".."),
            Err(RoomIdError::BadCharacter { .. })
        ));
        let err = validate_room_id("a b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "room id `a b` contains ` `; allowed are A-Z a-z 0-9 - _ . ~"
        );
        let long = "é".repeat(100);
        assert!(matches!(
            validate_room_id(&long),
            Err(RoomIdError::TooLong { len: 200, .. })
        ));
        validate_room_id(&"x".repeat(MAX_ROOM_ID_BYTES)).unwrap();
    }
}
