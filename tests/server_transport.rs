//! The gateway over real sockets: TTLV over mutual TLS and plain TCP, HTTPS in the three
//! encodings, oversized messages, idle clients, garbage, a foreign client certificate, and a
//! graceful shutdown with a request in flight.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::gateway::{
    Gateway, INVALID_MESSAGE, Settings, TempDir, client_config, discover_versions, read_ttlv,
    results, roundtrip, tls_connect, tls_connect_with,
};
use ksg::ttlv::{Item, Limits, Tag, Value, binary, json, xml};

fn versions_in(response: &Item) -> Vec<(i32, i32)> {
    let payload = response
        .child(Tag::BATCH_ITEM)
        .and_then(|b| b.child(Tag::RESPONSE_PAYLOAD))
        .expect("payload");
    payload
        .children_with(Tag::PROTOCOL_VERSION)
        .map(|v| {
            let n = |t| match v.child(t).map(|i| &i.value) {
                Some(Value::Integer(x)) => *x,
                _ => -1,
            };
            (
                n(Tag::PROTOCOL_VERSION_MAJOR),
                n(Tag::PROTOCOL_VERSION_MINOR),
            )
        })
        .collect()
}

#[test]
fn ttlv_over_mutual_tls_serves_many_requests_on_one_connection() {
    let gw = Gateway::start("mtls", Settings::default());
    let mut s = tls_connect(gw.addr, &gw.data());
    for _ in 0..3 {
        let resp = roundtrip(&mut s, &discover_versions());
        assert_eq!(results(&resp), vec![(0, None)]);
        assert_eq!(
            versions_in(&resp),
            vec![(1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]
        );
    }
    // Query answers from p6kmip_auxiliary_ksg.conf.
    let query = common::gateway::request(
        4,
        0x18,
        vec![
            Item::new(Tag::QUERY_FUNCTION, Value::Enumeration(1)),
            Item::new(Tag::QUERY_FUNCTION, Value::Enumeration(3)),
        ],
    );
    let resp = roundtrip(&mut s, &query);
    assert_eq!(results(&resp), vec![(0, None)]);
    let payload = resp
        .child(Tag::BATCH_ITEM)
        .and_then(|b| b.child(Tag::RESPONSE_PAYLOAD))
        .expect("payload");
    assert_eq!(
        payload.child(Tag::VENDOR_IDENTIFICATION).map(|v| &v.value),
        Some(&Value::TextString("ksg under test".into()))
    );
    let ops: Vec<_> = payload
        .children_with(Tag::OPERATION)
        .map(|o| o.value.clone())
        .collect();
    // What the build implements (Create, Get, Query, Discover Versions, Encrypt, ...), and not
    // what it does not (Certify).
    for op in [0x01, 0x0A, 0x18, 0x1E, 0x1F] {
        assert!(
            ops.contains(&Value::Enumeration(op)),
            "{op:#x} missing: {ops:?}"
        );
    }
    assert!(!ops.contains(&Value::Enumeration(0x06)), "{ops:?}");
}

#[test]
fn plain_ttlv_and_errors_that_keep_the_connection() {
    let gw = Gateway::start(
        "plain",
        Settings {
            tls: false,
            ..Settings::default()
        },
    );
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(
        results(&roundtrip(&mut s, &discover_versions())),
        vec![(0, None)]
    );
    // An operation ksg does not implement: Operation Not Supported, connection still usable.
    let resp = roundtrip(&mut s, &common::gateway::request(4, 0x06, vec![]));
    assert_eq!(results(&resp), vec![(1, Some(5))]);
    // A well-framed message that is not a request: Invalid Message, connection still usable.
    let not_a_request = Item::structure(Tag::RESPONSE_MESSAGE, vec![]);
    assert_eq!(
        results(&roundtrip(&mut s, &not_a_request)),
        vec![INVALID_MESSAGE]
    );
    // KMIP 2.0 is refused properly.
    let resp = roundtrip(
        &mut s,
        &common::gateway::request(0, 0x1E, vec![]).clone_with_major(2),
    );
    assert_eq!(results(&resp), vec![INVALID_MESSAGE]);
    assert_eq!(
        results(&roundtrip(&mut s, &discover_versions())),
        vec![(0, None)]
    );
}

trait WithMajor {
    fn clone_with_major(&self, major: i32) -> Item;
}

impl WithMajor for Item {
    fn clone_with_major(&self, major: i32) -> Item {
        let mut item = self.clone();
        if let Value::Structure(c) = &mut item.value
            && let Value::Structure(h) = &mut c[0].value
            && let Value::Structure(v) = &mut h[0].value
        {
            v[0].value = Value::Integer(major);
        }
        item
    }
}

fn http_post(
    s: &mut (impl Read + Write),
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let head = format!(
        "POST /kmip HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send head");
    s.write_all(body).expect("send body");
    s.flush().expect("flush");
    read_http(s)
}

fn read_http(s: &mut impl Read) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("response head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("ascii head");
    let status: u16 = head[9..12].parse().expect("status");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("body");
    (status, head, body)
}

#[test]
fn https_in_each_encoding_answers_in_the_same_encoding() {
    let gw = Gateway::start("https", Settings::default());
    let mut s = tls_connect(gw.addr, &gw.data());
    let msg = discover_versions();
    let limits = Limits::default();

    let (status, head, body) = http_post(
        &mut s,
        "application/octet-stream",
        &binary::to_vec(&msg).expect("ttlv"),
    );
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: application/octet-stream"));
    assert_eq!(
        results(&binary::decode(&body, &limits).expect("ttlv body")),
        vec![(0, None)]
    );

    let (status, head, body) = http_post(&mut s, "text/xml", xml::encode(&msg).as_bytes());
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: text/xml"));
    let resp =
        xml::decode(std::str::from_utf8(&body).expect("utf-8"), 0, &limits).expect("xml body");
    assert_eq!(versions_in(&resp).len(), 5);

    let (status, head, body) = http_post(&mut s, "application/json", json::encode(&msg).as_bytes());
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: application/json"));
    let resp =
        json::decode(std::str::from_utf8(&body).expect("utf-8"), 0, &limits).expect("json body");
    assert_eq!(versions_in(&resp).len(), 5);

    // A body that does not decode: a KMIP error in the request's encoding, HTTP 200.
    let (status, _, body) = http_post(&mut s, "application/json", b"{\"tag\": \"RequestMessage\"");
    assert_eq!(status, 200);
    let resp =
        json::decode(std::str::from_utf8(&body).expect("utf-8"), 0, &limits).expect("json error");
    assert_eq!(results(&resp), vec![INVALID_MESSAGE]);

    // Wrong method, unsupported type, oversized body: the matching 4xx, then close.
    for (request, status) in [
        ("GET /kmip HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (
            "POST /kmip HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
            415,
        ),
        (
            "POST /kmip HTTP/1.1\r\nContent-Type: text/xml\r\nContent-Length: 99999999\r\n\r\n",
            413,
        ),
        ("POST /kmip HTTP/1.1\r\nthis is not a header\r\n\r\n", 400),
    ] {
        let mut s = tls_connect(gw.addr, &gw.data());
        s.write_all(request.as_bytes()).expect("send");
        s.flush().expect("flush");
        assert_eq!(read_http(&mut s).0, status, "{request}");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "connection closes after {status}");
    }
}

