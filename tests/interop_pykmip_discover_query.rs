//! The PyKMIP client completes Discover Versions and Query over mutual TLS against `ksg serve`
//! running with the shipped `confs/` (port 5696, development PKI made on first start), at KMIP
//! 1.0, 1.2 and 1.4. Needs the virtualenv that `tests/run-all` makes (or `KSG_PYTHON`).

mod common;

use std::path::Path;
use std::process::Command;

use common::gateway::{Gateway, TempDir};

#[test]
fn pykmip_discover_versions_and_query_over_mutual_tls_with_the_shipped_confs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gw = Gateway::spawn(&root.join("confs"), TempDir::new("pykmip-shipped"));
    assert_eq!(gw.addr.port(), 5696);
    assert!(
        gw.log_text().contains("made a development PKI"),
        "{}",
        gw.log_text()
    );
    let python = std::env::var("KSG_PYTHON")
        .unwrap_or_else(|_| root.join(".venv/bin/python").display().to_string());
    let script = root.join("tests/interop/pykmip_discover_query.py");
    for version in ["1.0", "1.2", "1.4"] {
        let out = Command::new(&python)
            .arg(&script)
            .arg(gw.addr.ip().to_string())
            .arg(gw.addr.port().to_string())
            .arg(gw.data().join("tls"))
            .arg(version)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {python} (run tests/run-all to make the venv): {e}")
            });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("ok"),
            "PyKMIP at {version}:\n{text}"
        );
    }
}
