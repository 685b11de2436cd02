//! `ksg serve` and bad configuration: a bad value stops it with status 2 and `file:line`
//! before it listens; an unknown key is a warning naming `file:line`, and it starts.

mod common;

use std::process::Command;
use std::time::Duration;

use common::gateway::{Gateway, TempDir};

fn write_confs(dir: &std::path::Path, server_extra: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("ksg.conf"), "[p6ksg-gen]\ngateFlags = 2\n").expect("write");
    std::fs::write(
        dir.join("p6kmipserver.conf"),
        format!("[p6kmip-server-gen]\nlistenPort = 0\nlistenIPAddr = 127.0.0.1\n{server_extra}"),
    )
    .expect("write");
    std::fs::write(
        dir.join("p6kmip_auxiliary_ksg.conf"),
        "[p6kmip-server-auxiliary]\n",
    )
    .expect("write");
}

#[test]
fn a_bad_value_exits_2_naming_file_and_line_before_listening() {
    let tmp = TempDir::new("badconf");
    let confs = tmp.0.join("confs");
    write_confs(&confs, "; comment\nthreadCount = many\n");
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["serve", "--confs"])
        .arg(&confs)
        .arg("--data")
        .arg(tmp.0.join("data"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("p6kmipserver.conf:5:") && err.contains("threadCount"),
        "{err}"
    );
    assert!(!err.contains("listening"), "{err}");

    std::fs::remove_file(confs.join("ksg.conf")).expect("rm");
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["serve", "--confs"])
        .arg(&confs)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ksg.conf: cannot read"));
}

#[test]
fn an_unknown_key_is_a_warning_with_file_and_line_and_the_gateway_starts() {
    let tmp = TempDir::new("unknownkey");
    let confs = tmp.0.join("confs");
    write_confs(&confs, "tlsEnabled = 0\nlistenBacklog = 5\n");
    let mut gw = Gateway::spawn(&confs, tmp);
    std::thread::sleep(Duration::from_millis(100));
    let log = gw.log_text();
    assert!(
        log.contains("p6kmipserver.conf:5: unknown key `listenBacklog`"),
        "{log}"
    );
    assert!(log.contains("(plain)"), "{log}");
    gw.terminate();
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn serve_help_names_the_contract() {
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["serve", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "--confs DIR",
        "--data DIR",
        "ksg listening on IP:PORT (tls|plain)",
        "SIGTERM",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
}

/// Runs `ksg serve` on `confs` and `data` expecting it to refuse to start; its standard error.
fn refused(confs: &std::path::Path, data: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["serve", "--confs"])
        .arg(confs)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("listening"), "{err}");
    err
}

#[test]
fn a_world_readable_tls_key_or_a_bad_policy_file_stops_the_gateway() {
    let tmp = TempDir::new("tlskeymode");
    let confs = tmp.0.join("confs");
    let data = tmp.0.join("data");
    write_confs(&confs, "tlsEnabled = 1\n");
    // The first start makes the development PKI (keys 0600) and runs.
    // The gateway owns the directory from here on; it is removed when `gw` is dropped.
    let mut gw = Gateway::spawn(&confs, tmp);
    gw.terminate();
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
    let key = data.join("tls/server.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let err = refused(&confs, &data);
    assert!(
        err.contains("server.key") && err.contains("readable by every user"),
        "{err}"
    );
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");

    std::fs::write(
        confs.join("p6kmip_policies.conf"),
        "[policy shared]\nSymmetricKey.Get = Sometimes\n",
    )
    .expect("write");
    let err = refused(&confs, &data);
    assert!(
        err.contains("p6kmip_policies.conf:2:") && err.contains("AllowAll"),
        "{err}"
    );
}

#[test]
fn require_credential_without_a_credentials_file_stops_the_gateway() {
    let tmp = TempDir::new("credconf");
    let confs = tmp.0.join("confs");
    write_confs(&confs, "tlsEnabled = 0\nrequireCredential = 1\n");
    let err = refused(&confs, &tmp.0.join("data"));
    assert!(err.contains("p6kmip_credentials.conf"), "{err}");
}