#[test]
fn a_message_over_max_buf_size_gets_an_error_and_a_close_without_being_read() {
    let gw = Gateway::start(
        "maxbuf",
        Settings {
            tls: false,
            max_buf_size: 1024,
            ..Settings::default()
        },
    );
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Announce 1 GiB and send only the header: the answer must come without the body.
    s.write_all(&[0x42, 0x00, 0x78, 0x01, 0x40, 0x00, 0x00, 0x00])
        .expect("send");
    let resp = read_ttlv(&mut s).expect("error response");
    assert_eq!(results(&resp), vec![INVALID_MESSAGE]);
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).expect("closed"), 0);
}

#[test]
fn idle_clients_hit_receive_timeout_and_unfinished_handshakes_tls_handshake_timeout() {
    let gw = Gateway::start(
        "idle",
        Settings {
            receive_timeout: 1,
            extra_server: "tlsHandshakeTimeout = 1\n",
            ..Settings::default()
        },
    );
    // A TLS client that finishes its handshake, then says nothing.
    let mut s = tls_connect(gw.addr, &gw.data());
    assert_eq!(
        results(&roundtrip(&mut s, &discover_versions())),
        vec![(0, None)]
    );
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server closes an idle connection");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // A client that connects and never sends a ClientHello.
    let mut raw = TcpStream::connect(gw.addr).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let start = Instant::now();
    assert_eq!(raw.read(&mut buf).unwrap_or(0), 0);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn garbage_bytes_get_a_kmip_error_and_the_server_lives_on() {
    let gw = Gateway::start(
        "garbage",
        Settings {
            tls: false,
            ..Settings::default()
        },
    );
    for junk in [
        &b"\x00\x01\x02\x03 hello"[..],
        b"\x42\x00\x78\x07\x00\x00\x00\x08abcdefgh",
        b"\xff\xff\xff\xff\xff\xff\xff\xff",
    ] {
        let mut s = TcpStream::connect(gw.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(junk).expect("send");
        let resp = read_ttlv(&mut s).expect("a KMIP error response");
        assert_eq!(results(&resp), vec![INVALID_MESSAGE], "{junk:?}");
    }
    // A well-framed TTLV message whose contents break the rules keeps the connection usable.
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let bad_bool = [
        0x42, 0x00, 0x78, 0x01, 0, 0, 0, 0x10, 0x42, 0x00, 0x77, 0x06, 0, 0, 0, 8, 0, 0, 0, 0, 0,
        0, 0, 7,
    ];
    s.write_all(&bad_bool).expect("send");
    assert_eq!(
        results(&read_ttlv(&mut s).expect("error")),
        vec![INVALID_MESSAGE]
    );
    assert_eq!(
        results(&roundtrip(&mut s, &discover_versions())),
        vec![(0, None)]
    );
    assert!(gw.log_text().contains("listening"));
}

#[test]
fn a_client_certificate_from_another_ca_is_refused_at_the_handshake() {
    let gw = Gateway::start("foreign", Settings::default());
    let other = TempDir::new("other-ca");
    ksg::server::pki::DevPki::new(&other.0)
        .create(1_700_000_000)
        .expect("other PKI");
    let tls = gw.data().join("tls");
    let foreign = other.0.join("tls");
    // Trusts the gateway's CA but presents a certificate the gateway's CA did not issue.
    let config = client_config(
        &tls.join("ca.pem"),
        Some((&foreign.join("client.pem"), &foreign.join("client.key"))),
    );
    let mut s = tls_connect_with(gw.addr, config);
    let result = s
        .write_all(&binary::to_vec(&discover_versions()).expect("encode"))
        .and_then(|()| s.flush());
    let answered = result.is_ok() && read_ttlv(&mut s).is_ok();
    assert!(
        !answered,
        "a foreign client certificate must not get an answer"
    );
    // And a client with no certificate at all.
    let config = client_config(&tls.join("ca.pem"), None);
    let mut s = tls_connect_with(gw.addr, config);
    let result = s
        .write_all(&binary::to_vec(&discover_versions()).expect("encode"))
        .and_then(|()| s.flush());
    assert!(!(result.is_ok() && read_ttlv(&mut s).is_ok()));
}

#[test]
fn graceful_shutdown_finishes_the_request_in_flight_and_exits_0() {
    let mut gw = Gateway::start(
        "shutdown",
        Settings {
            tls: false,
            ..Settings::default()
        },
    );
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let bytes = binary::to_vec(&discover_versions()).expect("encode");
    // Half a request, then SIGTERM, then the rest: the answer must still come.
    s.write_all(&bytes[..20]).expect("first half");
    std::thread::sleep(Duration::from_millis(300));
    gw.terminate();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&bytes[20..]).expect("second half");
    let resp = read_ttlv(&mut s).expect("the request in flight is answered");
    assert_eq!(results(&resp), vec![(0, None)]);
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)),
        Some(0),
        "exit status after SIGTERM"
    );
    assert!(TcpStream::connect(gw.addr).is_err(), "no longer listening");
}

