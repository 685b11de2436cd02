//! The runner's connection to a KMIP server: TTLV over a TLS (or plain TCP) stream, or one
//! HTTP/1.1 `POST /kmip` per message on a keep-alive connection, in TTLV, XML or JSON.

use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::{MAX_MESSAGE, Transport, limits};
use crate::server::read_timeout::{READ_POLL, ReadTimeout};
use crate::ttlv::{FrameError, Item, binary, frame_length, json, xml};

/// Largest HTTP response head accepted, in bytes.
const MAX_HTTP_HEAD: usize = 64 << 10;

/// The message encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Binary TTLV.
    Ttlv,
    /// The KMIP XML encoding (HTTP only).
    Xml,
    /// The KMIP JSON encoding (HTTP only).
    Json,
}

impl Encoding {
    /// The encoding called `name` (`ttlv`, `xml`, `json`).
    pub fn parse(name: &str) -> Option<Encoding> {
        match name {
            "ttlv" => Some(Encoding::Ttlv),
            "xml" => Some(Encoding::Xml),
            "json" => Some(Encoding::Json),
            _ => None,
        }
    }

    /// The HTTP Content-Type of a message in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Ttlv => "application/octet-stream",
            Encoding::Xml => "text/xml",
            Encoding::Json => "application/json",
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    /// `HOST:PORT`.
    pub address: String,
    /// TLS client configuration, or `None` for plain TCP.
    pub tls: Option<Arc<ClientConfig>>,
    /// The name the server certificate is verified against.
    pub server_name: ServerName<'static>,
    /// Message encoding.
    pub encoding: Encoding,
    /// HTTP framing instead of raw TTLV on the stream.
    pub http: bool,
    /// How long to wait for a connection, and for each response.
    pub timeout: Duration,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .field("server_name", &self.server_name)
            .field("encoding", &self.encoding)
            .field("http", &self.http)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The host part of `HOST:PORT` (`[v6]:PORT` too).
pub fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The TLS server name for `host`: an IP address as an IP (the development certificate has
/// 127.0.0.1 and ::1 among its names), a DNS name as itself, anything else as `localhost`.
pub fn server_name_for(host: &str) -> ServerName<'static> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ServerName::IpAddress(ip.into());
    }
    ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::try_from("localhost").expect("valid DNS name"))
}

/// A TLS client configuration trusting the certificates in `ca` and presenting the
/// certificate chain `cert` with private key `key` (all PEM).
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    for c in cas {
        let c = c.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate", ca.display()));
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, private)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    Ok(Arc::new(config))
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => {
                s.write_all(data)?;
                s.flush()
            }
            Stream::Tls(s) => {
                s.write_all(data)?;
                s.flush()
            }
        }
    }
}

/// An open connection to the server; implements [`Transport`].
pub struct Connection {
    target: Target,
    stream: Option<Stream>,
    read_timeout: ReadTimeout,
    /// Bytes read but not yet used.
    buf: Vec<u8>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .field("open", &self.stream.is_some())
            .finish()
    }
}

impl Connection {
    /// Connects (and for TLS, completes the handshake).
    pub fn open(target: &Target) -> Result<Connection, String> {
        let mut c = Connection {
            target: target.clone(),
            stream: None,
            read_timeout: ReadTimeout::default(),
            buf: Vec::new(),
        };
        c.reconnect()?;
        Ok(c)
    }

