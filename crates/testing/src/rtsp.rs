//! A small RTSP server for tests, on loopback only: it serves the H.264 track of an MP4 file in a loop,
//! in real time, as RTP (RFC 6184: single NAL unit packets and FU-A fragments) interleaved in the
//! RTSP connection (TCP), the way IP cameras do. Enough of RTSP/1.0 for a client to OPTIONS,
//! DESCRIBE, SETUP (TCP), PLAY, GET_PARAMETER and TEARDOWN. Stopping it closes every connection, as a
//! camera that loses power would.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The clip as the server sends it: parameter sets and, per picture, its NAL units and time.
struct Clip {
    sps: Vec<u8>,
    pps: Vec<u8>,
    /// (presentation time in seconds from the first picture, NAL units), in decoding order.
    pictures: Vec<(f64, Vec<Vec<u8>>)>,
    /// Seconds one pass of the clip lasts.
    duration_s: f64,
}

impl Clip {
    fn read(path: &Path) -> Clip {
        let file = std::fs::File::open(path).expect("clip");
        let size = file.metadata().expect("clip size").len();
        let mut reader = mp4::Mp4Reader::read_header(std::io::BufReader::new(file), size).expect("an MP4 clip");
        let track = reader
            .tracks()
            .values()
            .find(|t| matches!(t.media_type(), Ok(mp4::MediaType::H264)))
            .expect("an H.264 track");
        let (id, timescale) = (track.track_id(), f64::from(track.timescale()));
        let sps = track.sequence_parameter_set().expect("SPS").to_vec();
        let pps = track.picture_parameter_set().expect("PPS").to_vec();
        let count = reader.sample_count(id).expect("samples");
        let mut pictures = Vec::new();
        let mut origin = None;
        let mut frame_s = 1.0 / 30.0;
        for n in 1..=count {
            let Some(sample) = reader.read_sample(id, n).expect("sample") else { continue };
            let pts = sample.start_time as f64 + f64::from(sample.rendering_offset);
            let origin = *origin.get_or_insert(pts);
            frame_s = f64::from(sample.duration) / timescale;
            let mut units = Vec::new();
            let mut at = 0;
            while at + 4 <= sample.bytes.len() {
                let length = u32::from_be_bytes(sample.bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
                units.push(sample.bytes[at + 4..(at + 4 + length).min(sample.bytes.len())].to_vec());
                at += 4 + length;
            }
            if sample.is_sync {
                units.insert(0, pps.clone());
                units.insert(0, sps.clone());
            }
            pictures.push(((pts - origin) / timescale, units));
        }
        let last = pictures.iter().map(|(t, _)| *t).fold(0.0, f64::max);
        Clip { sps, pps, pictures, duration_s: last + frame_s }
    }
}

/// A running test server. Dropping it stops it.
pub struct RtspServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl RtspServer {
    /// Serves `clip` on loopback at `port` (0: any free port), looping it in real time.
    ///
    /// # Panics
    /// When the port cannot be bound or the clip read.
    pub fn start(clip: &Path, port: u16) -> RtspServer {
        Self::start_with_login(clip, port, None)
    }

