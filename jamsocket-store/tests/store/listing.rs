//! Listing saved rooms: prefix, paging, order, pending changes, ids with `_` and `.`.

use crate::common::within;

on_both_stores! {
    async fn rooms_are_listed_by_prefix_in_id_order(store) {
        for room in ["game-3", "lobby", "game-1", "gamer", "game-2", "gam"] {
            store.save(room, b"state".to_vec());
        }
        within("flush", store.flush()).await;
        let list = |prefix: &'static str, after: Option<&'static str>, limit| {
            let store = store.clone();
            async move { within("rooms", store.rooms(prefix, after, limit)).await.unwrap() }
        };
        assert_eq!(list("game-", None, 10).await, ["game-1", "game-2", "game-3"]);
        assert_eq!(list("", None, 10).await, ["gam", "game-1", "game-2", "game-3", "gamer", "lobby"]);
        assert_eq!(list("nothing", None, 10).await, Vec::<String>::new());
        // Paging: each page starts after the last id of the previous one.
        assert_eq!(list("game", None, 2).await, ["game-1", "game-2"]);
        assert_eq!(list("game", Some("game-2"), 2).await, ["game-3", "gamer"]);
        assert_eq!(list("game", Some("gamer"), 2).await, Vec::<String>::new());
        // `after` before the prefix, or past it.
        assert_eq!(list("game-", Some("a"), 1).await, ["game-1"]);
        assert_eq!(list("game-", Some("z"), 10).await, Vec::<String>::new());
    }

    async fn pending_saves_are_listed_and_pending_deletes_are_not(store) {
        for room in ["r1", "r2", "r3", "r4"] {
            store.save(room, b"state".to_vec());
        }
        within("flush", store.flush()).await;
        store.delete("r1");
        store.delete("r2");
        store.save("r0", b"new".to_vec());
        let listed = within("rooms", store.rooms("r", None, 2)).await.unwrap();
        assert_eq!(listed, ["r0", "r3"], "before the writes");
        within("flush", store.flush()).await;
        let listed = within("rooms", store.rooms("r", None, 10)).await.unwrap();
        assert_eq!(listed, ["r0", "r3", "r4"], "after the writes");
    }

    async fn underscores_dots_and_glob_characters_are_plain_characters(store) {
        for room in ["a_b", "axb", "a.b", "a-b", "a*b", "a?b", "a[b]", r"a\b", "ab"] {
            store.save(room, b"state".to_vec());
        }
        within("flush", store.flush()).await;
        for prefix in ["a_", "a.", "a*", "a?", "a[", r"a\"] {
            let listed = within("rooms", store.rooms(prefix, None, 10)).await.unwrap();
            let expected: Vec<String> = ["a_b", "a.b", "a*b", "a?b", "a[b]", r"a\b"]
                .into_iter()
                .filter(|room| room.starts_with(prefix))
                .map(str::to_owned)
                .collect();
            assert_eq!(listed, expected, "prefix {prefix:?}");
        }
    }
}
