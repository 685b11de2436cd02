//! The HSM going away under a running gateway and coming back: SoftHSM2's token directory is
//! moved aside (the test runs as root in CI, where permission bits would not stop SoftHSM2, so
//! the directory goes rather than its mode). Requests that need the token fail at once with
//! General Failure and a message saying the HSM is unavailable; what the keystore alone can answer
//! still works; once the directory is back the gateway re-initialises the library by itself and
//! serves the same keys again, with no restart.

mod common;

use std::time::{Duration, Instant};

use common::gateway::{
    create_aes_256, request, results, roundtrip, softhsm_gateway, tls_connect, unique_identifier,
};
use ksg::ttlv::tables::enums::{Operation, ResultReason};
use ksg::ttlv::{Item, Tag, Value};

fn uid_item(uid: &str) -> Item {
    Item::new(Tag::UNIQUE_IDENTIFIER, Value::TextString(uid.into()))
}

/// AES-CBC with PKCS#5 padding and a fixed IV, so the ciphertext before and after the outage
/// can be compared.
fn encrypt(uid: &str) -> Item {
    request(
        4,
        Operation::Encrypt.to_u32(),
        vec![
            uid_item(uid),
            Item::structure(
                Tag::CRYPTOGRAPHIC_PARAMETERS,
                vec![
                    Item::new(Tag::BLOCK_CIPHER_MODE, Value::Enumeration(1)),
                    Item::new(Tag::PADDING_METHOD, Value::Enumeration(3)),
                ],
            ),
            Item::new(Tag::DATA, Value::ByteString(b"the HSM comes back".to_vec())),
            Item::new(Tag::IV_COUNTER_NONCE, Value::ByteString(vec![7; 16])),
        ],
    )
}

fn payload_bytes(response: &Item, tag: Tag) -> Option<Vec<u8>> {
    match &response
        .child(Tag::BATCH_ITEM)?
        .child(Tag::RESPONSE_PAYLOAD)?
        .child(tag)?
        .value
    {
        Value::ByteString(b) => Some(b.clone()),
        _ => None,
    }
}

fn message(response: &Item) -> String {
    match response
        .child(Tag::BATCH_ITEM)
        .and_then(|b| b.child(Tag::RESULT_MESSAGE))
        .map(|m| &m.value)
    {
        Some(Value::TextString(s)) => s.clone(),
        _ => String::new(),
    }
}

const UNAVAILABLE: (u32, Option<u32>) = (1, Some(ResultReason::GeneralFailure.to_u32()));

#[test]
fn an_hsm_that_goes_away_gives_clear_errors_and_is_used_again_when_it_returns() {
    let gw = softhsm_gateway("hsm-away", true);
    let mut tls = tls_connect(gw.addr, &gw.data());
    let created = roundtrip(&mut tls, &create_aes_256());
    let uid = unique_identifier(&created).expect("created");
    let activate = request(4, Operation::Activate.to_u32(), vec![uid_item(&uid)]);
    assert_eq!(results(&roundtrip(&mut tls, &activate))[0].0, 0);
    let before = payload_bytes(&roundtrip(&mut tls, &encrypt(&uid)), Tag::DATA).expect("data");

    // The token directory goes away.
    let tokens = gw.dir.0.join("tokens");
    let away = gw.dir.0.join("tokens-away");
    std::fs::rename(&tokens, &away).expect("move the token directory away");
    std::fs::create_dir(&tokens).expect("an empty token directory");

    for (what, req) in [("Encrypt", encrypt(&uid)), ("Create", create_aes_256())] {
        for _ in 0..3 {
            let r = roundtrip(&mut tls, &req);
            assert_eq!(results(&r)[0], UNAVAILABLE, "{what} while the HSM is away");
            assert!(
                message(&r).contains("HSM is unavailable"),
                "{what}: {}",
                message(&r)
            );
        }
    }
    // The keystore still answers for metadata.
    let attrs = request(4, Operation::GetAttributes.to_u32(), vec![uid_item(&uid)]);
    assert_eq!(
        results(&roundtrip(&mut tls, &attrs))[0].0,
        0,
        "Get Attributes"
    );
    let locate = request(4, Operation::Locate.to_u32(), vec![]);
    assert_eq!(results(&roundtrip(&mut tls, &locate))[0].0, 0, "Locate");

    // It comes back: within a few re-initialisation intervals the same key encrypts the same
    // way, on the same connection, and new keys can be made.
    std::fs::remove_dir(&tokens).expect("remove the empty directory");
    std::fs::rename(&away, &tokens).expect("move the token directory back");
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let r = roundtrip(&mut tls, &encrypt(&uid));
        if results(&r)[0].0 == 0 {
            break payload_bytes(&r, Tag::DATA).expect("data");
        }
        assert_eq!(results(&r)[0], UNAVAILABLE, "{}", message(&r));
        assert!(Instant::now() < deadline, "the HSM was not used again");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(before, after, "the same key after the outage");
    let created = roundtrip(&mut tls, &create_aes_256());
    assert_eq!(results(&created)[0].0, 0, "Create after the outage");

    let log = gw.log_text();
    assert!(log.contains("the token is unavailable"), "{log}");
    assert!(log.contains("the token answers again"), "{log}");
}
