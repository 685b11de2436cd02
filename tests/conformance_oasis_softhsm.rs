//! The same OASIS folders as on the software token, replayed by `ksg conformance` against
//! `ksg serve` in HSM mode on SoftHSM2: a private token directory through SOFTHSM2_CONF,
//! `ksg pkcs11 setup`, the customer KEK imported with `ksg pkcs11 import-kek` and named by
//! KEKKeyPath, generated keys as token objects, keys leaving the HSM only wrapped. Files that
//! cannot pass are in `tests/conformance/known-failures.txt` (its common part and its
//! `[softhsm2]` section: what SoftHSM2 cannot do, with the reason).

mod common;

fn run_folder(name: &str, folder: &str) {
    let gw = common::gateway::softhsm_gateway(name, false);
    common::conformance::run_folder(&gw, None, folder, "softhsm2");
}

#[test]
fn v1_4_profiles_mandatory_on_softhsm2() {
    run_folder("hsm-14m", "v1.4/profiles/mandatory");
}

#[test]
fn v1_4_profiles_optional_on_softhsm2() {
    run_folder("hsm-14o", "v1.4/profiles/optional");
}

#[test]
fn v1_3_profiles_mandatory_on_softhsm2() {
    run_folder("hsm-13m", "v1.3/profiles/mandatory");
}

#[test]
fn v1_4_testcases_on_softhsm2() {
    run_folder("hsm-14t", "v1.4/testcases");
}

#[test]
fn v1_3_testcases_on_softhsm2() {
    run_folder("hsm-13t", "v1.3/testcases");
}

#[test]
fn v1_0_to_1_2_cosmian_mandatory_on_softhsm2() {
    run_folder("hsm-10m", "v1.0-1.2/extracted-cosmian/mandatory");
}
