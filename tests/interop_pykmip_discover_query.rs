//! The PyKMIP client completes Discover Versions and Query over mutual TLS against `ksg serve`
//! running with the shipped `confs/` (port 5696, development PKI made on first start), at KMIP
//! 1.0, 1.2 and 1.4. Needs the virtualenv that `tests/run-all` makes (or `KSG_PYTHON`).

mod common;

use std::path::Path;

use common::gateway::{Gateway, TempDir};

#[test]
fn pykmip_discover_versions_and_query_over_mutual_tls_with_the_shipped_confs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gw = Gateway::spawn(&root.join("confs"), TempDir::new("pykmip-shipped"));
    assert_eq!(gw.addr.port(), 5696);
    assert!(
        gw.log_text().contains("made a development PKI"),
        "{}",
        gw.log_text()
    );
    for version in ["1.0", "1.2", "1.4"] {
        let (ok, text) = gw.run_pykmip("pykmip_discover_query.py", version);
        assert!(ok && text.contains("ok"), "PyKMIP at {version}:\n{text}");
    }
}