#[test]
fn a_client_pinned_to_tls_1_2_ecdhe_ecdsa_aes_gcm_connects() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let gw = Gateway::start("tls12", Settings::default());
    let tls = gw.data().join("tls");
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites =
        vec![rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(tls.join("ca.pem")).expect("ca"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_file(tls.join("client.pem")).expect("cert")],
            PrivateKeyDer::from_pem_file(tls.join("client.key")).expect("key"),
        )
        .expect("client auth");
    let mut s = tls_connect_with(gw.addr, std::sync::Arc::new(config));
    assert_eq!(
        results(&roundtrip(&mut s, &discover_versions())),
        vec![(0, None)]
    );
    assert_eq!(
        s.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
}

#[test]
fn connections_beyond_the_pool_wait_and_are_then_served() {
    let gw = Gateway::start(
        "pool",
        Settings {
            tls: false,
            threads: 1,
            receive_timeout: 1,
            ..Settings::default()
        },
    );
    // The only worker is busy with a client that stays connected.
    let mut first = TcpStream::connect(gw.addr).expect("connect");
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(
        results(&roundtrip(&mut first, &discover_versions())),
        vec![(0, None)]
    );
    // A second client's request waits in the queue, and is answered once the worker is free
    // (the first connection idles out after receiveTimeout).
    let mut second = TcpStream::connect(gw.addr).expect("connect");
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let start = Instant::now();
    assert_eq!(
        results(&roundtrip(&mut second, &discover_versions())),
        vec![(0, None)]
    );
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "it waited for the worker: {:?}",
        start.elapsed()
    );
}
