//! The README's quick start, run exactly as written (only `target/release/ksg` is this build's
//! binary): the gateway with the shipped `confs/` on a fresh data directory, then the
//! `ksg client` commands of "A first key", in order, in one shell.

mod common;

use std::path::Path;
use std::process::Command;

use common::gateway::{Gateway, TempDir};

#[test]
fn the_readme_quick_start_works_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let block = readme
        .split_once("<!-- quick-start:begin -->\n```sh\n")
        .and_then(|(_, rest)| rest.split_once("```\n<!-- quick-start:end -->"))
        .map(|(block, _)| block)
        .expect("README.md has the quick-start block");
    let script = block.replace("target/release/ksg", env!("CARGO_BIN_EXE_ksg"));

    // `cargo run --release -- serve` from the project: the shipped confs, data/ beside them.
    let gw = Gateway::spawn(&root.join("confs"), TempDir::new("readme-quick-start"));
    assert_eq!(gw.addr.port(), 5696, "the shipped confs listen on 5696");
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&gw.dir.0)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the quick start failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log_text()
    );
    for expected in [
        "version: 1.4",
        "unique_identifier: 1",
        "hello, key server",
        "private_key: 2",
        "public_key: 3",
        "valid: true",
        "Name: {NameValue=first-key, NameType=UninterpretedTextString}",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
}
