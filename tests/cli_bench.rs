//! `ksg bench` against a running gateway: every load runs without errors, prints throughput
//! and latency, reports the server's CPU time and memory with `--server-pid`, and appends its
//! results to a CSV file.

mod common;

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use common::gateway::{Gateway, Settings};

/// The connection options for the development PKI in `tls`.
fn pki(tls: &Path) -> [OsString; 6] {
    [
        "--ca".into(),
        tls.join("ca.pem").into(),
        "--cert".into(),
        tls.join("client.pem").into(),
        "--key".into(),
        tls.join("client.key").into(),
    ]
}

#[test]
fn every_load_runs_clean_and_reports_its_figures() {
    let gw = Gateway::start("bench", Settings::default());
    let tls = gw.data().join("tls");
    let csv = gw.dir.0.join("bench.csv");
    for (op, extra) in [
        ("create", &[][..]),
        ("get", &["--batch", "3"][..]),
        ("encrypt", &[][..]),
        ("locate", &[][..]),
        ("register", &[][..]),
        ("mixed", &["--http", "--encoding", "json"][..]),
        ("get", &["--new-connections"][..]),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
            .args(["bench", "--server", &gw.addr.to_string(), "--op", op])
            .args(["--connections", "2", "--duration", "1"])
            .args(pki(&tls))
            .args(["--server-pid", &gw.child.id().to_string()])
            .arg("--csv")
            .arg(&csv)
            .args(extra)
            .output()
            .expect("ksg bench");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{op}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(" 0 errors)") && text.contains("ops/s"),
            "{op}: {text}"
        );
        assert!(
            text.contains("p99") && text.contains("server CPU"),
            "{op}: {text}"
        );
        assert!(text.contains("server resident memory"), "{op}: {text}");
        let client_cpu = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("load generator CPU: "))
            .and_then(|l| l.split(' ').next()?.parse::<f64>().ok());
        assert!(
            client_cpu.is_some_and(|us| us > 0.0),
            "{op}: the load generator's own CPU per request: {text}"
        );
    }

    // The lifecycle load against two servers (here the same gateway under two names), at two
    // connection counts: a comparison and a chart.
    let svg = gw.dir.0.join("bench.svg");
    let addr = gw.addr.to_string();
    let other = format!("second=localhost:{}", gw.addr.port());
    let pid = gw.child.id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["bench", "--server", &addr, "--server", &other])
        .args(["--server-pid", &pid, "--server-pid", &pid])
        .args([
            "--op",
            "lifecycle",
            "--connections",
            "1,2",
            "--duration",
            "1",
        ])
        .args(pki(&tls))
        .arg("--csv")
        .arg(&csv)
        .arg("--plot")
        .arg(&svg)
        .output()
        .expect("ksg bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches(" 0 errors)").count(), 4, "{text}");
    assert!(text.contains("comparison"), "{text}");
    assert!(
        text.contains(&format!("{addr} does ")) && text.contains("the operations per second of"),
        "{text}"
    );
    let chart = std::fs::read_to_string(&svg).expect("svg");
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    assert_eq!(chart.matches("<polyline").count(), 2, "a line per server");
    assert!(
        chart.contains(">second</text>"),
        "the label names the second server"
    );
    assert_eq!(chart.matches("<circle").count(), 4, "a point per run");

    let lines = std::fs::read_to_string(&csv).expect("csv");
    assert_eq!(
        lines.lines().count(),
        12,
        "a header and one line per run:\n{lines}"
    );
    assert!(lines.starts_with("op,connections,encoding,batch,"));
    assert!(
        lines
            .lines()
            .next()
            .is_some_and(|h| h.ends_with(",server,client_cpu_us_per_op")),
        "{lines}"
    );
    for line in lines.lines().skip(1) {
        let client_cpu = line.rsplit(',').next().and_then(|v| v.parse::<f64>().ok());
        assert!(client_cpu.is_some_and(|us| us > 0.0), "{line}");
    }
    assert_eq!(lines.matches("lifecycle,").count(), 4, "{lines}");

    // A --server-pid that names no process: the run goes on and says why it has no CPU figure.
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["bench", "--server", &addr, "--op", "get", "--duration", "1"])
        .args(pki(&tls))
        .args(["--server-pid", "4000000000"])
        .output()
        .expect("ksg bench");
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{text}{err}");
    assert!(!text.contains("server CPU"), "{text}");
    assert!(
        err.contains("process 4000000000 was not there when the load began"),
        "{err}"
    );

    // A CSV file begun by a ksg bench with other columns is refused before any load runs.
    let old = gw.dir.0.join("old.csv");
    let old_text = "op,connections,encoding,batch,seconds,ops_per_s,p50_us,p90_us,p99_us,max_us,errors,server_cpu_us_per_op,server\nget,1,ttlv,1,1.0,100,1,1,1,1,0,,x\n";
    std::fs::write(&old, old_text).expect("old csv");
    let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["bench", "--server", &addr, "--op", "get", "--duration", "1"])
        .args(pki(&tls))
        .arg("--csv")
        .arg(&old)
        .output()
        .expect("ksg bench");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("give a new file"), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ops/s"),
        "no load ran"
    );
    assert_eq!(std::fs::read_to_string(&old).expect("old csv"), old_text);
}
