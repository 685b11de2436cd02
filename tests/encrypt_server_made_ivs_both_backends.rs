//! An Encrypt that asks for a random IV (or gives none) gets a fresh IV from the gateway, on
//! the software token and on SoftHSM2: twelve bytes for GCM, a different one each time, and
//! the returned IV and tag decrypt the ciphertext. The IV comes from the OS's generator, not
//! the token's (see `ops/crypto.rs`): on SoftHSM2 the PKCS#11 trace shows the Encrypts made no
//! C_GenerateRandom call.

mod common;

use std::time::{Duration, Instant};

use common::gateway::{
    Gateway, Settings, create_aes_256, request, results, roundtrip, softhsm_gateway_with,
    tls_connect, unique_identifier,
};
use ksg::ttlv::tables::enums::Operation;
use ksg::ttlv::{Item, Tag, Value};

fn uid_item(uid: &str) -> Item {
    Item::new(Tag::UNIQUE_IDENTIFIER, Value::TextString(uid.into()))
}

fn gcm(extra: Vec<Item>) -> Item {
    let mut p = vec![Item::new(Tag::BLOCK_CIPHER_MODE, Value::Enumeration(9))];
    p.extend(extra);
    Item::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, p)
}

fn bytes(response: &Item, tag: Tag) -> Vec<u8> {
    let payload = response
        .child(Tag::BATCH_ITEM)
        .and_then(|b| b.child(Tag::RESPONSE_PAYLOAD))
        .expect("a response payload");
    match payload.child(tag).map(|i| &i.value) {
        Some(Value::ByteString(b)) => b.clone(),
        other => panic!("{tag:?}: {other:?}"),
    }
}

const PLAIN: &[u8] = b"sixty-four bytes of data the gateway encrypts with an IV it made";

/// A new active AES-256 key's Unique Identifier.
fn active_key(tls: &mut (impl std::io::Read + std::io::Write)) -> String {
    let uid = unique_identifier(&roundtrip(tls, &create_aes_256())).expect("created");
    let activate = request(4, Operation::Activate.to_u32(), vec![uid_item(&uid)]);
    assert_eq!(results(&roundtrip(tls, &activate))[0].0, 0);
    uid
}

/// Encrypts with server-made IVs (each decrypted again); returns how many.
fn encrypt_with_server_ivs(tls: &mut (impl std::io::Read + std::io::Write), uid: &str) -> usize {
    let random_iv = Item::new(Tag::RANDOM_IV, Value::Boolean(true));
    let mut seen = Vec::new();
    // Asked for (Random IV), then not given at all: the gateway makes one either way.
    for params in [
        gcm(vec![random_iv.clone()]),
        gcm(vec![random_iv]),
        gcm(vec![]),
    ] {
        let encrypt = request(
            4,
            Operation::Encrypt.to_u32(),
            vec![
                uid_item(uid),
                params,
                Item::new(Tag::DATA, Value::ByteString(PLAIN.to_vec())),
            ],
        );
        let r = roundtrip(tls, &encrypt);
        assert_eq!(results(&r)[0].0, 0, "Encrypt: {r:?}");
        let (iv, data, tag) = (
            bytes(&r, Tag::IV_COUNTER_NONCE),
            bytes(&r, Tag::DATA),
            bytes(&r, Tag::AUTHENTICATED_ENCRYPTION_TAG),
        );
        assert_eq!(iv.len(), 12, "a GCM IV is twelve bytes");
        assert!(!seen.contains(&iv), "a fresh IV each time");
        assert_ne!(data, PLAIN);
        let decrypt = request(
            4,
            Operation::Decrypt.to_u32(),
            vec![
                uid_item(uid),
                gcm(vec![]),
                Item::new(Tag::DATA, Value::ByteString(data)),
                Item::new(Tag::IV_COUNTER_NONCE, Value::ByteString(iv.clone())),
                Item::new(Tag::AUTHENTICATED_ENCRYPTION_TAG, Value::ByteString(tag)),
            ],
        );
        let r = roundtrip(tls, &decrypt);
        assert_eq!(results(&r)[0].0, 0, "Decrypt: {r:?}");
        assert_eq!(bytes(&r, Tag::DATA), PLAIN);
        seen.push(iv);
    }
    seen.len()
}

/// Trace lines of PKCS#11 function `f` in the gateway's log.
fn traced(gw: &Gateway, f: &str) -> usize {
    gw.log_text().matches(&format!("pkcs11 {f} ")).count()
}

/// Waits until the log holds at least `n` trace lines of `f` (it is read on another thread).
fn wait_traced(gw: &Gateway, f: &str, n: usize) {
    let start = Instant::now();
    while traced(gw, f) < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{n} {f} lines in the trace: {}",
            gw.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn server_made_ivs_are_fresh_and_decrypt_on_the_software_token() {
    let gw = Gateway::start("iv-soft", Settings::default());
    let mut tls = tls_connect(gw.addr, &gw.data());
    let uid = active_key(&mut tls);
    encrypt_with_server_ivs(&mut tls, &uid);
}

#[test]
fn server_made_ivs_are_fresh_and_decrypt_on_softhsm2_without_c_generate_random() {
    let gw = softhsm_gateway_with("iv-hsm", true, "pkcs11Trace = info\n");
    let mut tls = tls_connect(gw.addr, &gw.data());
    let uid = active_key(&mut tls);
    // The Create's calls (its C_GenerateRandom for the object's CKA_ID among them) are in the
    // log once its C_GenerateKey is.
    wait_traced(&gw, "C_GenerateKey", 1);
    let random_before = traced(&gw, "C_GenerateRandom");
    let encrypts = encrypt_with_server_ivs(&mut tls, &uid);
    wait_traced(&gw, "C_Decrypt", encrypts);
    assert!(traced(&gw, "C_Encrypt") >= encrypts, "{}", gw.log_text());
    assert_eq!(
        traced(&gw, "C_GenerateRandom"),
        random_before,
        "an Encrypt asked the token for its IV: {}",
        gw.log_text()
    );
}
