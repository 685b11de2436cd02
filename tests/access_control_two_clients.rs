//! Ownership and operation policies between two clients: the development client makes objects,
//! a second client with its own certificate from `ksg tls issue-client` may neither find, read,
//! use nor change them unless the object's Operation Policy Name (built-in `default` or
//! `public`, or a site policy from `p6kmip_policies.conf`) grants it; every refusal is Permission
//! Denied and an audit line. Also: the identity taken from the certificate (`clientIdentity`),
//! the identity of plain connections (`plainIdentity`), and the audit log's content.

mod common;

use std::process::{Command, Output};

use common::gateway::{Gateway, Settings};

struct Clients<'a> {
    gw: &'a Gateway,
}

impl Clients<'_> {
    /// `ksg client` as the development client (`None`) or the client in `other/`.
    fn run(&self, who: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ksg"));
        cmd.current_dir(&self.gw.dir.0)
            .arg("client")
            .arg("--server")
            .arg(self.gw.addr.to_string());
        if let Some(dir) = who {
            cmd.args([
                "--ca",
                &format!("{dir}/ca.pem"),
                "--cert",
                &format!("{dir}/client.pem"),
                "--key",
                &format!("{dir}/client.key"),
            ]);
        }
        cmd.args(args).output().expect("ksg client")
    }

    fn ok(&self, who: Option<&str>, args: &[&str]) -> String {
        let out = self.run(who, args);
        assert!(
            out.status.success(),
            "{who:?} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn denied(&self, who: Option<&str>, args: &[&str]) {
        let out = self.run(who, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{who:?} {args:?} was not refused"
        );
        assert!(err.contains("PermissionDenied"), "{who:?} {args:?}: {err}");
    }

    fn issue(&self, cn: &str, dir: &str) {
        let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
            .current_dir(&self.gw.dir.0)
            .args(["tls", "issue-client", "--cn", cn, "--out", dir])
            .output()
            .expect("ksg tls issue-client");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn uid(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .to_string()
}

const OTHER: Option<&str> = Some("other");

#[test]
fn another_client_may_not_see_read_use_or_change_what_it_does_not_own() {
    let gw = Gateway::start(
        "acl-two",
        Settings {
            policies: "[policy shared-encrypt]\nSymmetricKey.Encrypt = AllowAll\n\
                       SymmetricKey.Locate = AllowAll\n\n[policy frozen]\n*.* = DisallowAll\n",
            ..Settings::default()
        },
    );
    let c = Clients { gw: &gw };
    c.issue("other-client", "other");
    let dir = &gw.dir.0;
    std::fs::write(dir.join("data.txt"), b"sixteen byte msg").expect("write");
    let data = dir.join("data.txt").display().to_string();
    let out = dir.join("out.bin").display().to_string();

    // A key of the development client's, under the default policy.
    let mine = uid(
        &c.ok(None, &["create", "--name", "mine", "--activate"]),
        "unique_identifier",
    );
    for args in [
        vec!["get", mine.as_str()],
        vec!["get-attributes", &mine],
        vec![
            "encrypt", &mine, "--in", &data, "--out", &out, "--mode", "cbc",
        ],
        vec!["revoke", &mine],
        vec!["destroy", &mine],
    ] {
        c.denied(OTHER, &args);
    }
    assert_eq!(
        c.ok(OTHER, &["locate", "--name", "mine", "--json"]).trim(),
        r#"{"unique_identifier":[]}"#
    );
    // Query and Discover Versions stay open; the other client's own objects are its own.
    c.ok(OTHER, &["query"]);
    c.ok(OTHER, &["discover-versions"]);
    let theirs = uid(
        &c.ok(OTHER, &["create", "--name", "theirs"]),
        "unique_identifier",
    );
    c.denied(None, &["get", &theirs]);
    c.ok(OTHER, &["get", &theirs]);
    assert_eq!(
        c.ok(None, &["locate", "--json"]).trim(),
        format!(r#"{{"unique_identifier":["{mine}"]}}"#),
        "Locate leaves out what the caller may not see"
    );

    // default: public keys may be read by all, private keys by their owner only.
    let pair = c.ok(
        None,
        &[
            "create-key-pair",
            "--alg",
            "EC",
            "--curve",
            "P-256",
            "--activate",
        ],
    );
    c.ok(OTHER, &["get", &uid(&pair, "public_key")]);
    c.denied(OTHER, &["get", &uid(&pair, "private_key")]);

    // public: others may find, read and use, not change.
    let public = uid(
        &c.ok(
            None,
            &[
                "create",
                "--name",
                "pub",
                "--activate",
                "--attr",
                "Operation Policy Name=public",
            ],
        ),
        "unique_identifier",
    );
    c.ok(OTHER, &["get", &public]);
    c.ok(
        OTHER,
        &[
            "encrypt", &public, "--in", &data, "--out", &out, "--mode", "cbc",
        ],
    );
    c.denied(OTHER, &["destroy", &public]);

    // A site policy: others may encrypt (and find) but not read the key.
    let shared = uid(
        &c.ok(
            None,
            &[
                "create",
                "--name",
                "shared",
                "--activate",
                "--attr",
                "Operation Policy Name=shared-encrypt",
            ],
        ),
        "unique_identifier",
    );
    c.ok(
        OTHER,
        &[
            "encrypt", &shared, "--in", &data, "--out", &out, "--mode", "cbc",
        ],
    );
    assert!(
        c.ok(OTHER, &["locate", "--name", "shared"])
            .contains(&shared)
    );
    c.denied(OTHER, &["get", &shared]);
    // DisallowAll binds the owner too; an unknown policy name is refused at creation.
    let frozen = uid(
        &c.ok(
            None,
            &[
                "create",
                "--name",
                "frozen",
                "--attr",
                "Operation Policy Name=frozen",
            ],
        ),
        "unique_identifier",
    );
    c.denied(None, &["get", &frozen]);
    let unknown = c.run(
        None,
        &["create", "--attr", "Operation Policy Name=nonesuch"],
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("InvalidField"));

    // The audit log: who made what, every refusal, and no key material.
    let key = uid(&c.ok(OTHER, &["get", &public]), "value");
    let audit = std::fs::read_to_string(gw.data().join("audit.log")).expect("audit.log");
    assert!(audit.contains(&format!(
        "identity=\"ksg-client\" operation=Create uid=\"{mine}\" result=Success"
    )));
    assert!(audit.contains(&format!(
        "identity=\"other-client\" operation=Get uid=\"{mine}\" result=OperationFailed reason=PermissionDenied"
    )));
    assert!(audit.contains(&format!(
        "identity=\"other-client\" operation=Destroy uid=\"{mine}\" result=OperationFailed reason=PermissionDenied"
    )));
    assert!(!audit.contains(&key), "key material in the audit log");
    assert!(!audit.contains("operation=Locate"), "reads are not audited");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(gw.data().join("audit.log"))
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn the_identity_is_what_client_identity_says_and_plain_connections_get_plain_identity() {
    let gw = Gateway::start(
        "acl-dn",
        Settings {
            extra_server: "clientIdentity = dn\n",
            ..Settings::default()
        },
    );
    let c = Clients { gw: &gw };
    c.ok(None, &["create", "--name", "dn"]);
    // The subject DN as RFC 4514 writes it (last RDN first).
    let audit = std::fs::read_to_string(gw.data().join("audit.log")).expect("audit.log");
    assert!(
        audit.contains("identity=\"O=ksg,CN=ksg-client\" operation=Create"),
        "{audit}"
    );

    let plain = Gateway::start(
        "acl-plain",
        Settings {
            tls: false,
            extra_server: "plainIdentity = appliance\n",
            ..Settings::default()
        },
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args([
            "client",
            "--plain",
            "--server",
            &plain.addr.to_string(),
            "create",
        ])
        .output()
        .expect("ksg client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit = std::fs::read_to_string(plain.data().join("audit.log")).expect("audit.log");
    assert!(
        audit.contains("identity=\"appliance\" operation=Create"),
        "{audit}"
    );
}

#[test]
fn with_require_credential_every_request_needs_a_listed_username_and_password() {
    let alice = ksg::config::credentials::StoredCredential::new("alice", b"wonderland", &[3; 16]);
    let gw = Gateway::start(
        "acl-credential",
        Settings {
            extra_server: "requireCredential = 1\n",
            credentials: format!("[credentials]\n{}\n", alice.line()),
            ..Settings::default()
        },
    );
    let c = Clients { gw: &gw };
    std::fs::write(gw.dir.0.join("right"), "wonderland\n").expect("write");
    std::fs::write(gw.dir.0.join("wrong"), "looking-glass\n").expect("write");
    let with = |file: &str| -> Vec<String> {
        vec![
            "--username".into(),
            "alice".into(),
            "--password-file".into(),
            gw.dir.0.join(file).display().to_string(),
        ]
    };
    // Without a credential, or with a wrong password: refused (Query and Discover Versions
    // stay open).
    c.denied(None, &["create"]);
    let wrong = with("wrong");
    let mut args: Vec<&str> = wrong.iter().map(String::as_str).collect();
    args.push("create");
    c.denied(None, &args);
    c.ok(None, &["query"]);
    c.ok(None, &["discover-versions"]);
    let right = with("right");
    let mut args: Vec<&str> = right.iter().map(String::as_str).collect();
    args.push("create");
    let made = c.ok(None, &args);
    assert!(made.contains("unique_identifier"), "{made}");
    let audit = std::fs::read_to_string(gw.data().join("audit.log")).expect("audit.log");
    assert!(
        audit.contains("operation=Create uid=- result=OperationFailed reason=PermissionDenied"),
        "{audit}"
    );
}
