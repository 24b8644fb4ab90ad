//! The byte streams OSDP frames travel on, as libosdp's non-blocking channels: a TCP connection or a
//! serial line, each reporting when it last received something and why it failed.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use facegate_gallery::EgressPolicy;
use facegate_store::{ReaderSettings, ReaderTransport};
use libosdp::{Channel, ChannelError};

/// Channel ids, unique in the process (libosdp tells multi-drop channels apart by them).
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// When a channel last received bytes and why it failed: shared with the reader's thread.
#[derive(Clone, Default)]
pub struct Health {
    last_read_ms: Arc<AtomicI64>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Health {
    /// When bytes last arrived, ms since the epoch.
    pub fn last_read_ms(&self) -> Option<i64> {
        Some(self.last_read_ms.load(Ordering::Acquire)).filter(|ms| *ms > 0)
    }

    /// Why the channel failed, once it has.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn fail(&self, why: String) -> ChannelError {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
        ChannelError::TransportError
    }
}

enum Stream {
    Tcp(TcpStream),
    Serial(Box<dyn serialport::SerialPort>),
}

/// An OSDP channel over a TCP connection or a serial line.
pub struct StreamChannel {
    id: i32,
    stream: Stream,
    health: Health,
}

impl StreamChannel {
    /// A channel over a connected TCP stream (made non-blocking), and its health.
    ///
    /// # Errors
    /// The stream cannot be made non-blocking.
    pub fn tcp(stream: TcpStream) -> std::io::Result<(Self, Health)> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        Ok(Self::new(Stream::Tcp(stream)))
    }

    /// A channel over the serial device at `path` at `baud` (a pseudo-terminal works too), and its health.
    ///
    /// # Errors
    /// The device cannot be opened or set up.
    pub fn serial(path: &str, baud: u32) -> Result<(Self, Health), String> {
        let port = serialport::new(path, baud).timeout(Duration::ZERO).open().map_err(|e| format!("{path}: {e}"))?;
        Ok(Self::new(Stream::Serial(port)))
    }

    fn new(stream: Stream) -> (Self, Health) {
        let health = Health::default();
        let id = i32::try_from(NEXT_ID.fetch_add(1, Ordering::Relaxed)).unwrap_or(i32::MAX);
        (Self { id, stream, health: health.clone() }, health)
    }
}

fn would_block(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
    )
}

impl Channel for StreamChannel {
    fn get_id(&self) -> i32 {
        self.id
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        let read = match &mut self.stream {
            Stream::Tcp(stream) => stream.read(buf),
            Stream::Serial(port) => port.read(buf),
        };
        match read {
            Ok(0) if matches!(self.stream, Stream::Tcp(_)) && !buf.is_empty() => {
                Err(self.health.fail("the panel closed the connection".into()))
            }
            Ok(n) => {
                if n > 0 {
                    self.health.last_read_ms.store(facegate_store::now_ms(), Ordering::Release);
                }
                Ok(n)
            }
            Err(error) if would_block(&error) => Err(ChannelError::WouldBlock),
            Err(error) => Err(self.health.fail(error.to_string())),
        }
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
        let written = match &mut self.stream {
            Stream::Tcp(stream) => stream.write(buf),
            Stream::Serial(port) => port.write(buf),
        };
        match written {
            Ok(n) => Ok(n),
            Err(error) if would_block(&error) => Err(ChannelError::WouldBlock),
            Err(error) => Err(self.health.fail(error.to_string())),
        }
    }

    fn flush(&mut self) -> Result<(), ChannelError> {
        let flushed = match &mut self.stream {
            Stream::Tcp(stream) => stream.flush(),
            Stream::Serial(port) => port.flush(),
        };
        match flushed {
            Ok(()) => Ok(()),
            Err(error) if would_block(&error) => Err(ChannelError::WouldBlock),
            Err(error) => Err(self.health.fail(error.to_string())),
        }
    }

    fn close(&mut self) -> Result<(), ChannelError> {
        if let Stream::Tcp(stream) = &self.stream {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Ok(())
    }
}

/// Opens a reader's transport: dials the panel's `host:port` (every address it resolves to held to
/// `egress`) or opens its serial line.
///
/// # Errors
/// Why it could not.
pub fn open(
    settings: &ReaderSettings,
    egress: &EgressPolicy,
    timeout: Duration,
) -> Result<(StreamChannel, Health), String> {
    match settings.transport {
        ReaderTransport::Serial => StreamChannel::serial(&settings.target, settings.baud_rate),
        ReaderTransport::Tcp => {
            let url = url::Url::parse(&format!("tcp://{}", settings.target)).map_err(|e| e.to_string())?;
            let port = url.port().ok_or("no port")?;
            let host = facegate_gallery::url_host(&url).ok_or("no host")?;
            let addresses: Vec<IpAddr> = match host {
                url::Host::Ipv4(v4) => vec![IpAddr::V4(v4)],
                url::Host::Ipv6(v6) => vec![IpAddr::V6(v6)],
                url::Host::Domain(name) => {
                    use std::net::ToSocketAddrs;
                    let found: Vec<IpAddr> =
                        (name.as_str(), port).to_socket_addrs().map_err(|e| e.to_string())?.map(|a| a.ip()).collect();
                    egress.filter_resolved(&name, found).map_err(|e| e.to_string())?
                }
            };
            let allowed: Vec<IpAddr> = addresses.into_iter().filter(|a| egress.allows_address(*a)).collect();
            let address = allowed.first().ok_or_else(|| format!("refused by egress policy: {}", settings.target))?;
            let stream = TcpStream::connect_timeout(&SocketAddr::new(*address, port), timeout)
                .map_err(|e| format!("{}: {e}", settings.target))?;
            StreamChannel::tcp(stream).map_err(|e| e.to_string())
        }
    }
}
