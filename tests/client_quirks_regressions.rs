//! KMIP quirks of real clients that other servers have been bitten by, as regression tests.
//! Where a client's own bytes show the quirk, they are replayed from
//! `tests/vectors/client-quirks/` (captured from PyKMIP on the wire, see its README), with
//! the Unique Identifier swapped for an object this test made.

mod common;

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use common::gateway::{Gateway, Settings, request, roundtrip, tls_connect};
use ksg::ttlv::tables::enums::Operation;
use ksg::ttlv::{Item, Limits, Tag, Value, binary, tables};

type Tls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

fn vector(name: &str) -> Item {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/client-quirks")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("vector");
    let bytes: Vec<u8> = (0..text.trim().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect();
    binary::decode(&bytes, &Limits::default()).expect("a TTLV message")
}

/// `item` with every `tag` value replaced by `value`.
fn replace(item: &Item, tag: Tag, value: &Value) -> Item {
    let v = match &item.value {
        Value::Structure(children) => {
            Value::Structure(children.iter().map(|c| replace(c, tag, value)).collect())
        }
        _ if item.tag == tag => value.clone(),
        other => other.clone(),
    };
    Item::new(item.tag, v)
}

fn with_uid(item: &Item, uid: &str) -> Item {
    replace(item, Tag::UNIQUE_IDENTIFIER, &Value::TextString(uid.into()))
}

/// The only batch item of a response, which must have succeeded.
fn success(response: &Item) -> Item {
    let items: Vec<&Item> = response.children_with(Tag::BATCH_ITEM).collect();
    assert_eq!(items.len(), 1, "{response:?}");
    assert_eq!(
        items[0].child(Tag::RESULT_STATUS).map(|s| &s.value),
        Some(&Value::Enumeration(0)),
        "{response:?}"
    );
    items[0]
        .child(Tag::RESPONSE_PAYLOAD)
        .cloned()
        .expect("payload")
}

fn text(tag: Tag, s: &str) -> Item {
    Item::new(tag, Value::TextString(s.into()))
}

fn attribute(name: &str, mut value: Item) -> Item {
    value.tag = Tag::ATTRIBUTE_VALUE;
    Item::structure(Tag::ATTRIBUTE, vec![text(Tag::ATTRIBUTE_NAME, name), value])
}

fn uid_of(p: &Item) -> String {
    match p.child(Tag::UNIQUE_IDENTIFIER).map(|v| &v.value) {
        Some(Value::TextString(s)) => s.clone(),
        other => panic!("no uid: {other:?}"),
    }
}

/// Creates an active AES-128 key for Encrypt and Decrypt named `name`.
fn create_aes(tls: &mut Tls, name: &str) -> String {
    let attrs = vec![
        attribute(
            "Cryptographic Algorithm",
            Item::new(Tag::ATTRIBUTE_VALUE, Value::Enumeration(3)),
        ),
        attribute(
            "Cryptographic Length",
            Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(128)),
        ),
        attribute(
            "Cryptographic Usage Mask",
            Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(0x0C)),
        ),
        attribute(
            "Name",
            Item::structure(
                Tag::ATTRIBUTE_VALUE,
                vec![
                    text(Tag::NAME_VALUE, name),
                    Item::new(Tag::NAME_TYPE, Value::Enumeration(1)),
                ],
            ),
        ),
    ];
    let p = success(&roundtrip(
        tls,
        &request(
            4,
            Operation::Create.to_u32(),
            vec![
                Item::new(Tag::OBJECT_TYPE, Value::Enumeration(2)),
                Item::structure(Tag::TEMPLATE_ATTRIBUTE, attrs),
            ],
        ),
    ));
    let uid = uid_of(&p);
    success(&roundtrip(
        tls,
        &request(
            4,
            Operation::Activate.to_u32(),
            vec![text(Tag::UNIQUE_IDENTIFIER, &uid)],
        ),
    ));
    uid
}

fn get_attribute(tls: &mut Tls, minor: i32, uid: &str, name: &str) -> Option<Item> {
    let p = success(&roundtrip(
        tls,
        &request(
            minor,
            Operation::GetAttributes.to_u32(),
            vec![
                text(Tag::UNIQUE_IDENTIFIER, uid),
                text(Tag::ATTRIBUTE_NAME, name),
            ],
        ),
    ));
    p.child(Tag::ATTRIBUTE)
        .and_then(|a| a.child(Tag::ATTRIBUTE_VALUE))
        .cloned()
}

fn key_bytes(tls: &mut Tls, uid: &str) -> Vec<u8> {
    let p = success(&roundtrip(
        tls,
        &request(
            4,
            Operation::Get.to_u32(),
            vec![text(Tag::UNIQUE_IDENTIFIER, uid)],
        ),
    ));
    match p
        .child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_VALUE))
        .and_then(|v| v.child(Tag::KEY_MATERIAL))
        .map(|m| &m.value)
    {
        Some(Value::ByteString(b)) => b.clone(),
        other => panic!("no key material: {other:?}"),
    }
}

