//! The connection options every client-side command shares (`ksg client`, `ksg conformance`):
//! where the server is, how to reach it, and with which certificates.

use std::path::PathBuf;
use std::time::Duration;

use super::args::Args;
use crate::conformance::transport::{self, Encoding, Target};
use crate::ttlv::{Item, Tag, Value, Version};

/// Connection options that take a value.
pub const VALUE_OPTIONS: [&str; 7] = [
    "server",
    "ca",
    "cert",
    "key",
    "server-name",
    "encoding",
    "timeout",
];

/// Connection switches.
pub const SWITCHES: [&str; 2] = ["plain", "http"];

/// The help text of the connection options.
pub const HELP: &str =
    "  --ca FILE            CA certificate(s) the server certificate must chain to, PEM
                       (default ./data/tls/ca.pem, the ksg development PKI)
  --cert FILE          client certificate chain, PEM (default ./data/tls/client.pem)
  --key FILE           client private key, PEM (default ./data/tls/client.key)
  --server-name NAME   the name the server certificate must carry (default: the host of
                       --server; an IP address is checked as an IP address)
  --plain              connect over plain TCP, without TLS (--ca, --cert, --key unused)
  --encoding ENC       ttlv (default), xml or json; xml and json need --http
  --http               send each message as an HTTP/1.1 POST to /kmip on a keep-alive
                       connection (Content-Type application/octet-stream, text/xml or
                       application/json) instead of raw TTLV on the stream
  --timeout SECS       how long to wait for a connection and for each response (default 10)
";

/// The target the options describe; `default_server` when `--server` is not given (None: it
/// is required).
pub fn target(args: &Args, default_server: Option<&str>) -> Result<Target, String> {
    target_at(
        args,
        args.value("server")
            .or(default_server)
            .ok_or("--server HOST:PORT is required")?,
    )
}

/// The target the options describe, at `address` (for commands that take several servers).
pub fn target_at(args: &Args, address: &str) -> Result<Target, String> {
    let address = address.to_string();
    let host = transport::host_of(&address);
    if host.is_empty() || !address.contains(':') {
        return Err(format!("--server {address:?} is not HOST:PORT"));
    }
    let encoding = match args.value("encoding") {
        None => Encoding::Ttlv,
        Some(e) => Encoding::parse(e)
            .ok_or_else(|| format!("--encoding {e:?}: expected ttlv, xml or json"))?,
    };
    let http = args.has("http");
    if encoding != Encoding::Ttlv && !http {
        return Err(
            "--encoding xml and json are only sent over HTTP: add --http (raw streams carry TTLV)"
                .to_string(),
        );
    }
    let timeout = match args.value("timeout") {
        None => 10,
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| format!("--timeout {t:?} is not a positive number of seconds"))?,
    };
    let server_name = match args.value("server-name") {
        Some(n) => rustls_pki_types::ServerName::try_from(n.to_string())
            .map_err(|_| format!("--server-name {n:?} is not a DNS name or IP address"))?,
        None => transport::server_name_for(host),
    };
    let tls = if args.has("plain") {
        None
    } else {
        let file = |name: &str, default: &str| PathBuf::from(args.value(name).unwrap_or(default));
        let config = transport::client_config(
            &file("ca", "./data/tls/ca.pem"),
            &file("cert", "./data/tls/client.pem"),
            &file("key", "./data/tls/client.key"),
        )?;
        Some(config)
    };
    Ok(Target {
        address,
        tls,
        server_name,
        encoding,
        http,
        timeout: Duration::from_secs(timeout),
    })
}

/// A KMIP 1.x request message: `batch` identical items of `operation` with `payload`, and the
/// header's Authentication when given.
pub fn request_message(
    version: Version,
    authentication: Option<Item>,
    operation: u32,
    payload: &[Item],
    batch: usize,
) -> Item {
    let mut header = vec![Item::structure(
        Tag::PROTOCOL_VERSION,
        vec![
            Item::new(
                Tag::PROTOCOL_VERSION_MAJOR,
                Value::Integer(i32::from(version.major)),
            ),
            Item::new(
                Tag::PROTOCOL_VERSION_MINOR,
                Value::Integer(i32::from(version.minor)),
            ),
        ],
    )];
    header.extend(authentication);
    header.push(Item::new(Tag::BATCH_COUNT, Value::Integer(batch as i32)));
    let item = Item::structure(
        Tag::BATCH_ITEM,
        vec![
            Item::new(Tag::OPERATION, Value::Enumeration(operation)),
            Item::structure(Tag::REQUEST_PAYLOAD, payload.to_vec()),
        ],
    );
    let mut children = vec![Item::structure(Tag::REQUEST_HEADER, header)];
    children.extend(std::iter::repeat_n(item, batch));
    Item::structure(Tag::REQUEST_MESSAGE, children)
}
