//! Live video: a camera's RTSP stream (H.264 over RTP; interleaved in the RTSP connection by default,
//! UDP as an option), kept up by a thread of its own that reconnects with backoff and notices a stream
//! that stalls, decoded on another thread, and handed out through a bounded queue that drops the
//! oldest frames when the analysis falls behind (drops are counted). Stream time runs on across
//! reconnections: a new session's first frame continues from the wall time that passed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use retina::client::{Credentials, PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};

use facegate_gallery::EgressPolicy;

use crate::VideoError;
use crate::source::{Codec, Frame, Frames, Packet};

/// How a camera is read.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveOptions {
    /// RTP over UDP instead of interleaved in the RTSP connection (TCP).
    pub udp: bool,
    /// At most this many frames a second are handed out.
    pub per_second: f64,
    /// A stream that sends no frame for this long is dropped and dialled again.
    pub stall: Duration,
    /// Frames waiting for the analysis; beyond this the oldest is dropped.
    pub queue: usize,
    /// The longest wait between two connection attempts (the wait doubles from 0.25 s).
    pub max_backoff: Duration,
    /// Where the camera may be dialled, checked against every address its name resolves to at each
    /// connection (a server's cameras); `None` dials wherever the URL says (the operator's own command).
    pub egress: Option<EgressPolicy>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            udp: false,
            per_second: 10.0,
            stall: Duration::from_secs(5),
            queue: 4,
            max_backoff: Duration::from_secs(2),
            egress: None,
        }
    }
}

/// What a camera's threads have done so far.
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Sessions that reached PLAY.
    pub sessions: AtomicU64,
    /// Sessions that ended (an error, a stall, the server gone).
    pub interruptions: AtomicU64,
    /// Frames decoded and kept.
    pub frames: AtomicU64,
    /// Kept frames dropped because the analysis was behind.
    pub dropped: AtomicU64,
    /// The longest time from an interruption to the next session's first frame, milliseconds.
    pub longest_gap_ms: AtomicU64,
}

/// A bounded queue whose writer never waits: when it is full the oldest item goes.
struct DropOldest<T> {
    items: Mutex<(VecDeque<T>, bool)>,
    ready: Condvar,
    capacity: usize,
}

impl<T> DropOldest<T> {
    fn new(capacity: usize) -> Self {
        Self { items: Mutex::new((VecDeque::new(), false)), ready: Condvar::new(), capacity: capacity.max(1) }
    }

    /// Adds `item`; `true` when an older one was dropped to make room.
    fn push(&self, item: T) -> bool {
        let mut guard = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let dropped = guard.0.len() >= self.capacity && guard.0.pop_front().is_some();
        guard.0.push_back(item);
        self.ready.notify_one();
        dropped
    }

    /// No more items will come.
    fn close(&self) {
        self.items.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.ready.notify_all();
    }

