//! Who a client is: the admission hook a native server may set, built-in JWT verification, and
//! where a request carries its token. Both run before the WebSocket handshake is answered (and
//! before a room is created), so a refused client gets an HTTP status and a reason.

use crate::log_throttle::warn_throttled;
use crate::settings::{AdmissionHook, Settings};
use actix_http::header::{HeaderMap, AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use actix_web::http::StatusCode;
use futures_util::future::LocalBoxFuture;
use jamsocket::User;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The subprotocol prefix that carries a token from a browser, which cannot set headers:
/// `Sec-WebSocket-Protocol: jamsocket.v1, jamsocket.token.<jwt>`.
pub const TOKEN_PROTOCOL_PREFIX: &str = "jamsocket.token.";

/// What an admission hook sees of a client that wants to join a room. Its `Debug` output
/// leaves out the token, the headers and the query (which may carry the token).
#[derive(Clone)]
pub struct AdmissionRequest {
    /// The room the client asks for.
    pub room_id: String,
    /// The request's headers.
    pub headers: HeaderMap,
    /// The query string, without the `?`.
    pub query: String,
    /// The peer's address (a proxy's, behind one).
    pub peer: Option<SocketAddr>,
    /// The token the client presented (`?token=`, `Authorization: Bearer` or the
    /// `jamsocket.token.<jwt>` subprotocol), if any.
    pub token: Option<String>,
    /// The user a verified JWT names, when the server verifies tokens too (they are checked
    /// first).
    pub user: Option<User>,
}

impl std::fmt::Debug for AdmissionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionRequest")
            .field("room_id", &self.room_id)
            .field("peer", &self.peer)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// An admission hook's refusal: the HTTP status and body the client gets before any WebSocket
/// exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The status, typically 401, 403 or 429.
    pub status: StatusCode,
    /// The body: the reason.
    pub body: String,
    /// The body's content type.
    pub content_type: &'static str,
}

impl Denied {
    /// A refusal with `status` and a plain-text reason.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Denied {
        Denied {
            status,
            body: reason.into(),
            content_type: "text/plain; charset=utf-8",
        }
    }

    /// 401: the client did not say who it is, or the server does not believe it.
    pub fn unauthorized(reason: impl Into<String>) -> Denied {
        Denied::new(StatusCode::UNAUTHORIZED, reason)
    }

    /// 403: the server knows who the client is, and it may not join this room.
    pub fn forbidden(reason: impl Into<String>) -> Denied {
        Denied::new(StatusCode::FORBIDDEN, reason)
    }

    /// 429: the client asks too often.
    pub fn too_many_requests(reason: impl Into<String>) -> Denied {
        Denied::new(StatusCode::TOO_MANY_REQUESTS, reason)
    }

    /// A refusal with `status` and a JSON body.
    pub fn json(status: StatusCode, body: &serde_json::Value) -> Denied {
        Denied {
            status,
            body: body.to_string(),
            content_type: "application/json",
        }
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.body.trim_end(), self.status)
    }
}

/// The admission hook, type-erased: admits a client (as a user, or anonymously) or refuses it.
pub(crate) type Hook =
    dyn Fn(AdmissionRequest) -> LocalBoxFuture<'static, Result<Option<User>, Denied>> + Send + Sync;

/// Erases a hook's type.
pub(crate) fn hook<F, Fut>(hook: F) -> Arc<Hook>
where
    F: Fn(AdmissionRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<User>, Denied>> + 'static,
{
    Arc::new(move |request| Box::pin(hook(request)))
}

/// Why a JWT key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JwtKeyError {
    /// The key file could not be read.
    #[error("cannot read JWT public key `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no PEM public key of a kind JWTs are signed with.
    #[error("`{path}` holds no RSA, EC (P-256/P-384) or Ed25519 public key in PEM form")]
    NotAKey {
        /// The file.
        path: String,
    },
    /// An empty HS256 secret.
    #[error("the JWT secret is empty")]
    EmptySecret,
}

/// Verifies the JWTs clients present: the signature (HS256 with a shared secret, or
/// RS256/ES256/EdDSA with a public key), `exp` (required) and `nbf`, and an optional `room`
/// claim that limits a token to one room. `sub` becomes the client's [`User::id`], and the
/// token's payload its [`User::claims`].
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused; the client gets the message with 401 or 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("no token: pass one as ?token=, as `Authorization: Bearer <token>`, or as the subprotocol `jamsocket.token.<token>`")]
    Missing,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet (`nbf` is in the future)")]
    NotYetValid,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token has no `sub` claim (the user id)")]
    NoSubject,
    #[error("token is for room `{claimed}`, not `{room}`")]
    WrongRoom { claimed: String, room: String },
}

impl TokenError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            TokenError::WrongRoom { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl JwtVerifier {
    /// Verifies HS256 tokens signed with `secret`.
    pub fn hs256(secret: &[u8]) -> Result<JwtVerifier, JwtKeyError> {
        if secret.is_empty() {
            return Err(JwtKeyError::EmptySecret);
        }
        let key = DecodingKey::from_secret(secret).map_err(|_| JwtKeyError::EmptySecret)?;
        Ok(JwtVerifier::new(key, Validation::new(Algorithm::HS256)))
    }

