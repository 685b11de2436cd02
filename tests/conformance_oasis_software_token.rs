//! The OASIS KMIP profile test cases, end to end: `ksg conformance` (the runner users run
//! against any server) replays each folder against a fresh `ksg serve` on the software token,
//! over mutual TLS. Files that cannot pass are listed, with the reason, in
//! `tests/conformance/known-failures.txt`; every other file must pass.

mod common;

use std::path::Path;
use std::process::Command;

use common::gateway::{Gateway, Settings};

fn run_folder(name: &str, folder: &str) {
    let root = common::testcases_root();
    let dir = root.join(folder);
    assert!(
        dir.is_dir(),
        "OASIS test cases not found at {} (set KSG_TESTCASES)",
        dir.display()
    );
    let gw = Gateway::start(name, Settings::default());
    let tls = gw.dir.0.join("data").join("tls");
    let skip = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/known-failures.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .arg("conformance")
        .arg("--server")
        .arg(gw.addr.to_string())
        .arg("--ca")
        .arg(tls.join("ca.pem"))
        .arg("--cert")
        .arg(tls.join("client.pem"))
        .arg("--key")
        .arg(tls.join("client.key"))
        .arg("--server-name")
        .arg("localhost")
        .arg("--skip")
        .arg(&skip)
        .arg(&dir)
        .output()
        .expect("run ksg conformance");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default().to_string();
    eprintln!("{folder}: {summary}");
    if !out.status.success() {
        let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
        panic!(
            "{folder}: {summary}\n{}\nstderr: {}\nserver log:\n{}",
            failures.join("\n"),
            String::from_utf8_lossy(&out.stderr),
            gw.log_text()
        );
    }
    assert!(summary.contains(" passed, 0 failed"), "{summary}");
}

#[test]
fn v1_4_profiles_mandatory() {
    run_folder("conf-14m", "v1.4/profiles/mandatory");
}

#[test]
fn v1_4_profiles_optional() {
    run_folder("conf-14o", "v1.4/profiles/optional");
}

#[test]
fn v1_3_profiles_mandatory() {
    run_folder("conf-13m", "v1.3/profiles/mandatory");
}

#[test]
fn v1_4_testcases() {
    run_folder("conf-14t", "v1.4/testcases");
}

#[test]
fn v1_3_testcases() {
    run_folder("conf-13t", "v1.3/testcases");
}

#[test]
fn v1_0_to_1_2_cosmian_mandatory() {
    run_folder("conf-10m", "v1.0-1.2/extracted-cosmian/mandatory");
}
