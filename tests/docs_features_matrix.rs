//! `docs/features.md` holds exactly what `ksg features` prints (the matrix comes from the code,
//! which a unit test keeps equal to the implemented operations), so the document cannot drift.

use std::process::Command;

#[test]
fn docs_features_md_is_the_output_of_ksg_features() {
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .arg("features")
        .output()
        .expect("run ksg features");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/features.md"),
    )
    .expect("docs/features.md");
    let table = doc
        .split_once("<!-- features:begin -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- features:end -->"))
        .map(|(table, _)| table)
        .expect("docs/features.md has the features:begin/end markers");
    assert_eq!(
        table, generated,
        "docs/features.md is out of date: replace the table with `ksg features` output"
    );
}
