//! An access panel to try facegate's door reader with: libosdp's own control panel (CP), polling one
//! reader over TCP (it listens; facegate dials it) or a serial line, with the Secure Channel. Each
//! 26-bit card read is answered with the LED green (and a short beep) when its `facility:card` is
//! allowed, red otherwise, after a line of text on the reader's display (`Welcome` or `Denied`). It prints
//! one JSON line per thing that happens: `{"listening": ADDR}`, `{"secure_channel": true}` (each time it
//! comes up), `{"card": [FACILITY, NUMBER], "bits": N, "granted": BOOL, "at_ms": MS}`, `{"keyset": HEX}`.
//!
//! `cargo run --release -p facegate-cli --example osdp_panel -- --listen 127.0.0.1:4001 --address 101
//! --key 00112233445566778899aabbccddeeff --allow 12:3456`
//!
//! With `--set-key HEX` it installs a reader: the Secure Channel is not enforced (the reader's default
//! key, SCBK-D, is tried when `--key` fails), and once it is up the panel sets the reader's key to HEX
//! (OSDP KEYSET) and goes on with it.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use facegate_integrations::osdp::{CardBits, StreamChannel, read_wiegand26};
use libosdp::{
    ControlPanelBuilder, OsdpCommand, OsdpCommandBuzzer, OsdpCommandKeyset, OsdpCommandLed, OsdpCommandText, OsdpEvent,
    OsdpFlag, OsdpLedColor, OsdpLedParams, PdInfoBuilder,
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

fn text(shown: &str) -> OsdpCommand {
    let data = shown.as_bytes().to_vec();
    OsdpCommand::Text(OsdpCommandText { reader: 0, control_code: 3, temp_time: 2, offset_row: 1, offset_col: 1, data })
}

fn hex_key(text: &str) -> Result<[u8; 16], String> {
    hex::decode(text).map_err(|e| e.to_string())?.try_into().map_err(|_| "a key is 16 bytes".to_string())
}

fn main() -> Result<(), String> {
    let address: i32 = arg("--address").unwrap_or_else(|| "101".into()).parse().map_err(|_| "--address")?;
    let key = hex_key(&arg("--key").ok_or("--key HEX")?)?;
    let mut set_key = arg("--set-key").map(|k| hex_key(&k)).transpose()?;
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
        .flag(if set_key.is_some() { OsdpFlag::empty() } else { OsdpFlag::EnforceSecure })
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
            queue.push(text(if granted { "Welcome" } else { "Denied" }));
            queue.push(led(if granted { OsdpLedColor::Green } else { OsdpLedColor::Red }));
            queue.push(OsdpCommand::Buzzer(OsdpCommandBuzzer { reader: 0, control_code: 2, on_count: 1, off_count: 1, rep_count: 1 }));
        }
        0
    });
    let mut secure = false;
    loop {
        panel.refresh();
        let now = panel.is_sc_active(0);
        if now && !secure {
            say(serde_json::json!({ "secure_channel": true }));
            if let Some(new) = set_key.take() {
                match panel.send_command(0, OsdpCommand::KeySet(OsdpCommandKeyset::new_scbk(new))) {
                    Ok(()) => say(serde_json::json!({ "keyset": hex::encode(new) })),
                    Err(error) => say(serde_json::json!({ "error": error.to_string() })),
                }
            }
        }
        secure = now;
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
