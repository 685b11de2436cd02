//! One client connection, served by one worker for its lifetime: the TLS handshake, then
//! requests in a row, each told apart by its first byte: `0x42` binary TTLV, an ASCII capital
//! an HTTP request, anything else garbage (answered with a KMIP error, then closed).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::http;
use super::pool::BufferPool;
use super::read_timeout::{READ_POLL, ReadTimeout};
use super::trace::{Direction, Tracer};
use crate::config::ServerConf;
use crate::kmip::{self, Error};
use crate::log;
use crate::service::{self, Encoding, Gateway};
use crate::ttlv::{FrameError, Item, Tag, Value, frame_length};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    /// The audit log, when one is configured.
    pub audit: Option<super::audit::AuditLog>,
    /// The request path.
    pub gateway: Arc<Gateway>,
    /// Tracing.
    pub tracer: Arc<Tracer>,
    /// TLS, when enabled.
    pub tls: Option<Arc<ServerConfig>>,
    /// Timeouts and sizes.
    pub conf: ServerConf,
    /// Reusable read buffers.
    pub pool: BufferPool,
    /// Set when the server is stopping.
    pub stop: Arc<AtomicBool>,
    /// Connections served so far (each gets the next number).
    pub connections: std::sync::atomic::AtomicU64,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

struct Conn<'a> {
    shared: &'a Shared,
    stream: Stream,
    read_timeout: ReadTimeout,
    buf: Vec<u8>,
    /// What one read returns lands here, zeroed once per connection: reading into `buf`'s own
    /// spare room would zero 16 KiB of it before every read.
    chunk: Box<[u8]>,
    peer: SocketAddr,
    identity: Option<String>,
    worker: usize,
    /// This connection's number (its streaming operations end with it).
    id: u64,
}

/// Serves one accepted connection until it closes, times out, or the server stops.
pub fn serve(shared: &Shared, tcp: TcpStream, worker: usize) {
    let Ok(peer) = tcp.peer_addr() else { return };
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(shared.conf.send_timeout));
    let (stream, identity) = match &shared.tls {
        // No certificate on a plain connection: the configured plainIdentity, if any.
        None => (Stream::Plain(tcp), shared.conf.plain_identity.clone()),
        Some(config) => match handshake(
            config.clone(),
            tcp,
            shared.conf.bounds.tls_handshake_timeout,
            shared.conf.client_identity,
        ) {
            Ok(ok) => ok,
            Err(e) => {
                log::debug(&format!("{peer}: TLS handshake failed: {e}"));
                shared
                    .tracer
                    .error_stream(&format!("{peer}: TLS handshake failed: {e}"));
                return;
            }
        },
    };
    let buf = shared.pool.take();
    let id = shared.connections.fetch_add(1, Ordering::Relaxed);
    let mut conn = Conn {
        shared,
        stream,
        read_timeout: ReadTimeout::default(),
        buf,
        chunk: vec![0; READ_CHUNK].into_boxed_slice(),
        peer,
        identity,
        worker,
        id,
    };
    conn.run();
    shared.gateway.vault.end_connection(id);
    let Conn {
        buf, mut stream, ..
    } = conn;
    shared.pool.give(buf);
    if let Stream::Tls(s) = &mut stream {
        s.conn.send_close_notify();
        let _ = s.conn.complete_io(&mut s.sock);
    }
}

/// The TLS handshake, bounded in total by `limit` (a client that never finishes is dropped).
fn handshake(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
    limit: Duration,
    source: crate::config::IdentitySource,
) -> Result<(Stream, Option<String>), String> {
    let mut tls = ServerConnection::new(config).map_err(|e| e.to_string())?;
    let mut tcp = tcp;
    let deadline = Instant::now() + limit;
    while tls.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("handshake timed out".into());
        }
        let _ = tcp.set_read_timeout(Some(left));
        tls.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    let identity = tls
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| super::tls::identity(c, source));
    Ok((Stream::Tls(Box::new(StreamOwned::new(tls, tcp))), identity))
}