    /// Verifies tokens signed with the private half of the PEM public key in `path`: RS256
    /// (and RS384/RS512/PS*) for an RSA key, ES256/ES384 for an EC key, EdDSA for Ed25519.
    pub fn public_key_file(path: impl AsRef<Path>) -> Result<JwtVerifier, JwtKeyError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| JwtKeyError::Read {
            path: shown.clone(),
            source,
        })?;
        JwtVerifier::public_key_pem(&pem).ok_or(JwtKeyError::NotAKey { path: shown })
    }

    /// Like [`JwtVerifier::public_key_file`], from the PEM text; `None` if it holds no key.
    pub fn public_key_pem(pem: &[u8]) -> Option<JwtVerifier> {
        let key = DecodingKey::from_ed_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_rsa_pem(pem))
            .ok()?;
        let validation = Validation::new_for_family(key.family());
        Some(JwtVerifier::new(key, validation))
    }

    fn new(key: DecodingKey, mut validation: Validation) -> JwtVerifier {
        validation.validate_nbf = true;
        validation.leeway = 5;
        // Tokens from identity providers carry an `aud`; it is checked once one is configured.
        validation.validate_aud = false;
        JwtVerifier { key, validation }
    }

    /// Accepts only tokens whose `aud` claim names one of `audiences`.
    #[must_use]
    pub fn with_audience(mut self, audiences: &[impl ToString]) -> JwtVerifier {
        self.validation.set_audience(audiences);
        self.validation.validate_aud = true;
        self
    }

    /// Accepts only tokens whose `iss` claim is one of `issuers`.
    #[must_use]
    pub fn with_issuer(mut self, issuers: &[impl ToString]) -> JwtVerifier {
        self.validation.set_issuer(issuers);
        self
    }

    /// The user `token` names, if it is valid for `room`.
    pub(crate) fn verify(&self, token: &str, room: &str) -> Result<User, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|err| match err.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::MissingRequiredClaim(claim) => {
                TokenError::Invalid(format!("no `{claim}` claim"))
            }
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => TokenError::Invalid(
                "not a JWT (three base64url parts, separated by dots, of JSON)".to_string(),
            ),
            ErrorKind::InvalidSignature => {
                TokenError::Invalid("its signature does not match the server's key".to_string())
            }
            ErrorKind::InvalidAlgorithm => TokenError::Invalid(format!(
                "signed with an algorithm this server does not accept (it accepts {:?})",
                self.validation.algorithms
            )),
            ErrorKind::InvalidClaimFormat(claim) => {
                TokenError::Invalid(format!("the `{claim}` claim has the wrong type"))
            }
            ErrorKind::InvalidAudience => {
                TokenError::Invalid("its `aud` claim names another audience".to_string())
            }
            ErrorKind::InvalidIssuer => {
                TokenError::Invalid("its `iss` claim names another issuer".to_string())
            }
            _ => TokenError::Invalid(err.to_string()),
        })?;
        let claims = data.claims;
        let Some(sub) = claims.get("sub").and_then(|sub| sub.as_str()) else {
            return Err(TokenError::NoSubject);
        };
        if let Some(claimed) = claims.get("room") {
            let Some(claimed) = claimed.as_str() else {
                return Err(TokenError::Invalid(
                    "the `room` claim must be a room id (a string)".to_string(),
                ));
            };
            if claimed != room {
                return Err(TokenError::WrongRoom {
                    claimed: claimed.to_string(),
                    room: room.to_string(),
                });
            }
        }
        let user = User::new(sub);
        Ok(user.with_claims(serde_json::Value::Object(claims).to_string()))
    }
}

/// Why admission refused a client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthRefusal {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{0}")]
    Denied(Denied),
}

/// Whether the client may join `room_id`, and as whom: the token is verified when the server
/// verifies tokens, then the admission hook decides, when there is one. `Ok(None)` admits an
/// anonymous client.
pub(crate) async fn admit(
    settings: &Settings,
    room_id: &str,
    headers: &HeaderMap,
    query: &str,
    peer: Option<SocketAddr>,
) -> Result<Option<User>, AuthRefusal> {
    if settings.jwt.is_none() && settings.admission.is_none() {
        return Ok(None);
    }
    let parsed = Query::parse(query);
    let token = token(headers, &parsed);
    let user = match &settings.jwt {
        Some(verifier) => {
            let token = token.as_deref().ok_or(TokenError::Missing)?;
            let verified = verifier.verify(token, room_id);
            if let Err(err) = &verified {
                warn_throttled!(room = room_id, error = %err, "refused a token");
            }
            Some(verified?)
        }
        None => None,
    };
    let Some(AdmissionHook(hook)) = &settings.admission else {
        return Ok(user);
    };
    let request = AdmissionRequest {
        room_id: room_id.to_string(),
        headers: headers.clone(),
        query: query.to_string(),
        peer,
        token,
        user: user.clone(),
    };
    match hook(request).await {
        Ok(Some(admitted)) => Ok(Some(admitted)),
        Ok(None) => Ok(user),
        Err(denied) => Err(AuthRefusal::Denied(denied)),
    }
}