fn start() -> (Gateway, Tls) {
    let gw = Gateway::start("quirks", Settings::default());
    let tls = tls_connect(gw.addr, &gw.data());
    (gw, tls)
}

#[test]
fn pykmip_register_with_usage_mask_zero_is_accepted_and_kept() {
    let (_gw, mut tls) = start();
    let p = success(&roundtrip(
        &mut tls,
        &vector("pykmip-1.4-register-symmetric-key-usage-mask-zero.hex"),
    ));
    let uid = uid_of(&p);
    let mask = get_attribute(&mut tls, 4, &uid, "Cryptographic Usage Mask");
    assert_eq!(mask.map(|m| m.value), Some(Value::Integer(0)));
    assert_eq!(key_bytes(&mut tls, &uid), (0u8..16).collect::<Vec<_>>());
}

#[test]
fn aes_gcm_before_1_4_keeps_the_tag_at_the_end_of_the_data() {
    let (_gw, mut tls) = start();
    let uid = create_aes(&mut tls, "gcm");
    let key = key_bytes(&mut tls, &uid);
    let expected = aes_gcm::Aes128Gcm::new_from_slice(&key)
        .expect("key")
        .encrypt(&[0u8; 12].into(), &b"sixteen byte msg"[..])
        .expect("encrypt");

    let encrypt = with_uid(&vector("pykmip-1.2-encrypt-aes-gcm-tag-in-data.hex"), &uid);
    let p = success(&roundtrip(&mut tls, &encrypt));
    assert_eq!(
        p.child(Tag::DATA).map(|d| &d.value),
        Some(&Value::ByteString(expected.clone())),
        "1.2: ciphertext followed by the 16-byte tag"
    );
    assert!(p.child(Tag::AUTHENTICATED_ENCRYPTION_TAG).is_none());

    let decrypt = replace(
        &with_uid(&vector("pykmip-1.2-decrypt-aes-gcm-tag-in-data.hex"), &uid),
        Tag::DATA,
        &Value::ByteString(expected.clone()),
    );
    let p = success(&roundtrip(&mut tls, &decrypt));
    assert_eq!(
        p.child(Tag::DATA).map(|d| &d.value),
        Some(&Value::ByteString(b"sixteen byte msg".to_vec()))
    );

    // The same request at 1.4 gets the tag in its own field.
    let at_1_4 = replace(&encrypt, Tag::PROTOCOL_VERSION_MINOR, &Value::Integer(4));
    let p = success(&roundtrip(&mut tls, &at_1_4));
    assert_eq!(
        p.child(Tag::DATA).map(|d| &d.value),
        Some(&Value::ByteString(expected[..16].to_vec()))
    );
    assert_eq!(
        p.child(Tag::AUTHENTICATED_ENCRYPTION_TAG).map(|d| &d.value),
        Some(&Value::ByteString(expected[16..].to_vec()))
    );
}

#[test]
fn a_1_0_client_gets_no_attribute_or_field_that_1_0_does_not_define() {
    let (_gw, mut tls) = start();
    // Made at 1.4, so the object has Fresh, Original Creation Date, Sensitive, ... too.
    let uid = create_aes(&mut tls, "one-oh");
    let p = success(&roundtrip(
        &mut tls,
        &with_uid(&vector("pykmip-1.0-get-attributes-all.hex"), &uid),
    ));
    let v1_0 = ksg::ttlv::Version::new(1, 0);
    let mut names = Vec::new();
    for a in p.children_with(Tag::ATTRIBUTE) {
        let Some(Value::TextString(name)) = a.child(Tag::ATTRIBUTE_NAME).map(|n| &n.value) else {
            panic!("attribute without a name");
        };
        let info = tables::tag_by_spec_name(name).expect("a known attribute");
        assert!(info.since <= v1_0, "{name} is from KMIP {:?}", info.since);
        if name == "Digest" {
            let fields: Vec<Tag> = a
                .child(Tag::ATTRIBUTE_VALUE)
                .expect("value")
                .children()
                .iter()
                .map(|f| f.tag)
                .collect();
            assert_eq!(fields, vec![Tag::HASHING_ALGORITHM, Tag::DIGEST_VALUE]);
        }
        names.push(name.clone());
    }
    for must in [
        "Unique Identifier",
        "Cryptographic Algorithm",
        "State",
        "Digest",
        "Name",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} missing from {names:?}"
        );
    }
    // At 1.1 the Digest has its Key Format Type.
    let digest = get_attribute(&mut tls, 1, &uid, "Digest").expect("digest");
    assert!(digest.child(Tag::KEY_FORMAT_TYPE).is_some());
}