impl Conn<'_> {
    fn run(&mut self) {
        loop {
            match self.wait_for_request() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    log::debug(&format!("{}: closed: {e}", self.peer));
                    return;
                }
            }
            let keep_open = match self.buf[0] {
                0x42 | 0x54 => self.ttlv_request(),
                b'A'..=b'Z' => self.http_request(),
                _ => {
                    self.garbage();
                    Ok(false)
                }
            };
            match keep_open {
                Ok(true) if !self.shared.stop.load(Ordering::Relaxed) => {}
                Ok(_) => return,
                Err(e) => {
                    log::debug(&format!("{}: closed: {e}", self.peer));
                    return;
                }
            }
        }
    }

    /// Waits until the next request's first bytes arrive: false on close, idle timeout or
    /// shutdown (nothing is in flight then).
    fn wait_for_request(&mut self) -> io::Result<bool> {
        if !self.buf.is_empty() {
            return Ok(true);
        }
        let idle_until = Instant::now() + self.shared.conf.receive_timeout;
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let left = idle_until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::debug(&format!("{}: idle for receiveTimeout, closing", self.peer));
                return Ok(false);
            }
            self.read_timeout
                .at_most(self.stream.tcp(), left.min(READ_POLL))?;
            match self.read_more() {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(e) if is_timeout(&e) => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    fn read_more(&mut self) -> io::Result<usize> {
        let n = self.stream.read(&mut self.chunk)?;
        self.buf.extend_from_slice(&self.chunk[..n]);
        Ok(n)
    }

    /// Reads until the buffer holds `n` bytes, before `deadline`.
    fn fill(&mut self, n: usize, deadline: Instant) -> io::Result<()> {
        while self.buf.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request not complete within receiveTimeout",
                ));
            }
            self.read_timeout
                .at_most(self.stream.tcp(), left.min(READ_POLL))?;
            match self.read_more() {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed mid-request",
                    ));
                }
                Ok(_) => {}
                // The deadline is checked above.
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Answers a request that cannot be framed with a KMIP error in TTLV.
    fn refuse_ttlv(&mut self, reason: &str) -> io::Result<()> {
        self.shared
            .tracer
            .error_stream(&format!("{}: {reason}", self.peer));
        let now = now();
        let resp = service::error_response(
            kmip::FALLBACK_VERSION,
            now,
            &Error::InvalidMessage(reason.into()),
        );
        let bytes = service::encode(&resp.into_item(), Encoding::Ttlv);
        self.send(&bytes)
    }

    fn garbage(&mut self) {
        let _ = self.refuse_ttlv("the request is neither TTLV nor HTTP");
    }

    fn ttlv_request(&mut self) -> io::Result<bool> {
        let deadline = Instant::now() + self.shared.conf.receive_timeout;
        self.fill(8, deadline)?;
        let header: [u8; 8] = self.buf[..8].try_into().unwrap_or_default();
        let total = match frame_length(&header, self.shared.conf.max_buf_size) {
            Ok(n) => n,
            Err(FrameError::TooLarge(n)) => {
                let msg = format!(
                    "request of {n} bytes exceeds maxBufSize ({})",
                    self.shared.conf.max_buf_size
                );
                self.refuse_ttlv(&msg)?;
                return Ok(false);
            }
            Err(FrameError::NotTtlv | FrameError::BadLength) => {
                self.refuse_ttlv("the request is not a TTLV message")?;
                return Ok(false);
            }
        };
        self.fill(total, deadline)?;
        let response = self.exchange(0, total, Encoding::Ttlv);
        self.buf.drain(..total);
        self.send(&response)?;
        Ok(true)
    }

    fn http_request(&mut self) -> io::Result<bool> {
        let deadline = Instant::now() + self.shared.conf.receive_timeout;
        let max_head = self.shared.conf.bounds.max_http_header_bytes;
        let head_len = loop {
            if let Some(end) = http::head_end(&self.buf[..self.buf.len().min(max_head + 4)]) {
                break end;
            }
            if self.buf.len() > max_head {
                let r = http::Reject {
                    status: 431,
                    reason: "Request Header Fields Too Large",
                };
                self.send(&http::rejection(&r))?;
                return Ok(false);
            }
            let want = self.buf.len() + 1;
            self.fill(want, deadline)?;
        };
        let head_text = String::from_utf8_lossy(&self.buf[..head_len]).into_owned();
        self.shared
            .tracer
            .http_headers(self.peer.ip(), self.worker, &head_text);
        let head = match http::parse_head(
            &self.buf[..head_len],
            self.shared.conf.max_buf_size,
            self.shared.conf.bounds.max_http_headers,
        ) {
            Ok(h) => h,
            Err(r) => {
                self.shared
                    .tracer
                    .error_stream(&format!("{}: HTTP {} {}", self.peer, r.status, r.reason));
                self.send(&http::rejection(&r))?;
                return Ok(false);
            }
        };
        let total = head_len + head.content_length;
        self.fill(total, deadline)?;
        let body = self.exchange(head_len, total, head.encoding);
        self.buf.drain(..total);
        let response = http::response(
            200,
            "OK",
            head.encoding.content_type(),
            &body,
            head.keep_alive,
        );
        if let Some(end) = http::head_end(&response) {
            self.shared.tracer.http_headers(
                self.peer.ip(),
                self.worker,
                &String::from_utf8_lossy(&response[..end]),
            );
        }
        self.send(&response)?;
        Ok(head.keep_alive)
    }

    /// Runs the request in `buf[from..to]` through the gateway and traces it.
    fn exchange(&mut self, from: usize, to: usize, encoding: Encoding) -> Vec<u8> {
        let shared = self.shared;
        let keep = shared.tracer.wants_messages();
        let at = now();
        let ex = shared.gateway.handle(
            &self.buf[from..to],
            encoding,
            self.identity.as_deref(),
            self.id,
            at,
            keep,
        );
        if let Some(audit) = &shared.audit {
            audit.write(at, self.peer, self.identity.as_deref(), &ex.audit);
        }
        let ip = self.peer.ip();
        if let Some(req) = &ex.request {
            shared.tracer.message(ip, self.worker, Direction::In, req);
        }
        if let Some(err) = &ex.decode_error {
            shared.tracer.error_stream(&format!(
                "{}: cannot decode {encoding:?} request: {err}",
                self.peer
            ));
        }
        shared
            .tracer
            .message(ip, self.worker, Direction::Out, &ex.response);
        shared.tracer.basic(|| {
            format!(
                "{} identity={} {:?} {}B in, {}B out: {}",
                self.peer,
                self.identity.as_deref().unwrap_or("-"),
                encoding,
                to - from,
                ex.bytes.len(),
                summary(&ex.response)
            )
        });
        ex.bytes
    }
}

/// `Operation=Status[/Reason]` for each batch item of a response.
fn summary(response: &Item) -> String {
    let name = |enum_name: &str, v: u32| {
        crate::ttlv::tables::enum_by_name(enum_name)
            .and_then(|t| t.by_value(v))
            .map_or_else(|| format!("0x{v:X}"), |n| n.name.to_string())
    };
    let mut parts = Vec::new();
    for item in response.children_with(Tag::BATCH_ITEM) {
        let get = |tag| match item.child(tag).map(|i| &i.value) {
            Some(Value::Enumeration(v)) => Some(*v),
            _ => None,
        };
        let op = get(Tag::OPERATION).map_or_else(|| "-".to_string(), |v| name("Operation", v));
        let status = get(Tag::RESULT_STATUS).map_or_else(String::new, |v| name("ResultStatus", v));
        let reason = get(Tag::RESULT_REASON)
            .map(|v| format!("/{}", name("ResultReason", v)))
            .unwrap_or_default();
        parts.push(format!("{op}={status}{reason}"));
    }
    parts.join(" ")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
