//! The PyKMIP client performs every operation it offers against `ksg serve` on the software
//! token, over mutual TLS, at KMIP 1.0, 1.2 and 1.4, with results checked against Python's
//! `cryptography` (AES-CBC ciphertext, RSA signature, HMAC). Needs the virtualenv that
//! `tests/run-all` makes (or `KSG_PYTHON`).

mod common;

use common::gateway::{Gateway, Settings};

#[test]
fn pykmip_performs_every_operation_it_offers_at_1_0_1_2_and_1_4() {
    let gw = Gateway::start("pykmip-ops", Settings::default());
    for version in ["1.0", "1.2", "1.4"] {
        let (ok, text) = gw.run_pykmip("pykmip_operations.py", version);
        assert!(
            ok && text.trim_end().ends_with("ok"),
            "PyKMIP at {version}:\n{text}\nserver log:\n{}",
            gw.log_text()
        );
    }
}