    /// The oldest item, waiting at most `wait`; `None` when none came in time or the queue is closed
    /// and empty.
    fn pop(&self, wait: Duration) -> Option<T> {
        let deadline = Instant::now() + wait;
        let mut guard = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(item) = guard.0.pop_front() {
                return Some(item);
            }
            let now = Instant::now();
            if guard.1 || now >= deadline {
                return None;
            }
            guard = self.ready.wait_timeout(guard, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

/// What the reading thread tells the decoding thread.
enum Coded {
    /// A new session: decode from scratch.
    Restart,
    /// A picture.
    Packet(Packet),
}

/// The frames of a camera, as they come. Dropping it stops the camera's threads.
pub struct LiveFrames {
    queue: Arc<DropOldest<Frame>>,
    stats: Arc<LiveStats>,
    stop: Arc<AtomicBool>,
}

impl LiveFrames {
    /// The next frame, waiting at most `wait`.
    pub fn next(&self, wait: Duration) -> Option<Frame> {
        self.queue.pop(wait)
    }

    /// What the camera's threads have done so far.
    pub fn stats(&self) -> &LiveStats {
        &self.stats
    }
}

impl Drop for LiveFrames {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.queue.close();
    }
}

/// Starts reading the camera at `url` (`rtsp://`): a reading thread (its own async runtime) and a
/// decoding thread, until the returned [`LiveFrames`] is dropped.
///
/// # Errors
/// [`VideoError::Open`] for a URL that is not `rtsp://` or threads that cannot start.
pub fn watch_camera(url: &str, options: LiveOptions) -> Result<LiveFrames, VideoError> {
    // Messages never repeat the URL: it may carry the camera's password (callers name the camera).
    let url = url::Url::parse(url).map_err(|e| VideoError::Open(format!("not a valid URL: {e}")))?;
    if url.scheme() != "rtsp" {
        return Err(VideoError::Open("not an rtsp:// URL".into()));
    }
    let (queue, stats, stop) =
        (Arc::new(DropOldest::new(options.queue)), Arc::new(LiveStats::default()), Arc::new(AtomicBool::new(false)));
    let (coded, to_decode) = sync_channel::<Coded>(64);
    let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(work)
            .map(drop)
            .map_err(|e| VideoError::Open(format!("the {name} thread: {e}")))
    };
    {
        let (queue, stats, stop, per_second) = (queue.clone(), stats.clone(), stop.clone(), options.per_second);
        spawn("facegate-decode", Box::new(move || decode(&to_decode, &queue, &stats, &stop, per_second)))?;
    }
    {
        let (stats, stop) = (stats.clone(), stop.clone());
        spawn("facegate-rtsp", Box::new(move || read(&url, &options, &coded, &stats, &stop)))?;
    }
    Ok(LiveFrames { queue, stats, stop })
}

/// Decodes what the reading thread sends, keeping at most `per_second` frames a second.
fn decode(packets: &Receiver<Coded>, queue: &DropOldest<Frame>, stats: &LiveStats, stop: &AtomicBool, per_second: f64) {
    let mut frames = None;
    while let Ok(coded) = packets.recv() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match coded {
            Coded::Restart => frames = Frames::at_most(per_second).ok(),
            Coded::Packet(packet) => {
                let Some(decoder) = frames.as_mut() else { continue };
                // A damaged picture is skipped; the next key frame puts the decoder right.
                if let Ok(Some(frame)) = decoder.decode(&packet) {
                    stats.frames.fetch_add(1, Ordering::Relaxed);
                    if queue.push(frame) {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
    queue.close();
}

/// Keeps a session up until `stop`: connects, plays, forwards pictures; on an error or a stall waits
/// (doubling from 0.25 s up to the options' maximum) and connects again.
fn read(url: &url::Url, options: &LiveOptions, coded: &SyncSender<Coded>, stats: &LiveStats, stop: &AtomicBool) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    runtime.block_on(async {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(250);
        let mut interrupted_at: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            let session = match &options.egress {
                Some(policy) => match pinned(url, policy).await {
                    Ok(url) => play(&url, options.udp).await,
                    Err(refused) => Err(refused),
                },
                None => play(url, options.udp).await,
            };
            if let Ok(mut demuxed) = session {
                stats.sessions.fetch_add(1, Ordering::Relaxed);
                if coded.send(Coded::Restart).is_err() {
                    return;
                }
                // Stream time continues from the wall time that passed before this session.
                let offset = started.elapsed().as_secs_f64();
                let mut first: Option<f64> = None;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let item = match tokio::time::timeout(options.stall, demuxed.next()).await {
                        Ok(Some(Ok(item))) => item,
                        // An error, the end of the stream, or a stall.
                        Ok(Some(Err(_)) | None) | Err(_) => break,
                    };
                    let CodecItem::VideoFrame(frame) = item else { continue };
                    let at = frame.timestamp().elapsed_secs();
                    let origin = *first.get_or_insert(at);
                    if let Some(gap) = interrupted_at.take() {
                        let ms = u64::try_from(gap.elapsed().as_millis()).unwrap_or(u64::MAX);
                        stats.longest_gap_ms.fetch_max(ms, Ordering::Relaxed);
                    }
                    backoff = Duration::from_millis(250);
                    let key = frame.is_random_access_point();
                    let packet =
                        Packet { pts_s: offset + (at - origin), codec: Codec::H264, data: frame.into_data(), key };
                    if coded.send(Coded::Packet(packet)).is_err() {
                        return;
                    }
                }
                stats.interruptions.fetch_add(1, Ordering::Relaxed);
                interrupted_at.get_or_insert_with(Instant::now);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(options.max_backoff);
        }
    });
}

/// The URL with its host replaced by the first address `policy` allows (a name is resolved here, so
/// what is dialled is what was checked: a name that resolves elsewhere later is refused too).
async fn pinned(url: &url::Url, policy: &EgressPolicy) -> Result<url::Url, VideoError> {
    let refused = |e: facegate_gallery::EgressRefusal| VideoError::Open(e.to_string());
    let host = facegate_gallery::url_host(url).ok_or_else(|| VideoError::Open("the URL has no host".into()))?;
    if policy.check_host(&host).map_err(refused)? {
        return Ok(url.clone());
    }
    let url::Host::Domain(name) = &host else { return Ok(url.clone()) };
    let name = name.as_str();
    let port = url.port().unwrap_or(554);
    let found = tokio::net::lookup_host((name, port)).await.map_err(|e| VideoError::Open(format!("resolving: {e}")))?;
    let allowed = policy.filter_resolved(name, found.map(|a| a.ip()).collect()).map_err(refused)?;
    let mut pinned = url.clone();
    let address = allowed.first().copied().ok_or_else(|| VideoError::Open("no address".into()))?;
    pinned.set_ip_host(address).map_err(|()| VideoError::Open("cannot pin the address".into()))?;
    Ok(pinned)
}

/// A playing session's frames: DESCRIBE, SETUP of the first H.264 stream (Annex B frames with the
/// parameter sets before each key frame), PLAY.
async fn play(url: &url::Url, udp: bool) -> Result<retina::client::Demuxed, VideoError> {
    let failed = |e: retina::Error| VideoError::Open(e.to_string());
    // The client takes the camera's login apart from its URL.
    let decoded = |text: &str| percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned();
    let creds = (!url.username().is_empty() || url.password().is_some()).then(|| Credentials {
        username: decoded(url.username()),
        password: decoded(url.password().unwrap_or_default()),
    });
    let options = SessionOptions::default().user_agent("facegate".into()).creds(creds);
    let mut session = Session::describe(facegate_gallery::without_login(url), options).await.map_err(failed)?;
    let stream = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"))
        .ok_or(VideoError::NoVideo)?;
    let transport = if udp { Transport::Udp(Default::default()) } else { Transport::Tcp(Default::default()) };
    let setup = SetupOptions::default().transport(transport).frame_format(FrameFormat::SIMPLE);
    session.setup(stream, setup).await.map_err(failed)?;
    let playing = session.play(PlayOptions::default()).await.map_err(failed)?;
    playing.demuxed().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_url_is_not_repeated_with_its_password() {
        for url in ["rtsp://admin:secret@[::1/stream", "http://admin:secret@10.0.0.7/stream"] {
            let Err(error) = watch_camera(url, LiveOptions::default()) else { panic!("{url} is refused") };
            assert!(!error.to_string().contains("secret"), "{error}");
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_item() {
        let queue = DropOldest::new(2);
        assert!(!queue.push(1) && !queue.push(2));
        assert!(queue.push(3), "the third push drops the first");
        assert_eq!(queue.pop(Duration::ZERO), Some(2));
        assert_eq!(queue.pop(Duration::ZERO), Some(3));
        assert_eq!(queue.pop(Duration::from_millis(10)), None);
        queue.close();
        assert_eq!(queue.pop(Duration::from_secs(5)), None, "a closed queue does not wait");
    }
}