#[test]
fn a_batch_count_that_disagrees_with_the_items_is_answered_by_the_items() {
    let (_gw, mut tls) = start();
    let uid = create_aes(&mut tls, "batch");
    let one = with_uid(&vector("pykmip-1.0-get-attributes-all.hex"), &uid);
    // Says 3, holds 1.
    let said_three = replace(&one, Tag::BATCH_COUNT, &Value::Integer(3));
    let response = roundtrip(&mut tls, &said_three);
    success(&response);
    let header = response.child(Tag::RESPONSE_HEADER).expect("header");
    assert_eq!(
        header.child(Tag::BATCH_COUNT).map(|c| &c.value),
        Some(&Value::Integer(1))
    );
    // Says 1, holds 2.
    let item = one.child(Tag::BATCH_ITEM).expect("item").clone();
    let mut children = one.children().to_vec();
    children.push(item);
    let response = roundtrip(&mut tls, &Item::structure(Tag::REQUEST_MESSAGE, children));
    assert_eq!(
        common::gateway::results(&response),
        vec![(0, None), (0, None)]
    );
}

#[test]
fn operation_policy_name_round_trips() {
    let (_gw, mut tls) = start();
    let register = vector("pykmip-1.4-register-symmetric-key-usage-mask-zero.hex");
    // The same Register with an Operation Policy Name added to its template, at 1.2.
    let with_policy = {
        let mut msg = replace(&register, Tag::PROTOCOL_VERSION_MINOR, &Value::Integer(2));
        fn add(item: &mut Item, extra: &Item) {
            if item.tag == Tag::TEMPLATE_ATTRIBUTE
                && let Value::Structure(c) = &mut item.value
            {
                c.push(extra.clone());
                return;
            }
            if let Value::Structure(c) = &mut item.value {
                c.iter_mut().for_each(|x| add(x, extra));
            }
        }
        add(
            &mut msg,
            &attribute(
                "Operation Policy Name",
                Item::new(Tag::ATTRIBUTE_VALUE, Value::TextString("default".into())),
            ),
        );
        msg
    };
    let uid = uid_of(&success(&roundtrip(&mut tls, &with_policy)));
    let policy = get_attribute(&mut tls, 2, &uid, "Operation Policy Name");
    assert_eq!(
        policy.map(|p| p.value),
        Some(Value::TextString("default".into()))
    );
}

#[test]
fn locate_by_name_finds_the_one_key_among_similar_names() {
    let (_gw, mut tls) = start();
    let mut uids = Vec::new();
    for name in [
        "db-key",
        "db-key-1",
        "db-key-10",
        "DB-KEY",
        "db-key ",
        "db-ke",
        "xdb-key",
    ] {
        uids.push((name, create_aes(&mut tls, name)));
    }
    for (name, uid) in &uids {
        let p = success(&roundtrip(
            &mut tls,
            &request(
                4,
                Operation::Locate.to_u32(),
                vec![attribute(
                    "Name",
                    Item::structure(
                        Tag::ATTRIBUTE_VALUE,
                        vec![
                            text(Tag::NAME_VALUE, name),
                            Item::new(Tag::NAME_TYPE, Value::Enumeration(1)),
                        ],
                    ),
                )],
            ),
        ));
        let found: Vec<String> = p
            .children_with(Tag::UNIQUE_IDENTIFIER)
            .map(|u| match &u.value {
                Value::TextString(s) => s.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(found, vec![uid.clone()], "Locate {name:?}");
    }
}

#[test]
fn attributes_embedded_in_a_key_value_are_kept_as_attributes_not_returned_in_it() {
    let (_gw, mut tls) = start();
    let register = vector("pykmip-1.4-register-symmetric-key-usage-mask-zero.hex");
    // The Key Value carries its own attributes, as KMIP 1.x allows.
    fn embed(item: &mut Item) {
        if item.tag == Tag::KEY_VALUE
            && let Value::Structure(c) = &mut item.value
        {
            c.push(attribute(
                "x-embedded",
                Item::new(Tag::ATTRIBUTE_VALUE, Value::TextString("inside".into())),
            ));
            return;
        }
        if let Value::Structure(c) = &mut item.value {
            c.iter_mut().for_each(embed);
        }
    }
    let mut msg = register;
    embed(&mut msg);
    let uid = uid_of(&success(&roundtrip(&mut tls, &msg)));
    let p = success(&roundtrip(
        &mut tls,
        &request(
            4,
            Operation::Get.to_u32(),
            vec![text(Tag::UNIQUE_IDENTIFIER, &uid)],
        ),
    ));
    let key_value = p
        .child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_VALUE))
        .expect("key value");
    let tags: Vec<Tag> = key_value.children().iter().map(|c| c.tag).collect();
    assert_eq!(tags, vec![Tag::KEY_MATERIAL]);
    let embedded = get_attribute(&mut tls, 4, &uid, "x-embedded");
    assert_eq!(
        embedded.map(|v| v.value),
        Some(Value::TextString("inside".into()))
    );
}
