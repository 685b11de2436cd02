//! No secret reaches any file the gateway writes, nor its standard error: known key bytes, a
//! known password and known plaintext go through every kind of operation (register, get in
//! several formats, wrapped keys, encrypt and decrypt, sign, key pairs, secret data, PKCS#8
//! export), over TTLV and HTTPS with XML and JSON, with every trace flag on; then every file
//! under the gateway's directory (traces, error stream, audit log, keystore) and its log are
//! searched for them, raw, in hex (either case) and in base64.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::gateway::{Gateway, Settings};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn base64(b: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[test]
fn known_secrets_appear_in_no_file_the_gateway_writes() {
    let gw = Gateway::start(
        "no-secret",
        Settings {
            log_flags: "P6KMIPFLG_TRACE_BASIC | P6KMIPFLG_TRACE_MSGS | P6KMIPFLG_TRACE_VERBOSE | \
                        P6KMIPFLG_TRACE_FORMATKMIPXML | P6KMIPFLG_TRACE_FORMATJSON | \
                        P6KMIPFLG_TRACE_FORMATTTLV | P6KMIPFLG_TRACE_HTTPHEADERS",
            ..Settings::default()
        },
    );
    // The client's own files live outside the gateway's directory.
    let work = common::gateway::TempDir::new("no-secret-client");
    let w = |name: &str| work.0.join(name).display().to_string();
    let key: Vec<u8> = (0..32u8).map(|i| 0x5A ^ i.wrapping_mul(7)).collect();
    let password = b"correct horse battery staple 42";
    let plaintext = b"PLAINTEXT-THAT-MUST-NOT-BE-LOGGED";
    std::fs::write(work.0.join("key.bin"), &key).expect("write");
    std::fs::write(work.0.join("password.bin"), password).expect("write");
    std::fs::write(work.0.join("plain.txt"), plaintext).expect("write");

    let tls = gw.data().join("tls");
    let run = |extra: &[&str], args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
            .arg("client")
            .arg("--server")
            .arg(gw.addr.to_string())
            .arg("--ca")
            .arg(tls.join("ca.pem"))
            .arg("--cert")
            .arg(tls.join("client.pem"))
            .arg("--key")
            .arg(tls.join("client.key"))
            .args(extra)
            .args(args)
            .output()
            .expect("ksg client");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let field = |text: &str, k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
            .expect("field")
            .to_string()
    };
    for extra in [
        &[][..],
        &["--http", "--encoding", "xml"][..],
        &["--http", "--encoding", "json"][..],
    ] {
        let aes = field(
            &run(
                extra,
                &[
                    "register",
                    "--type",
                    "symmetric-key",
                    "--file",
                    &w("key.bin"),
                    "--activate",
                ],
            ),
            "unique_identifier",
        );
        assert_eq!(field(&run(extra, &["get", &aes]), "value"), hex(&key));
        run(
            extra,
            &["get", &aes, "--format", "transparent-symmetric-key"],
        );
        let enc = run(
            extra,
            &[
                "encrypt",
                &aes,
                "--in",
                &w("plain.txt"),
                "--out",
                &w("c.bin"),
                "--mode",
                "cbc",
                "--padding",
                "pkcs5",
            ],
        );
        run(
            extra,
            &[
                "decrypt",
                &aes,
                "--in",
                &w("c.bin"),
                "--out",
                &w("p.txt"),
                "--mode",
                "cbc",
                "--padding",
                "pkcs5",
                "--iv",
                &field(&enc, "iv"),
            ],
        );
        assert_eq!(
            std::fs::read(work.0.join("p.txt")).expect("read"),
            plaintext
        );
        let secret = field(
            &run(
                extra,
                &[
                    "register",
                    "--type",
                    "secret-data",
                    "--file",
                    &w("password.bin"),
                ],
            ),
            "unique_identifier",
        );
        run(extra, &["get", &secret]);
        let pair = run(
            extra,
            &[
                "create-key-pair",
                "--alg",
                "RSA",
                "--length",
                "2048",
                "--activate",
            ],
        );
        let private = field(&pair, "private_key");
        run(
            extra,
            &[
                "get",
                &private,
                "--format",
                "pkcs8",
                "--out",
                &w("private.der"),
            ],
        );
        run(
            extra,
            &[
                "sign",
                &private,
                "--in",
                &w("plain.txt"),
                "--out",
                &w("sig.bin"),
            ],
        );
        run(extra, &["rng", "--length", "32"]);
    }
    // The private keys the gateway made and handed out are secrets too (a slice from inside
    // the private exponent of the last one).
    let private_der = std::fs::read(work.0.join("private.der")).expect("der");
    let private_part = private_der[400..440].to_vec();

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (what, secret) in [
        ("key", key.clone()),
        ("password", password.to_vec()),
        ("plaintext", plaintext.to_vec()),
    ] {
        needles.push((format!("{what} raw"), secret.clone()));
        needles.push((format!("{what} hex"), hex(&secret).into_bytes()));
        needles.push((
            format!("{what} HEX"),
            hex(&secret).to_uppercase().into_bytes(),
        ));
        needles.push((format!("{what} base64"), base64(&secret).into_bytes()));
    }
    needles.push(("private key raw".into(), private_part.clone()));
    needles.push(("private key hex".into(), hex(&private_part).into_bytes()));

    let files = files_under(&gw.dir.0);
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with(".xml"))
            && files.iter().any(|f| f.to_string_lossy().ends_with(".json"))
            && files
                .iter()
                .any(|f| f.to_string_lossy().ends_with(".ttlv.txt"))
            && files.iter().any(|f| f.to_string_lossy().ends_with(".http"))
            && files.iter().any(|f| f.ends_with("audit.log")),
        "every trace format was written: {files:?}"
    );
    let mut haystacks: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).expect("read")))
        .collect();
    haystacks.push((
        "the gateway's standard error".into(),
        gw.log_text().into_bytes(),
    ));
    for (name, bytes) in &haystacks {
        for (what, needle) in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{what} found in {name}"
            );
        }
    }
}
