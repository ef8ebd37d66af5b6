//! Allocations per delivery, counted: the library's unit tests run with an allocator that
//! counts each thread's allocations, and a room's service reports its thread's count (a room,
//! and every connection of it, runs on one worker thread).
//!
//! A broadcast of a text message allocates its payload once (the service hands the server a
//! `&str`); nothing may be allocated per recipient. The same run checks that a native room
//! handles a message on the connection task that read it, not on the room's own task.

use crate::{RunningServer, Server};
use futures_util::{SinkExt, StreamExt};
use jamsocket::{
    ClientId, JamsocketContext, SimpleJamsocketService, SimpleJamsocketServiceFactory,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Broadcasts every message, except `count`, which it answers (to its sender alone) with how
/// many allocations its thread has made and how many messages it handled on the room's own
/// task (the one that built it).
struct Broadcast {
    room_task: Option<tokio::task::Id>,
    on_room_task: u64,
}

impl SimpleJamsocketService for Broadcast {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Broadcast {
            room_task: tokio::task::try_id(),
            on_room_task: 0,
        }
    }

    fn message(&mut self, client: ClientId, message: &str, ctx: &impl JamsocketContext) {
        if tokio::task::try_id() == self.room_task {
            self.on_room_task += 1;
        }
        if message == "count" {
            let count = ALLOCATIONS.with(Cell::get);
            ctx.send_message(client, &format!("{count} {}", self.on_room_task));
        } else {
            ctx.send_message(jamsocket::MessageRecipient::Broadcast, message);
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);
const CLIENTS: usize = 8;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let frame = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("no message within the timeout")
            .expect("connection ended")
            .expect("read failed");
        if let Message::Text(text) = frame {
            return text.to_string();
        }
    }
}

/// Client 0 sends `messages` messages one at a time, each read by every client before the
/// next is sent (each arrives alone, as at a moderate rate).
async fn broadcast(clients: &mut [Ws], messages: usize) {
    let payload = "x".repeat(64);
    for _ in 0..messages {
        clients[0]
            .send(Message::text(payload.clone()))
            .await
            .unwrap();
        for ws in clients.iter_mut() {
            assert_eq!(next_text(ws).await, payload);
        }
    }
}

/// The allocations of the room's thread so far, and how many messages the room handled on its
/// own task.
async fn counts(ws: &mut Ws) -> (u64, u64) {
    ws.send(Message::text("count")).await.unwrap();
    let counts = next_text(ws).await;
    let (allocations, on_room_task) = counts.split_once(' ').unwrap();
    (allocations.parse().unwrap(), on_room_task.parse().unwrap())
}

fn start() -> RunningServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    Server::new()
        .start(
            listener,
            SimpleJamsocketServiceFactory::<Broadcast>::default(),
        )
        .unwrap()
}

#[tokio::test]
async fn a_broadcast_allocates_nothing_per_recipient() {
    let server = start();
    let url = format!("ws://{}/ws/counted", server.local_addr());
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let connect = tokio_tungstenite::connect_async(url.as_str());
        let (ws, _) = tokio::time::timeout(TIMEOUT, connect)
            .await
            .unwrap()
            .unwrap();
        clients.push(ws);
    }
    // Buffers and queues reach their working size.
    broadcast(&mut clients, 200).await;
    let (before, room_task_before) = counts(&mut clients[0]).await;
    let messages = 1_000;
    broadcast(&mut clients, messages).await;
    let (after, room_task_after) = counts(&mut clients[0]).await;
    // Each message arrived alone, with nothing queued for the room: the connection that read
    // it ran the service.
    assert_eq!(
        room_task_after - room_task_before,
        0,
        "messages handled on the room's task rather than inline"
    );
    // The second `count` costs what the first did; counted against the broadcasts, it only
    // makes the bound stricter.
    let allocations = after - before;
    let deliveries = (messages * CLIENTS) as u64;
    println!(
        "{allocations} allocations for {messages} messages, {deliveries} deliveries: {:.3} per message, {:.3} per delivery",
        allocations as f64 / messages as f64,
        allocations as f64 / deliveries as f64
    );
    // One per message (its payload) and nothing per recipient: one per recipient would be 8
    // per message. The margin is for amortised growth (a queue's block, a buffer).
    let most = messages as u64 + messages as u64 / 10;
    assert!(
        allocations <= most,
        "{allocations} allocations for {messages} broadcasts to {CLIENTS} clients: more than {most}"
    );
    drop(clients);
    server.stop().unwrap();
}
