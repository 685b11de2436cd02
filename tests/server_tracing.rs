//! serverLogFlags tracing: every message in each chosen format under
//! `logDir/<client-ip>/server/`, HTTP headers, the basic trace and the error stream; key
//! material never reaches a file.

mod common;

use std::io::Write;
use std::path::Path;

use common::gateway::{Gateway, Settings, read_ttlv, request, roundtrip, tls_connect};
use ksg::ttlv::{Item, Tag, Value, binary};

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

#[test]
fn every_format_is_traced_and_key_material_is_redacted() {
    let gw = Gateway::start(
        "trace",
        Settings {
            log_flags: "P6KMIPFLG_TRACE_BASIC | P6KMIPFLG_TRACE_MSGS | P6KMIPFLG_TRACE_FORMATKMIPXML | \
                        P6KMIPFLG_TRACE_FORMATJSON | P6KMIPFLG_TRACE_FORMATTTLV | P6KMIPFLG_TRACE_HTTPHEADERS",
            ..Settings::default()
        },
    );
    let secret: Vec<u8> = (0..32).map(|i| 0xA0 ^ i).collect();
    let key_block = Item::structure(
        Tag::KEY_BLOCK,
        vec![
            Item::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(1)),
            Item::structure(
                Tag::KEY_VALUE,
                vec![Item::new(
                    Tag::KEY_MATERIAL,
                    Value::ByteString(secret.clone()),
                )],
            ),
        ],
    );
    let register = request(
        4,
        0x03,
        vec![
            Item::new(Tag::OBJECT_TYPE, Value::Enumeration(2)),
            Item::structure(Tag::TEMPLATE_ATTRIBUTE, vec![]),
            Item::structure(Tag::SYMMETRIC_KEY, vec![key_block]),
        ],
    );
    let mut s = tls_connect(gw.addr, &gw.data());
    roundtrip(&mut s, &register);
    roundtrip(&mut s, &common::gateway::discover_versions());
    // HTTP, so there are headers to trace.
    let body = binary::to_vec(&register).expect("encode");
    let head = format!(
        "POST /kmip HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&body).expect("body");
    s.flush().expect("flush");
    let mut resp_head = Vec::new();
    let mut b = [0u8; 1];
    while !resp_head.ends_with(b"\r\n\r\n") {
        std::io::Read::read_exact(&mut s, &mut b).expect("head");
        resp_head.push(b[0]);
    }
    read_ttlv(&mut s).expect("body");
    // An undecodable request for the error stream.
    let mut bad = binary::to_vec(&common::gateway::discover_versions()).expect("encode");
    bad[15] = 9; // RequestHeader now claims a length that does not add up
    roundtrip(&mut s, &Item::structure(Tag::RESPONSE_MESSAGE, vec![]));
    s.write_all(&bad).expect("send");
    s.flush().expect("flush");
    read_ttlv(&mut s).expect("error response");
    drop(s);
    std::thread::sleep(std::time::Duration::from_millis(200));

    let logs = gw.data().join("logs");
    let files = files_under(&logs);
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect();
    let server_dir = logs.join("127.0.0.1").join("server");
    for ext in [".xml", ".json", ".ttlv.txt", ".http"] {
        let n = files
            .iter()
            .filter(|p| p.starts_with(&server_dir) && p.to_string_lossy().ends_with(ext))
            .count();
        assert!(
            n >= 2,
            "expected {ext} traces in {}, found {names:?}",
            server_dir.display()
        );
    }
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("kmip-") || n.split('-').count() == 3),
        "{names:?}"
    );
    let basic = std::fs::read_to_string(logs.join("ksg-trace.log")).expect("basic trace");
    assert!(basic.contains("Register=Success"), "{basic}");
    assert!(
        basic.contains("DiscoverVersions=Success") && basic.contains("identity=ksg-client"),
        "{basic}"
    );
    let errors = std::fs::read_to_string(logs.join("errors.txt")).expect("error stream");
    assert!(errors.contains("cannot decode"), "{errors}");

    let hex_lower: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let hex_upper = hex_lower.to_uppercase();
    let mut checked = 0;
    for f in &files {
        let bytes = std::fs::read(f).expect("read trace");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&hex_lower) && !text.contains(&hex_upper),
            "key material in {}",
            f.display()
        );
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
            "raw key in {}",
            f.display()
        );
        checked += 1;
    }
    assert!(checked > 8);
    let xml_with_key = files.iter().any(|f| {
        f.to_string_lossy().ends_with(".xml")
            && std::fs::read_to_string(f)
                .is_ok_and(|t| t.contains("<KeyMaterial type=\"ByteString\" value=\"$REDACTED\"/>"))
    });
    assert!(
        xml_with_key,
        "the request trace shows where the key was, redacted"
    );
}
