//! Crash safety under load: `ksg keystore bench` writes with 8 concurrent writers and records
//! every acknowledged Unique Identifier; it is SIGKILLed at random moments after its writes
//! begin, five times. After
//! each kill the keystore opens without the recover flag (the chain verifies, a torn tail is
//! cut) and every acknowledged object is there.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::gateway::TempDir;
use ksg::store::{Store, key};

#[test]
fn every_acknowledged_write_survives_sigkill_and_the_chain_verifies() {
    let d = TempDir::new("ks-crash");
    let acks = d.0.join("acks.txt");
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(7, |t| t.as_nanos() as u64)
        | 1;
    let mut total_acked = 0;
    for round in 0..5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ksg"))
            .args([
                "keystore",
                "bench",
                "--writers",
                "8",
                "--seconds",
                "60",
                "--data",
            ])
            .arg(&d.0)
            .arg("--ack-file")
            .arg(&acks)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the writer");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Opening a growing store takes time: kill only once this round's writes have begun.
        let before = std::fs::metadata(&acks).map_or(0, |m| m.len());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::fs::metadata(&acks).map_or(0, |m| m.len()) == before
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let wait = 50 + seed % 500;
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reaped");
        assert!(
            !status.success(),
            "round {round}: the writer should have been killed"
        );

        let key = key::load(None, &d.0.join("ksgbaseKey.txt")).expect("key").0;
        let (store, report) = Store::open(&d.0, &key, "bench", false)
            .unwrap_or_else(|e| panic!("round {round} (killed after {wait} ms): {e}"));
        let text = std::fs::read_to_string(&acks).unwrap_or_default();
        // A line cut by the kill itself was never complete: ignore it.
        let complete = if text.ends_with('\n') {
            &text[..]
        } else {
            &text[..text.rfind('\n').map_or(0, |i| i + 1)]
        };
        let acked: Vec<&str> = complete.lines().collect();
        let missing: Vec<&&str> = acked
            .iter()
            .filter(|u| store.with_object(u, |_| ()).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged objects lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        println!(
            "round {round}: killed after {wait} ms; {} acknowledged, {} objects, torn tail {} bytes",
            acked.len(),
            report.objects,
            report.torn_bytes
        );
        assert!(
            acked.len() > total_acked,
            "round {round}: the writer made progress"
        );
        total_acked = acked.len();
    }
}
