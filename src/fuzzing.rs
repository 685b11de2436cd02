//! The bodies of the fuzz targets, shared by the cargo-fuzz binaries in `tests/fuzz` (run for
//! hours by hand) and the smoke test CI runs (`tests/fuzz_smoke_every_target.rs`, the OASIS
//! corpus plus mutations). Each takes arbitrary bytes and must neither panic, hang nor
//! allocate without bound; each also checks what must hold of what it accepts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::config::ini::Ini;
use crate::server::http;
use crate::service::{Encoding, Gateway};
use crate::store::Store;
use crate::store::key::Key256;
use crate::ttlv::{Limits, binary, json, xml};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name.
pub const TARGETS: [(&str, Target); 9] = [
    ("ttlv_decode", ttlv_decode),
    ("xml_decode", xml_decode),
    ("json_decode", json_decode),
    ("http_head", http_head),
    ("ini_parse", ini_parse),
    ("keystore_record", keystore_record),
    ("pkcs12_parse", pkcs12_parse),
    ("request_ttlv", request_ttlv),
    ("request_xml", request_xml),
];

fn limits() -> Limits {
    Limits {
        max_size: 1 << 20,
        max_depth: 16,
        max_items: 10_000,
    }
}

/// TTLV: whatever decodes encodes back to the very same bytes.
pub fn ttlv_decode(data: &[u8]) {
    if let Ok(items) = binary::decode_stream(data, &limits()) {
        let mut out = Vec::with_capacity(data.len());
        for item in &items {
            binary::encode(item, &mut out).expect("a decoded tree has no placeholders");
        }
        assert_eq!(out, data, "decode then encode must give the same bytes");
    }
}

/// KMIP XML: whatever decodes survives XML, JSON and (without placeholders) TTLV round trips.
pub fn xml_decode(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(item) = xml::decode(text, 1_700_000_000, &limits()) {
        round_trips(&item);
    }
}

/// KMIP JSON: as XML.
pub fn json_decode(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(item) = json::decode(text, 1_700_000_000, &limits()) {
        round_trips(&item);
    }
}

fn round_trips(item: &crate::ttlv::Item) {
    let x = xml::encode(item);
    let back = xml::decode(&x, 1_700_000_000, &limits()).expect("our XML decodes");
    assert_eq!(&back, item, "XML round trip");
    let j = json::encode(item);
    let back = json::decode(&j, 1_700_000_000, &limits()).expect("our JSON decodes");
    assert_eq!(&back, item, "JSON round trip");
    if item.first_placeholder().is_none() {
        let bytes = binary::to_vec(item).expect("encodes");
        let back = binary::decode(&bytes, &Limits::default()).expect("our TTLV decodes");
        assert_eq!(&back, item, "TTLV round trip");
    }
}

/// HTTP framing: finding the end of a head and checking it never panics; an accepted head's
/// body length is within the limit.
pub fn http_head(data: &[u8]) {
    if let Some(end) = http::head_end(data) {
        assert!(end <= data.len());
    }
    if let Ok(head) = http::parse_head(data, 40_000, http::MAX_HEADERS) {
        assert!(head.content_length <= 40_000);
    }
}

/// The INI reader and the policy and credential files built on it.
pub fn ini_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ini) = Ini::parse(text, std::path::Path::new("fuzz.conf")) {
        let _ = crate::config::policies::parse(&ini);
        let _ = crate::config::credentials::parse(&ini);
    }
}

/// Keystore record bodies, as they come out of a record whose MAC verified: the first byte is
/// the record kind, the rest the decrypted body.
pub fn keystore_record(data: &[u8]) {
    if let Some((&kind, body)) = data.split_first() {
        let _ = crate::store::decode_record_body(kind, body);
    }
}

/// PKCS#12 files, with a fixed password.
pub fn pkcs12_parse(data: &[u8]) {
    let _ = crate::pkcs12::parse(data, b"password");
}

