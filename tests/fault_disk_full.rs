//! The disk filling up under the keystore, for real: the gateway's data directory is a small
//! tmpfs (CI runs as root; elsewhere the test says it needs root). Creates go on until the
//! disk is full: the failing request gets a clear KMIP error, every key acknowledged before
//! it can still be read, and once space returns the gateway serves again without a restart;
//! after a restart the keystore verifies and holds every acknowledged key.

mod common;

use std::process::Command;
use std::time::Duration;

use common::gateway::{
    Gateway, TempDir, create_aes_256, request, roundtrip, tls_connect, unique_identifier,
};
use ksg::ttlv::tables::enums::{Operation, ResultReason};
use ksg::ttlv::{Item, Tag, Value};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// (Result Status, Result Reason, Unique Identifier) of a one-item response.
fn outcome(response: &Item) -> (u32, Option<u32>, Option<String>) {
    let item = response.child(Tag::BATCH_ITEM).expect("item");
    let e = |t| match item.child(t).map(|v| &v.value) {
        Some(Value::Enumeration(v)) => Some(*v),
        _ => None,
    };
    (
        e(Tag::RESULT_STATUS).expect("status"),
        e(Tag::RESULT_REASON),
        unique_identifier(response),
    )
}

#[test]
fn a_full_disk_fails_the_request_harms_nothing_and_service_resumes() {
    let dir = TempDir::new("disk-full");
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&data)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "this test mounts a tmpfs and needs root (CI runs as root)"
    );
    let _mount = Mount(data.clone());
    let confs = dir.0.join("confs");
    std::fs::create_dir_all(&confs).expect("mkdir");
    for (f, t) in [
        ("ksg.conf", "[p6ksg-gen]\ngateFlags = 2\n"),
        (
            "p6kmipserver.conf",
            "[p6kmip-server-gen]\nlistenPort = 0\nlistenIPAddr = 127.0.0.1\ntlsEnabled = 1\n",
        ),
        ("p6kmip_auxiliary_ksg.conf", "[p6kmip-server-auxiliary]\n"),
    ] {
        std::fs::write(confs.join(f), t).expect("conf");
    }
    let mut gw = Gateway::spawn(&confs, dir);
    // Bound again after the gateway, so it is dropped first (unmounted) and the gateway's
    // temporary directory, dropped next, can be removed.
    let _mount = _mount;
    let mut tls = tls_connect(gw.addr, &gw.data());

    // Leave about 24 KiB free, then create until the disk is full.
    let filler = data.join("filler");
    let free = fs_free(&data);
    std::fs::write(&filler, vec![0u8; free.saturating_sub(24 * 1024) as usize]).expect("fill");
    let mut acked = Vec::new();
    let mut failure = None;
    for _ in 0..2000 {
        match outcome(&roundtrip(&mut tls, &create_aes_256())) {
            (0, _, Some(uid)) => acked.push(uid),
            (_, reason, _) => {
                failure = reason;
                break;
            }
        }
    }
    assert!(!acked.is_empty(), "some creates fit");
    assert_eq!(
        failure,
        Some(ResultReason::GeneralFailure.to_u32()),
        "a full disk fails the request with a KMIP error, after {} keys",
        acked.len()
    );
    // Nothing already stored is harmed: every acknowledged key still reads.
    for uid in &acked {
        let get = request(
            4,
            Operation::Get.to_u32(),
            vec![Item::new(
                Tag::UNIQUE_IDENTIFIER,
                Value::TextString(uid.clone()),
            )],
        );
        assert_eq!(outcome(&roundtrip(&mut tls, &get)).0, 0, "Get {uid}");
    }
    // Space returns: the gateway serves again, no restart.
    std::fs::remove_file(&filler).expect("free space");
    let (status, _, uid) = outcome(&roundtrip(&mut tls, &create_aes_256()));
    assert_eq!(status, 0, "creates work again once there is space");
    acked.push(uid.expect("uid"));
    drop(tls);

    // After a restart the keystore verifies and holds every acknowledged key.
    gw.terminate();
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
    let verify = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["keystore", "verify", "--confs"])
        .arg(&confs)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("ksg keystore verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        report.contains(&format!("objects (default): {} (0 destroyed)", acked.len())),
        "{} acknowledged keys; the keystore says:\n{report}",
        acked.len()
    );
}

/// Free bytes on the file system holding `path` (from `df`, which every Debian has).
fn fs_free(path: &std::path::Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}
