//! `ksg codec` as a user runs it: whole files, every format, placeholders, exit statuses.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use ksg::ttlv::{Limits, json, xml};

fn ksg(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ksg runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("ksg finishes")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_whole_test_case_file_converts_in_order_through_every_format() {
    let path = common::testcases_root().join("v1.4/profiles/mandatory/SKLC-M-1-14.xml");
    let path = path.to_str().expect("utf-8 path");
    let limits = Limits::default();
    let original = common::load(std::path::Path::new(path)).expect("loads");
    assert!(original.messages.len() > 4);

    let to_json = ksg(
        &[
            "codec",
            "--from",
            "xml",
            "--to",
            "json",
            "--now",
            "1700000000",
            path,
        ],
        b"",
    );
    assert!(to_json.status.success(), "{}", stderr(&to_json));
    let from_json = json::decode_document(
        std::str::from_utf8(&to_json.stdout).expect("utf-8"),
        0,
        &limits,
    )
    .expect("JSON array decodes");
    assert_eq!(from_json.messages, original.messages);

    let back = ksg(&["codec", "--from", "json", "--to", "xml"], &to_json.stdout);
    assert!(back.status.success(), "{}", stderr(&back));
    let doc = xml::decode_document(
        std::str::from_utf8(&back.stdout).expect("utf-8"),
        0,
        &limits,
    )
    .expect("XML decodes");
    assert_eq!(doc.container.as_deref(), Some("KMIP"));
    assert_eq!(doc.messages, original.messages);

    let ttlv = ksg(
        &[
            "codec",
            "--from",
            "xml",
            "--to",
            "ttlv",
            "--now",
            "1700000000",
            path,
        ],
        b"",
    );
    assert!(ttlv.status.success(), "{}", stderr(&ttlv));
    let hex = ksg(&["codec", "--from", "ttlv", "--to", "hex"], &ttlv.stdout);
    assert_eq!(
        String::from_utf8_lossy(&hex.stdout).lines().count(),
        original.messages.len()
    );
    let again = ksg(&["codec", "--from", "hex", "--to", "ttlv"], &hex.stdout);
    assert_eq!(again.stdout, ttlv.stdout);
}

#[test]
fn now_placeholders_resolve_against_the_given_time() {
    let input = br#"<ActivationDate type="DateTime" value="$NOW-3600"/>"#;
    let out = ksg(
        &[
            "codec",
            "--from",
            "xml",
            "--to",
            "xml",
            "--now",
            "1700003600",
        ],
        input,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2023-11-14T22:13:20+00:00"));
}

#[test]
fn spec_style_hex_becomes_an_annotated_tree() {
    let input = b"42 00 57 | 05 | 00 00 00 04 | 00 00 00 02 00 00 00 00";
    let out = ksg(&["codec", "--from", "hex", "--to", "tree"], input);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ObjectType Enumeration 0x00000002 SymmetricKey"),
        "{text}"
    );
}

#[test]
fn a_placeholder_in_a_typed_field_cannot_become_ttlv() {
    let input = br#"<Data type="ByteString" value="$DATA_0"/>"#;
    let out = ksg(&["codec", "--from", "xml", "--to", "ttlv"], input);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("$DATA_0"), "{}", stderr(&out));
    let kept = ksg(&["codec", "--from", "xml", "--to", "json"], input);
    assert!(String::from_utf8_lossy(&kept.stdout).contains("\"$DATA_0\""));
}

#[test]
fn bad_input_exits_1_with_a_clear_message_and_bad_usage_exits_2() {
    let out = ksg(
        &["codec", "--from", "xml", "--to", "json"],
        b"<ObjectType type=\"Enumeration\" value=\"Nope\"/>",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("1:1") && stderr(&out).contains("Nope"),
        "{}",
        stderr(&out)
    );
    let out = ksg(
        &["codec", "--from", "hex", "--to", "xml"],
        b"42 00 57 05 00 00 00 04 00",
    );
    assert_eq!(out.status.code(), Some(1));
    let out = ksg(
        &["codec", "--from", "ttlv", "--to", "json"],
        &[0x42, 0, 0x78, 1, 0xFF, 0xFF, 0xFF, 0xF8],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = ksg(&["codec", "--from", "tree", "--to", "json"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = ksg(&["codec", "--from", "yaml", "--to", "json"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("yaml"));
    let out = ksg(&["codec", "--help"], b"");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("--now"));
}
