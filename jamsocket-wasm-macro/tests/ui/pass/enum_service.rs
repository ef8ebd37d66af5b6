use jamsocket_wasm::prelude::*;

#[jamsocket_wasm]
enum Light {
    On,
    Off,
}

impl SimpleJamsocketService for Light {
    fn new(_: &str, _: &impl JamsocketContext) -> Self {
        Light::Off
    }

    fn message(&mut self, _: ClientId, _: &str, ctx: &impl JamsocketContext) {
        *self = match self {
            Light::On => Light::Off,
            Light::Off => Light::On,
        };
        ctx.send_message(MessageRecipient::Broadcast, "toggled");
    }
}

fn main() {}
