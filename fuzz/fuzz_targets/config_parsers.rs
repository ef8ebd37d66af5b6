//! `config_parsers`: arbitrary text through the server's setting parsers and the CLI's
//! `jamsocket.toml` parser.
//!
//! - `RoomIdStrategy` and `ShutdownPolicy` (`FromStr`): a parsed value, written back in its
//!   canonical form (`short8`, `30sec`, ...), parses to the same value; an error quotes the
//!   input. A `short` strategy generates ids of its length that `validate_room_id` accepts.
//! - `validate_room_id`: accepts exactly the ids of 1 to 128 bytes of `A-Z a-z 0-9 - _ . ~`
//!   other than `.` and `..`; each error names the id (its start, if too long) and the
//!   offending character or length.
//! - `ServiceConfig::load` (jamsocket-cli/src/config.rs): never panics; an error names the
//!   file; accepted settings, written back as TOML, load the same.

#![no_main]

use jamsocket_server::{
    validate_room_id, RoomIdError, RoomIdStrategy, ShutdownPolicy, MAX_ROOM_ID_BYTES,
};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The CLI is a binary crate, so its `jamsocket.toml` parser is compiled into this target from
/// its source file. `ServiceConfig::parse` is private to that module, so the target goes
/// through `ServiceConfig::load` and a file.
#[path = "../../jamsocket-cli/src/config.rs"]
#[allow(dead_code)]
mod config;

use config::{ServiceConfig, CONFIG_FILE};

fn strategy_text(strategy: RoomIdStrategy) -> String {
    match strategy {
        RoomIdStrategy::Implicit => "implicit".to_string(),
        RoomIdStrategy::Explicit => "api".to_string(),
        RoomIdStrategy::Uuid => "uuid".to_string(),
        RoomIdStrategy::Short(len) => format!("short{len}"),
    }
}

fn policy_text(policy: ShutdownPolicy) -> String {
    match policy {
        ShutdownPolicy::Never => "never".to_string(),
        ShutdownPolicy::Immediate => "immediate".to_string(),
        ShutdownPolicy::After(grace) => {
            assert_eq!(grace.subsec_nanos(), 0, "{policy:?}");
            format!("{}sec", grace.as_secs())
        }
    }
}

fn check_strategy(text: &str) {
    match text.parse::<RoomIdStrategy>() {
        Ok(strategy) => {
            assert_eq!(strategy_text(strategy).parse(), Ok(strategy), "{text:?}");
            if let RoomIdStrategy::Short(len) = strategy {
                assert!((1..=32).contains(&len), "{text:?}");
                let id = strategy.generate().expect("short ids are generated");
                assert_eq!(id.len(), len);
                validate_room_id(&id).expect("a generated id is valid");
            }
        }
        Err(error) => assert!(error.to_string().contains(&format!("`{text}`")), "{error}"),
    }
}

fn check_policy(text: &str) {
    match text.parse::<ShutdownPolicy>() {
        Ok(policy) => assert_eq!(policy_text(policy).parse(), Ok(policy), "{text:?}"),
        Err(error) => assert!(error.to_string().contains(&format!("`{text}`")), "{error}"),
    }
}

fn check_room_id(id: &str) {
    let allowed = jamsocket_server::is_room_id_char;
    let valid = !id.is_empty()
        && id.len() <= MAX_ROOM_ID_BYTES
        && id.chars().all(allowed)
        && id != "."
        && id != "..";
    let error = match validate_room_id(id) {
        Ok(()) => return assert!(valid, "accepted {id:?}"),
        Err(error) => error,
    };
    assert!(!valid, "refused {id:?}: {error}");
    let message = error.to_string();
    match error {
        RoomIdError::Empty => assert!(id.is_empty()),
        RoomIdError::TooLong {
            id: start,
            len,
            max,
        } => {
            assert!(!start.is_empty() && id.starts_with(&start), "{message}");
            assert_eq!((len, max), (id.len(), MAX_ROOM_ID_BYTES));
            assert!(
                message.contains(&start) && message.contains(&len.to_string()),
                "{message}"
            );
        }
        RoomIdError::BadCharacter {
            id: named,
            character,
        } => {
            assert_eq!(named, id);
            assert!(!allowed(character) || id == "." || id == "..", "{message}");
            assert!(message.contains(&format!("`{id}`")), "{message}");
            assert!(message.contains(&format!("`{character}`")), "{message}");
        }
        other => panic!("unexpected error {other:?}"),
    }
}

/// A folder of this process's own, for `jamsocket.toml`.
fn config_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("jamsocket-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        dir
    })
}

fn load(text: &str) -> anyhow::Result<ServiceConfig> {
    let dir = config_dir();
    std::fs::write(dir.join(CONFIG_FILE), text).expect("writing jamsocket.toml");
    ServiceConfig::load(dir)
}

/// `config` written back as a `jamsocket.toml` (the static folder as an absolute path).
fn to_toml(config: &ServiceConfig) -> String {
    let mut table = toml::Table::new();
    if let Some(package) = &config.package {
        table.insert("package".into(), package.clone().into());
    }
    if let Some(dir) = &config.static_dir {
        let dir = dir.to_str().expect("read from TOML, so UTF-8");
        table.insert("static".into(), dir.into());
    }
    if let Some(rooms) = config.rooms {
        table.insert("rooms".into(), strategy_text(rooms).into());
    }
    if let Some(policy) = config.shutdown_policy {
        table.insert("shutdown-policy".into(), policy_text(policy).into());
    }
    if let Some(host) = config.host {
        table.insert("host".into(), host.to_string().into());
    }
    if let Some(port) = config.port {
        table.insert("port".into(), i64::from(port).into());
    }
    table.to_string()
}

fn check_config_file(text: &str) {
    let config = match load(text) {
        Ok(config) => config,
        Err(error) => {
            let message = format!("{error:#}");
            assert!(message.contains(CONFIG_FILE), "{message}");
            return;
        }
    };
    let written = to_toml(&config);
    let again = load(&written).unwrap_or_else(|error| panic!("{written}\n{error:#}"));
    assert_eq!(again.package, config.package, "{written}");
    assert_eq!(again.static_dir, config.static_dir, "{written}");
    assert_eq!(again.rooms, config.rooms, "{written}");
    assert_eq!(again.shutdown_policy, config.shutdown_policy, "{written}");
    assert_eq!(again.host, config.host, "{written}");
    assert_eq!(again.port, config.port, "{written}");
}

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    check_strategy(&text);
    check_policy(&text);
    check_room_id(&text);
    check_config_file(&text);
});
