//! PKCS#12 (KMIP 1.4) against an independent implementation: files that Python's
//! `cryptography` writes (PBES2/AES-256 and the legacy PBE-SHA1-3DES with a SHA-1 MAC) are
//! registered, their key and certificates come back as separate linked objects, and the
//! PKCS#12 file ksg writes on Get is read back by `cryptography` with the key and the whole
//! chain. A password object that is not Active, and a wrong password, are refused.
//! Needs the virtualenv that `tests/run-all` makes (or `KSG_PYTHON`).

mod common;

use std::path::{Path, PathBuf};

use common::gateway::{Gateway, Settings, request, roundtrip, run_python, tls_connect};
use ksg::ttlv::tables::enums::{
    KeyFormatType, LinkType, ObjectType, Operation, ResultReason, SecretDataType,
};
use ksg::ttlv::{Item, Tag, Value};

const PASSWORD: &[u8] = b"correct horse";

fn python(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (ok, text) = run_python("pkcs12_files.py", &args);
    assert!(ok, "pkcs12_files.py {args:?}:\n{text}");
    text
}

fn text(tag: Tag, s: &str) -> Item {
    Item::new(tag, Value::TextString(s.to_string()))
}

fn attribute(name: &str, mut value: Item) -> Item {
    value.tag = Tag::ATTRIBUTE_VALUE;
    Item::structure(Tag::ATTRIBUTE, vec![text(Tag::ATTRIBUTE_NAME, name), value])
}

fn link(t: LinkType, uid: &str) -> Item {
    attribute(
        "Link",
        Item::structure(
            Tag::ATTRIBUTE_VALUE,
            vec![
                Item::new(Tag::LINK_TYPE, Value::Enumeration(t.to_u32())),
                text(Tag::LINKED_OBJECT_IDENTIFIER, uid),
            ],
        ),
    )
}

fn uid_of(payload: &Item) -> String {
    match payload.child(Tag::UNIQUE_IDENTIFIER).map(|v| &v.value) {
        Some(Value::TextString(s)) => s.clone(),
        other => panic!("no Unique Identifier: {other:?}"),
    }
}

struct Client {
    tls: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
}

impl Client {
    /// One request; the response payload, or the Result Reason of a failure.
    fn call(&mut self, op: Operation, payload: Vec<Item>) -> Result<Item, u32> {
        let response = roundtrip(&mut self.tls, &request(4, op.to_u32(), payload));
        let item = response.child(Tag::BATCH_ITEM).expect("batch item");
        match item.child(Tag::RESULT_STATUS).map(|v| &v.value) {
            Some(Value::Enumeration(0)) => Ok(item
                .child(Tag::RESPONSE_PAYLOAD)
                .cloned()
                .expect("response payload")),
            _ => match item.child(Tag::RESULT_REASON).map(|v| &v.value) {
                Some(Value::Enumeration(r)) => Err(*r),
                other => panic!("failure without a reason: {other:?}"),
            },
        }
    }

