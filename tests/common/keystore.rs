//! Objects for the keystore tests.

use ksg::store::{SecretBytes, StoredAttribute, StoredObject};
use ksg::ttlv::{Item, Tag, Value};

/// A 256-bit symmetric key of HSM_name "test", owned by alice, with `name` as its Name and a
/// Cryptographic Length; the store gives it its Unique Identifier.
pub fn named_key(name: &str) -> StoredObject {
    StoredObject {
        uid: String::new(),
        object_type: 2,
        state: 1,
        owner: Some("alice".into()),
        hsm_name: "test".into(),
        attributes: vec![
            StoredAttribute {
                name: "Name".into(),
                index: 0,
                value: Item::structure(
                    Tag::ATTRIBUTE_VALUE,
                    vec![
                        Item::new(Tag::NAME_VALUE, Value::TextString(name.into())),
                        Item::new(Tag::NAME_TYPE, Value::Enumeration(1)),
                    ],
                ),
            },
            StoredAttribute {
                name: "Cryptographic Length".into(),
                index: 0,
                value: Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(256)),
            },
        ]
        .into_iter()
        .collect(),
        token_ref: None,
        value: Some(SecretBytes::new(vec![0x5A; 32])),
    }
}