    /// [`RtspServer::start`], answering only requests that carry `login` (user name, password) with
    /// Basic authentication, as cameras do: others get 401 and a challenge.
    ///
    /// # Panics
    /// As [`RtspServer::start`].
    pub fn start_with_login(clip: &Path, port: u16, login: Option<(&str, &str)>) -> RtspServer {
        let clip = Arc::new(Clip::read(clip));
        let login: Arc<Option<String>> =
            Arc::new(login.map(|(user, password)| format!("Basic {}", BASE64.encode(format!("{user}:{password}")))));
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("a loopback port");
        let address = listener.local_addr().expect("address");
        let (stop, connections) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (accepting, held) = (stop.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(copy) = stream.try_clone() {
                    held.lock().unwrap_or_else(PoisonError::into_inner).push(copy);
                }
                let (clip, stop, login) = (clip.clone(), accepting.clone(), login.clone());
                std::thread::spawn(move || serve(stream, &clip, address, &stop, login.as_deref()));
            }
        });
        RtspServer { address, stop, connections }
    }

    /// The URL of the stream.
    pub fn url(&self) -> String {
        format!("rtsp://{}/clip", self.address)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Stops listening and closes every connection.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so it sees the flag and lets the port go.
        let _ = TcpStream::connect(self.address);
        for connection in self.connections.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

/// One RTSP connection: requests answered in order; after PLAY the clip streams on a thread of its
/// own, sharing the socket's writer.
fn serve(stream: TcpStream, clip: &Arc<Clip>, address: SocketAddr, stop: &Arc<AtomicBool>, login: Option<&str>) {
    let Ok(writer) = stream.try_clone() else { return };
    let writer = Arc::new(Mutex::new(writer));
    let mut reader = BufReader::new(stream);
    let playing = Arc::new(AtomicBool::new(false));
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    playing.store(false, Ordering::Relaxed);
                    return;
                }
                Ok(_) => {}
            }
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        let Some(request) = head.first() else { continue };
        let method = request.split(' ').next().unwrap_or_default().to_string();
        let header = |name: &str| {
            head.iter()
                .find_map(|h| {
                    h.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
                })
                .unwrap_or_default()
                .to_string()
        };
        let cseq = header("CSeq");
        if login.is_some_and(|expected| method != "OPTIONS" && header("Authorization") != expected) {
            let refusal = format!(
                "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Basic realm=\"facegate\"\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            if writer.lock().unwrap_or_else(PoisonError::into_inner).write_all(refusal.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let base = format!("rtsp://{address}/clip/");
        let (extra, body) = match method.as_str() {
            "OPTIONS" => {
                ("Public: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n".to_string(), String::new())
            }
            "DESCRIBE" => {
                let profile = clip.sps.get(1..4).map_or_else(|| "42C01E".into(), hex);
                let sdp = format!(
                    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=facegate test camera\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                     a=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                     a=fmtp:96 packetization-mode=1;profile-level-id={profile};sprop-parameter-sets={},{}\r\n\
                     a=control:trackID=0\r\n",
                    BASE64.encode(&clip.sps),
                    BASE64.encode(&clip.pps)
                );
                (format!("Content-Base: {base}\r\nContent-Type: application/sdp\r\n"), sdp)
            }
            "SETUP" => (
                "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 5f2b9c1e;timeout=60\r\n".to_string(),
                String::new(),
            ),
            "PLAY" => {
                (format!("Session: 5f2b9c1e\r\nRTP-Info: url={base}trackID=0;seq=0;rtptime=0\r\n"), String::new())
            }
            "TEARDOWN" => {
                playing.store(false, Ordering::Relaxed);
                ("Session: 5f2b9c1e\r\n".to_string(), String::new())
            }
            _ => ("Session: 5f2b9c1e\r\n".to_string(), String::new()),
        };
        let response =
            format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len());
        if writer.lock().unwrap_or_else(PoisonError::into_inner).write_all(response.as_bytes()).is_err() {
            return;
        }
        if method == "PLAY" && !playing.swap(true, Ordering::Relaxed) {
            let (clip, writer, playing, stop) = (clip.clone(), writer.clone(), playing.clone(), stop.clone());
            std::thread::spawn(move || stream_clip(&clip, &writer, &playing, &stop));
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Largest RTP payload before a NAL unit is fragmented.
const MAX_PAYLOAD: usize = 1400;

/// Sends the clip in a loop, each picture at its time, until the client stops playing or the server stops.
fn stream_clip(clip: &Clip, writer: &Mutex<TcpStream>, playing: &AtomicBool, stop: &AtomicBool) {
    let started = Instant::now();
    let mut sequence: u16 = 0;
    for lap in 0u32.. {
        let lap_start = f64::from(lap) * clip.duration_s;
        for (pts, units) in &clip.pictures {
            if !playing.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                return;
            }
            let due = Duration::from_secs_f64(lap_start + pts);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            let timestamp = ((lap_start + pts) * 90_000.0) as u32;
            let mut packets = Vec::new();
            for unit in units {
                packets.extend(packetize(unit));
            }
            let count = packets.len();
            let mut out = Vec::new();
            for (n, payload) in packets.into_iter().enumerate() {
                let marker = if n + 1 == count { 0x80 } else { 0 };
                let mut rtp = vec![0x80, marker | 96];
                rtp.extend_from_slice(&sequence.to_be_bytes());
                rtp.extend_from_slice(&timestamp.to_be_bytes());
                rtp.extend_from_slice(&0x1234_5678u32.to_be_bytes());
                rtp.extend_from_slice(&payload);
                sequence = sequence.wrapping_add(1);
                out.push(b'$');
                out.push(0);
                out.extend_from_slice(&u16::try_from(rtp.len()).unwrap_or(u16::MAX).to_be_bytes());
                out.extend_from_slice(&rtp);
            }
            if writer.lock().unwrap_or_else(PoisonError::into_inner).write_all(&out).is_err() {
                return;
            }
        }
    }
}

/// The RTP payloads of one NAL unit: itself, or FU-A fragments when it is large.
fn packetize(unit: &[u8]) -> Vec<Vec<u8>> {
    let Some((&header, body)) = unit.split_first() else { return Vec::new() };
    if unit.len() <= MAX_PAYLOAD {
        return vec![unit.to_vec()];
    }
    let indicator = (header & 0xE0) | 28;
    let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(n, chunk)| {
            let start = if n == 0 { 0x80 } else { 0 };
            let end = if n == last { 0x40 } else { 0 };
            let mut payload = vec![indicator, start | end | (header & 0x1F)];
            payload.extend_from_slice(chunk);
            payload
        })
        .collect()
}
