//! The gateway's own log: one line per event on standard error, with a UTC time stamp.
//! Never given key material, PINs or plaintext.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

/// How much is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Failures.
    Error = 1,
    /// Things an operator should look at.
    Warn = 2,
    /// Start, stop, configuration.
    Info = 3,
    /// Per-connection detail.
    Debug = 4,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the most detailed level that is logged.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether `level` is logged.
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Logs one line.
pub fn write(level: Level, message: &str) {
    if !enabled(level) {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let tag = match level {
        Level::Error => "ERROR",
        Level::Warn => "WARN",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
    };
    let line = format!(
        "{} {tag} {message}\n",
        crate::ttlv::format_iso8601(now, None)
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Logs an error.
pub fn error(message: &str) {
    write(Level::Error, message);
}
/// Logs a warning.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}
/// Logs information.
pub fn info(message: &str) {
    write(Level::Info, message);
}
/// Logs detail.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}
