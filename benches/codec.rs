//! Codec throughput on one core: decode + encode of a typical Get response (AES-256 key) and of
//! a 100-item Locate response, per encoding, in messages per second.
//!
//! `cargo bench --bench codec` (add `-- --seconds N` to change the time per case, default 2).

use std::hint::black_box;
use std::time::{Duration, Instant};

use ksg::ttlv::{Item, Limits, Tag, Value, binary, json, xml};

fn header() -> Item {
    Item::structure(
        Tag::RESPONSE_HEADER,
        vec![
            Item::structure(
                Tag::PROTOCOL_VERSION,
                vec![
                    Item::new(Tag::PROTOCOL_VERSION_MAJOR, Value::Integer(1)),
                    Item::new(Tag::PROTOCOL_VERSION_MINOR, Value::Integer(4)),
                ],
            ),
            Item::new(Tag::TIME_STAMP, Value::DateTime(1_700_000_000)),
            Item::new(Tag::BATCH_COUNT, Value::Integer(1)),
        ],
    )
}

fn response(operation: u32, payload: Vec<Item>) -> Item {
    Item::structure(
        Tag::RESPONSE_MESSAGE,
        vec![
            header(),
            Item::structure(
                Tag::BATCH_ITEM,
                vec![
                    Item::new(Tag::OPERATION, Value::Enumeration(operation)),
                    Item::new(Tag::RESULT_STATUS, Value::Enumeration(0)),
                    Item::structure(Tag::RESPONSE_PAYLOAD, payload),
                ],
            ),
        ],
    )
}

fn get_response() -> Item {
    let key_block = Item::structure(
        Tag::KEY_BLOCK,
        vec![
            Item::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(1)),
            Item::structure(
                Tag::KEY_VALUE,
                vec![Item::new(
                    Tag::KEY_MATERIAL,
                    Value::ByteString((0..32).collect()),
                )],
            ),
            Item::new(Tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(3)),
            Item::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
        ],
    );
    response(
        0x0A,
        vec![
            Item::new(Tag::OBJECT_TYPE, Value::Enumeration(2)),
            Item::new(
                Tag::UNIQUE_IDENTIFIER,
                Value::TextString("fc8833de-70d2-4ece-b063-fede3a3c59fe".into()),
            ),
            Item::structure(Tag::SYMMETRIC_KEY, vec![key_block]),
        ],
    )
}

fn locate_response() -> Item {
    let ids = (0..100)
        .map(|i| {
            Item::new(
                Tag::UNIQUE_IDENTIFIER,
                Value::TextString(format!("fc8833de-70d2-4ece-b063-{i:012x}")),
            )
        })
        .collect();
    response(0x08, ids)
}

fn measure(seconds: f64, mut f: impl FnMut()) -> f64 {
    for _ in 0..100 {
        f();
    }
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let limits = Limits::default();
    println!(
        "{:<20} {:>6} {:>8} {:>14} {:>10}",
        "message", "codec", "bytes", "decode+encode/s", "MB/s"
    );
    for (name, msg) in [
        ("Get response", get_response()),
        ("Locate response x100", locate_response()),
    ] {
        let ttlv = binary::to_vec(&msg).expect("encodes");
        let rate = measure(seconds, || {
            let item = binary::decode(black_box(&ttlv), &limits).expect("decodes");
            black_box(binary::to_vec(&item).expect("encodes"));
        });
        report(name, "ttlv", ttlv.len(), rate);
        let text = xml::encode(&msg);
        let rate = measure(seconds, || {
            let item = xml::decode(black_box(&text), 0, &limits).expect("decodes");
            black_box(xml::encode(&item));
        });
        report(name, "xml", text.len(), rate);
        let text = json::encode(&msg);
        let rate = measure(seconds, || {
            let item = json::decode(black_box(&text), 0, &limits).expect("decodes");
            black_box(json::encode(&item));
        });
        report(name, "json", text.len(), rate);
    }
}

fn report(name: &str, codec: &str, bytes: usize, rate: f64) {
    let mbs = rate * bytes as f64 / 1e6;
    println!("{name:<20} {codec:>6} {bytes:>8} {rate:>14.0} {mbs:>10.1}");
}