    fn reconnect(&mut self) -> Result<(), String> {
        self.stream = None;
        self.read_timeout = ReadTimeout::default();
        self.buf.clear();
        let t = &self.target;
        let addrs = t
            .address
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", t.address))?;
        let mut last = format!("{}: no address", t.address);
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, t.timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("cannot connect to {a}: {e}"),
            }
        }
        let tcp = tcp.ok_or(last)?;
        let io = |e: std::io::Error| e.to_string();
        tcp.set_nodelay(true).map_err(io)?;
        tcp.set_read_timeout(Some(t.timeout)).map_err(io)?;
        tcp.set_write_timeout(Some(t.timeout)).map_err(io)?;
        let stream = match &t.tls {
            None => Stream::Plain(tcp),
            Some(config) => {
                let conn = rustls::ClientConnection::new(config.clone(), t.server_name.clone())
                    .map_err(|e| format!("TLS: {e}"))?;
                let mut s = rustls::StreamOwned::new(conn, tcp);
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock).map_err(|e| match e.kind() {
                        // A read timeout shows as WouldBlock on Linux.
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
                            "TLS handshake: no answer within {} s (a server whose workers all serve other connections keeps new ones waiting)",
                            t.timeout.as_secs()
                        ),
                        _ => format!("TLS handshake: {e}"),
                    })?;
                }
                Stream::Tls(Box::new(s))
            }
        };
        self.stream = Some(stream);
        Ok(())
    }

    fn send(&mut self, data: &[u8]) -> Result<(), String> {
        let stream = self.stream.as_mut().ok_or("not connected")?;
        stream.write_all(data).map_err(|e| format!("send: {e}"))
    }

    /// Reads more bytes into the buffer, waiting until `deadline` at most.
    fn fill(&mut self, deadline: Instant) -> Result<(), String> {
        let stream = self.stream.as_mut().ok_or("not connected")?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out waiting for the response".to_string());
        }
        self.read_timeout
            .at_most(stream.tcp(), left.min(READ_POLL))
            .map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 16 << 10];
        match stream.read(&mut chunk) {
            Ok(0) => Err("the server closed the connection".to_string()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // A read waits `READ_POLL` at most; the callers read again until the deadline.
                if Instant::now() < deadline {
                    Ok(())
                } else {
                    Err("timed out waiting for the response".to_string())
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(format!("receive: {e}")),
        }
    }

    /// Takes exactly `n` bytes from the connection.
    fn take(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            self.fill(deadline)?;
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    fn read_ttlv(&mut self, deadline: Instant) -> Result<Vec<u8>, String> {
        let header = self.take(8, deadline)?;
        let mut h = [0u8; 8];
        h.copy_from_slice(&header);
        let total = frame_length(&h, MAX_MESSAGE).map_err(|e| match e {
            FrameError::NotTtlv => "the response is not a TTLV message".to_string(),
            FrameError::BadLength => "the response has a bad TTLV length".to_string(),
            FrameError::TooLarge(n) => format!("the response is too large ({n} bytes)"),
        })?;
        let mut message = header;
        message.extend(self.take(total - 8, deadline)?);
        Ok(message)
    }

    /// Reads one HTTP response; returns its body and whether the server will close.
    fn read_http(&mut self, deadline: Instant) -> Result<(Vec<u8>, bool), String> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HTTP_HEAD {
                return Err("the HTTP response head is too large".to_string());
            }
            self.fill(deadline)?;
        };
        let head_bytes = self.take(end, deadline)?;
        let head = String::from_utf8_lossy(&head_bytes);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let (version, code) = (parts.next().unwrap_or_default(), parts.next());
        if !version.starts_with("HTTP/1.") {
            return Err(format!("not an HTTP response: {:?}", truncate(status_line)));
        }
        let code: u16 = code
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad HTTP status line {:?}", truncate(status_line)))?;
        let mut length = None;
        let mut close = version == "HTTP/1.0";
        for line in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad Content-Length {value:?}"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(format!("unsupported Transfer-Encoding {value:?}"));
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let length = length.ok_or("the HTTP response has no Content-Length")?;
        if length > MAX_MESSAGE {
            return Err(format!("the HTTP response is too large ({length} bytes)"));
        }
        let body = self.take(length, deadline)?;
        if code != 200 {
            let text = String::from_utf8_lossy(&body);
            return Err(format!("HTTP status {code}: {:?}", truncate(text.trim())));
        }
        Ok((body, close))
    }

    fn encode(&self, request: &Item) -> Result<Vec<u8>, String> {
        match self.target.encoding {
            Encoding::Ttlv => binary::to_vec(request).map_err(|e| e.to_string()),
            Encoding::Xml => Ok(xml::encode(request).into_bytes()),
            Encoding::Json => Ok(json::encode(request).into_bytes()),
        }
    }

    fn decode(&self, body: &[u8]) -> Result<Item, String> {
        let bad = |e: crate::ttlv::DecodeError| format!("cannot decode the response: {e}");
        match self.target.encoding {
            Encoding::Ttlv => binary::decode(body, &limits()).map_err(bad),
            Encoding::Xml | Encoding::Json => {
                let text = std::str::from_utf8(body)
                    .map_err(|_| "the response is not UTF-8".to_string())?;
                if self.target.encoding == Encoding::Xml {
                    xml::decode(text, 0, &limits()).map_err(bad)
                } else {
                    json::decode(text, 0, &limits()).map_err(bad)
                }
            }
        }
    }
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl Connection {
    /// The bytes `request` goes out as: its encoding, inside an HTTP POST when over HTTP. A
    /// load generator makes them once and sends them again and again.
    pub fn prepare(&self, request: &Item) -> Result<Vec<u8>, String> {
        let body = self.encode(request)?;
        if !self.target.http {
            return Ok(body);
        }
        let head = format!(
            "POST /kmip HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Connection: keep-alive\r\n\r\n",
            self.target.address,
            self.target.encoding.content_type(),
            body.len()
        );
        let mut message = head.into_bytes();
        message.extend_from_slice(&body);
        Ok(message)
    }

    /// Sends what [`Connection::prepare`] made and returns the response body, not decoded.
    pub fn exchange_prepared(&mut self, prepared: &[u8]) -> Result<Vec<u8>, String> {
        if self.stream.is_none() {
            self.reconnect()?;
        }
        self.send(prepared)?;
        let deadline = Instant::now() + self.target.timeout;
        if !self.target.http {
            return self.read_ttlv(deadline);
        }
        let (response, close) = match self.read_http(deadline) {
            Ok(r) => r,
            Err(e) => {
                self.stream = None;
                return Err(e);
            }
        };
        if close {
            // The next request (if any) opens a new connection.
            self.stream = None;
        }
        Ok(response)
    }

    /// Decodes a response body in the connection's encoding.
    pub fn decode_response(&self, body: &[u8]) -> Result<Item, String> {
        self.decode(body)
    }
}

impl Transport for Connection {
    fn exchange(&mut self, request: &Item) -> Result<Item, String> {
        let prepared = self.prepare(request)?;
        let response = self.exchange_prepared(&prepared)?;
        self.decode(&response)
    }
}