/// Messages one input may hold: a short conversation (create, then use what was made).
const MAX_MESSAGES: usize = 16;
/// Inputs handled by one in-process gateway before a fresh one (with an empty keystore) takes
/// over, so the objects the fuzzer makes cannot grow without bound.
const INPUTS_PER_GATEWAY: u32 = 5_000;

/// Whole requests, handled by an in-process gateway on the software token with a keystore in
/// a temporary directory: the input is a conversation of TTLV messages end to end, as on a
/// connection (the OASIS test cases, requests and responses alike); every answer must be a
/// well-formed TTLV response.
pub fn request_ttlv(data: &[u8]) {
    with_gateway(|gw| {
        let mut rest = data;
        for _ in 0..MAX_MESSAGES {
            if rest.is_empty() {
                break;
            }
            let declared = rest
                .get(4..8)
                .map_or(0, |l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize);
            let (message, tail) = rest.split_at(rest.len().min(declared.saturating_add(8)));
            rest = tail;
            let ex = gw.handle(
                message,
                Encoding::Ttlv,
                Some("fuzz"),
                1,
                1_700_000_000,
                false,
            );
            binary::decode(&ex.bytes, &Limits::default()).expect("every answer is a TTLV message");
        }
    });
}

/// Whole requests in KMIP XML (as over HTTPS): the input as one message, and, when it is a
/// test-case document, each of its messages in turn.
pub fn request_xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    with_gateway(|gw| {
        let answer = |message: &[u8]| {
            let ex = gw.handle(
                message,
                Encoding::Xml,
                Some("fuzz"),
                1,
                1_700_000_000,
                false,
            );
            let text = std::str::from_utf8(&ex.bytes).expect("an XML answer is UTF-8");
            xml::decode(text, 0, &Limits::default()).expect("every answer is a KMIP XML message");
        };
        answer(data);
        if let Ok(doc) = xml::decode_document(text, 1_700_000_000, &limits()) {
            for message in doc.messages.iter().take(MAX_MESSAGES) {
                answer(xml::encode(message).as_bytes());
            }
        }
    });
}

/// Runs `f` with the in-process gateway the request targets share, replaced by a fresh one every
/// [`INPUTS_PER_GATEWAY`] inputs.
fn with_gateway(f: impl FnOnce(&Gateway)) {
    static GATEWAY: Mutex<Option<(Gateway, u32)>> = Mutex::new(None);
    let mut slot = GATEWAY.lock().unwrap_or_else(|p| p.into_inner());
    if slot.as_ref().is_none_or(|(_, n)| *n >= INPUTS_PER_GATEWAY) {
        *slot = None;
        *slot = Some((fresh_gateway(), 0));
    }
    if let Some((gw, n)) = slot.as_mut() {
        *n += 1;
        f(gw);
    }
}

/// A gateway on the software token over an empty keystore in a temporary directory.
fn fresh_gateway() -> Gateway {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("ksg-fuzz-gateway-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    for (file, text) in [
        ("ksg.conf", "[p6ksg-gen]\ngateFlags = 2\nauditLog = \"\"\n"),
        (
            "p6kmipserver.conf",
            "[p6kmip-server-gen]\nmaxBufSize = 65536\n",
        ),
        ("p6kmip_auxiliary_ksg.conf", "[p6kmip-server-auxiliary]\n"),
    ] {
        std::fs::write(dir.join(file), text).expect("a conf file");
    }
    let config = Config::load(&dir, &dir).expect("the fuzz configuration");
    let (store, _) = Store::open(&dir, &Key256([9; 32]), "fuzz", false).expect("a keystore");
    // Removed at once: the open keystore file works on unlinked, and a fuzzer that exits (or
    // is killed) leaves nothing behind. (A failed write would make the store rebuild from its
    // path, which is gone: a full disk under the fuzzer fails every later change.)
    let _ = std::fs::remove_dir_all(&dir);
    Gateway::new(Arc::new(config), Some(Arc::new(store)), None)
}
