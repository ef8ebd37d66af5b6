/// Who a client is, as the host's admission step established it: a verified user id (a JWT's
/// `sub`, or whatever a native admission hook attached) and, optionally, the token's claims.
///
/// A client admitted without authentication has no `User`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    /// The user's id. Unique per user, not per connection: one user may be connected several
    /// times.
    pub id: String,
    /// The claims the client was admitted with, as a JSON object's text (for a JWT, its
    /// payload), or `None`.
    pub claims: Option<String>,
}

impl User {
    /// A user with this id and no claims.
    pub fn new(id: impl Into<String>) -> User {
        User {
            id: id.into(),
            claims: None,
        }
    }

    /// The same user with these claims (a JSON object's text).
    pub fn with_claims(mut self, claims: impl Into<String>) -> User {
        self.claims = Some(claims.into());
        self
    }

    /// Encodes the user as bytes [`User::decode`] reads: the id's length (u32, little-endian),
    /// the id, then the claims (nothing when there are none). This is how a WebAssembly host
    /// hands a user to its guest.
    pub fn encode(&self) -> Vec<u8> {
        let claims = self.claims.as_deref().unwrap_or("");
        let mut bytes = Vec::with_capacity(4 + self.id.len() + claims.len());
        bytes.extend_from_slice(&(self.id.len() as u32).to_le_bytes());
        bytes.extend_from_slice(self.id.as_bytes());
        bytes.extend_from_slice(claims.as_bytes());
        bytes
    }

    /// Decodes what [`User::encode`] wrote; `None` if the bytes are not such an encoding.
    pub fn decode(bytes: &[u8]) -> Option<User> {
        let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let rest = &bytes[4..];
        let id = std::str::from_utf8(rest.get(..len)?).ok()?;
        let claims = std::str::from_utf8(&rest[len..]).ok()?;
        Some(User {
            id: id.to_string(),
            claims: (!claims.is_empty()).then(|| claims.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_round_trip() {
        for user in [
            User::new("alice"),
            User::new("").with_claims(r#"{"role":"admin"}"#),
            User::new("bøb").with_claims("{}"),
        ] {
            assert_eq!(User::decode(&user.encode()), Some(user));
        }
        assert_eq!(User::decode(&[1, 0]), None);
        assert_eq!(User::decode(&[9, 0, 0, 0, b'a']), None);
    }
}
