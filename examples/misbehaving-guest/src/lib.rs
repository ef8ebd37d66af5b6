//! A guest that misbehaves on request: the fixture of the host's isolation tests and of the
//! soak benchmark, and a demonstration of what one bad room cannot do to the others.
//!
//! The room id picks the behaviour. In a room named `<fault>-<export>[-anything]` the guest
//! misbehaves when the host calls that export:
//!
//! | `<fault>` | what the guest does |
//! |---|---|
//! | `trap` | panics (the instance traps) |
//! | `loop` | spins forever (the host's CPU-time limit ends it) |
//! | `oom` | allocates until its memory cap is reached |
//! | `badptr` | asks the host to send a range outside its memory |
//!
//! `<export>` is one of `new`, `connect`, `disconnect`, `message`, `binary` and `timer`. A
//! `timer` room sets a 1 ms timer when a client connects. In any other room the guest is a
//! broadcast echo: every message goes verbatim to everyone in the room.
//!
//! Try it with `jamsocket dev examples/misbehaving-guest`: connect to `ws://127.0.0.1:8080/ws/loop-message`,
//! send anything, and watch the log name the room and the limit while other rooms carry on.

use jamsocket_wasm::prelude::*;
use std::hint::black_box;

#[jamsocket_wasm]
pub struct MisbehavingGuest {
    fault: Option<(Fault, Export)>,
}

/// How a room misbehaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    Trap,
    Loop,
    OutOfMemory,
    BadPointer,
}

/// The export in which it misbehaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Export {
    New,
    Connect,
    Disconnect,
    Message,
    Binary,
    Timer,
}

/// The fault a room id asks for, if any.
pub fn parse_room(room_id: &str) -> Option<(Fault, Export)> {
    let mut parts = room_id.splitn(3, '-');
    let fault = match parts.next()? {
        "trap" => Fault::Trap,
        "loop" => Fault::Loop,
        "oom" => Fault::OutOfMemory,
        "badptr" => Fault::BadPointer,
        _ => return None,
    };
    let export = match parts.next()? {
        "new" => Export::New,
        "connect" => Export::Connect,
        "disconnect" => Export::Disconnect,
        "message" => Export::Message,
        "binary" => Export::Binary,
        "timer" => Export::Timer,
        _ => return None,
    };
    Some((fault, export))
}

impl MisbehavingGuest {
    fn misbehave_in(&self, export: Export) {
        if let Some((fault, at)) = self.fault {
            if at == export {
                misbehave(fault);
            }
        }
    }
}

fn misbehave(fault: Fault) {
    match fault {
        Fault::Trap => panic!("asked to trap"),
        Fault::Loop => loop {
            black_box(());
        },
        Fault::OutOfMemory => {
            let mut hoard = Vec::new();
            loop {
                hoard.push(black_box(vec![1_u8; 1 << 20]));
            }
        }
        Fault::BadPointer => send_out_of_bounds(),
    }
}

#[cfg(target_arch = "wasm32")]
fn send_out_of_bounds() {
    #[link(wasm_import_module = "jamsocket")]
    extern "C" {
        fn send_message(recipient: u32, ptr: u32, len: u32);
    }
    // SAFETY: the host checks the range against the guest's memory; that check is under test.
    unsafe { send_message(0, u32::MAX - 16, 4096) }
}

#[cfg(not(target_arch = "wasm32"))]
fn send_out_of_bounds() {
    panic!("bad pointers only mean something in a WebAssembly guest");
}

impl SimpleJamsocketService for MisbehavingGuest {
    fn new(room_id: &str, _: &impl JamsocketContext) -> Self {
        let guest = MisbehavingGuest {
            fault: parse_room(room_id),
        };
        guest.misbehave_in(Export::New);
        guest
    }

    fn connect(&mut self, _: ClientId, ctx: &impl JamsocketContext) {
        if matches!(self.fault, Some((_, Export::Timer))) {
            ctx.set_timer(1);
        }
        self.misbehave_in(Export::Connect);
    }

    fn disconnect(&mut self, _: ClientId, _: &impl JamsocketContext) {
        self.misbehave_in(Export::Disconnect);
    }

    fn message(&mut self, _: ClientId, message: &str, ctx: &impl JamsocketContext) {
        self.misbehave_in(Export::Message);
        ctx.send_message(MessageRecipient::Broadcast, message);
    }

    fn binary(&mut self, _: ClientId, message: &[u8], ctx: &impl JamsocketContext) {
        self.misbehave_in(Export::Binary);
        ctx.send_binary(MessageRecipient::Broadcast, message);
    }

    fn timer(&mut self, _: &impl JamsocketContext) {
        self.misbehave_in(Export::Timer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_choose_the_fault() {
        assert_eq!(
            parse_room("loop-timer-7"),
            Some((Fault::Loop, Export::Timer))
        );
        assert_eq!(
            parse_room("badptr-new"),
            Some((Fault::BadPointer, Export::New))
        );
        assert_eq!(parse_room("trap"), None);
        assert_eq!(parse_room("healthy-room"), None);
        assert_eq!(parse_room("oom-everywhere"), None);
    }
}
