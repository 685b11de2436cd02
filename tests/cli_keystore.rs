//! `ksg keystore verify|dump|compact` as an operator runs them, and `ksg serve` refusing to
//! start with the wrong store key.

mod common;

use std::process::{Command, Output};

use common::gateway::TempDir;
use common::keystore::named_key;
use ksg::store::{Change, Store, key};
use ksg::ttlv::{Item, Tag, Value};

fn ksg(args: &[&str], confs: &std::path::Path, data: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(args)
        .arg("--confs")
        .arg(confs)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run ksg")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn setup(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let confs = dir.join("confs");
    let data = dir.join("data");
    std::fs::create_dir_all(&confs).expect("mkdir");
    std::fs::write(
        confs.join("ksg.conf"),
        "[p6ksg-gen]\nHSM_name = \"test\"\ngateFlags = 2\n",
    )
    .expect("write");
    std::fs::write(
        confs.join("p6kmipserver.conf"),
        "[p6kmip-server-gen]\nlistenPort = 0\nlistenIPAddr = 127.0.0.1\ntlsEnabled = 0\n",
    )
    .expect("write");
    std::fs::write(
        confs.join("p6kmip_auxiliary_ksg.conf"),
        "[p6kmip-server-auxiliary]\n",
    )
    .expect("write");
    let k = key::load(None, &data.join("ksgbaseKey.txt"))
        .expect("key")
        .0;
    let (s, _) = Store::open(&data, &k, "test", false).expect("open");
    for i in 0..3 {
        let mut o = named_key(&format!("audit-key-{i}"));
        o.state = 2;
        let usage = Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(12));
        assert!(o.attributes.push("Cryptographic Usage Mask", 0, &usage));
        s.commit(vec![Change::Create(o)]).expect("create");
    }
    (confs, data)
}

#[test]
fn verify_dump_and_compact_from_the_command_line() {
    let d = TempDir::new("cli-ks");
    let (confs, data) = setup(&d.0);
    let out = ksg(&["keystore", "verify"], &confs, &data);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("records verified: 3")
            && text(&out).contains("chain: OK")
            && text(&out).contains("format version: 2\n"),
        "{}",
        text(&out)
    );

    let out = ksg(&["keystore", "dump"], &confs, &data);
    let dump = text(&out);
    assert!(out.status.success(), "{dump}");
    assert!(
        dump.contains("type=SymmetricKey state=Active owner=alice hsm=test"),
        "{dump}"
    );
    assert!(
        dump.contains("Name[0] = {NameValue=\"audit-key-1\""),
        "{dump}"
    );
    assert!(
        dump.contains("Cryptographic Usage Mask[0] = Encrypt|Decrypt"),
        "{dump}"
    );
    assert!(
        !dump.to_lowercase().contains("c3c3c3c3"),
        "dump shows no key material"
    );

    let out = ksg(&["keystore", "compact"], &confs, &data);
    assert!(out.status.success(), "{}", text(&out));

    let path = data.join("keystore.ksg");
    let mut bytes = std::fs::read(&path).expect("read");
    let n = bytes.len();
    bytes[n - 40] ^= 0x10;
    std::fs::write(&path, &bytes).expect("write");
    let out = ksg(&["keystore", "verify"], &confs, &data);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("DAMAGED"), "{}", text(&out));
    let out = ksg(&["keystore", "compact"], &confs, &data);
    assert_eq!(
        out.status.code(),
        Some(1),
        "compact refuses damage without --recover"
    );
    let out = ksg(&["keystore", "compact", "--recover"], &confs, &data);
    assert!(
        out.status.success() && text(&out).contains("damaged original"),
        "{}",
        text(&out)
    );
    let out = ksg(&["keystore", "verify"], &confs, &data);
    assert!(text(&out).contains("objects (test): 2"), "{}", text(&out));
}

#[test]
fn serve_refuses_the_wrong_store_key_and_opens_damage_only_with_gate_flag_1() {
    let d = TempDir::new("cli-ks-serve");
    let (confs, data) = setup(&d.0);
    // Damage a record, then start the gateway: refused, with where and how.
    let path = data.join("keystore.ksg");
    let mut bytes = std::fs::read(&path).expect("read");
    // In the first record's body (after the file's 128-byte header and the record's 24-byte
    // one): the records after it are then lost too, as the log says.
    bytes[128 + 24 + 40] ^= 0x10;
    std::fs::write(&path, &bytes).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .arg("serve")
        .arg("--confs")
        .arg(&confs)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("signature check failed at byte"),
        "{}",
        text(&out)
    );
    // With gateFlags 0x0001 it opens, says what it dropped and how to re-seal.
    std::fs::write(
        confs.join("ksg.conf"),
        "[p6ksg-gen]\nHSM_name = \"test\"\ngateFlags = 0x0003\n",
    )
    .expect("write");
    let (_, log) = common::gateway::serve_then_stop(
        Command::new(env!("CARGO_BIN_EXE_ksg"))
            .args(["serve", "--confs"])
            .arg(&confs)
            .arg("--data")
            .arg(&data),
    );
    assert!(
        log.contains("KEYSTORE SIGNATURE CHECK FAILED")
            && log.contains("ksg keystore compact --recover"),
        "{log}"
    );
    assert!(log.contains("ksg listening on"), "{log}");
    // The wrong store key: a clear start-up error.
    std::fs::remove_file(data.join("ksgbaseKey.txt")).expect("rm key");
    key::write_key_file(
        &data.join("ksgbaseKey.txt"),
        &key::Key256::random().expect("random"),
    )
    .expect("new key");
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .arg("serve")
        .arg("--confs")
        .arg(&confs)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("wrong store key"), "{}", text(&out));
}

#[test]
fn verify_and_dump_end_quietly_when_their_reader_stops_early() {
    let d = TempDir::new("cli-ks-pipe");
    let (confs, data) = setup(&d.0);
    for command in ["verify", "dump"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ksg"))
            .args(["keystore", command, "--confs"])
            .arg(&confs)
            .arg("--data")
            .arg(&data)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run ksg");
        // The reader goes away before anything is written (as `| head` does when satisfied).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{command}: {}", text(&out));
    }
}
