//! The OASIS KMIP profile test cases, end to end: `ksg conformance` (the runner users run
//! against any server) replays each folder against a fresh `ksg serve` on the software token,
//! over mutual TLS. Files that cannot pass are listed, with the reason, in
//! `tests/conformance/known-failures.txt` (its common part and its `[software-token]`
//! section); every other file must pass.

mod common;

use common::gateway::{Gateway, Settings};

fn run_folder(name: &str, folder: &str) {
    let gw = Gateway::start(name, Settings::default());
    let tls = gw.dir.0.join("data").join("tls");
    common::conformance::run_folder(&gw, Some(&tls), folder, "software-token");
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
