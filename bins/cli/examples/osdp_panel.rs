//! An access panel to try facegate's door reader with: libosdp's own control panel (CP), polling one
//! reader over TCP (it listens; facegate dials it) or a serial line, with the Secure Channel. Each
//! 26-bit card read is answered with the LED green (and a short beep) when its `facility:card` is
//! allowed, red otherwise. It prints one JSON line per thing that happens: `{"listening": ADDR}`,
//! `{"secure_channel": true}`, `{"card": [FACILITY, NUMBER], "bits": N, "granted": BOOL, "at_ms": MS}`.
//!
//! `cargo run --release -p facegate-cli --example osdp_panel -- --listen 127.0.0.1:4001 --address 101
//! --key 00112233445566778899aabbccddeeff --allow 12:3456`

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use facegate_integrations::osdp::{CardBits, StreamChannel, read_wiegand26};
use libosdp::{
    ControlPanelBuilder, OsdpCommand, OsdpCommandBuzzer, OsdpCommandLed, OsdpEvent, OsdpFlag, OsdpLedColor,
    OsdpLedParams, PdInfoBuilder,
};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn say(line: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn led(colour: OsdpLedColor) -> OsdpCommand {
    let on = OsdpLedParams {
        control_code: 1,
        on_count: 10,
        off_count: 0,
        on_color: colour,
        off_color: OsdpLedColor::None,
        timer_count: 20,
    };
    OsdpCommand::Led(OsdpCommandLed { reader: 0, led_number: 0, temporary: on, permanent: OsdpLedParams::default() })
}

fn main() -> Result<(), String> {
    let address: i32 = arg("--address").unwrap_or_else(|| "101".into()).parse().map_err(|_| "--address")?;
    let key = hex::decode(arg("--key").ok_or("--key HEX")?).map_err(|e| e.to_string())?;
    let key: [u8; 16] = key.try_into().map_err(|_| "the key is 16 bytes")?;
    let allowed: HashSet<(u32, u64)> = arg("--allow")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| {
            let (facility, card) = pair.split_once(':')?;
            Some((facility.parse().ok()?, card.parse().ok()?))
        })
        .collect();
    let channel = if let Some(listen) = arg("--listen") {
        let listener = std::net::TcpListener::bind(&listen).map_err(|e| e.to_string())?;
        say(serde_json::json!({ "listening": listener.local_addr().map_err(|e| e.to_string())?.to_string() }));
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        StreamChannel::tcp(stream).map_err(|e| e.to_string())?.0
    } else {
        let path = arg("--serial").ok_or("--listen ADDR or --serial PATH")?;
        let channel = StreamChannel::serial(&path, 115_200)?.0;
        say(serde_json::json!({ "listening": path }));
        channel
    };
    let reader = PdInfoBuilder::new()
        .name("facegate reader")
        .and_then(|b| b.address(address))
        .and_then(|b| b.baud_rate(115_200))
        .map_err(|e| e.to_string())?
        .flag(OsdpFlag::EnforceSecure)
        .secure_channel_key(key);
    let mut panel =
        ControlPanelBuilder::new().add_channel(Box::new(channel), vec![reader]).build().map_err(|e| e.to_string())?;
    let answers: Arc<Mutex<Vec<OsdpCommand>>> = Arc::default();
    let queued = answers.clone();
    panel.set_event_callback(move |_, event| {
        if let OsdpEvent::CardRead(read) = event {
            let bits = CardBits { bits: read.nr_bits, data: read.data.clone() };
            let card = read_wiegand26(&bits);
            let granted = card.is_some_and(|c| allowed.contains(&c));
            let at_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            say(serde_json::json!({ "card": card.map(|(f, n)| [u64::from(f), n]), "bits": read.nr_bits, "granted": granted, "at_ms": at_ms }));
            let mut queue = queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            queue.push(led(if granted { OsdpLedColor::Green } else { OsdpLedColor::Red }));
            queue.push(OsdpCommand::Buzzer(OsdpCommandBuzzer { reader: 0, control_code: 2, on_count: 1, off_count: 1, rep_count: 1 }));
        }
        0
    });
    let mut secure = false;
    loop {
        panel.refresh();
        if !secure && panel.is_sc_active(0) {
            secure = true;
            say(serde_json::json!({ "secure_channel": true }));
        }
        let commands: Vec<OsdpCommand> =
            answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..).collect();
        for command in commands {
            if let Err(error) = panel.send_command(0, command) {
                say(serde_json::json!({ "error": error.to_string() }));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
