//! Running `ksg conformance` (the runner users run against any server) on one OASIS folder
//! against a gateway under test, with `tests/conformance/known-failures.txt` as the skip list.

use std::path::Path;
use std::process::Command;

use super::gateway::Gateway;

/// Replays `folder` (under the test-case root) against `gw` and asserts that no file fails.
/// `tls`: the gateway's development PKI (None: plain TCP). `section`: the backend's section of
/// the skip list (`software-token`, `softhsm2`).
pub fn run_folder(gw: &Gateway, tls: Option<&Path>, folder: &str, section: &str) {
    let dir = super::testcases_root().join(folder);
    assert!(
        dir.is_dir(),
        "OASIS test cases not found at {} (set KSG_TESTCASES)",
        dir.display()
    );
    let skip = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/known-failures.txt");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ksg"));
    cmd.arg("conformance")
        .arg("--server")
        .arg(gw.addr.to_string());
    match tls {
        Some(tls) => cmd
            .arg("--ca")
            .arg(tls.join("ca.pem"))
            .arg("--cert")
            .arg(tls.join("client.pem"))
            .arg("--key")
            .arg(tls.join("client.key"))
            .args(["--server-name", "localhost"]),
        None => cmd.arg("--plain"),
    };
    let out = cmd
        .arg("--skip")
        .arg(&skip)
        .args(["--skip-section", section])
        .arg(&dir)
        .output()
        .expect("run ksg conformance");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default().to_string();
    eprintln!("{folder} ({section}): {summary}");
    if !out.status.success() {
        let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
        panic!(
            "{folder} ({section}): {summary}\n{}\nstderr: {}\nserver log:\n{}",
            failures.join("\n"),
            String::from_utf8_lossy(&out.stderr),
            gw.log_text()
        );
    }
    assert!(summary.contains(" passed, 0 failed"), "{summary}");
}
