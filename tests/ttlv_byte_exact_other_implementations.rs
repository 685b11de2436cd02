//! TTLV written by other implementations decodes, and encodes back to the very same bytes:
//! the encoding examples of the KMIP 1.x specification (§9.1.2) and messages that PyKMIP encodes
//! at test time (tests/interop/pykmip_ttlv_vectors.py, run with the Python from `KSG_PYTHON`,
//! default `.venv/bin/python`, which `tests/run-all` prepares).

use std::path::Path;
use std::process::Command;

use ksg::ttlv::{Item, Limits, Tag, Value, binary};

fn unhex(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"))
        .collect()
}

fn assert_byte_exact(bytes: &[u8]) -> Item {
    let item = binary::decode(bytes, &Limits::default()).expect("decodes");
    let again = binary::to_vec(&item).expect("encodes");
    assert_eq!(again, bytes, "re-encoding differs for {item:?}");
    item
}

/// The examples of KMIP 1.x §9.1.2 ("Examples"), tag 0x420020, one per item type.
#[test]
fn kmip_spec_9_1_2_encoding_examples() {
    let t = Tag(0x420020);
    let cases: [(&str, Value); 10] = [
        (
            "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00",
            Value::Integer(8),
        ),
        (
            "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00",
            Value::LongInteger(123_456_789_000_000_000),
        ),
        (
            "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
            Value::BigInteger(unhex("00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00")),
        ),
        (
            "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
            Value::Enumeration(255),
        ),
        (
            "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01",
            Value::Boolean(true),
        ),
        (
            "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00",
            Value::TextString("Hello World".into()),
        ),
        (
            "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
            Value::ByteString(vec![1, 2, 3]),
        ),
        // Friday, March 14, 2008, 11:56:40 GMT.
        (
            "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8",
            Value::DateTime(0x47DA_67F8),
        ),
        // 10 days.
        (
            "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00",
            Value::Interval(864_000),
        ),
        (
            "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 \
             | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
            Value::Structure(vec![
                Item::new(Tag(0x420004), Value::Enumeration(254)),
                Item::new(Tag(0x420005), Value::Integer(255)),
            ]),
        ),
    ];
    for (hex, value) in cases {
        let bytes = unhex(hex);
        assert_eq!(assert_byte_exact(&bytes), Item::new(t, value), "{hex}");
    }
}

/// The same rules refuse the near misses of those examples.
#[test]
fn near_misses_of_the_spec_examples_are_refused() {
    for hex in [
        "42 00 20 | 02 | 00 00 00 08 | 00 00 00 08 00 00 00 00", // Integer of length 8
        "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 01", // non-zero padding
        "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 02", // Boolean 2
        "42 00 20 | 07 | 00 00 00 02 | C3 28 00 00 00 00 00 00", // invalid UTF-8
        "42 00 20 | 04 | 00 00 00 04 | 00 00 00 01 00 00 00 00", // Big Integer of length 4
        "42 00 20 | 0C | 00 00 00 04 | 00 00 00 01 00 00 00 00", // unknown type
        "42 00 20 | 01 | 00 00 00 18 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00",
        "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00", // truncated padding
    ] {
        assert!(
            binary::decode(&unhex(hex), &Limits::default()).is_err(),
            "{hex}"
        );
    }
}

fn python() -> String {
    std::env::var("KSG_PYTHON").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".venv/bin/python")
            .display()
            .to_string()
    })
}

/// Messages PyKMIP encodes (requests and responses of common operations, KMIP 1.0–1.4).
#[test]
fn pykmip_encoded_messages_round_trip_byte_exact() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pykmip_ttlv_vectors.py");
    let py = python();
    let out = Command::new(&py).arg(&script).output().unwrap_or_else(|e| {
        panic!("cannot run {py} (set KSG_PYTHON or run tests/run-all to make the venv): {e}")
    });
    assert!(
        out.status.success(),
        "{py} {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("hex is ASCII");
    let mut count = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let item = assert_byte_exact(&unhex(line));
        assert!(item.tag == Tag::REQUEST_MESSAGE || item.tag == Tag::RESPONSE_MESSAGE);
        count += 1;
    }
    assert!(count >= 70, "expected PyKMIP's vectors, got {count}");
}
