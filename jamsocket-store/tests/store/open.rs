//! Opening: urls, missing folders, unreachable servers.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use jamsocket_store::{Snapshots, StoreConfig, StoreError};

use crate::common::{open, redis, sqlite_url, within};

#[test]
fn unknown_stores_are_refused_with_what_works() {
    let error = Snapshots::open("foo:bar", StoreConfig::new()).unwrap_err();
    assert!(matches!(error, StoreError::BadUrl { .. }));
    assert_eq!(
        error.to_string(),
        "unsupported store `foo:bar`: use sqlite:PATH or redis://HOST:PORT/DB"
    );
}

#[test]
fn a_missing_folder_is_named() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("no-such-folder").join("rooms.db");
    let error =
        Snapshots::open(&format!("sqlite:{}", path.display()), StoreConfig::new()).unwrap_err();
    assert!(
        matches!(error, StoreError::MissingFolder { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(
        !path.parent().unwrap().exists(),
        "the folder is not created"
    );
}

#[test]
fn a_relative_path_works() {
    // Tests run in the package folder; the folder is removed when dropped.
    let folder = tempfile::tempdir_in(".").unwrap();
    let name = folder.path().file_name().unwrap().to_str().unwrap();
    let url = format!("sqlite:{name}/rooms.db");
    let store = open(&url);
    assert_eq!(store.url(), url);
    drop(store);
    assert!(folder.path().join("rooms.db").is_file());
}

#[tokio::test]
async fn the_password_never_shows() {
    let server = redis();
    // Redis's default user accepts any password until one is set.
    let url = server.url().replace("redis://", "redis://default:s3cret@");
    let store = open(&url);
    let shown = server.url().replace("redis://", "redis://default:***@");
    assert_eq!(store.url(), shown);
    assert!(!format!("{store:?}").contains("s3cret"));
    store.save("r", b"x".to_vec());
    within("flush", store.flush()).await;
    assert_eq!(
        within("load", store.load("r")).await.unwrap(),
        Some(b"x".to_vec())
    );
    assert!(crate::common::logged("s3cret").is_empty());
}

#[test]
fn an_unreachable_redis_fails_quickly_naming_the_url() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}/0");
    let started = Instant::now();
    let error = Snapshots::open(&url, StoreConfig::new()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, StoreError::Redis { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("redis://:***@127.0.0.1:{port}/0")),
        "{message}"
    );
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
}

#[test]
fn rediss_is_refused_with_a_reason() {
    let error = Snapshots::open("rediss://u:pw@127.0.0.1:1/0", StoreConfig::new()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("rediss://u:***@127.0.0.1:1/0"),
        "{message}"
    );
    assert!(message.contains("TLS"), "{message}");
}

#[test]
fn debug_shows_the_url() {
    let (_folder, url) = sqlite_url();
    let store = open(&url);
    let shown = format!("{store:?}");
    assert!(shown.contains(&url), "{shown}");
}
