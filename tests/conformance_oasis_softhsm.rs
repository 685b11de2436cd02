//! The OASIS 1.4 mandatory profile files listed in `tests/conformance/softhsm-subset.txt`,
//! replayed by `ksg conformance` against `ksg serve` in HSM mode on SoftHSM2 (a private token
//! directory through SOFTHSM2_CONF, `ksg pkcs11 setup`, the customer KEK imported with
//! `ksg pkcs11 import-kek` and named by KEKKeyPath, generated keys as token objects).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::gateway::{Gateway, TempDir};

#[test]
fn v1_4_profiles_mandatory_subset_on_softhsm2() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new("conf-softhsm");
    let conf = common::softhsm_token(&dir.0, "ksg-conf", "1234");
    let data = dir.0.join("data");
    let setup = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["pkcs11", "setup", "--module"])
        .arg(common::softhsm_module())
        .args(["--token-label", "ksg-conf", "--data"])
        .arg(&data)
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("ksg pkcs11 setup");
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
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
    let import = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["pkcs11", "import-kek", "--file"])
        .arg(&kek)
        .arg("--confs")
        .arg(&confs)
        .arg("--data")
        .arg(&data)
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("ksg pkcs11 import-kek");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let gw = Gateway::spawn_with_env(&confs, dir, &[("SOFTHSM2_CONF", &conf)]);
    let folder = common::testcases_root().join("v1.4/profiles/mandatory");
    let subset = std::fs::read_to_string(root.join("tests/conformance/softhsm-subset.txt"))
        .expect("subset list");
    let files: Vec<PathBuf> = subset
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|f| folder.join(f))
        .collect();
    assert!(files.len() >= 50, "the subset list is too short");
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["conformance", "--plain", "--server"])
        .arg(gw.addr.to_string())
        .args(&files)
        .output()
        .expect("run ksg conformance");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default().to_string();
    eprintln!("SoftHSM2 subset: {summary}");
    assert!(
        out.status.success() && summary == format!("{} passed, 0 failed", files.len()),
        "{summary}\n{}\nserver log:\n{}",
        stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect::<Vec<_>>()
            .join("\n"),
        gw.log_text()
    );
}
