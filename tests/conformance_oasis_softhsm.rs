//! The same OASIS folders as on the software token, replayed by `ksg conformance` against
//! `ksg serve` in HSM mode on SoftHSM2: a private token directory through SOFTHSM2_CONF,
//! `ksg pkcs11 setup`, the customer KEK imported with `ksg pkcs11 import-kek` and named by
//! KEKKeyPath, generated keys as token objects, keys leaving the HSM only wrapped. Files that
//! cannot pass are in `tests/conformance/known-failures.txt` (its common part and its
//! `[softhsm2]` section: what SoftHSM2 cannot do, with the reason).

mod common;

use std::process::Command;

use common::gateway::{Gateway, TempDir};

/// A fresh SoftHSM2 token and a gateway in HSM mode on it (plain TCP).
fn softhsm_gateway(name: &str) -> Gateway {
    let dir = TempDir::new(name);
    let conf = common::softhsm_token(&dir.0, "ksg-conf", "1234");
    let data = dir.0.join("data");
    let ksg = |args: &[&str], what: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
            .args(args)
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let module = common::softhsm_module();
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_string();
    ksg(
        &[
            "pkcs11",
            "setup",
            "--module",
            &path(&module),
            "--token-label",
            "ksg-conf",
            "--data",
            &path(&data),
        ],
        "ksg pkcs11 setup",
    );
    // The customer KEK: on the token (P6RKEK1) and in KEKKeyPath, so keys can leave wrapped.
    let kek = dir.0.join("kek.bin");
    let mut kek_bytes = [0u8; 32];
    getrandom::fill(&mut kek_bytes).expect("random");
    std::fs::write(&kek, kek_bytes).expect("kek");
    std::fs::set_permissions(&kek, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let confs = dir.0.join("confs");
    std::fs::create_dir_all(&confs).expect("mkdir");
    let ksg_conf = format!(
        "[p6ksg-gen]\ngateFlags = 0\nHSM_pin = \"1234\"\nKEKKeyPath = \"{}\"\n",
        kek.display()
    );
    for (file, text) in [
        ("ksg.conf", ksg_conf.as_str()),
        (
            "p6kmipserver.conf",
            "[p6kmip-server-gen]\nlistenPort = 0\nlistenIPAddr = 127.0.0.1\ntlsEnabled = 0\n",
        ),
        ("p6kmip_auxiliary_ksg.conf", "[p6kmip-server-auxiliary]\n"),
    ] {
        std::fs::write(confs.join(file), text).expect("conf");
    }
    ksg(
        &[
            "pkcs11",
            "import-kek",
            "--file",
            &path(&kek),
            "--confs",
            &path(&confs),
            "--data",
            &path(&data),
        ],
        "ksg pkcs11 import-kek",
    );
    Gateway::spawn_with_env(&confs, dir, &[("SOFTHSM2_CONF", &conf)])
}

fn run_folder(name: &str, folder: &str) {
    let gw = softhsm_gateway(name);
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