    fn password(&mut self, secret: &[u8], activate: bool) -> String {
        let block = Item::structure(
            Tag::KEY_BLOCK,
            vec![
                Item::new(
                    Tag::KEY_FORMAT_TYPE,
                    Value::Enumeration(KeyFormatType::Opaque.to_u32()),
                ),
                Item::structure(
                    Tag::KEY_VALUE,
                    vec![Item::new(
                        Tag::KEY_MATERIAL,
                        Value::ByteString(secret.to_vec()),
                    )],
                ),
            ],
        );
        let payload = vec![
            Item::new(
                Tag::OBJECT_TYPE,
                Value::Enumeration(ObjectType::SecretData.to_u32()),
            ),
            Item::structure(
                Tag::TEMPLATE_ATTRIBUTE,
                vec![attribute(
                    "Cryptographic Usage Mask",
                    Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(0x200)),
                )],
            ),
            Item::structure(
                Tag::SECRET_DATA,
                vec![
                    Item::new(
                        Tag::SECRET_DATA_TYPE,
                        Value::Enumeration(SecretDataType::Password.to_u32()),
                    ),
                    block,
                ],
            ),
        ];
        let uid = uid_of(
            &self
                .call(Operation::Register, payload)
                .expect("register password"),
        );
        if activate {
            self.call(
                Operation::Activate,
                vec![text(Tag::UNIQUE_IDENTIFIER, &uid)],
            )
            .expect("activate password");
        }
        uid
    }

    fn register_pkcs12(&mut self, file: &[u8], password_uid: &str) -> Result<String, u32> {
        let block = Item::structure(
            Tag::KEY_BLOCK,
            vec![
                Item::new(
                    Tag::KEY_FORMAT_TYPE,
                    Value::Enumeration(KeyFormatType::PKCS_12.to_u32()),
                ),
                Item::new(Tag::KEY_VALUE, Value::ByteString(file.to_vec())),
            ],
        );
        let payload = vec![
            Item::new(
                Tag::OBJECT_TYPE,
                Value::Enumeration(ObjectType::PrivateKey.to_u32()),
            ),
            Item::structure(
                Tag::TEMPLATE_ATTRIBUTE,
                vec![
                    attribute(
                        "Cryptographic Usage Mask",
                        Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(1)),
                    ),
                    link(LinkType::PKCS_12PasswordLink, password_uid),
                ],
            ),
            Item::structure(Tag::PRIVATE_KEY, vec![block]),
        ];
        self.call(Operation::Register, payload).map(|p| uid_of(&p))
    }

    /// The bytes of an object's value: key material, certificate value or PKCS#12 file.
    fn get(&mut self, uid: &str, format: Option<KeyFormatType>) -> Vec<u8> {
        let mut payload = vec![text(Tag::UNIQUE_IDENTIFIER, uid)];
        if let Some(f) = format {
            payload.push(Item::new(
                Tag::KEY_FORMAT_TYPE,
                Value::Enumeration(f.to_u32()),
            ));
        }
        let p = self.call(Operation::Get, payload).expect("get");
        let bytes = |i: Option<&Item>| match i.map(|v| &v.value) {
            Some(Value::ByteString(b)) => Some(b.clone()),
            _ => None,
        };
        if let Some(cert) = p.child(Tag::CERTIFICATE) {
            return bytes(cert.child(Tag::CERTIFICATE_VALUE)).expect("certificate value");
        }
        let block = p
            .child(Tag::PRIVATE_KEY)
            .and_then(|k| k.child(Tag::KEY_BLOCK))
            .expect("key block");
        let value = block.child(Tag::KEY_VALUE).expect("key value");
        bytes(Some(value))
            .or_else(|| bytes(value.child(Tag::KEY_MATERIAL)))
            .expect("key bytes")
    }

    /// The target of `uid`'s PKCS#12 Certificate Link.
    fn certificate_link(&mut self, uid: &str) -> Option<String> {
        let p = self
            .call(
                Operation::GetAttributes,
                vec![
                    text(Tag::UNIQUE_IDENTIFIER, uid),
                    text(Tag::ATTRIBUTE_NAME, "Link"),
                ],
            )
            .expect("get attributes");
        p.children_with(Tag::ATTRIBUTE).find_map(|a| {
            let v = a.child(Tag::ATTRIBUTE_VALUE)?;
            (v.child(Tag::LINK_TYPE)?.value
                == Value::Enumeration(LinkType::PKCS_12CertificateLink.to_u32()))
            .then(|| uid_of_link(v))
        })
    }
}

fn uid_of_link(v: &Item) -> String {
    match v.child(Tag::LINKED_OBJECT_IDENTIFIER).map(|i| &i.value) {
        Some(Value::TextString(s)) => s.clone(),
        other => panic!("bad link {other:?}"),
    }
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).expect("file from pkcs12_files.py")
}

#[test]
fn pkcs12_files_from_python_cryptography_register_and_come_back_readable() {
    let gw = Gateway::start("pkcs12", Settings::default());
    let files: PathBuf = gw.dir.0.join("p12");
    std::fs::create_dir_all(&files).expect("mkdir");
    python(&["make", files.to_str().expect("utf-8 path")]);
    let mut c = Client {
        tls: tls_connect(gw.addr, &gw.data()),
    };

    // A password object that is not Active may not be used.
    let pre_active = c.password(PASSWORD, false);
    assert_eq!(
        c.register_pkcs12(&read(&files, "modern.p12"), &pre_active),
        Err(ResultReason::PermissionDenied.to_u32())
    );
    let wrong = c.password(b"battery staple", true);
    assert_eq!(
        c.register_pkcs12(&read(&files, "legacy.p12"), &wrong),
        Err(ResultReason::CryptographicFailure.to_u32())
    );

    let password = c.password(PASSWORD, true);
    for (file, key, chain) in [
        ("modern.p12", "rsa.key", vec!["rsa.crt"]),
        ("legacy.p12", "ec.key", vec!["ec.crt", "ca.crt"]),
    ] {
        let uid = c
            .register_pkcs12(&read(&files, file), &password)
            .unwrap_or_else(|r| panic!("{file}: register failed with reason {r:#x}"));
        assert_eq!(
            c.get(&uid, None),
            read(&files, key),
            "{file}: the key as PKCS#8"
        );
        // Key → its certificate → its issuer, each a separate Certificate object.
        let mut at = uid.clone();
        for cert in &chain {
            at = c
                .certificate_link(&at)
                .unwrap_or_else(|| panic!("{file}: no link to {cert}"));
            assert_eq!(c.get(&at, None), read(&files, cert), "{file}: {cert}");
        }
        assert_eq!(c.certificate_link(&at), None, "{file}: the chain ends");

        let out = files.join(format!("from-ksg-{file}"));
        std::fs::write(&out, c.get(&uid, Some(KeyFormatType::PKCS_12))).expect("write");
        let mut args = vec![
            "check".to_string(),
            out.display().to_string(),
            String::from_utf8(PASSWORD.to_vec()).expect("utf-8"),
            files.join(key).display().to_string(),
        ];
        args.extend(chain.iter().map(|c| files.join(c).display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(python(&args).trim_end(), "ok", "{file}");
    }
}
