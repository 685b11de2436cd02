//! `ksg pkcs11 setup|slots|import-kek` and `ksg serve` in HSM mode, against SoftHSM2 with a
//! private `softhsm2.conf` (passed through SOFTHSM2_CONF, as SoftHSM2 honours it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::gateway::TempDir;

struct Hsm {
    dir: TempDir,
    conf: PathBuf,
}

impl Hsm {
    fn new() -> Hsm {
        let dir = TempDir::new("cli-pkcs11");
        let conf = common::softhsm_token(&dir.0, "ksg-cli", "1234");
        Hsm { dir, conf }
    }

    fn ksg(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ksg"))
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .expect("run ksg")
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    fn confs(&self, gate_flags: &str, pin: &str) -> PathBuf {
        let c = self.dir.0.join("confs");
        std::fs::create_dir_all(&c).expect("mkdir");
        std::fs::write(
            c.join("ksg.conf"),
            format!(
                "[p6ksg-gen]\ngateFlags = {gate_flags}\nHSM_pin = \"{pin}\"\npkcs11Trace = error\n"
            ),
        )
        .expect("write");
        std::fs::write(
            c.join("p6kmipserver.conf"),
            "[p6kmip-server-gen]\nlistenPort = 0\nlistenIPAddr = 127.0.0.1\ntlsEnabled = 0\n",
        )
        .expect("write");
        std::fs::write(
            c.join("p6kmip_auxiliary_ksg.conf"),
            "[p6kmip-server-auxiliary]\n",
        )
        .expect("write");
        c
    }

    /// Starts `ksg serve`, waits briefly, stops it, and returns its exit code and log.
    fn serve(&self, confs: &Path) -> (Option<i32>, String) {
        common::gateway::serve_then_stop(
            Command::new(env!("CARGO_BIN_EXE_ksg"))
                .args(["serve", "--confs"])
                .arg(confs)
                .arg("--data")
                .arg(self.data())
                .env("SOFTHSM2_CONF", &self.conf),
        )
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn setup_slots_import_kek_and_serve_in_hsm_mode() {
    let h = Hsm::new();
    let module = common::softhsm_module();
    let data = h.data();
    let data_s = data.to_str().expect("utf-8");
    let module_s = module.to_str().expect("utf-8");

    let out = h.ksg(&[
        "pkcs11",
        "setup",
        "--module",
        module_s,
        "--token-label",
        "ksg-cli",
        "--data",
        data_s,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    for f in ["PKCS11", "PKCS11.sig", "pkcs11baseKey.txt"] {
        assert!(data.join(f).is_file(), "{f}");
    }
    let out = h.ksg(&[
        "pkcs11",
        "setup",
        "--module",
        module_s,
        "--token-label",
        "nope",
        "--data",
        data_s,
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unknown token label is refused"
    );

    let out = h.ksg(&["pkcs11", "slots", "--data", data_s]);
    assert!(
        out.status.success()
            && text(&out).contains("token \"ksg-cli\"")
            && text(&out).contains("mechanisms"),
        "{}",
        text(&out)
    );

    let confs = h.confs("0", "1234");
    let kek = h.dir.0.join("aes256.key");
    std::fs::write(&kek, [0x42u8; 32]).expect("kek");
    let kek_s = kek.to_str().expect("utf-8");
    let confs_s = confs.to_str().expect("utf-8");
    let out = h.ksg(&[
        "pkcs11",
        "import-kek",
        "--file",
        kek_s,
        "--confs",
        confs_s,
        "--data",
        data_s,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = h.ksg(&[
        "pkcs11",
        "import-kek",
        "--file",
        kek_s,
        "--confs",
        confs_s,
        "--data",
        data_s,
    ]);
    assert!(
        !out.status.success() && text(&out).contains("already holds"),
        "{}",
        text(&out)
    );
    let listed = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&module)
        .args([
            "--token-label",
            "ksg-cli",
            "--login",
            "--pin",
            "1234",
            "--list-objects",
        ])
        .env("SOFTHSM2_CONF", &h.conf)
        .output()
        .expect("pkcs11-tool");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("label:      P6RKEK1"));

    // The gateway reaches the HSM at start.
    let (code, log) = h.serve(&confs);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("PKCS#11 token reachable and logged in") && log.contains("ksg listening"),
        "{log}"
    );

    // A wrong PIN stops it before it listens, naming the failing call.
    let bad_pin = h.confs("0", "0000");
    let (code, log) = h.serve(&bad_pin);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("C_Login") && !log.contains("listening"),
        "{log}"
    );

    // A PKCS11 file changed behind ksg's back is refused, unless gateFlags 0x0001.
    let mut text_file = std::fs::read_to_string(data.join("PKCS11")).expect("read");
    text_file.push_str("; edited\n");
    std::fs::write(data.join("PKCS11"), text_file).expect("write");
    let confs = h.confs("0", "1234");
    let (code, log) = h.serve(&confs);
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("PKCS11.sig does not match"), "{log}");
    let recover = h.confs("0x0001", "1234");
    let (code, log) = h.serve(&recover);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("SIGNATURE CHECK FAILED") && log.contains("ksg listening"),
        "{log}"
    );
}
