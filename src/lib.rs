//! ksg, the KMIP Server Gateway.
//!
//! Layers point one way: `ttlv` (item tree and codecs, no I/O) ← the KMIP model ← operations →
//! (token, keystore) ← server. See `docs/ARCHITECTURE.md`.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod conformance;
pub mod der;
pub mod fuzzing;
pub mod kmip;
pub mod log;
pub mod ops;
pub mod pkcs12;
pub mod server;
pub mod service;
pub mod store;
pub mod token;
pub mod ttlv;
pub mod x509;

#[cfg(test)]
mod test_dir;