/// The token a request carries: `Authorization: Bearer`, then `?token=`, then a
/// `jamsocket.token.<jwt>` subprotocol.
pub(crate) fn token(headers: &HeaderMap, query: &Query) -> Option<String> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if let Some(token) = bearer {
        return Some(token.trim().to_string());
    }
    if let Some(token) = &query.token {
        return Some(token.clone());
    }
    offered_protocols(headers)
        .find_map(|protocol| protocol.strip_prefix(TOKEN_PROTOCOL_PREFIX))
        .map(str::to_string)
}

/// The subprotocols a client offers, in its order.
pub(crate) fn offered_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
}

/// The query parameters the server reads; others are left to the admission hook.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub token: Option<String>,
    pub resume: Option<String>,
    pub seen: Option<String>,
}

impl Query {
    /// The parameters in `query` (the first of each, if one is repeated); a query that is not
    /// `key=value` pairs counts as empty.
    pub(crate) fn parse(query: &str) -> Query {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let mut parsed = Query::default();
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "token" => &mut parsed.token,
                "resume" => &mut parsed.resume,
                "seen" => &mut parsed.seen,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::header::HeaderValue;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn sign(claims: serde_json::Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"secret").unwrap(),
        )
        .unwrap()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn a_valid_token_names_its_user_and_carries_its_claims() {
        let verifier = JwtVerifier::hs256(b"secret").unwrap();
        let token = sign(serde_json::json!({"sub": "alice", "exp": now() + 60, "role": "admin"}));
        let user = verifier.verify(&token, "room").unwrap();
        assert_eq!(user.id, "alice");
        let claims: serde_json::Value = serde_json::from_str(&user.claims.unwrap()).unwrap();
        assert_eq!(claims["role"], "admin");
    }

    #[test]
    fn bad_tokens_are_refused_with_their_reason() {
        let verifier = JwtVerifier::hs256(b"secret").unwrap();
        let expired = sign(serde_json::json!({"sub": "a", "exp": now() - 3600}));
        assert_eq!(verifier.verify(&expired, "r"), Err(TokenError::Expired));
        let early = sign(serde_json::json!({"sub": "a", "exp": now() + 3600, "nbf": now() + 600}));
        assert_eq!(verifier.verify(&early, "r"), Err(TokenError::NotYetValid));
        let no_exp = sign(serde_json::json!({"sub": "a"}));
        assert_eq!(
            verifier.verify(&no_exp, "r"),
            Err(TokenError::Invalid("no `exp` claim".into()))
        );
        let no_sub = sign(serde_json::json!({"exp": now() + 60}));
        assert_eq!(verifier.verify(&no_sub, "r"), Err(TokenError::NoSubject));
        let other_room = sign(serde_json::json!({"sub": "a", "exp": now() + 60, "room": "x"}));
        let wrong = verifier.verify(&other_room, "y").unwrap_err();
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
        assert!(verifier.verify(&other_room, "x").is_ok());
        let null_room = sign(serde_json::json!({"sub": "a", "exp": now() + 60, "room": null}));
        assert!(matches!(
            verifier.verify(&null_room, ""),
            Err(TokenError::Invalid(_))
        ));
        let audience = sign(serde_json::json!({"sub": "a", "exp": now() + 60, "aud": "app"}));
        assert!(
            verifier.verify(&audience, "r").is_ok(),
            "no audience configured"
        );
        let strict = verifier.clone().with_audience(&["other-app"]);
        assert!(matches!(
            strict.verify(&audience, "r"),
            Err(TokenError::Invalid(_))
        ));
        assert!(verifier
            .clone()
            .with_audience(&["app"])
            .verify(&audience, "r")
            .is_ok());
        let forged = JwtVerifier::hs256(b"other").unwrap();
        assert!(matches!(
            forged.verify(&other_room, "x"),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            verifier.verify("not a token", "x"),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn tokens_come_from_the_header_the_query_or_a_subprotocol() {
        let mut headers = HeaderMap::new();
        assert_eq!(token(&headers, &Query::parse("")), None);
        assert_eq!(
            token(&headers, &Query::parse("resume=k&token=abc&token=xyz")).as_deref(),
            Some("abc")
        );
        headers.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("jamsocket.v1, jamsocket.token.a.b.c"),
        );
        assert_eq!(token(&headers, &Query::parse("")).as_deref(), Some("a.b.c"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert_eq!(token(&headers, &Query::parse("")).as_deref(), Some("xyz"));
    }

    #[test]
    fn public_keys_are_read_from_pem_and_a_bad_file_is_named() {
        assert!(JwtVerifier::public_key_pem(b"not pem").is_none());
        let err = JwtVerifier::public_key_file("/nonexistent/key.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
    }
}
