//! Loading the OASIS KMIP XML test cases for the codec tests.
//!
//! The folder comes from `KSG_TESTCASES` (CI sets `../shared/kmip-testcases`); the files are
//! read in place, never copied into the project.

#![allow(dead_code)]

pub mod conformance;
pub mod gateway;
pub mod keystore;

use std::path::{Path, PathBuf};

use ksg::ttlv::{Document, Item, Limits, xml};

/// A small deterministic generator (xorshift64*), so that a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The `$NOW` every test resolves against, so runs are reproducible.
pub const NOW: i64 = 1_700_000_000;

/// The folders of the 1.0–2.1 test cases (the 3.0 draft uses item types of its own).
pub const FOLDERS: [&str; 5] = ["v1.0-1.2", "v1.3", "v1.4", "v2.0", "v2.1"];

/// A file with a known defect, and what the tests do about it.
pub struct KnownDefect {
    /// File name.
    pub file: &'static str,
    /// Why it needs handling (from SOURCE.md or found here).
    pub reason: &'static str,
    /// Repairs the text before decoding.
    pub repair: fn(&str) -> String,
}

/// Every file that cannot be read as published, with the reason and the repair.
pub const KNOWN_DEFECTS: &[KnownDefect] = &[KnownDefect {
    file: "TC-ECDSA-SIGN-1-14.xml",
    reason: "ends with </KMIP> twice, so it is not well-formed XML (SOURCE.md §5)",
    repair: drop_second_root_end,
}];

fn drop_second_root_end(text: &str) -> String {
    match (text.find("</KMIP>"), text.rfind("</KMIP>")) {
        (Some(first), Some(last)) if first != last => {
            format!("{}{}", &text[..last], &text[last + "</KMIP>".len()..])
        }
        _ => text.to_string(),
    }
}

/// The test-case root: `KSG_TESTCASES`, else `../shared/kmip-testcases` beside the project.
pub fn testcases_root() -> PathBuf {
    match std::env::var_os("KSG_TESTCASES") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kmip-testcases"),
    }
}

/// Every `.xml` file under `dir`, sorted.
pub fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "xml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads and decodes one test-case file, applying its known-defect repair if it has one.
pub fn load(path: &Path) -> Result<Document, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let text = String::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let text = match KNOWN_DEFECTS.iter().find(|d| d.file == name) {
        Some(d) => (d.repair)(&text),
        None => text,
    };
    let limits = Limits {
        max_size: 64 << 20,
        ..Limits::default()
    };
    xml::decode_document(&text, NOW, &limits).map_err(|e| e.to_string())
}

/// All request and response messages of every 1.0–2.1 file, by file. Panics with a clear
/// message if the folder is missing, so a wrong path can never pass silently.
pub fn all_messages() -> Vec<(PathBuf, Vec<Item>)> {
    let root = testcases_root();
    assert!(
        root.join("v1.4").is_dir(),
        "OASIS test cases not found at {} (set KSG_TESTCASES)",
        root.display()
    );
    let mut out = Vec::new();
    for folder in FOLDERS {
        for f in xml_files(&root.join(folder)) {
            let doc = load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            out.push((f, doc.messages));
        }
    }
    out
}

/// The SoftHSM2 module: `TEST_PKCS11_MODULE`, else Debian's paths. Panics with the fix when
/// it is missing, so a machine without SoftHSM2 never passes silently.
pub fn softhsm_module() -> PathBuf {
    if let Some(m) = std::env::var_os("TEST_PKCS11_MODULE") {
        return PathBuf::from(m);
    }
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("SoftHSM2 not found: install softhsm2 (tests/run-all does) or set TEST_PKCS11_MODULE")
}

/// Makes a SoftHSM2 token labelled `label` (user PIN `pin`, SO PIN 5678) in `dir/tokens` and
/// returns `dir/softhsm2.conf`, to pass to every process as SOFTHSM2_CONF.
pub fn softhsm_token(dir: &Path, label: &str, pin: &str) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("token dir");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    let out = std::process::Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            "5678",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util runs (install softhsm2)");
    assert!(
        out.status.success(),
        "init token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}
