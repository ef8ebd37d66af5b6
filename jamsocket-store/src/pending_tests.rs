use super::*;

fn save(bytes: &[u8]) -> Change {
    Change::Save {
        snapshot: Arc::new(bytes.to_vec()),
        fence: None,
    }
}

fn saved(pending: &Pending, room: &str) -> Option<Vec<u8>> {
    match pending.get(room)? {
        Change::Save { snapshot, .. } => Some(snapshot.to_vec()),
        Change::Delete => None,
    }
}

fn finish_all(pending: &Pending, batch: Batch, outcome: fn() -> Outcome) {
    let rooms = batch.rooms.into_iter().map(|w| (w, outcome())).collect();
    pending.finish_batch(rooms, None);
}

#[test]
fn a_newer_change_replaces_an_unwritten_one() {
    let pending = Pending::default();
    pending.push("a", save(b"1"));
    pending.push("a", save(b"2"));
    pending.push("b", Change::Delete);
    pending.push("b", save(b"3"));
    assert_eq!(saved(&pending, "a").unwrap(), b"2");
    assert_eq!(saved(&pending, "b").unwrap(), b"3");
    assert_eq!(pending.len(), 2);
    pending.push("a", Change::Delete);
    assert!(matches!(pending.get("a"), Some(Change::Delete)));
}

#[test]
fn a_save_during_the_write_of_an_older_one_survives_it() {
    let pending = Pending::default();
    pending.push("a", save(b"old"));
    let batch = pending.take_batch(10, usize::MAX).unwrap();
    assert_eq!(batch.rooms.len(), 1);
    // Still visible while being written, and not taken twice.
    assert_eq!(saved(&pending, "a").unwrap(), b"old");
    assert!(pending.take_batch(10, usize::MAX).is_none());
    pending.push("a", save(b"new"));
    finish_all(&pending, batch, || Outcome::Written);
    assert_eq!(saved(&pending, "a").unwrap(), b"new");
    let batch = pending.take_batch(10, usize::MAX).unwrap();
    match &batch.rooms[0].change {
        Change::Save { snapshot, .. } => assert_eq!(snapshot.as_slice(), b"new"),
        Change::Delete => panic!("expected the newer save"),
    }
    finish_all(&pending, batch, || Outcome::Written);
    assert!(pending.get("a").is_none());
    assert_eq!(pending.len(), 0);
}

#[test]
fn a_failed_write_stays_pending_with_its_compressed_bytes() {
    let pending = Pending::default();
    pending.push("a", save(b"x"));
    let mut batch = pending.take_batch(10, usize::MAX).unwrap();
    let write = batch.rooms.pop().unwrap();
    let compressed = Some(Arc::new(b"z".to_vec()));
    pending.finish_batch(vec![(write, Outcome::Failed(compressed))], None);
    let batch = pending.take_batch(10, usize::MAX).unwrap();
    assert_eq!(batch.rooms[0].compressed.as_deref().unwrap(), b"z");
}

#[test]
fn batches_take_the_oldest_rooms_first_within_limits() {
    let pending = Pending::default();
    for room in ["r0", "r1", "r2", "r3"] {
        pending.push(room, save(&[0; 10]));
    }
    // Coalescing keeps a room's place in the queue.
    pending.push("r0", save(&[1; 10]));
    let batch = pending.take_batch(2, usize::MAX).unwrap();
    let rooms: Vec<_> = batch.rooms.iter().map(|w| w.room.as_str()).collect();
    assert_eq!(rooms, ["r0", "r1"]);
    let batch = pending.take_batch(10, 15).unwrap();
    assert_eq!(batch.rooms.len(), 1, "the byte limit stops after the first");
}

#[test]
fn flush_waits_for_requests_made_before_it_only() {
    let pending = Pending::default();
    assert!(pending.wait_for_all().is_none());
    pending.push("a", save(b"1"));
    let mut waiter = pending.wait_for_all().unwrap();
    let batch = pending.take_batch(10, usize::MAX).unwrap();
    // A newer save while the batch is written: the batch still has to finish.
    pending.push("a", save(b"2"));
    assert!(waiter.try_recv().is_err());
    let mut later = pending.wait_for_all().unwrap();
    finish_all(&pending, batch, || Outcome::Written);
    assert!(matches!(
        waiter.try_recv(),
        Err(oneshot::error::TryRecvError::Closed)
    ));
    assert!(matches!(
        later.try_recv(),
        Err(oneshot::error::TryRecvError::Empty)
    ));
    let batch = pending.take_batch(10, usize::MAX).unwrap();
    finish_all(&pending, batch, || Outcome::Refused);
    assert!(later.try_recv().is_err());
    assert!(pending.wait_for_all().is_none());
}

#[test]
fn failed_quarantined_copies_go_back_in_order() {
    let pending = Pending::default();
    pending.push_quarantined("a", b"1".to_vec(), 1);
    pending.push_quarantined("a", b"2".to_vec(), 2);
    let waiter = pending.wait_for_all();
    assert!(waiter.is_some());
    let batch = pending.take_batch(10, usize::MAX).unwrap();
    assert_eq!(batch.quarantined.len(), 2);
    pending.push_quarantined("b", b"3".to_vec(), 3);
    pending.finish_batch(Vec::new(), Some(batch.quarantined));
    let batch = pending.take_batch(10, usize::MAX).unwrap();
    let order: Vec<_> = batch.quarantined.iter().map(|q| q.unix_ms).collect();
    assert_eq!(order, [1, 2, 3]);
}

#[test]
fn a_newer_save_replaces_an_older_one_with_its_fence() {
    let pending = Pending::default();
    let fenced = |bytes: &[u8], fence| Change::Save {
        snapshot: Arc::new(bytes.to_vec()),
        fence: Some(fence),
    };
    pending.push("a", fenced(b"1", 3));
    pending.push("a", fenced(b"2", 5));
    let batch = pending.take_batch(10, usize::MAX).unwrap();
    match &batch.rooms[0].change {
        Change::Save { snapshot, fence } => {
            assert_eq!(snapshot.as_slice(), b"2");
            assert_eq!(*fence, Some(5));
        }
        Change::Delete => panic!("expected the newer save"),
    }
}
