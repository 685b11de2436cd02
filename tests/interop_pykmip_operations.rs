//! The PyKMIP client performs every operation it offers against `ksg serve` over mutual TLS,
//! at KMIP 1.0, 1.1, 1.2, 1.3 and 1.4, on both backends (the software token, and SoftHSM2 in HSM
//! mode with a customer KEK), with results checked against Python's `cryptography` (AES-CBC
//! ciphertext, RSA signature, HMAC, PBKDF2). Needs the virtualenv that `tests/run-all` makes
//! (or `KSG_PYTHON`).

mod common;

use common::gateway::{Gateway, Settings, softhsm_gateway};

const VERSIONS: [&str; 5] = ["1.0", "1.1", "1.2", "1.3", "1.4"];

fn every_version(gw: &Gateway, backend: &str) {
    for version in VERSIONS {
        let (ok, text) = gw.run_pykmip("pykmip_operations.py", version);
        assert!(
            ok && text.trim_end().ends_with("ok"),
            "PyKMIP at {version} on {backend}:\n{text}\nserver log:\n{}",
            gw.log_text()
        );
    }
}

#[test]
fn pykmip_performs_every_operation_it_offers_on_the_software_token() {
    let gw = Gateway::start("pykmip-ops", Settings::default());
    every_version(&gw, "the software token");
}

#[test]
fn pykmip_performs_every_operation_it_offers_on_softhsm2() {
    let gw = softhsm_gateway("pykmip-ops-hsm", true);
    every_version(&gw, "SoftHSM2");
}
