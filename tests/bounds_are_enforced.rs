//! Every bound a client could push against is configurable and holds: batch items, nesting
//! depth, streams per connection and in total (freed when a connection closes), Locate
//! results, HTTP header count, the TLS handshake time, and the connection queue. A client that
//! exceeds one gets a KMIP error or a close, and the gateway goes on serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::gateway::{
    Gateway, Settings, attribute, read_ttlv, request, results, roundtrip, tls_connect,
};
use ksg::ttlv::tables::enums::{Operation, ResultReason};
use ksg::ttlv::{Item, Tag, Value, binary};

const INVALID_MESSAGE: (u32, Option<u32>) = (1, Some(4));

fn hash_init() -> Item {
    request(
        4,
        Operation::Hash.to_u32(),
        vec![
            Item::structure(
                Tag::CRYPTOGRAPHIC_PARAMETERS,
                vec![Item::new(Tag::HASHING_ALGORITHM, Value::Enumeration(4))],
            ),
            Item::new(Tag::DATA, Value::ByteString(b"part one".to_vec())),
            Item::new(Tag::INIT_INDICATOR, Value::Boolean(true)),
        ],
    )
}

fn reason(response: &Item) -> Option<u32> {
    results(response)[0].1
}

#[test]
fn request_bounds_hold_and_the_gateway_goes_on() {
    let gw = Gateway::start(
        "bounds",
        Settings {
            extra_server: "maxBatchItems = 3\nmaxDepth = 6\nmaxStreams = 3\n\
                           maxStreamsPerConnection = 2\nmaxLocateResults = 2\nmaxHttpHeaders = 5\n",
            ..Settings::default()
        },
    );
    let mut a = tls_connect(gw.addr, &gw.data());

    // Four batch items where three are allowed.
    let mut four = request(4, Operation::DiscoverVersions.to_u32(), vec![]);
    if let Value::Structure(c) = &mut four.value {
        let item = c[1].clone();
        c.extend([item.clone(), item.clone(), item]);
        c[0] = Item::structure(
            Tag::REQUEST_HEADER,
            vec![
                c[0].children()[0].clone(),
                Item::new(Tag::BATCH_COUNT, Value::Integer(4)),
            ],
        );
    }
    assert_eq!(results(&roundtrip(&mut a, &four)), vec![INVALID_MESSAGE]);

    // Nesting deeper than maxDepth.
    let mut deep = Item::new(Tag::DATA, Value::ByteString(vec![1]));
    for _ in 0..8 {
        deep = Item::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, vec![deep]);
    }
    let too_deep = request(4, Operation::Query.to_u32(), vec![deep]);
    assert_eq!(
        results(&roundtrip(&mut a, &too_deep)),
        vec![INVALID_MESSAGE]
    );

    // Streams: two per connection, three in all; a closed connection's streams are freed.
    let feature = Some(ResultReason::FeatureNotSupported.to_u32());
    assert_eq!(reason(&roundtrip(&mut a, &hash_init())), None);
    assert_eq!(reason(&roundtrip(&mut a, &hash_init())), None);
    assert_eq!(
        reason(&roundtrip(&mut a, &hash_init())),
        feature,
        "per connection"
    );
    let mut b = tls_connect(gw.addr, &gw.data());
    assert_eq!(reason(&roundtrip(&mut b, &hash_init())), None);
    assert_eq!(
        reason(&roundtrip(&mut b, &hash_init())),
        feature,
        "in total"
    );
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = reason(&roundtrip(&mut b, &hash_init()));
        if r.is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection's streams were not freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Locate returns at most maxLocateResults identifiers.
    for _ in 0..3 {
        let create = request(
            4,
            Operation::Create.to_u32(),
            vec![
                Item::new(Tag::OBJECT_TYPE, Value::Enumeration(2)),
                Item::structure(
                    Tag::TEMPLATE_ATTRIBUTE,
                    vec![
                        attribute("Cryptographic Algorithm", Value::Enumeration(3)),
                        attribute("Cryptographic Length", Value::Integer(128)),
                    ],
                ),
            ],
        );
        assert_eq!(reason(&roundtrip(&mut b, &create)), None);
    }
    let located = roundtrip(&mut b, &request(4, Operation::Locate.to_u32(), vec![]));
    let payload = located
        .child(Tag::BATCH_ITEM)
        .and_then(|i| i.child(Tag::RESPONSE_PAYLOAD))
        .expect("payload");
    assert_eq!(payload.children_with(Tag::UNIQUE_IDENTIFIER).count(), 2);

    // Six HTTP header fields where five are allowed: 431, and the connection is closed.
    let mut h = tls_connect(gw.addr, &gw.data());
    let body =
        binary::to_vec(&request(4, Operation::DiscoverVersions.to_u32(), vec![])).expect("encode");
    let head = format!(
        "POST /kmip HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
         X-A: 1\r\nX-B: 2\r\nX-C: 3\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    h.write_all(head.as_bytes()).expect("send");
    h.write_all(&body).expect("send");
    let mut answer = String::new();
    let _ = h.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // And it still serves.
    let mut c = tls_connect(gw.addr, &gw.data());
    c.write_all(&binary::to_vec(&common::gateway::discover_versions()).expect("encode"))
        .expect("send");
    assert!(read_ttlv(&mut c).is_ok());
}

#[test]
fn a_stalled_handshake_and_a_full_connection_queue_are_closed() {
    let gw = Gateway::start(
        "bounds-conn",
        Settings {
            threads: 1,
            extra_server: "tlsHandshakeTimeout = 3\nconnectionQueue = 1\n",
            ..Settings::default()
        },
    );
    // A client that connects and never starts its handshake is closed after the 3 s handshake limit.
    let start = Instant::now();
    let mut idle = TcpStream::connect(gw.addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    assert!(matches!(idle.read(&mut buf), Ok(0) | Err(_)));
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );

    // One worker busy with a stalled client, one waiting in the queue: the next is closed
    // at once (it does not wait in the backlog for a handshake deadline).
    let _busy = TcpStream::connect(gw.addr).expect("connect");
    std::thread::sleep(Duration::from_millis(200));
    let _queued = TcpStream::connect(gw.addr).expect("connect");
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let mut refused = TcpStream::connect(gw.addr).expect("connect");
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert!(matches!(refused.read(&mut buf), Ok(0) | Err(_)));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
