//! `ksg client` against a running gateway, as a user and a script use it: the README's quick
//! start with the development PKI found in ./data/tls, every command, `--json` output, results
//! checked independently (AES-GCM with the key `get` returns, the EC signature with the public
//! key), exit statuses; and `ksg tls issue-client` giving a second client that can connect.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use common::gateway::{Gateway, Settings};

/// Runs `ksg ARGS` in `dir` (where ./data/tls is) against `gw`.
fn ksg(gw: &Gateway, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ksg"));
    cmd.current_dir(dir);
    if args.first() == Some(&"client") {
        cmd.arg("client").arg("--server").arg(gw.addr.to_string());
        cmd.args(&args[1..]);
    } else {
        cmd.args(args);
    }
    cmd.output().expect("run ksg")
}

/// Runs a command that must succeed; its standard output.
fn ok(gw: &Gateway, dir: &Path, args: &[&str]) -> String {
    let out = ksg(gw, dir, args);
    assert!(
        out.status.success(),
        "ksg {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log_text()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `key: value` in human output.
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .to_string()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn the_quick_start_and_every_command_work_against_the_gateway() {
    let gw = Gateway::start("cli-client", Settings::default());
    let dir = gw.dir.0.clone();
    let file = |name: &str| dir.join(name).display().to_string();

    let versions = ok(&gw, &dir, &["client", "discover-versions", "--json"]);
    assert_eq!(
        versions.trim(),
        r#"{"version":["1.4","1.3","1.2","1.1","1.0"]}"#
    );
    assert!(ok(&gw, &dir, &["client", "query"]).contains("operation: Encrypt"));

    // A first key, used for AES-GCM; the ciphertext is checked with the key's own bytes.
    let created = ok(
        &gw,
        &dir,
        &[
            "client",
            "create",
            "--alg",
            "AES",
            "--length",
            "256",
            "--name",
            "first-key",
            "--activate",
        ],
    );
    let uid = field(&created, "unique_identifier");
    let located = ok(
        &gw,
        &dir,
        &["client", "locate", "--name", "first-key", "--json"],
    );
    assert_eq!(
        located.trim(),
        format!(r#"{{"unique_identifier":["{uid}"]}}"#)
    );
    std::fs::write(dir.join("plain.txt"), b"attack at dawn").expect("write");
    let enc = ok(
        &gw,
        &dir,
        &[
            "client",
            "encrypt",
            &uid,
            "--in",
            &file("plain.txt"),
            "--out",
            &file("c.bin"),
            "--mode",
            "gcm",
        ],
    );
    let (iv, tag) = (field(&enc, "iv"), field(&enc, "tag"));
    let key = unhex(&field(&ok(&gw, &dir, &["client", "get", &uid]), "value"));
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key).expect("key");
    let mut sealed = std::fs::read(dir.join("c.bin")).expect("ciphertext");
    sealed.extend(unhex(&tag));
    let nonce =
        aes_gcm::aead::Nonce::<aes_gcm::Aes256Gcm>::try_from(&unhex(&iv)[..]).expect("12-byte IV");
    let opened = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &sealed,
                aad: b"",
            },
        )
        .expect("the gateway's AES-GCM ciphertext opens with the key it returns");
    assert_eq!(opened, b"attack at dawn");
    ok(
        &gw,
        &dir,
        &[
            "client",
            "decrypt",
            &uid,
            "--in",
            &file("c.bin"),
            "--out",
            &file("back.txt"),
            "--mode",
            "gcm",
            "--iv",
            &iv,
            "--tag",
            &tag,
        ],
    );
    assert_eq!(
        std::fs::read(dir.join("back.txt")).expect("read"),
        b"attack at dawn"
    );

    // An EC key pair: sign, verify (0 when valid, 1 when not), the public key as PEM.
    let pair = ok(
        &gw,
        &dir,
        &[
            "client",
            "create-key-pair",
            "--alg",
            "EC",
            "--curve",
            "P-256",
            "--activate",
            "--name",
            "signer",
        ],
    );
    let (private, public) = (field(&pair, "private_key"), field(&pair, "public_key"));
    ok(
        &gw,
        &dir,
        &[
            "client",
            "sign",
            &private,
            "--in",
            &file("plain.txt"),
            "--out",
            &file("sig.bin"),
        ],
    );
    let verified = ok(
        &gw,
        &dir,
        &[
            "client",
            "verify",
            &public,
            "--in",
            &file("plain.txt"),
            "--signature",
            &file("sig.bin"),
        ],
    );
    assert_eq!(field(&verified, "valid"), "true");
    std::fs::write(dir.join("other.txt"), b"attack at dusk").expect("write");
    let forged = ksg(
        &gw,
        &dir,
        &[
            "client",
            "verify",
            &public,
            "--in",
            &file("other.txt"),
            "--signature",
            &file("sig.bin"),
        ],
    );
    assert_eq!(
        forged.status.code(),
        Some(1),
        "an invalid signature exits 1"
    );
    let pem = ok(
        &gw,
        &dir,
        &[
            "client",
            "get",
            &public,
            "--format",
            "x509",
            "--pem",
            "--out",
            &file("pub.pem"),
        ],
    );
    assert!(pem.contains("format: X_509"));
    let pem_text = std::fs::read_to_string(dir.join("pub.pem")).expect("pem");
    assert!(pem_text.starts_with("-----BEGIN PUBLIC KEY-----\n"));

    // Register from files: a PEM public key and the development CA certificate.
    let registered = ok(
        &gw,
        &dir,
        &[
            "client",
            "register",
            "--type",
            "public-key",
            "--file",
            &file("pub.pem"),
            "--name",
            "copy",
        ],
    );
    let copy = field(&registered, "unique_identifier");
    let attrs = ok(&gw, &dir, &["client", "get-attributes", &copy]);
    assert_eq!(field(&attrs, "Cryptographic Algorithm"), "EC");
    let cert = ok(
        &gw,
        &dir,
        &[
            "client",
            "register",
            "--type",
            "certificate",
            "--file",
            "data/tls/ca.pem",
        ],
    );
    let cert_uid = field(&cert, "unique_identifier");
    ok(
        &gw,
        &dir,
        &["client", "get", &cert_uid, "--out", &file("ca.der")],
    );
    let ca_der = rustls_pki_types::pem::PemObject::from_pem_file(dir.join("data/tls/ca.pem"))
        .map(|c: rustls_pki_types::CertificateDer<'_>| c.as_ref().to_vec())
        .expect("ca.pem");
    assert_eq!(std::fs::read(dir.join("ca.der")).expect("der"), ca_der);

    let random = ok(&gw, &dir, &["client", "rng", "--length", "16"]);
    assert_eq!(field(&random, "data").len(), 32);

    // Lifecycle: revoke as compromised, destroy, and the state says so.
    ok(
        &gw,
        &dir,
        &["client", "revoke", &uid, "--reason", "key-compromise"],
    );
    ok(&gw, &dir, &["client", "destroy", &uid]);
    let state = ok(
        &gw,
        &dir,
        &["client", "get-attributes", &uid, "--attribute", "State"],
    );
    assert_eq!(field(&state, "State"), "DestroyedCompromised");

    // HTTPS with XML and JSON bodies reach the same objects.
    for encoding in ["xml", "json"] {
        let out = ok(
            &gw,
            &dir,
            &[
                "client",
                "--http",
                "--encoding",
                encoding,
                "get-attributes",
                &copy,
                "--attribute",
                "Name",
            ],
        );
        assert!(out.contains("NameValue=copy"), "{encoding}: {out}");
    }

    // Failures: a KMIP error exits 1 with the reason, bad usage exits 2.
    let missing = ksg(&gw, &dir, &["client", "get", "no-such-object"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ItemNotFound"));
    assert_eq!(
        ksg(&gw, &dir, &["client", "create", "--alg", "rot13"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        ksg(&gw, &dir, &["client", "--kmip-version", "9.9", "query"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_second_client_certificate_from_the_development_ca_connects() {
    let gw = Gateway::start("cli-tls-issue", Settings::default());
    let dir = gw.dir.0.clone();
    let out = ok(
        &gw,
        &dir,
        &[
            "tls",
            "issue-client",
            "--cn",
            "second-client",
            "--out",
            "second",
        ],
    );
    assert!(out.contains("CN=second-client"), "{out}");
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("second/client.key"))
            .expect("key")
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);
    let versions = ok(
        &gw,
        &dir,
        &[
            "client",
            "--ca",
            "second/ca.pem",
            "--cert",
            "second/client.pem",
            "--key",
            "second/client.key",
            "discover-versions",
        ],
    );
    assert!(versions.contains("version: 1.4"));
    // The same name again would replace the key: refused.
    let again = ksg(
        &gw,
        &dir,
        &["tls", "issue-client", "--cn", "x", "--out", "second"],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
}
