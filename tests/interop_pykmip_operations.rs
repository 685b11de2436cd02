//! The PyKMIP client performs every operation it offers against `ksg serve` on the software
//! token, over mutual TLS, at KMIP 1.0, 1.2 and 1.4, with results checked against Python's
//! `cryptography` (AES-CBC ciphertext, RSA signature, HMAC). Needs the virtualenv that
//! `tests/run-all` makes (or `KSG_PYTHON`).

mod common;

use std::path::Path;
use std::process::Command;

use common::gateway::{Gateway, Settings};

#[test]
fn pykmip_performs_every_operation_it_offers_at_1_0_1_2_and_1_4() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gw = Gateway::start("pykmip-ops", Settings::default());
    let python = std::env::var("KSG_PYTHON")
        .unwrap_or_else(|_| root.join(".venv/bin/python").display().to_string());
    let script = root.join("tests/interop/pykmip_operations.py");
    for version in ["1.0", "1.2", "1.4"] {
        let out = Command::new(&python)
            .arg(&script)
            .arg(gw.addr.ip().to_string())
            .arg(gw.addr.port().to_string())
            .arg(gw.dir.0.join("data").join("tls"))
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
            out.status.success() && text.trim_end().ends_with("ok"),
            "PyKMIP at {version}:\n{text}\nserver log:\n{}",
            gw.log.lock().map(|l| l.clone()).unwrap_or_default()
        );
    }
}
