//! `load` and `flush` from many runtimes at once, as Actix runs one per worker thread.

use std::thread;

use crate::common::{open, redis, sqlite_url, within};

fn from_many_runtimes(url: &str) {
    let store = open(url);
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let store = store.clone();
            thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    for i in 0..50u32 {
                        let room = format!("worker-{worker}-{}", i % 5);
                        store.save(&room, i.to_le_bytes().to_vec());
                        if i % 7 == 0 {
                            within("flush", store.flush()).await;
                        }
                        let loaded = within("load", store.load(&room)).await.unwrap();
                        assert_eq!(loaded, Some(i.to_le_bytes().to_vec()));
                    }
                    within("flush", store.flush()).await;
                });
                // This runtime is gone; the store does not depend on it.
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker thread");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let loaded = within("load", store.load("worker-3-4")).await.unwrap();
        assert_eq!(loaded, Some(49u32.to_le_bytes().to_vec()));
    });
}

#[test]
fn sqlite_serves_several_runtimes() {
    let (_folder, url) = sqlite_url();
    from_many_runtimes(&url);
}

#[test]
fn redis_serves_several_runtimes() {
    let server = redis();
    from_many_runtimes(&server.url());
}
