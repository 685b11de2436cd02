//! Message tracing as the seed's serverLogFlags describe: with TRACE_MSGS every incoming and
//! outgoing message goes to `logDir/<client-ip>/server/kmip-<microseconds>-<thread>.<ext>` in
//! the chosen format(s) (FORMATKMIPXML → .xml, FORMATJSON → .json, FORMATTTLV → .ttlv.txt, an
//! annotated dump), HTTP headers to `.http` files with TRACE_HTTPHEADERS, one line per request
//! in `logDir/ksg-trace.log` with TRACE_BASIC, and decode errors and warnings in the
//! `errorStream` file. Key material and other secrets are redacted before anything is written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::log_flags;
use crate::log;
use crate::ttlv::{Item, Tag, Value, json, tree, xml};

/// Tags whose values are secret: key material, private key parts, passwords, plaintext.
const SECRET_TAGS: [Tag; 12] = [
    Tag::KEY_MATERIAL,
    Tag::KEY_VALUE,
    Tag::PRIVATE_EXPONENT,
    Tag::P,
    Tag::Q,
    Tag::PRIME_EXPONENT_P,
    Tag::PRIME_EXPONENT_Q,
    Tag::CRT_COEFFICIENT,
    Tag::D,
    Tag::X,
    Tag::PASSWORD,
    Tag::DATA,
];

/// A copy of `item` with every secret value replaced by a `$REDACTED` placeholder: the value of
/// a secret tag, and everything inside a secret structure (a Transparent key's Key Material, a
/// Key Value with its attributes).
pub fn redact(item: &Item) -> Item {
    redact_below(item, false)
}

fn redact_below(item: &Item, inside_secret: bool) -> Item {
    let secret = inside_secret || SECRET_TAGS.contains(&item.tag);
    let value = match &item.value {
        Value::Structure(children) => {
            Value::Structure(children.iter().map(|c| redact_below(c, secret)).collect())
        }
        v if secret => Value::Placeholder(v.item_type(), "$REDACTED".into()),
        v => v.clone(),
    };
    Item {
        tag: item.tag,
        value,
    }
}

/// Whether a message was received or sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client.
    In,
    /// To the client.
    Out,
}

/// Writes traces as the configuration asks.
#[derive(Debug)]
pub struct Tracer {
    flags: u32,
    log_dir: Option<PathBuf>,
    basic: Option<Mutex<File>>,
    errors: Option<Mutex<File>>,
}

fn append(path: &Path) -> Option<Mutex<File>> {
    match OpenOptions::new().create(true).append(true).open(path) {
        Ok(f) => Some(Mutex::new(f)),
        Err(e) => {
            log::warn(&format!(
                "cannot open {}: {e}; that log is off",
                path.display()
            ));
            None
        }
    }
}

fn micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

impl Tracer {
    /// A tracer for `flags` writing under `log_dir` (no directory: nothing is written).
    pub fn new(flags: u32, log_dir: Option<&Path>, error_stream: Option<&str>) -> Tracer {
        let on = log_dir.is_some() && flags & log_flags::TRACE_OFF == 0;
        let log_dir = log_dir.filter(|_| on).map(Path::to_path_buf);
        let basic = log_dir
            .as_ref()
            .filter(|_| flags & log_flags::TRACE_BASIC != 0)
            .and_then(|d| append(&d.join("ksg-trace.log")));
        let errors = log_dir
            .as_ref()
            .zip(error_stream)
            .and_then(|(d, name)| append(&d.join(name)));
        Tracer {
            flags,
            log_dir,
            basic,
            errors,
        }
    }

    /// A tracer that writes nothing.
    pub fn off() -> Tracer {
        Tracer {
            flags: 0,
            log_dir: None,
            basic: None,
            errors: None,
        }
    }

    /// Whether message trees are wanted (so callers keep them).
    pub fn wants_messages(&self) -> bool {
        self.log_dir.is_some() && self.flags & log_flags::TRACE_MSGS != 0
    }

    /// Traces one message.
    pub fn message(&self, peer: IpAddr, worker: usize, direction: Direction, item: &Item) {
        if !self.wants_messages() {
            return;
        }
        let redacted = redact(item);
        let mut formats: Vec<(&str, String)> = Vec::new();
        if self.flags & log_flags::TRACE_FORMATKMIPXML != 0 {
            formats.push(("xml", xml::encode(&redacted)));
        }
        if self.flags & log_flags::TRACE_FORMATJSON != 0 {
            formats.push(("json", json::encode(&redacted)));
        }
        if self.flags & log_flags::TRACE_FORMATTTLV != 0 {
            formats.push((
                "ttlv.txt",
                format!("{}{}", tree::HEADING, tree::dump(&redacted, 0)),
            ));
        }
        if formats.is_empty() {
            formats.push(("xml", xml::encode(&redacted)));
        }
        let marker = match direction {
            Direction::In => "<!-- request -->\n",
            Direction::Out => "<!-- response -->\n",
        };
        for (ext, text) in formats {
            let body = if ext == "xml" {
                format!("{marker}{text}")
            } else {
                text
            };
            self.write_file(peer, worker, ext, body.as_bytes());
        }
    }

    /// Traces the HTTP headers of a request or response.
    pub fn http_headers(&self, peer: IpAddr, worker: usize, head: &str) {
        if self.wants_messages() && self.flags & log_flags::TRACE_HTTPHEADERS != 0 {
            self.write_file(peer, worker, "http", head.as_bytes());
        }
    }

    fn write_file(&self, peer: IpAddr, worker: usize, ext: &str, bytes: &[u8]) {
        let Some(dir) = &self.log_dir else { return };
        let dir = dir.join(peer.to_string()).join("server");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            log::warn(&format!("trace: cannot create {}: {e}", dir.display()));
            return;
        }
        let mut t = micros();
        for _ in 0..1000 {
            let path = dir.join(format!("kmip-{t}-{worker}.{ext}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    if let Err(e) = f.write_all(bytes) {
                        log::warn(&format!("trace: {}: {e}", path.display()));
                    }
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => t += 1,
                Err(e) => {
                    log::warn(&format!("trace: {}: {e}", path.display()));
                    return;
                }
            }
        }
    }

    /// One TRACE_BASIC line about a request, made only when that trace is on (making it costs
    /// more than a small request's own decoding).
    pub fn basic(&self, line: impl FnOnce() -> String) {
        if let Some(f) = &self.basic {
            let stamp = crate::ttlv::format_iso8601((micros() / 1_000_000) as i64, None);
            let line = line();
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{stamp} {line}");
            }
        }
    }

    /// One line in the errorStream file (decode errors and warnings).
    pub fn error_stream(&self, line: &str) {
        if let Some(f) = &self.errors {
            let stamp = crate::ttlv::format_iso8601((micros() / 1_000_000) as i64, None);
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{stamp} {line}");
            }
        }
    }
}
